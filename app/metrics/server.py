"""The worker's own ``/metrics`` on DSR_WORKER_METRICS_PORT: a minimal asyncio HTTP/1.1
server (one request per connection), behind the same bearer token as the API's."""

import asyncio
import contextlib
import logging

from app.metrics.exposition import CONTENT_TYPE, render, token_matches

logger = logging.getLogger("app.metrics")

READ_TIMEOUT = 5.0
MAX_HEAD_BYTES = 8192


async def start_metrics_server(host: str, port: int, *, token: str) -> asyncio.Server:
    """Listen on ``host``:``port``; close the returned server to stop."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            status, body, content_type = _answer(head, token)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, body, content_type = "400 Bad Request", b"bad request\n", "text/plain"
        except ConnectionError:
            writer.close()
            return
        headers = [
            f"HTTP/1.1 {status}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if status.startswith("401"):
            headers.append("WWW-Authenticate: Bearer")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, port, limit=MAX_HEAD_BYTES)
    logger.info("worker metrics on %s:%s/metrics", host, port)
    return server


def _answer(head: bytes, token: str) -> tuple[str, bytes, str]:
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.partition(" ")[0].partition("?")[0]
    if target != "/metrics":
        return "404 Not Found", b"not found\n", "text/plain"
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", b"method not allowed\n", "text/plain"
    authorization = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "authorization":
            authorization = value.strip()
    if not token_matches(authorization, token):
        return "401 Unauthorized", b"a valid metrics token is required\n", "text/plain"
    body = render()
    return "200 OK", b"" if method == "HEAD" else body, CONTENT_TYPE

"""The Prometheus text for a scrape, and the bearer-token check both servers share."""

import hmac
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def token_matches(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def render(*extra: Collector) -> bytes:
    """This process's figures, or every worker's under multiprocess mode, then ``extra``."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if extra:
        scrape = CollectorRegistry(auto_describe=False)
        for collector in extra:
            scrape.register(collector)
        text += generate_latest(scrape)
    return text


def mark_process_dead() -> None:
    """Drop this process's live gauges from the shared files (a worker stopping)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())

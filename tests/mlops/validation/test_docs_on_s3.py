"""The Data Docs site on object storage: each day's build pulls the stored results only and
puts back only what changed, and the site still accumulates every day (moto's S3 server)."""

from __future__ import annotations

import pytest

from mlops.ingestion.landing import ingest_partition
from mlops.io import storage
from mlops.settings import load_settings
from mlops.validation.partition import validate_partition
from mlops.zones import LANDING, VALIDATION_DOCS
from tests.support.landing_files import day_frame

pytestmark = pytest.mark.integration

DAYS = ("2018-04-01", "2018-04-02")


def land(root: str, day: str, options: dict, first_id: int) -> None:
    folder = storage.join(root, LANDING, f"date={day}")
    storage.write_bytes_atomic(
        storage.join(folder, "transactions.csv"),
        day_frame(day, first_id=first_id).to_csv(index=False).encode(),
        options,
    )
    storage.write_bytes_atomic(storage.join(folder, "_SUCCESS"), b"", options)


def test_the_site_accumulates_days_and_a_rerun_puts_back_only_what_changed(
    bucket, aws_connection, s3_server, monkeypatch
):
    root = f"s3://{bucket}/data"
    settings = load_settings(
        {"MLOPS_DATA_ROOT": root, "MLOPS_S3_ENDPOINT_URL": s3_server, "MLOPS_PROFILE": "local"}
    )
    options = aws_connection
    for number, day in enumerate(DAYS):
        land(root, day, options, first_id=1000 * number)
        ingest_partition(settings, day, options)
        validate_partition(settings, day, options)
    docs = settings.zone(VALIDATION_DOCS)
    fs, path = storage.filesystem(docs, options)
    pages = sorted(p.rsplit("/", 1)[-1] for p in fs.find(path) if p.endswith(".html"))
    assert "transactions-2018-04-01.html" in pages and "transactions-2018-04-02.html" in pages
    index = fs.cat(f"{path}/index.html").decode()
    assert all(day in index for day in DAYS)
    before = {p: i["ETag"] for p, i in fs.find(path, detail=True).items()}

    uploads = []
    upload = storage.upload_changed
    monkeypatch.setattr(storage, "upload_changed", lambda *a: uploads.append(upload(*a)))

    validate_partition(settings, DAYS[0], options)  # a rerun of the first day

    fs.invalidate_cache()
    after = {p: i["ETag"] for p, i in fs.find(path, detail=True).items()}
    assert set(after) == set(before)  # nothing lost, nothing duplicated
    assert uploads and uploads[0] <= 3 < len(after), (uploads, len(after))  # page, result, index


def test_upload_changed_puts_only_files_whose_bytes_differ(bucket, aws_connection, tmp_path):
    site = tmp_path / "site"
    (site / "pages").mkdir(parents=True)
    for name in ("a.html", "b.html", "pages/c.html"):
        (site / name).write_text(name)
    uri = f"s3://{bucket}/docs"
    assert storage.upload_changed(str(site), uri, aws_connection) == 3
    assert storage.upload_changed(str(site), uri, aws_connection) == 0
    (site / "pages" / "c.html").write_text("changed")
    (site / "d.html").write_text("new")
    assert storage.upload_changed(str(site), uri, aws_connection) == 2
    assert storage.read_bytes(f"{uri}/pages/c.html", aws_connection) == b"changed"

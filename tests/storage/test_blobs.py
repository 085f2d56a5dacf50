"""Both blob stores keep the same promises: the local folder, and an S3-compatible bucket on a real
S3 server (moto's server mode on a local port; boto3 is real and talks HTTP to it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.errors import ReportNotFound
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.storage.blobs import Blobs, BlobStore, S3Blobs
from tests.conftest import files_of, make_settings

ITEM, OTHER = f"{1:032x}", f"{2:032x}"


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Blobs]:
    if request.param == "local":
        yield BlobStore(tmp_path / "blobs")
        return
    url = request.getfixturevalue("s3_blob_url")
    store = S3Blobs.from_url(url)
    yield store
    store.client.close()


def test_put_get_list_delete(blobs: Blobs) -> None:
    assert blobs.put_many(ITEM, {"logo.jpg": b"L", "heatmap.webp": b"H"}) == ["heatmap.webp", "logo.jpg"]
    blobs.put_many(OTHER, {"logo.jpg": b"other"})
    assert blobs.get(ITEM, "logo.jpg") == b"L" and blobs.get(OTHER, "logo.jpg") == b"other"
    assert sorted(f for f, _ in blobs.folders()) == [ITEM, OTHER]
    blobs.delete(ITEM)
    with pytest.raises(ReportNotFound, match=r"no stored file 'logo\.jpg'"):
        blobs.get(ITEM, "logo.jpg")
    assert [f for f, _ in blobs.folders()] == [OTHER]
    blobs.delete(ITEM)  # deleting what is gone is fine


def test_an_item_is_written_once(blobs: Blobs) -> None:
    blobs.put_many(ITEM, {"logo.jpg": b"first"})
    with pytest.raises(FileExistsError):
        blobs.put_many(ITEM, {"logo.jpg": b"second"})
    assert blobs.get(ITEM, "logo.jpg") == b"first"


def test_a_failed_write_leaves_nothing(blobs: Blobs) -> None:
    """The second file fails after the first was written: the first goes too."""
    from botocore.exceptions import ParamValidationError

    with pytest.raises((TypeError, ParamValidationError)):
        blobs.put_many(ITEM, {"a.jpg": b"fine", "b.jpg": object()})  # type: ignore[dict-item]
    assert blobs.folders() == []


@pytest.mark.parametrize(("item", "name"), [("../x", "a.jpg"), (ITEM, "../../etc/passwd"),
                                             (ITEM, ".hidden"), (ITEM, "a/b.jpg"), (ITEM, "")])
def test_keys_cannot_escape(blobs: Blobs, item: str, name: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        blobs.put_many(item, {name: b"x"})
    assert blobs.folders() == []


def test_children_are_separate_and_not_items(blobs: Blobs) -> None:
    """References and jobs live below the reports' root; neither sees the other's items, and
    the root's listing (used to sweep orphans) never returns a child's folder."""
    references, jobs = blobs.child("references"), blobs.child("jobs")
    blobs.put_many(ITEM, {"r.jpg": b"report"})
    references.put_many(OTHER, {"f.jpg": b"reference"})
    jobs.put_many(f"{3:032x}", {"0.bin": b"job"})
    assert [f for f, _ in blobs.folders()] == [ITEM]
    assert [f for f, _ in references.folders()] == [OTHER]
    assert references.get(OTHER, "f.jpg") == b"reference"
    with pytest.raises(ReportNotFound):
        blobs.get(OTHER, "f.jpg")


def test_folders_carry_their_age(blobs: Blobs) -> None:
    before = time.time()
    blobs.put_many(ITEM, {"a.jpg": b"x"})
    [(item, mtime)] = blobs.folders()
    assert item == ITEM and before - 5 <= mtime <= time.time() + 5


def test_the_service_stores_everything_in_the_bucket(
        tmp_path: Path, s3_blob_url: str, genuine_item: SyntheticItem) -> None:
    """With AUTHENTIQ_BLOB_URL the photos, heatmaps, PDF, async job inputs and reference photos go
    to the bucket; the local blob folder stays empty."""
    settings = make_settings(tmp_path, blob_url=s3_blob_url, poll_s=0.05)
    form = {"brand": genuine_item.brand, "model": genuine_item.model}
    with TestClient(create_app(settings)) as client:
        report = client.post("/v1/inspections", data=form, files=files_of(genuine_item)).json()
        heatmap = client.get(report["heatmaps"]["images"]["authentic"]["logo"])
        assert heatmap.status_code == 200 and heatmap.headers["content-type"] == "image/webp"
        assert client.get(report["links"]["views"]["logo"]).content == genuine_item.views["logo"]
        assert client.get(report["links"]["pdf"]).content.startswith(b"%PDF")
        job = client.post("/v1/inspections?mode=async", data=form,
                          files=files_of(genuine_item)).json()
        for _ in range(400):
            if client.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded":
                break
            time.sleep(0.05)
        assert client.get(f"/v1/reports/{job['id']}").status_code == 200
        enrolled = client.post("/v1/references", data=form, files=files_of(genuine_item))
        assert enrolled.status_code == 201, enrolled.text
        photo = client.get(f"/v1/references/{enrolled.json()['id']}/views/logo")
        assert photo.content == genuine_item.views["logo"]
    assert not any(p.is_file() for p in settings.blob_dir.rglob("*"))
    bucket = S3Blobs.from_url(s3_blob_url)
    assert {f for f, _ in bucket.folders()} == {report["id"], job["id"]}
    assert [f for f, _ in bucket.child("references").folders()] == [enrolled.json()["id"]]
    assert bucket.child("jobs").folders() == []  # a finished job's inputs are removed
    bucket.client.close()

"""Heatmap images drawn on first request (the draw itself is tested through the app in
tests/api/test_api_reports.py); here: reports stored before, and what a report does not offer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from authentiq.contract.report import Heatmaps
from authentiq.errors import ReportNotFound
from authentiq.storage.blobs import BlobStore
from authentiq.storage.reports import ReportFiles
from authentiq.web.heatmap_images import HeatmapImages

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

RID = "0123456789abcdef0123456789abcdef"
OFFERED = Heatmaps(classes=["counterfeit"], colormap="inferno", notice="Not proof.",
                   views=["logo", "overview"])


@pytest.fixture
def images(tmp_path: Path) -> Iterator[HeatmapImages]:
    blobs = BlobStore(tmp_path / "blobs")
    heatmaps = HeatmapImages(blobs.child("heatmaps"), blobs, workers=1)
    yield heatmaps
    heatmaps.close()


def test_reports_drawn_at_inspection_by_earlier_releases_are_served_as_stored(
        images: HeatmapImages) -> None:
    old = {"logo.jpg": b"photo", "heatmap-counterfeit-logo.webp": b"logo heat",
           "heatmap-counterfeit-overview.webp": b"overview heat"}
    images.report_blobs.put_many(RID, old)
    files = ReportFiles(RID, sorted(old), OFFERED)
    assert asyncio.run(images.get(files, "counterfeit", "logo")) == b"logo heat"
    assert images.all(files) == {"heatmap-counterfeit-logo.webp": b"logo heat",
                                 "heatmap-counterfeit-overview.webp": b"overview heat"}
    assert images.draws == 0


@pytest.mark.parametrize(("cls", "view"), [("authentic", "logo"), ("counterfeit", "label"),
                                           ("counterfeit", "../logo")])
def test_a_heatmap_the_report_does_not_offer_is_not_found_and_not_drawn(
        images: HeatmapImages, cls: str, view: str) -> None:
    files = ReportFiles(RID, ["attention.npz", "logo.jpg"], OFFERED)
    with pytest.raises(ReportNotFound):
        asyncio.run(images.get(files, cls, view))
    assert images.draws == 0

"""The printable PDF: the summary page's text (headline, automated figures, retakes, reasons
against the verdict) and whole documents rendered by matplotlib."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from authentiq.storage.blobs import BlobStore
from authentiq.web.report_pdf import _glyphs, _text_pages, printable, render_pdf, summary_lines
from tests.conftest import report_body

ASK = {"view": "label", "reason": "blurred", "message": "The label photo is unusable (blurred); retake it."}
OVERRIDE = {"seq": 4, "created_at": "2026-11-22T11:00:00+00:00", "reviewer": "ana", "decision": "override",
            "previous_verdict": "authentic", "verdict": "counterfeit", "reason": "lining glued"}


def lines(body: dict[str, Any]) -> list[str]:
    return [text for text, _ in summary_lines(body)]


def pages(pdf: bytes) -> int:
    return pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ")


def test_the_model_line_names_the_model_id_when_the_report_has_one() -> None:
    body = report_body()
    assert not any("model id" in line for line in lines(body))  # schema < 7: none to show
    body["classifier"] = body["classifier"] | {"model_id": "5e8f6b255f54e04b"}
    assert any(line.startswith("engine ") and line.endswith(" · model id 5e8f6b255f54e04b")
               for line in lines(body))


def test_inconclusive_summary_has_no_confidence_and_lists_the_retakes() -> None:
    body = report_body(verdict="inconclusive", confidence=None, retake=[ASK],
                       review={"status": "unreviewed", "final_verdict": "inconclusive", "version": 0,
                               "reviews": []})
    text = lines(body)
    assert "confidence" not in " ".join(text).lower()
    assert text[3:5] == ["Verdict: INCONCLUSIVE", "Automated verdict"]
    at = text.index("Photos to retake")
    assert text[at + 1] == f"• label (blurred): {ASK['message']}"
    v2 = body | {"schema_version": "2", "confidence": 0.96}
    del v2["retake"]
    assert "confidence" not in " ".join(lines(v2)).lower() and "Photos to retake" not in lines(v2)


def test_override_headline_is_the_reviewers_and_the_figures_are_labelled_automated() -> None:
    body = report_body(review={"status": "overridden", "final_verdict": "counterfeit", "version": 1,
                               "reviews": [OVERRIDE]})
    text = lines(body)
    assert text[3] == "Verdict: COUNTERFEIT"
    assert text[4] == "Reviewer's verdict (overrides the automated verdict) · by ana · 2026-11-22 11:00 UTC"
    assert text[5].startswith("Automated assessment, not the reviewer's: verdict authentic · confidence 0.970")
    # numbered within the report (its first review is 1), the log entry beside it
    assert ("Review 1 · 2026-11-22 11:00 UTC · ana: override authentic → counterfeit — lining glued"
            " (log entry 4)") in text


def test_a_reviewers_not_a_product_is_said_in_the_review_line() -> None:
    finding = OVERRIDE | {"verdict": "inconclusive", "finding": "not_a_product",
                          "reason": "a shoe box"}
    body = report_body(review={"status": "overridden", "final_verdict": "inconclusive",
                               "version": 1, "reviews": [finding]})
    assert ("Review 1 · 2026-11-22 11:00 UTC · ana: override authentic → inconclusive (not a "
            "product) — a shoe box (log entry 4)") in lines(body)


def test_reasons_against_the_verdict_are_tagged() -> None:
    reasons = [{"code": "classifier", "stance": "against", "detail": "The classifier says 0.300."},
               {"code": "wrong_view", "view": "logo", "detail": "This photo looks like the overall view."}]
    text = lines(report_body(verdict="counterfeit", reasons=reasons))
    assert "• The classifier says 0.300. [argues against the automated verdict]" in text
    assert "• This photo looks like the overall view." in text


def test_render_whole_documents(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    assert pages(render_pdf(report_body(), blobs)) == 2  # summary and references (no stored photos)
    many = [{"code": "classifier", "detail": f"Reason {i} " + "in many words " * 12} for i in range(40)]
    long = render_pdf(report_body(reasons=many, retake=[ASK] * 3, verdict="inconclusive", confidence=None), blobs)
    assert long.startswith(b"%PDF") and pages(long) >= 3  # the summary runs onto a second page


def stored(tmp_path: Path) -> tuple[dict[str, Any], BlobStore]:
    """A report with a 4:3 photo and a square heatmap of every view, as the store keeps them."""
    import io

    from PIL import Image

    body = report_body()
    blobs = BlobStore(tmp_path / "blobs")
    files = {}
    for v in body["views"]:
        photo, heat = io.BytesIO(), io.BytesIO()
        Image.new("RGB", (640, 480), (200, 180, 150)).save(photo, "JPEG")
        Image.new("RGB", (256, 256), (90, 20, 120)).save(heat, "WEBP")
        files[f"{v['view']}.jpg"] = photo.getvalue()
        files[f"heatmap-authentic-{v['view']}.webp"] = heat.getvalue()
    blobs.put_many(body["id"], files)
    return body | {"stored_files": sorted(files)}, blobs


def test_photo_and_heatmap_share_a_top_edge(tmp_path: Path) -> None:
    from authentiq.web.report_pdf import _views

    body, blobs = stored(tmp_path)
    heatmaps = {name: blobs.get(body["id"], name) for name in body["stored_files"]
                if name.startswith("heatmap-")}
    (fig,) = _views(body, blobs, Figure, heatmaps=heatmaps)
    fig.canvas.draw()  # applies each axes' aspect: the image's box inside its slot
    tops = [round(ax.get_position().y1, 4) for ax in fig.axes]
    lefts = [round(ax.get_position().x0, 4) for ax in fig.axes]
    assert len(tops) == 2 * min(3, len(body["views"]))
    assert tops[0::2] == tops[1::2]  # each row: photo and heatmap top-aligned
    assert len(set(lefts[0::2])) == 1 and len(set(lefts[1::2])) == 1  # and columns left-aligned


def test_the_closest_references_are_shown_beside_the_item(tmp_path: Path) -> None:
    import io

    from PIL import Image

    body, blobs = stored(tmp_path)
    asked: list[tuple[str, str]] = []

    def reference_photo(ref: str, view: str) -> bytes | None:
        asked.append((ref, view))
        if view == "interior":
            return None  # a reference without this view: "no photo", not a failure
        buf = io.BytesIO()
        Image.new("RGB", (400, 300), (10, 120, 60)).save(buf, "JPEG")
        return buf.getvalue()

    without = pages(render_pdf(body, blobs))
    pdf = render_pdf(body, blobs, reference_photo)
    assert pages(pdf) == without + 1
    views = [v["view"] for v in body["views"]]
    assert asked == [("r1", v) for v in views]  # the claimed product's closest references only
    no_matches = body | {"references": {**body["references"], "claimed": {
        **body["references"]["claimed"], "matches": [], "count": 0}}}
    assert pages(render_pdf(no_matches, blobs, reference_photo)) == without


# --- hostile stored text (issue 19, finding 3) ------------------------------------------------

HOSTILE = {
    "TeX that does not parse": r"$\foo{$ and $$",
    "dollar amounts": "paid $5 then $10 refund",
    "emoji": "fake 👜🔥 bag",
    "right to left": "مزيف שקר \u202eevil",
    "combining marks": "e" + "\u0301" * 300,
    "CJK": "偽物です",
    "control characters": "a\x01\x02\x1b[31m\x7f",
    "NUL": "a\x00b",
    "lone surrogate": "a\ud800b\udfff",
    "unbroken word": "A" * 4000,
    "line breaks": "a\n\r\tb\x0b\x0c" * 50,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_review_text_renders(tmp_path: Path, text: str) -> None:
    review = {**OVERRIDE, "reviewer": text[:128], "reason": text}
    body = report_body(client_ref=text[:128], review={
        "status": "overridden", "final_verdict": "counterfeit", "version": 1, "reviews": [review]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph missing from font" would be an empty box
        pdf = render_pdf(body, BlobStore(tmp_path / "blobs"))
    assert pdf.startswith(b"%PDF")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=300))
def test_printable_text_is_drawable_for_any_string(text: str) -> None:
    out = printable(text)
    assert all(ord(ch) in _glyphs() or ch == " " for ch in out), out
    assert "$" not in text or "$" in out  # a dollar stays a dollar (drawn with parse_math=False)


def test_wrapped_lines_stay_on_the_page() -> None:
    lines_ = summary_lines(report_body(client_ref="B" * 128, review={
        "status": "overridden", "final_verdict": "counterfeit", "version": 1,
        "reviews": [{**OVERRIDE, "reason": "W" * 4000}]}))
    figs = _text_pages(Figure, lines_)
    longest = max(len(t.get_text()) for f in figs for t in f.texts)
    assert longest <= 95 and len(figs) >= 1

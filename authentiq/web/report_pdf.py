"""A report as a printable PDF, drawn with matplotlib (no pyplot: figures are thread-local objects).

Pages: the summary (the final verdict and who stands behind it, the automated figures beside it,
photos to retake, reasons, statement of reasons, model and engine; more pages when it runs long),
pages of views (each photo beside its heatmap, top-aligned), the item's views beside the closest
genuine references' photos, and the reference comparison (ids, similarities, thresholds).

Stored text (review reasons, client references, product names) is anyone's text, so every string
goes through :func:`printable` and is drawn with ``parse_math=False``: a ``$`` is a dollar sign, not
the start of TeX that fails to parse; a lone surrogate, a control character or a character the
font lacks is drawn as a visible stand-in instead of stopping the renderer (before this, one such
review made the report's PDF a 500 for good).
"""

from __future__ import annotations

import functools
import io
import textwrap
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from authentiq.contract.report import heatmap_file, photo_of
from authentiq.errors import ReportNotFound
from authentiq.pipeline.heatmap import CAPTION, NOTICE
from authentiq.storage.blobs import Blobs
from authentiq.web.reference_photos import compared
from authentiq.web.report_view import AGAINST, against, headline, retakes, when

A4 = (8.27, 11.69)
BOTTOM = 0.04  # figure fraction: a text line below this starts a new page
COLOURS = {"authentic": "#1a7f37", "counterfeit": "#b42318", "inconclusive": "#9a6700"}
FONT = "DejaVu Sans"
REPLACEMENT = "\ufffd"


ReferencePhoto = Callable[[str, str], bytes | None]  # (reference id, view) → its photo, if any
Page = Callable[[dict[str, Any], Blobs, Any], list[Any]]  # (report, blobs, Figure) → figures


def render_pdf(report: dict[str, Any], blobs: Blobs,
               reference_photo: ReferencePhoto | None = None,
               heatmaps: Mapping[str, bytes] | None = None) -> bytes:
    """``reference_photo`` adds a page with the closest genuine references' photos beside the
    item's own (without it, the references are listed by id and similarity only); ``heatmaps``
    are the report's heatmap images by file name (:mod:`authentiq.web.heatmap_images`)."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    pages: list[Page] = [_summary, functools.partial(_views, heatmaps=heatmaps or {}), _references]
    if reference_photo is not None and compared(report):
        pages.insert(2, functools.partial(_comparison, reference_photo=reference_photo))
    with PdfPages(buf, metadata={"Title": f"AuthentiQ report {report['id']}",
                                 "Creator": "AuthentiQ"}) as pdf:
        for page in pages:
            for fig in page(report, blobs, Figure):
                pdf.savefig(fig)
    return buf.getvalue()


def _text_pages(Figure: Any, lines: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Lines of text on as many A4 pages as they need."""
    figs = [Figure(figsize=A4)]
    y = 0.95
    for text, style in lines:
        size = style.get("size", 9)
        # break_long_words: an unbroken 4,000-character token becomes lines, not one line off the page
        wrapped = textwrap.wrap(printable(text), style.get("width", 95), break_long_words=True,
                                break_on_hyphens=False) or [""]
        for line in wrapped:
            if y < BOTTOM:
                figs.append(Figure(figsize=A4))
                y = 0.95
            figs[-1].text(0.07, y, line, fontsize=size, color=style.get("color", "#111"),
                          weight=style.get("weight", "normal"), family=FONT, parse_math=False)
            y -= size / 72 / A4[1] * 1.45
        y -= style.get("gap", 0.004)
    return figs


def printable(text: str) -> str:
    """``text`` as the PDF font can draw it: whitespace controls become spaces, a lone surrogate
    or another control character becomes U+FFFD, and a character the font has no glyph for
    becomes ``[U+XXXX]`` (an auditor sees exactly what was stored, not an empty box)."""
    glyphs = _glyphs()
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in "\t\n\r\v\f":
            out.append(" ")
        elif 0xD800 <= code <= 0xDFFF or unicodedata.category(ch) == "Cc":
            out.append(REPLACEMENT)
        elif code in glyphs or unicodedata.category(ch) == "Zs":
            out.append(ch)
        elif unicodedata.category(ch) == "Cf":
            continue  # invisible formatting the font lacks (bidi overrides, joiners): drawn as nothing
        else:
            out.append(f"[U+{code:04X}]")
    return "".join(out)


@functools.cache
def _glyphs() -> frozenset[int]:
    """The code points the PDF font (matplotlib's bundled DejaVu Sans) has glyphs for."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont(FONT, fallback_to_default=False)).get_charmap())


def _summary(report: dict[str, Any], blobs: Blobs, Figure: Any) -> list[Any]:
    return _text_pages(Figure, summary_lines(report))


def summary_lines(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The summary page's text: the headline (final verdict and who stands behind it), the
    automated figures beside it, photos to retake, reasons, statement of reasons, views, model."""
    h = headline(report)
    clf = report["classifier"]
    retake = retakes(report)
    lines: list[tuple[str, dict[str, Any]]] = [
        ("AuthentiQ inspection report", {"size": 18, "weight": "bold", "gap": 0.01}),
        (f"Report {report['id']} · {report['created_at']}", {"size": 9, "color": "#555"}),
        (f"Item: {report['brand']} / {report['model']}"
         + (f" · your reference {report['client_ref']}" if report.get("client_ref") else ""),
         {"size": 11, "gap": 0.012}),
        (f"Verdict: {h.verdict.upper()}", {"size": 16, "weight": "bold", "color": COLOURS[h.verdict]}),
        (h.decided_by[:1].upper() + h.decided_by[1:], {"size": 10, "weight": "bold", "gap": 0.008}),
        (h.automated(), {"size": 10, "color": "#444" if h.reviewed else "#111", "gap": 0.015}),
    ]
    if retake:
        lines += [("Photos to retake", {"size": 12, "weight": "bold"}),
                  *[(f"• {t['view']} ({t['reason'].replace('_', ' ')}): {t['message']}", {"size": 9})
                    for t in retake],
                  ("", {})]
    lines += [
        ("Reasons", {"size": 12, "weight": "bold"}),
        *[(f"• {r['detail']}" + (f" [{AGAINST}]" if against(r) else ""), {"size": 9})
          for r in report["reasons"] if r["code"] != "automated_decision"],
        ("", {}),
        ("Statement of reasons", {"size": 12, "weight": "bold"}),
        (report["statement_of_reasons"]["text"], {"size": 9}),
        (report["statement_of_reasons"]["how_to_contest"], {"size": 9, "gap": 0.015}),
        ("Views", {"size": 12, "weight": "bold"}),
        *[(f"{v['view']}: {_view_state(v)} · {v['width']}×{v['height']} {v['format']}"
           f" · attention {v['attention']:.0%}", {"size": 9}) for v in report["views"]],
        ("", {}),
        ("Model and engine", {"size": 12, "weight": "bold"}),
        (f"{clf['name']} {clf['version']} · {clf['precision']} · {clf['backend']} on {clf['device']}",
         {"size": 9}),
        (f"engine {clf['engine_id']}"
         + (f" · model id {clf['model_id']}" if clf.get("model_id") else ""),
         {"size": 9, "gap": 0.015}),
    ]
    # numbered within this report; the log entry is the review's place in the hash-chained log
    for n, rv in enumerate((report.get("review") or {}).get("reviews", []), start=1):
        lines.append((f"Review {n} · {when(rv['created_at'])} · {rv['reviewer']}: "
                      f"{rv['decision']} {rv['previous_verdict']} → {rv['verdict']}"
                      f"{' (not a product)' if rv.get('finding') == 'not_a_product' else ''}"
                      f" — {rv['reason']}"
                      f" (log entry {rv['seq']})", {"size": 9}))
    return lines


def _view_state(view: dict[str, Any]) -> str:
    if not view["usable"]:
        return f"unusable ({view['reason']})"
    finding = (view.get("gate") or {}).get("finding")
    return f"retake ({finding.replace('_', ' ')})" if finding else "usable"


def _views(report: dict[str, Any], blobs: Blobs, Figure: Any, *,
           heatmaps: Mapping[str, bytes]) -> list[Any]:
    files = set(report.get("stored_files", []))
    pages = []
    for cls in report["heatmaps"]["classes"]:
        views = [v for v in report["views"] if heatmap_file(cls, v["view"]) in heatmaps]
        caption = CAPTION.format(cls=cls).replace("; ", ";\n")  # two lines: fits the column
        for start in range(0, len(views), 3):
            fig = Figure(figsize=A4)
            fig.suptitle(f"Views and heatmaps ({cls} class)", fontsize=13, x=0.07, ha="left", y=0.975,
                         parse_math=False)
            fig.text(0.07, 0.948, "\n".join(textwrap.wrap(NOTICE, 110)), fontsize=8, color="#555",
                     va="top", parse_math=False)
            for row, v in enumerate(views[start:start + 3]):
                photo = _photo(report, blobs, v["view"], files)
                heat = _decode(heatmaps[heatmap_file(cls, v["view"])])
                for col, (img, title) in enumerate((
                        (photo, f"{v['view']}: photo as submitted"),
                        (heat, f"{v['view']}: {caption}"))):
                    ax = fig.add_axes((0.07 + col * 0.45, 0.63 - row * 0.29, 0.4, 0.25))
                    ax.set_axis_off()
                    ax.set_anchor("NW")  # a 4:3 photo and a square heatmap share a top edge
                    ax.set_title("\n".join(printable(t) for t in title.split("\n")), fontsize=9,
                                 loc="left", parse_math=False)
                    if img is not None:
                        ax.imshow(img)
            pages.append(fig)
    return pages


def _comparison(report: dict[str, Any], blobs: Blobs, Figure: Any, *,
                reference_photo: ReferencePhoto) -> list[Any]:
    """The item's views (the centre square the model saw) in the first row, the closest genuine
    references of the claimed product below, one view per column."""
    files = set(report.get("stored_files", []))
    views = [v["view"] for v in report["views"]]
    rows: list[tuple[str, list[Any]]] = [
        ("this item", [_square(_photo(report, blobs, v, files)) for v in views])]
    for n, m in enumerate(compared(report), start=1):
        rows.append((f"reference {n} · similarity {m['similarity']:.3f} · {m['id']}",
                     [_square(_decode(reference_photo(m["id"], v))) for v in views]))
    fig = Figure(figsize=A4)
    fig.suptitle("The item beside its closest genuine references", fontsize=13, x=0.07, ha="left",
                 y=0.97, parse_math=False)
    claimed = report["references"]["claimed"]
    shown = "enrolled genuine reference" if len(rows) == 2 else \
        f"{len(rows) - 1} enrolled genuine references"
    fig.text(0.07, 0.935, printable(
        f"{claimed['brand']}/{claimed['model']}: the {shown} closest to this item "
        f"(model version {report['references']['model_version']}), centre squares as the model "
        "compares them."), fontsize=8, color="#555", va="top",
        parse_math=False, wrap=True)
    width = 0.86 / max(len(views), 5)
    height = width * A4[0] / A4[1]
    top = 0.87
    for c, view in enumerate(views):  # column heads
        fig.text(0.07 + (c + 0.48) * width, top, printable(view), fontsize=8, color="#555",
                 ha="center", va="bottom", parse_math=False)
    for r, (label, images) in enumerate(rows):
        y = top - 0.03 - r * (height + 0.04)
        fig.text(0.07, y + 0.005, printable(label), fontsize=8.5, weight="bold" if r == 0 else "normal",
                 va="bottom", parse_math=False)
        for c, img in enumerate(images):
            ax = fig.add_axes((0.07 + c * width, y - height, width * 0.96, height))
            ax.set_axis_off()
            ax.set_anchor("N")
            if img is not None:
                ax.imshow(img)
            else:
                ax.text(0.5, 0.5, "no photo", ha="center", va="center", fontsize=7, color="#888",
                        parse_math=False)
    return [fig]


def _square(img: Any) -> Any:
    """The centre square of an image array (what the model sees of a photo)."""
    if img is None:
        return None
    h, w = img.shape[:2]
    side = min(h, w)
    return img[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]


def _references(report: dict[str, Any], blobs: Blobs, Figure: Any) -> list[Any]:
    refs = report["references"]
    claimed = refs["claimed"]
    lines: list[tuple[str, dict[str, Any]]] = [
        ("Reference comparison", {"size": 13, "weight": "bold", "gap": 0.01}),
        (f"Model version {refs['model_version']} · closest {refs['k']} genuine references of "
         f"{claimed['brand']}/{claimed['model']} ({claimed['count']} enrolled)", {"size": 9}),
    ]
    if claimed["matches"]:
        lines += [(f"  {m['similarity']:.3f}  reference {m['id']}", {"size": 9})
                  for m in claimed["matches"]]
    else:
        lines.append(("  none enrolled: the classifier alone scored the item", {"size": 9}))
    lines.append(("Best match of each other product", {"size": 11, "weight": "bold"}))
    lines += [(f"  {m['similarity']:.3f}  {m['brand']}/{m['model']} (reference {m['id']})",
               {"size": 9}) for m in refs["other_products"]] or [("  none", {"size": 9})]
    t = report["fusion"]["thresholds"]
    lines += [("", {}), ("Thresholds applied", {"size": 11, "weight": "bold"}),
              (", ".join(f"{k} {_fmt(v)}" for k, v in t.items() if v not in (None, [])), {"size": 9})]
    return _text_pages(Figure, lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _photo(report: dict[str, Any], blobs: Blobs, view: str, files: set[str]) -> Any:
    name = photo_of(sorted(files), view)
    return _image(blobs, report["id"], name) if name else None


def _image(blobs: Blobs, report_id: str, name: str) -> Any:
    try:
        return _decode(blobs.get(report_id, name))
    except ReportNotFound:
        return None


def _decode(data: bytes | None) -> Any:
    import numpy as np

    if data is None:
        return None
    try:
        source = Image.open(io.BytesIO(data))
        source.draft("RGB", (512, 512))
        img = source.convert("RGB")
        img.thumbnail((512, 512))
        return np.asarray(img)
    except (OSError, ValueError):
        return None

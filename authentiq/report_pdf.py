"""A report as a printable PDF, drawn with matplotlib (no pyplot: figures are thread-local objects).

Pages: the summary (verdict, confidence, reasons, statement of reasons, model and engine), one
page per view (the photo the model saw beside its heatmap), and the reference comparison.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from PIL import Image

from authentiq.blobs import Blobs
from authentiq.heatmap import NOTICE

A4 = (8.27, 11.69)
COLOURS = {"authentic": "#1a7f37", "counterfeit": "#b42318", "inconclusive": "#9a6700"}


def render_pdf(report: dict[str, Any], blobs: Blobs) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": f"AuthentiQ report {report['id']}",
                                 "Creator": "AuthentiQ"}) as pdf:
        for page in (_summary, _views, _references):
            for fig in page(report, blobs, Figure):
                pdf.savefig(fig)
    return buf.getvalue()


def _text_page(Figure: Any, lines: list[tuple[str, dict[str, Any]]]) -> Any:
    fig = Figure(figsize=A4)
    y = 0.95
    for text, style in lines:
        size = style.get("size", 9)
        wrapped = textwrap.wrap(text, style.get("width", 95)) or [""]
        for line in wrapped:
            fig.text(0.07, y, line, fontsize=size, color=style.get("color", "#111"),
                     weight=style.get("weight", "normal"), family="DejaVu Sans")
            y -= size / 72 / A4[1] * 1.45
        y -= style.get("gap", 0.004)
    return fig


def _summary(report: dict[str, Any], blobs: Blobs, Figure: Any) -> list[Any]:
    review = report.get("review") or {}
    final = review.get("final_verdict", report["verdict"])
    clf = report["classifier"]
    lines: list[tuple[str, dict[str, Any]]] = [
        ("AuthentiQ inspection report", {"size": 18, "weight": "bold", "gap": 0.01}),
        (f"Report {report['id']} · {report['created_at']}", {"size": 9, "color": "#555"}),
        (f"Item: {report['brand']} / {report['model']}"
         + (f" · your reference {report['client_ref']}" if report.get("client_ref") else ""),
         {"size": 11, "gap": 0.012}),
        (f"Verdict: {final.upper()}", {"size": 16, "weight": "bold", "color": COLOURS[final]}),
    ]
    if final != report["verdict"] or review.get("status", "unreviewed") != "unreviewed":
        lines.append((f"Automated verdict: {report['verdict']} · review status: {review['status']}",
                      {"size": 10}))
    lines += [
        (f"Confidence {report['confidence']:.3f} · p(counterfeit) "
         f"{report['probabilities']['counterfeit']:.3f} · classifier alone "
         f"{report['fusion']['p_classifier']:.3f}", {"size": 10, "gap": 0.015}),
        ("Reasons", {"size": 12, "weight": "bold"}),
        *[(f"• {r['detail']}", {"size": 9}) for r in report["reasons"]
          if r["code"] != "automated_decision"],
        ("", {}),
        ("Statement of reasons", {"size": 12, "weight": "bold"}),
        (report["statement_of_reasons"]["text"], {"size": 9}),
        (report["statement_of_reasons"]["how_to_contest"], {"size": 9, "gap": 0.015}),
        ("Views", {"size": 12, "weight": "bold"}),
        *[(f"{v['view']}: " + ("usable" if v["usable"] else f"unusable ({v['reason']})")
           + f" · {v['width']}×{v['height']} {v['format']} · attention {v['attention']:.0%}",
           {"size": 9}) for v in report["views"]],
        ("", {}),
        ("Model and engine", {"size": 12, "weight": "bold"}),
        (f"{clf['name']} {clf['version']} · {clf['precision']} · {clf['backend']} on {clf['device']}",
         {"size": 9}),
        (f"engine {clf['engine_id']}", {"size": 9, "gap": 0.015}),
    ]
    for rv in review.get("reviews", []):
        lines.append((f"Review {rv['seq']} · {rv['created_at']} · {rv['reviewer']}: {rv['decision']} "
                      f"→ {rv['verdict']} — {rv['reason']}", {"size": 9}))
    return [_text_page(Figure, lines)]


def _views(report: dict[str, Any], blobs: Blobs, Figure: Any) -> list[Any]:
    files = set(report.get("stored_files", []))
    pages = []
    for cls in report["heatmaps"]["classes"]:
        views = [v for v in report["views"] if f"heatmap-{cls}-{v['view']}.webp" in files]
        for start in range(0, len(views), 3):
            fig = Figure(figsize=A4)
            fig.suptitle(f"Views and heatmaps ({cls} class)", fontsize=13, x=0.07, ha="left", y=0.97)
            fig.text(0.07, 0.935, "\n".join(textwrap.wrap(NOTICE, 110)), fontsize=8, color="#555",
                     va="top")
            for row, v in enumerate(views[start:start + 3]):
                photo = _photo(report, blobs, v["view"], files)
                heat = _image(blobs, report["id"], f"heatmap-{cls}-{v['view']}.webp")
                for col, (img, title) in enumerate(((photo, f"{v['view']}: photo as submitted"),
                                                    (heat, f"{v['view']}: model attention"))):
                    ax = fig.add_axes((0.07 + col * 0.45, 0.63 - row * 0.29, 0.4, 0.25))
                    ax.set_axis_off()
                    ax.set_title(title, fontsize=9, loc="left")
                    if img is not None:
                        ax.imshow(img)
            pages.append(fig)
    return pages


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
        lines.append(("  none enrolled: the verdict rests on the classifier alone", {"size": 9}))
    lines.append(("Best match of each other product", {"size": 11, "weight": "bold"}))
    lines += [(f"  {m['similarity']:.3f}  {m['brand']}/{m['model']} (reference {m['id']})",
               {"size": 9}) for m in refs["other_products"]] or [("  none", {"size": 9})]
    t = report["fusion"]["thresholds"]
    lines += [("", {}), ("Thresholds applied", {"size": 11, "weight": "bold"}),
              (", ".join(f"{k} {_fmt(v)}" for k, v in t.items() if v not in (None, [])), {"size": 9})]
    return [_text_page(Figure, lines)]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _photo(report: dict[str, Any], blobs: Blobs, view: str, files: set[str]) -> Any:
    name = next((f for f in files if f.split(".")[0] == view), None)
    return _image(blobs, report["id"], name) if name else None


def _image(blobs: Blobs, report_id: str, name: str) -> Any:
    import numpy as np

    try:
        source = Image.open(io.BytesIO(blobs.get(report_id, name)))
        source.draft("RGB", (512, 512))
        img = source.convert("RGB")
        img.thumbnail((512, 512))
        return np.asarray(img)
    except (OSError, ValueError):
        return None

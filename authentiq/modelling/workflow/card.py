"""``OUT/MODEL_CARD.md``: what made the model, on what data, and every figure it was judged by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from authentiq.modelling.workflow.acceptance import Acceptance

CARD_FILE = "MODEL_CARD.md"
FLAVOURS = (("fp32", "FP32", "reference; the figures the gate reads"),
            ("int8-cpu", "INT8 U8S8 Q/DQ", "ONNX Runtime on CPUs (AUTHENTIQ_MODEL_PATH)"),
            ("int8-trt", "INT8 symmetric Q/DQ, float biases", "TensorRT"))


def _pct(x: float | None) -> str:
    return "—" if x is None or x != x else f"{x:.2%}"


def render(*, name: str, version: str, acceptance: Acceptance, stages: dict[str, Any],
           files: dict[str, Path], data: dict[str, Any]) -> str:
    """The card's Markdown, from the stages' records (``OUT/stages.json``)."""
    status = {"accepted": "ACCEPTED", "forced": "FORCED THROUGH (failed the gate; --force)",
              "refused": "REFUSED by the acceptance gate"}[acceptance.status]
    lines = [f"# Model card: {name} {version}", "",
             f"**{status}.** Made by `authentiq train` from the photos in `{data['root']}`.", "",
             "```", acceptance.command, "```", "", "## Acceptance", "",
             "| threshold | required | test figure | |", "|---|---|---|---|"]
    t, f = acceptance.thresholds, acceptance.figures
    rows = [("ROC AUC (FP32)", f"≥ {t.min_auc:.4f}", f"{f.auc:.4f}", "auc"),
            ("decided accuracy (FP32)", f"≥ {t.min_decided_accuracy:.2%}", _pct(f.decided_accuracy),
             "decided accuracy"),
            ("INT8 accuracy drop", f"≤ {t.max_int8_drop_points:.2f} points",
             f"{f.int8_drop_points:.2f} points", "int8 drop")]
    if f.service_inconclusive_share is not None:
        rows.append(("service decided accuracy (INT8 CPU, gate, references)",
                     f"≥ {t.min_service_accuracy:.2%}", _pct(f.service_decided_accuracy),
                     "service decided accuracy"))
    if f.ood_items:
        rows += [("out-of-distribution answered wrongly",
                  f"≤ {t.max_ood_answered:.2%}",
                  f"{f.ood_answered} of {f.ood_items} ({f.ood_answered / f.ood_items:.2%})",
                  "out-of-distribution answered"),
                 ("out-of-distribution answered authentic (not an altered photo of the genuine "
                  "item claimed)", f"≤ {t.max_ood_authentic:.2%}",
                  f"{f.ood_authentic} of {f.ood_items} ({f.ood_authentic / f.ood_items:.2%})",
                  "out-of-distribution authentic")]
    failed = acceptance.failed
    lines += [f"| {a} | {b} | {c} | {'**fail**' if any(x.startswith(k) for x in failed) else 'pass'} |"
              for a, b, c, k in rows]
    lines += ["", f"On {acceptance.test_items} held-out test items of `{acceptance.dataset}`."
              + (f" Failed: {'; '.join(acceptance.failed)}." if acceptance.failed else ""),
              "The outcome is in every flavour's metadata as `authentiq.acceptance`.", ""]
    lines += ["## Data", "", f"- folder: `{data['root']}` ({data['items']} items, "
              f"{data['photos']} photos); dataset fingerprint `{data['fingerprint']}`",
              f"- split: {data['split']}", "",
              "| split | authentic | counterfeit |", "|---|---|---|"]
    lines += [f"| {s} | {c['authentic']} | {c['counterfeit']} |" for s, c in data["counts"].items()]
    lines += ["", "Test items were decoded only by the final evaluation.", ""]
    products = data["products"]
    lines += [f"- products declared ({len(products)}): "
              + (", ".join(f"{b} / {m}" for b, m in products) or "none (no brand and model columns)"),
              ""]
    train = stages.get("train", {})
    val = train.get("validation", {})
    loss, auc = train.get("final_loss", float("nan")), val.get("roc_auc", float("nan"))
    lines += ["## Training", "",
              f"{train.get('epochs', '?')} epochs; last epoch loss {loss:.4f}; "
              f"validation accuracy {_pct(val.get('accuracy'))}, AUC {auc:.4f}; "
              f"inconclusive band [{val.get('authentic_below', 0):.4f}, "
              f"{val.get('counterfeit_above', 0):.4f}) chosen on the validation items "
              f"(`train_log.json` has every epoch).", "", "## Fitted on top", ""]
    for stage, what in (("calibrate", "INT8 calibration"), ("embedding", "embedding head"),
                        ("fusion", "verdict fusion"), ("gate", "view gate"),
                        ("temperature", "confidence temperature"),
                        ("view_check", "per-view reference check")):
        rec = stages.get(stage, {})
        note = f"**not fitted**: {rec['skipped']}" if rec.get("skipped") else rec.get("fitted_on", "—")
        lines.append(f"- **{what}**: {note}")
    lines += ["", "## Test figures", "",
              "| flavour | items | accuracy | ROC AUC | decided acc. | inconclusive | ECE raw | "
              "ECE calibrated |", "|---|---|---|---|---|---|---|---|"]
    for row in stages.get("evaluate", {}).get("rows", []):
        m = row["metrics"]
        lines.append(f"| {row['precision']} | {m['items']} | {_pct(m['accuracy'])} | "
                     f"{m['roc_auc']:.4f} | {_pct(m['decided_accuracy'])} | "
                     f"{_pct(m['inconclusive_share'])} | {row['ece_raw']:.4f} | "
                     f"{row['ece_calibrated']:.4f} |")
    timed = ", ".join(f"{k} {v['seconds']:g}" for k, v in stages.items()
                      if k != "accept" and isinstance(v, dict) and "seconds" in v)
    lines += ["", "Each flavour with its own band and temperature; accuracy decides every item at "
              "p = 0.5, decided accuracy leaves the inconclusive band out."]
    lines += service_answers(stages.get("verdicts", {}))
    lines += ["", f"Seconds per stage (this machine; kept stages as they first ran): {timed}.",
              "", "## Files", "",
              "| file | precision | size | use |", "|---|---|---|---|"]
    for key, precision, use in FLAVOURS:
        path = files[key]
        size = f"{path.stat().st_size / 1e6:.1f} MB" if path.is_file() else "missing"
        lines.append(f"| `{path.name}` | {precision} | {size} | {use} |")
    lines += ["| `checkpoint.pt`, `train_log.json` | — | — | the trained network, every epoch's figures |",
              "| `splits.json` | — | — | the split used (test items listed) |",
              "| `stages.json` | — | — | stages finished and their inputs' fingerprints |",
              "| `evaluation.json` | — | — | the test figures above, per flavour |",
              "| `verdicts.json` | — | — | the service's answers above |", ""]
    return "\n".join(lines)


def service_answers(verdicts: dict[str, Any]) -> list[str]:
    """The verdicts stage's figures: the test items as a client gets them, and out-of-
    distribution submissions."""
    lines = ["", "## The service's answers", ""]
    if verdicts.get("skipped") or "held_out" not in verdicts:
        lines.append(f"Not measured: {verdicts.get('skipped', 'no verdicts stage ran')}.")
    else:
        held, ood = verdicts["held_out"], verdicts["ood"]
        lines += [f"What a client gets ({verdicts['fitted_on']}): the served flavour, view gate, "
                  "fusion and per-view check, each test item claimed as its own product.", "",
                  "| items | decided accuracy | inconclusive | with a retake request | genuine "
                  "called authentic | counterfeits called authentic |", "|---|---|---|---|---|---|",
                  f"| {held['items']} | {_pct(held['decided_accuracy'])} | "
                  f"{_pct(held['inconclusive_share'])} | {_pct(held['retake_share'])} | "
                  f"{_pct(held['genuine_authentic_share'])} | {held['counterfeit_authentic']} |"]
        if ood["items"]:
            lines += ["", "Out-of-distribution submissions: things that are not a product, "
                          "claimed as each product in turn, and genuine test items' own photos "
                          "submitted wrongly. Any verdict is wrong for a non-product, mixed-up "
                          "views or another product's view; for a genuine item's own altered "
                          "photo (mirrored, turned, upside down, degraded) counterfeit is wrong, "
                          f"and authentic is counted apart ({ood.get('altered_authentic', 0)} "
                          "here): the item is genuine, the photo is not good evidence.", "",
                      ood["table"]]
    return lines

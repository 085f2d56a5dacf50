"""``authentiq train --data DIR --out OUT``: the whole workflow on a small generated folder, run
as a user runs it (the command line, real training, real INT8 calibration, ONNX Runtime, the
app serving the result).

Every test but the one serving the model through the app opens no database, so the PostgreSQL
pass leaves them out; that one runs in both passes, on the run's database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient

torch = pytest.importorskip("torch", reason="needs the [train] extra")

from authentiq.api.app import create_app  # noqa: E402
from authentiq.cli import main  # noqa: E402
from authentiq.contract.layout import view_files  # noqa: E402
from authentiq.contract.model_spec import read_spec  # noqa: E402
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from authentiq.modelling import datasets, splits  # noqa: E402
from authentiq.modelling.progress import Progress  # noqa: E402
from authentiq.modelling.training.train import TrainConfig, train  # noqa: E402
from authentiq.modelling.workflow.run import WorkflowConfig, run_workflow  # noqa: E402
from authentiq.pipeline.stitch import build_input  # noqa: E402
from tests.conftest import copy_dataset, make_settings  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.slow]
independent = pytest.mark.db_independent  # the PostgreSQL pass leaves these out
FLAVOURS = ("fp32", "int8-cpu", "int8-trt")
TINY = ["--epochs", "2", "--width", "8", "--batch-size", "8", "--workers", "1", "--ood-items", "13",
        "--calibration-items", "4", "--min-gate-items", "2"]
LOOSE = ["--min-auc", "0", "--min-accuracy", "0", "--max-int8-drop", "100",
         "--min-service-accuracy", "0", "--max-ood-answered", "1", "--max-ood-authentic", "1"]
ACCEPTANCE_KEYS = {"passed", "forced", "thresholds", "figures", "failed", "test_items", "dataset",
                   "command"}


def acceptance(path: Path) -> dict:  # type: ignore[type-arg]
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props["authentiq.acceptance"])  # type: ignore[no-any-return]


def stamps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(out.iterdir())}


@dataclass(frozen=True)
class Made:
    """One run of the whole command on the small folder, as its user saw it."""

    out: Path
    command: list[str]
    status: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def made(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Made:
    out = tmp_path_factory.mktemp("workflow") / "mine"
    command = ["train", "--data", str(small_dataset), "--out", str(out), *TINY, *LOOSE]
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        status = main(command)
    return Made(out, command, status, stdout.getvalue(), stderr.getvalue())


@independent
def test_one_command_makes_three_gated_flavours_a_card_and_resumes(
        made: Made, small_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out, command = made.out, made.command
    assert made.status == 0
    for n, stage in enumerate(["training (2 epochs)", "exporting FP32 ONNX", "INT8 flavours",
                               "embedding head", "verdict fusion", "view gate",
                               "confidence temperature", "per-view reference check",
                               "evaluating on the held-out test items", "the service's answers",
                               "acceptance gate"], 1):
        assert f"[{n}/11] {stage}" in made.stderr
    assert "epoch 1/2: loss " in made.stderr and "epoch 2/2: loss " in made.stderr
    assert "Traceback" not in made.stderr and "ACCEPTED" in made.stdout

    split = json.loads((out / "splits.json").read_text())
    test_items = [name for name, part in split["items"].items() if part == "test"]
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["test_items"] == len(test_items) == 2
    rows = {r["precision"]: r for r in evaluation["rows"]}
    assert set(rows) == set(FLAVOURS)

    specs = {f: read_spec(out / f"model.{f}.onnx") for f in FLAVOURS}
    versions = {s.model_version for s in specs.values()}
    assert len(versions) == 1 and versions != {"0.1.0"}
    for flavour, spec in specs.items():
        assert spec.precision == flavour and spec.model_name == "mine"
        assert spec.calibration is not None and spec.gate is not None  # fitted on 2 items here
        assert spec.gate.alteration_thresholds is not None  # the head, on the training items
        assert len(spec.products) == 6  # the folder's brand/model pairs
        found = acceptance(out / f"model.{flavour}.onnx")
        assert set(found) == ACCEPTANCE_KEYS
        assert found["passed"] is True and found["forced"] is False and found["failed"] == []
        assert found["test_items"] == 2 and found["dataset"] == small_dataset.name
        assert found["command"] == "authentiq " + " ".join(command)
        assert found["figures"]["auc"] == rows["fp32"]["metrics"]["roc_auc"]
        assert found["thresholds"] == {"min_auc": 0.0, "min_decided_accuracy": 0.0,
                                       "max_int8_drop_points": 100.0, "min_service_accuracy": 0.0,
                                       "max_ood_answered": 1.0, "max_ood_authentic": 1.0}

    card = (out / "MODEL_CARD.md").read_text()
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert list(stages) == ["train", "export", "calibrate", "embedding", "fusion", "gate",
                            "temperature", "view_check", "evaluate", "verdicts", "accept"]
    for stage, what, attr in (("fusion", "verdict fusion", "fusion"), ("gate", "view gate", "gate"),
                              ("temperature", "confidence temperature", "calibration"),
                              ("view_check", "per-view reference check", "view_check")):
        record = stages[stage]
        fitted = [getattr(spec, attr) for spec in specs.values()]
        if "skipped" in record:  # too few items for it: said, and nothing half-written
            assert fitted == [None] * 3 and f"- **{what}**: **not fitted**: {record['skipped']}" in card
        else:
            assert None not in fitted and f"- **{what}**: {record['fitted_on']}" in card
    assert "skipped" in stages["view_check"]  # 1 genuine validation item per product at most

    # The service's answers: the test items with a few references, 13 submissions (one of each
    # kind the folder allows) that must not be answered; figures in the acceptance and the card.
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert verdicts["held_out"]["items"] == 2 and verdicts["ood"]["items"] == 13
    figures = acceptance(out / "model.int8-cpu.onnx")["figures"]
    assert figures["ood_items"] == 13 and figures["ood_answered"] == verdicts["ood"]["answered"]
    assert figures["service_inconclusive_share"] == verdicts["held_out"]["inconclusive_share"]
    assert "## The service's answers" in card and verdicts["ood"]["table"] in card
    for kind in ("noise", "blank", "document", "texture", "object", "scene_crops"):
        assert f"| {kind} | " in card  # claimed as the folder's products in turn
    trained_on = sum(part == "train" for part in split["items"].values())
    assert f"alteration head on {trained_on} training items as taken and altered" in \
        stages["gate"]["fitted_on"]
    assert f"Seconds per stage (this machine; kept stages as they first ran): train " \
           f"{stages['train']['seconds']:g}, export" in card
    assert card.startswith(f"# Model card: mine {versions.pop()}") and "**ACCEPTED.**" in card
    assert "authentiq " + " ".join(command) in card
    for flavour in FLAVOURS:
        m = rows[flavour]["metrics"]
        assert f"| {flavour} | 2 | {m['accuracy']:.2%} | {m['roc_auc']:.4f} |" in card
        assert f"`model.{flavour}.onnx`" in card

    # Every flavour runs in ONNX Runtime on an item of the folder, and the classifier's logits
    # agree across flavours as the evaluation measured (its largest difference).
    item = datasets.folder_items(small_dataset)[0]
    tiles = datasets.folder_tiles([item], specs["fp32"].view_names, specs["fp32"].tile_size, ())
    logits = {}
    for flavour in FLAVOURS:
        backend = OnnxRuntimeBackend(out / f"model.{flavour}.onnx")
        got = backend.run(build_input(backend.spec, tiles.tiles_of(0))[None])
        backend.close()
        assert got.logits.shape == (1, 2) and got.view_scores is not None
        np.testing.assert_allclose(np.linalg.norm(got.embedding, axis=1), 1.0, atol=1e-4)
        logits[flavour] = got.logits

    # `evaluate` on the folder with the run's split scores the same test items, same figures.
    assert main(["evaluate", str(out / "model.fp32.onnx"), "--data", str(small_dataset),
                 "--splits", str(out / "splits.json"), "-q"]) == 0
    shown = capsys.readouterr().out
    assert f"scoring the 2 test items of {small_dataset}" in shown
    assert f"| {rows['fp32']['metrics']['roc_auc']:.4f} |" in shown

    # Without a split, every item: said, with why that flatters the model.
    assert main(["evaluate", str(out / "model.fp32.onnx"), "--data", str(small_dataset), "-q"]) == 0
    assert f"scoring all 12 items of {small_dataset} (no splits.json in {small_dataset} and no " \
           f"--splits): items a model trained on score better than new ones" in capsys.readouterr().out

    # Without --data, synthetic items: said to say little about a model of one's own photos.
    monkeypatch.chdir(tmp_path)  # evaluate keeps its synthetic items in ./var
    assert main(["evaluate", str(out / "model.fp32.onnx"), "--items", "4", "-q"]) == 0
    assert f"warning: model.fp32.onnx was trained on 'Photos from {small_dataset}'; scoring it " \
           f"on synthetic items says little" in capsys.readouterr().err

    # The same command again keeps every stage and rewrites nothing.
    before = stamps(out)
    assert main(command) == 0
    again = capsys.readouterr()
    assert again.err.count("finished before on the same inputs, kept") == 11
    assert "kept from an earlier run: train, export, calibrate, embedding, fusion, gate, " \
           "temperature, view_check, evaluate, verdicts, accept" in again.out
    assert stamps(out) == before

    # A quality setting of the service is an input of its answers: changed, the verdicts stage
    # (and the acceptance after it) answer again; everything before them is kept. (On a copy:
    # the module's other tests serve the run as made.) A value the settings refuse stops the
    # command before anything runs, naming the variable.
    copy = tmp_path / "copy" / out.name  # the model is named after its folder
    shutil.copytree(out, copy)
    again_command = [copy if a == str(out) else a for a in command]
    monkeypatch.setenv("AUTHENTIQ_BLUR_THRESHOLD", "eleven")
    assert main([str(a) for a in again_command]) == 2
    assert "error: AUTHENTIQ_BLUR_THRESHOLD: Input should be a valid number" in \
        capsys.readouterr().err
    monkeypatch.setenv("AUTHENTIQ_BLUR_THRESHOLD", "11")
    assert main([str(a) for a in again_command]) == 0
    assert "kept from an earlier run: train, export, calibrate, embedding, fusion, gate, " \
           "temperature, view_check, evaluate\n" in capsys.readouterr().out
    assert stamps(out) == before


def test_the_made_model_serves_inspections_through_the_app(made: Made, small_dataset: Path,
                                                           tmp_path: Path) -> None:
    """The INT8 CPU flavour the command made, served by the app on the run's database."""
    item = datasets.folder_items(small_dataset)[0]
    with (small_dataset / "labels.csv").open() as fh:
        row = next(r for r in csv.DictReader(fh) if r["item"] == item.name)
    files = [(view, (path.name, path.read_bytes(), "image/jpeg"))
             for view, path in view_files(item.folder).items()]
    settings = make_settings(tmp_path, model_path=made.out / "model.int8-cpu.onnx")
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/inspections", files=files,
                        data={"brand": row["brand"], "model": row["model"]})
        assert r.status_code == 201, r.text
        body = r.json()
        stored = client.get(body["links"]["self"]).json()
    version = read_spec(made.out / "model.int8-cpu.onnx").model_version
    assert body["classifier"]["name"] == "mine" and body["classifier"]["version"] == version
    assert body["classifier"]["precision"] == "int8-cpu"
    assert body["verdict"] in ("authentic", "counterfeit", "inconclusive")
    assert stored["id"] == body["id"] and stored["verdict"] == body["verdict"]


@independent
def test_a_model_that_learned_nothing_is_refused_unless_forced(
        small_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every item shows the same photos, so the labels carry nothing a model can learn: every
    test item gets the same score, an AUC of exactly 0.5."""
    folder = copy_dataset(small_dataset, tmp_path / "same")
    first = sorted(p for p in folder.iterdir() if p.is_dir())[0]
    for item in folder.iterdir():
        if item.is_dir() and item != first:
            for photo in first.iterdir():
                shutil.copyfile(photo, item / photo.name)
    out = tmp_path / "bad"
    command = ["train", "--data", str(folder), "--out", str(out), *TINY[:-2]]  # gate: at least 20
    assert main([*command, "-q"]) == 1
    said = capsys.readouterr()
    assert said.err.startswith("REFUSED: auc 0.5000 < 0.9500")  # -q: nothing else on stderr
    assert "--force to accept anyway" in said.err
    for flavour in FLAVOURS:
        found = acceptance(out / f"model.{flavour}.onnx")
        assert found["passed"] is False and found["forced"] is False
        assert found["failed"][0] == "auc 0.5000 < 0.9500" and found["figures"]["auc"] == 0.5
    card = (out / "MODEL_CARD.md").read_text()
    assert "**REFUSED by the acceptance gate.**" in card
    assert "- **view gate**: **not fitted**: 2 validation items have every view; the view gate is " \
           "fitted on at least 20 (--min-gate-items)" in card
    assert read_spec(out / "model.int8-cpu.onnx").gate is None
    model = stamps(out)["model.fp32.onnx"]

    # --force: only the acceptance is redone; the model goes through, recorded as forced.
    assert main([*command, "--force"]) == 0
    forced = capsys.readouterr()
    assert forced.err.count("finished before on the same inputs, kept") == 10
    assert "[11/11] acceptance gate and model card\n    forced" in forced.err
    assert "FORCED: the model failed the acceptance gate (auc 0.5000 < 0.9500" in forced.out
    for flavour in FLAVOURS:
        found = acceptance(out / f"model.{flavour}.onnx")
        assert found["passed"] is True and found["forced"] is True
        assert found["failed"][0] == "auc 0.5000 < 0.9500"
        assert found["command"].endswith("--force")
    assert "**FORCED THROUGH" in (out / "MODEL_CARD.md").read_text()
    assert stamps(out)["model.fp32.onnx"] != model  # re-stamped, not retrained:
    assert "training (2 epochs): finished before" in forced.err


class Interrupt(Progress):
    """Ctrl-C as the first epoch's figures are shown (its checkpoint is written by then)."""

    def note(self, message: str) -> None:
        if "epoch 1/" in message:
            raise KeyboardInterrupt


class Lines(Progress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, message: str) -> None:
        self.lines.append(message.strip())


@independent
def test_an_interrupted_training_resumes_from_its_last_epoch(small_dataset: Path,
                                                             tmp_path: Path) -> None:
    cfg = TrainConfig(data=str(small_dataset), epochs=2, batch_size=8, width=8, workers=1,
                      model_version="")  # "": the workflow chooses one
    flow = WorkflowConfig(cfg, tmp_path / "run", calibration_items=4, min_gate_items=2)
    with pytest.raises(KeyboardInterrupt):
        run_workflow(flow, Interrupt())
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    version = json.loads((tmp_path / "run" / "stages.json").read_text())["model_version"]
    lines = Lines()
    outcome = run_workflow(flow, lines)
    assert "resuming from epoch 1 of 2 (last_epoch.pt)" in lines.lines
    assert not any(line.startswith("epoch 1/") for line in lines.lines)
    assert read_spec(outcome.files["fp32"]).model_version == version  # the first run's
    resumed = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    whole = train(replace(cfg, model_version="1"), tmp_path / "whole", Lines())  # never interrupted
    assert [h["loss"] for h in resumed["history"]] == pytest.approx(
        [h["loss"] for h in whole["history"]], rel=1e-4)
    a = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    # other settings: the checkpoint is not resumed, and that is said
    lines = Lines()
    train(TrainConfig(data=str(small_dataset), epochs=1, batch_size=8, width=8, workers=1),
          tmp_path / "run", lines)
    assert "last_epoch.pt was made with other settings or items: training from the start" in lines.lines


def _broken(folder: Path, how: str) -> None:
    labels = folder / "labels.csv"
    if how == "one class":
        labels.write_text(labels.read_text().replace(",counterfeit,", ",authentic,"))
    elif how == "bad label":
        lines = labels.read_text().splitlines()
        lines[2] = lines[2].replace("authentic", "unsure").replace("counterfeit", "unsure")
        labels.write_text("\n".join(lines) + "\n")
    elif how == "truncated photo":
        items = datasets.folder_items(folder)
        split = splits.compute(items, splits.SplitPlan())
        item = next(it for it in items if split.assignment[it.name] == "train")
        photo = item.folder / "logo.jpg"
        photo.write_bytes(photo.read_bytes()[:300])
    elif how == "bad pinned split":
        (folder / "splits.json").write_text('{"items": {"item-0000000": "holdout"}}')


@independent
@pytest.mark.parametrize(("how", "message"), [
    ("missing folder", r"error: dataset folder not found: .*/nowhere\n"),
    ("one class", r"error: .*: its split has 1 problem\(s\):\n  the training, validation and test "
                  r"splits have no counterfeit item .*\nrun `authentiq dataset check "),
    ("bad label", r"error: .*: the dataset has 1 problem\(s\):\n  labels.csv:3: label 'unsure'"),
    ("truncated photo", r"error: .*/logo.jpg: .*`authentiq dataset check` lists every problem"),
    ("bad pinned split", r"error: .*: its split has 2 problem\(s\):\n  splits.json: item-0000000 "
                         r"assigned to something other than train, val or test\n  splits.json: "
                         r"11 item\(s\) not assigned"),
])
def test_a_broken_folder_is_one_readable_error_and_leaves_nothing(
        small_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str,
        message: str) -> None:
    folder = tmp_path / "nowhere"
    if how != "missing folder":
        folder = copy_dataset(small_dataset, tmp_path / "photos")
        _broken(folder, how)
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert not out.exists()


@independent
def test_options_out_of_range_and_misplaced_are_refused(small_dataset: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(small_dataset), "--out", str(tmp_path / "r"),
              "--min-accuracy", "120%"])
    assert stop.value.code == 2
    assert "--min-accuracy: 120% must lie between 0 and 1 (or 0% and 100%)" in capsys.readouterr().err
    assert main(["evaluate", "engines/authentiq-default.int8-cpu.onnx", "--splits", "x.json"]) == 2
    assert "error: --splits names the test items of a folder: give the folder with --data" in \
        capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@independent
def test_fit_embedding_and_fit_fusion_take_a_folder(small_dataset: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The separate commands the workflow's stages reuse fit on a folder's items too (they took
    synthetic seeds only); the folder's products are numbered alike in items and references."""
    model = tmp_path / "m.fp32.onnx"
    shutil.copyfile("engines/authentiq-default.fp32.onnx", model)
    before = read_spec(model)
    assert main(["fit-embedding", str(model), "--data", str(small_dataset), "--version", "9.9"]) == 0
    assert "fitted on 12 items (12 classes)" in capsys.readouterr().out
    assert read_spec(model).model_version == "9.9"
    rows = (small_dataset / "labels.csv").read_text().splitlines()
    genuine = [r for r in rows[1:] if ",authentic," in r]
    refs, items = copy_dataset(small_dataset, tmp_path / "refs"), copy_dataset(small_dataset, tmp_path / "items")
    (refs / "labels.csv").write_text("\n".join([rows[0], *genuine[::2]]) + "\n")
    (items / "labels.csv").write_text("\n".join([rows[0], *(r for r in rows[1:] if r not in genuine[::2])]) + "\n")
    assert main(["fit-fusion", str(model), "--data", str(items), "--references", str(refs)]) == 0
    fusion = read_spec(model).fusion
    assert fusion is not None and fusion != before.fusion
    assert fusion.fitted_on.startswith(f"8 items of {items} against 4 references ({refs})")
    assert 0 < fusion.min_similarity < 1.0  # from genuine items that are not references


@independent
def test_the_fusion_is_fitted_against_a_deployments_few_references() -> None:
    """Up to K authentic items of each product, drawn at random (seeded), never a counterfeit:
    fitted against every authentic training item, a deployment enrolling 5 a product had 22% of
    its genuine items flagged below the similarity floor (docs/your-own-model.md)."""
    from authentiq.modelling.workflow.run import references_per_product

    n = 60
    labels = np.asarray([i % 3 == 0 for i in range(n)], dtype=np.int64)  # 20 counterfeit
    groups = np.asarray([i % 4 for i in range(n)], dtype=np.int64)
    groups[groups == 3] = 2  # product 2 has twice the items
    ts = datasets.TileSet(np.zeros((n, 1, 1, 1, 3), np.uint8), np.ones((n, 1), bool), labels,
                          [f"i{i}" for i in range(n)], ("overall",), [""] * n, groups,
                          np.ones((n, 1), bool))
    chosen = references_per_product(ts, 5, seed=0)
    assert (labels[chosen] == 0).all()
    assert np.bincount(groups[chosen]).tolist() == [5, 5, 5]
    assert chosen.tolist() == references_per_product(ts, 5, seed=0).tolist()
    assert chosen.tolist() != references_per_product(ts, 5, seed=1).tolist()
    few = references_per_product(ts, 100, seed=0)  # fewer than K: all of them
    assert len(few) == int((labels == 0).sum())


@independent
def test_a_larger_folder_gets_the_fusion_fitted_against_k_references_a_product(
        tmp_path: Path) -> None:
    """With enough items for it (the small folder above skips it), the fusion stage fits the
    model's fusion against ``--fusion-references`` authentic training items a product."""
    from authentiq.modelling.synthetic import write_dataset

    root = tmp_path / "photos"
    write_dataset(root, range(100, 148), short_side=256, clean=True, balanced=True)
    out = tmp_path / "run"
    assert main(["train", "--data", str(root), "--out", str(out), *TINY, *LOOSE,
                 "--fusion-references", "1", "--alteration-items", "0", "-q"]) == 0
    stages = json.loads((out / "stages.json").read_text())["stages"]
    split = json.loads((out / "splits.json").read_text())["items"]
    items = {it.name: it for it in datasets.folder_items(root)}
    products = {items[n].note for n, part in split.items() if part == "train" and items[n].label == 0}
    assert "skipped" not in stages["fusion"], stages["fusion"]
    assert stages["fusion"]["fitted_on"].startswith(
        f"{sum(p == 'val' for p in split.values())} validation items against {len(products)} "
        f"authentic training items as references of their products (1 a product at most")
    fusion = read_spec(out / "model.int8-cpu.onnx").fusion
    assert fusion is not None and fusion.fitted_on == stages["fusion"]["fitted_on"]
    assert "alteration head" not in stages["gate"].get("fitted_on", "")  # --alteration-items 0

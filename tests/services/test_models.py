"""Which file a server serves from the registry (services/models.py), on the run's database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authentiq.errors import ModelNotPromoted
from authentiq.services.models import ModelWatch, read_acceptance, register, served_settings
from authentiq.settings import ModelSettings
from authentiq.storage.db import open_database
from authentiq.storage.models import ModelRegistry
from tests.conftest import build_tiny_model, database_url_for, retrained, tiny_spec


def flavour(tmp: Path, precision: str, nudge: float) -> Path:
    spec = tiny_spec(precision=precision, model_version="2.0.0")
    base = build_tiny_model(tmp / f"base-{precision}.onnx", spec)
    return retrained(base, tmp / f"m.{precision}.onnx", nudge=nudge)


def test_each_backend_serves_its_flavour_of_the_promoted_release(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = open_database(database_url_for(tmp_path))
    try:
        registry = ModelRegistry(engine)
        cpu, trt, fp32 = (flavour(tmp_path, p, n) for p, n in
                          (("int8-cpu", 0.1), ("int8-trt", 0.2), ("fp32", 0.3)))
        configured = ModelSettings(model_path=build_tiny_model(
            tmp_path / "configured.onnx", tiny_spec(precision="int8-cpu")),
            tensorrt_model_path=build_tiny_model(
                tmp_path / "configured-trt.onnx", tiny_spec(precision="int8-trt")))
        assert served_settings(configured, registry) == configured  # nothing promoted
        rows = register(registry, [cpu, trt, fp32], force=True, by="test")
        assert {r.release for r in rows} == {rows[0].id}
        registry.promote(rows[0].release, action="promote", by="test")
        served = served_settings(configured, registry)
        assert (served.model_path, served.tensorrt_model_path) == (cpu.resolve(), trt.resolve())
        # the configured file is not the promoted model: said, with what to do to serve it
        assert f"AUTHENTIQ_MODEL_PATH names {configured.model_path}, which is not in the " \
               f"promoted release {rows[0].release}" in caplog.text
        assert "`authentiq models promote ID`" in caplog.text

        (tmp_path / "next").mkdir()
        only_fp32 = register(registry, [flavour(tmp_path / "next", "fp32", 0.4)], force=True,
                             by="test")
        registry.promote(only_fp32[0].release, action="promote", by="test")
        served = served_settings(configured, registry)  # no int8 files: both take the fp32
        assert served.model_path == served.tensorrt_model_path == Path(only_fp32[0].path)

        watch = ModelWatch(registry, rows[0].id, 1.0)  # a worker still on the first release
        watch.refresh()
        assert watch.promoted_release == only_fp32[0].release
        with pytest.raises(ModelNotPromoted, match="restart it to serve the promoted model"):
            watch.check()
        registry.promote(rows[0].release, action="rollback", by="test")
        watch.refresh()
        watch.check()  # serves the promoted release again
        assert registry.rollback_target() == only_fp32[0].release
    finally:
        engine.dispose()


def test_a_failed_switch_is_tried_again_when_the_file_arrives_or_after_a_growing_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ModelWatch as a switching worker uses it (``on_promotion`` set), on a fake clock: no
    retry while the release's file is missing (nothing to open), one at the next look once it
    is there; a file that is there and failed to load waits twice as long each time; a rollback
    ends it."""
    import authentiq.services.models as models_module

    now = [1000.0]
    monkeypatch.setattr(models_module.time, "monotonic", lambda: now[0])
    engine = open_database(database_url_for(tmp_path))
    try:
        registry = ModelRegistry(engine)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        served = register(registry, [flavour(tmp_path / "a", "int8-cpu", 0.1)], force=True, by="t")
        other = register(registry, [flavour(tmp_path / "b", "int8-cpu", 0.2)], force=True, by="t")
        registry.promote(served[0].release, action="promote", by="t")
        watch = ModelWatch(registry, served[0].id, 1.0)
        asked: list[int] = []
        watch.on_promotion = lambda: asked.append(1)
        watch.refresh()
        watch.poke()
        assert asked == [] and watch.refusal is None

        def look() -> bool:  # one poll: was a switch asked for?
            before = len(asked)
            watch.refresh()
            watch.poke()
            return len(asked) > before

        registry.promote(other[0].release, action="promote", by="t")
        assert look() and watch.refusal is None  # serves on while it switches
        away = Path(other[0].path).rename(tmp_path / "not-here-yet.onnx")
        watch.refuse()  # the switch found no file
        with pytest.raises(ModelNotPromoted, match="tried again automatically"):
            watch.check()
        now[0] += 3600
        assert not look() and not look()  # missing: nothing to try, however long
        away.rename(other[0].path)
        assert look()  # there now: tried at once
        for wait in (10, 20):  # there, and did not load: each wait twice the one before
            watch.refuse()
            now[0] += wait - 1
            assert not look()
            now[0] += 1
            assert look()
        watch.refuse()
        registry.promote(served[0].release, action="rollback", by="t")
        assert not look() and watch.refusal is None
        watch.check()  # serving the promoted release again
    finally:
        engine.dispose()


def test_acceptance_records_are_read_whatever_their_shape() -> None:
    assert read_acceptance({}).state == "missing"
    assert read_acceptance({"authentiq.acceptance": "not json"}).state == "missing"
    assert read_acceptance({"authentiq.acceptance": '{"figures": {}}'}).state == "missing"
    failed = read_acceptance({"authentiq.acceptance": json.dumps(
        {"passed": False, "forced": True, "failed": ["auc", {"threshold": "int8_drop", "max": 1}]})})
    assert failed.state == "failed" and failed.forced
    assert failed.failed == ("auc", "int8_drop (max 1)")

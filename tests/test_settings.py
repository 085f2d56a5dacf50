"""Settings: flat ``AUTHENTIQ_*`` variables, each in exactly one typed, frozen section."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from authentiq.settings import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    SECTIONS,
    BatcherSettings,
    InspectionSettings,
    QualitySettings,
    Section,
    Settings,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_every_setting_is_in_exactly_one_section() -> None:
    seen: dict[str, str] = {}
    for name, section in SECTIONS.items():
        for field in section.model_fields:
            assert field not in seen, f"{field} is in both {seen[field]} and {name}"
            seen[field] = name
    assert set(seen) == set(Settings.model_fields)  # none is left on Settings alone


def test_sections_carry_the_settings_values_and_are_frozen() -> None:
    settings = Settings(max_batch_size=4, preferred_batch_sizes=(2,), min_side=300,
                        database_url="sqlite:///x.db")
    for name, kind in SECTIONS.items():
        section = getattr(settings, name)
        assert type(section) is kind and not isinstance(section, Settings)
        assert section.model_dump() == settings.model_dump(include=set(kind.model_fields))
    assert settings.batcher.preferred_batch_sizes == (2,)
    assert settings.batcher.max_queue_delay_s == pytest.approx(0.002)
    with pytest.raises(ValidationError, match="frozen"):
        settings.quality.min_side = 10  # type: ignore[misc]
    # Tests (and the CLI) derive settings with flat updates; the sections follow.
    assert settings.model_copy(update={"min_side": 64}).quality.min_side == 64


@pytest.mark.parametrize("variable, value, section, field, expected", [
    ("AUTHENTIQ_BACKEND", "onnxruntime", "model", "backend", "onnxruntime"),
    ("AUTHENTIQ_PREFERRED_BATCH_SIZES", "[2, 4]", "batcher", "preferred_batch_sizes", (2, 4)),
    ("AUTHENTIQ_REQUEST_TIMEOUT_S", "5", "inspection", "request_timeout_s", 5.0),
    ("AUTHENTIQ_MIN_SIDE", "300", "quality", "min_side", 300),
    ("AUTHENTIQ_MAX_FILES", "3", "uploads", "max_files", 3),
    ("AUTHENTIQ_WEBHOOK_MAX_ATTEMPTS", "2", "jobs", "webhook_max_attempts", 2),
    ("AUTHENTIQ_CORS_ORIGINS", '["https://k.example.com"]', "access", "cors_origins",
     ("https://k.example.com",)),
    ("AUTHENTIQ_KEEP_ALIVE_S", "7", "connections", "keep_alive_s", 7.0),
    ("AUTHENTIQ_PDF_QUEUE", "3", "pdf", "pdf_queue", 3),
    ("AUTHENTIQ_BLOB_URL", "s3://bucket/prefix", "storage", "blob_url", "s3://bucket/prefix"),
    ("AUTHENTIQ_DATA_DIR", "/srv/authentiq", "storage", "data_dir", Path("/srv/authentiq")),
    ("AUTHENTIQ_REFERENCE_SEED_DIR", "", "references", "reference_seed_dir", None),
])
def test_flat_variables_reach_their_section(monkeypatch: pytest.MonkeyPatch, variable: str,
                                            value: str, section: str, field: str,
                                            expected: object) -> None:
    monkeypatch.setenv(variable, value)
    settings = Settings()
    assert getattr(settings, field) == expected
    assert getattr(getattr(settings, section), field) == expected


@pytest.mark.parametrize("variable, value, message", [
    ("AUTHENTIQ_MAX_BATCH_SIZE", "0", "max_batch_size"),
    ("AUTHENTIQ_PREFERRED_BATCH_SIZES", "[16]", r"preferred_batch_sizes \[16\] must lie in 1..max"),
    ("AUTHENTIQ_MAX_DECODED_BYTES_PER_VIEW", str(512 * 2**20), "must not exceed"),
    ("AUTHENTIQ_RATE_LIMIT", "lots", "is not like '600/minute'"),
    ("AUTHENTIQ_DATABASE_URL", "mysql://db/x", "sqlite:// or postgresql://"),
    ("AUTHENTIQ_BLOB_URL", "http://bucket", "s3://bucket/prefix"),
    ("AUTHENTIQ_BACKEND", "cuda", "backend"),
    ("AUTHENTIQ_MIN_SIDE", "8", "min_side"),
])
def test_bad_values_are_refused_at_startup(monkeypatch: pytest.MonkeyPatch, variable: str,
                                           value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_a_section_validates_on_its_own() -> None:
    """The batch-size rules live in one place, the batcher's section, whoever builds it."""
    with pytest.raises(ValidationError, match=r"preferred_batch_sizes \[8\]"):
        BatcherSettings(max_batch_size=4, preferred_batch_sizes=(8,))
    with pytest.raises(ValidationError, match="decode_memory_bytes must hold"):
        InspectionSettings(decode_memory_bytes=2**20, max_decoded_bytes_per_view=2**20)
    with pytest.raises(ValidationError, match="Extra inputs"):
        QualitySettings(max_batch_size=4)  # type: ignore[call-arg]
    assert issubclass(BatcherSettings, Section) and not issubclass(Settings, BatcherSettings)


def test_the_architecture_doc_lists_every_variable_in_its_section() -> None:
    rows = {line.split("|")[1].strip().strip("`"): line
            for line in DOCS.read_text().splitlines() if line.startswith("| `")}
    for name, section in SECTIONS.items():
        assert name in rows, f"docs/architecture.md has no row for the {name} section"
        listed = rows[name].split("|")[2]
        for field in section.model_fields:
            assert f"`{field.upper()}`" in listed, f"AUTHENTIQ_{field.upper()} is not in the {name} row"


def test_the_database_and_photos_follow_one_data_folder_not_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTHENTIQ_DATA_DIR", "AUTHENTIQ_DATABASE_URL", "AUTHENTIQ_BLOB_DIR"):
        monkeypatch.delenv(name, raising=False)
    seen = []
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        s = Settings()
        seen.append((s.data_dir, s.database_url, s.blob_dir, s.storage.blob_dir))
    assert seen[0] == seen[1]
    # A source checkout keeps its data in the checkout's var/, as `make run` always did.
    assert DEFAULT_DATA_DIR == REPO_ROOT / "var"
    assert seen[0] == (DEFAULT_DATA_DIR, f"sqlite:///{DEFAULT_DATA_DIR / 'authentiq.db'}",
                       DEFAULT_DATA_DIR / "blobs", DEFAULT_DATA_DIR / "blobs")

    monkeypatch.setenv("AUTHENTIQ_DATA_DIR", "data")  # relative: from the starting folder, once
    s = Settings()
    assert s.data_dir == tmp_path / "b" / "data" and s.data_dir.is_absolute()
    assert (s.database_url, s.blob_dir) == (f"sqlite:///{tmp_path / 'b' / 'data' / 'authentiq.db'}",
                                            tmp_path / "b" / "data" / "blobs")
    # The older variables still win where they are set (empty: unset).
    monkeypatch.setenv("AUTHENTIQ_BLOB_DIR", "/mnt/photos")
    monkeypatch.setenv("AUTHENTIQ_DATABASE_URL", "")
    s = Settings()
    assert s.blob_dir == Path("/mnt/photos") and s.database_url.endswith("/b/data/authentiq.db")
    assert Settings(database_url="sqlite:///elsewhere.db").database_url == "sqlite:///elsewhere.db"

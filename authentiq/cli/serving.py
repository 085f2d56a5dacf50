"""Running and calling the service: serve, inspect, openapi, build-engine, version."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authentiq.settings import Settings


def version(args: argparse.Namespace) -> int:
    from authentiq import __version__

    print(f"authentiq {__version__}")
    return 0


def default_workers(cpus: int) -> int:
    """``authentiq serve``'s worker processes when ``--workers`` is not given: one per CPU.
    One process keeps well under its CPUs busy (the Python-side work of a request holds the
    GIL), and single-threaded workers did ~30 % more work per CPU-second than one process with
    two threads; a third worker on 2 CPUs added memory, not work (docs/performance.md,
    "Ceiling": 1, 2 and 3 workers side by side)."""
    return max(1, cpus)


def thread_share(cpus: int, workers: int) -> int:
    """Each worker's share of the CPUs, at least one."""
    return max(1, cpus // workers)


def decode_threads(cpus: int, workers: int) -> int:
    """Each worker's decoding pool: its share of the CPUs, but two where there are two, so that
    a lone request's photos decode two at a time (a worker per CPU with one thread each would
    decode a request's six photos one after another). Under load the extra threads only wait
    their turn: measured as much work per CPU-second as one thread (docs/performance.md)."""
    return max(thread_share(cpus, workers), min(2, cpus))


def model_threads(cpus: int, workers: int) -> tuple[int, bool]:
    """Each worker's ONNX Runtime threads, and whether they spin-wait for work between batches.

    Like decoding, two where there are two CPUs, so that a lone request's mosaic runs on both
    (on 2 CPUs: p50 at concurrency 1 85 -> 74 ms). Threads beyond the worker's share sleep
    between batches instead of spinning (ONNX Runtime's allow_spinning): a spinning pool burns
    the CPU the other workers' decoding needs, and a sleeping one measured the same throughput
    at saturation (docs/performance.md, "Ceiling")."""
    share = thread_share(cpus, workers)
    threads = max(share, min(2, cpus))
    return threads, threads == share


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from authentiq.api.app import create_app
    from authentiq.api.server import AnnouncingServer, browsable, log_config, ready_message, uvicorn_options
    from authentiq.settings import Settings, available_cpus

    cpus = available_cpus()
    workers = args.workers or default_workers(cpus)
    overrides: dict[str, Any] = {
        k: v for k, v in (("model_path", args.model), ("database_url", args.database_url))
        if v is not None}
    url = browsable(args.host, args.port)
    if "AUTHENTIQ_PUBLIC_BASE_URL" not in os.environ:
        # Share links and QR codes point at this server, not at a port nobody listens on; a
        # deployment sets AUTHENTIQ_PUBLIC_BASE_URL (start-up warns while it is unset).
        overrides["public_base_url"] = url.rstrip("/")
    ort_threads, ort_spin = model_threads(cpus, workers)
    shares: dict[str, Any] = {"preprocess_workers": decode_threads(cpus, workers)}
    if "AUTHENTIQ_ORT_THREADS" not in os.environ:  # spinning follows the threads chosen here
        shares.update(ort_threads=ort_threads, ort_spin=ort_spin)
    for name, value in shares.items():  # unless set: this worker's share
        if f"AUTHENTIQ_{name.upper()}" not in os.environ:
            overrides[name] = value
    settings = Settings(**overrides)
    options = {"host": args.host, "port": args.port, "log_level": args.log_level,
               "log_config": log_config(args.log_level), **uvicorn_options(settings.connections)}
    if workers > 1:
        return serve_workers(workers, cpus, url, settings, overrides, options)
    app = create_app(settings)

    def announce() -> None:
        services = app.state.services
        info = services.backend.info
        print(ready_message(url, services.backend.spec.version_key, info.precision, info.name,
                            info.device, services.index.size), flush=True)

    server = AnnouncingServer(uvicorn.Config(app, **options), announce)
    server.run()
    return 0 if server.started else 3


def serve_workers(workers: int, cpus: int, url: str, settings: Settings,
                  overrides: dict[str, Any], options: dict[str, Any]) -> int:
    """Several worker processes on one port, each listening on a socket of its own where the
    platform allows (:class:`authentiq.api.connections.WorkerSocket`); uvicorn's process manager
    restarts any that dies. They share everything through the database, the blob store and
    Redis; the model's contract is checked and the schema migrated once here, before they
    start. This process says "ready" once the URL answers."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from authentiq.api.connections import listening_socket
    from authentiq.api.server import ReadyWatch
    from authentiq.inference.select import model_contract
    from authentiq.storage.db import open_database

    model_contract(settings.model)  # what create_app reads first: refused here, said once
    if settings.storage.migrate:
        open_database(settings.storage.database_url).dispose()
    for key, value in overrides.items():  # the workers read their settings from the environment
        os.environ[f"AUTHENTIQ_{key.upper()}"] = str(value)
    config = uvicorn.Config("authentiq.api.server:worker_app", factory=True, workers=workers,
                            **options)
    try:
        sock = listening_socket(config, settings.connections.reuse_port)
    except OSError as exc:
        print(f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}",
              file=sys.stderr)
        return 3
    threads, ort = settings.inspection.preprocess_workers, settings.model.ort_threads or "all"
    sleeping = "" if settings.model.ort_spin else ", sleeping between batches"
    print(f"AuthentiQ starting {workers} worker processes on {url} ({cpus} CPUs; each with "
          f"{threads} decoding and {ort} model threads{sleeping})", file=sys.stderr, flush=True)
    if settings.access.rate_limit_storage.startswith("memory://"):
        print(f"  rate limits are counted by each worker alone (AUTHENTIQ_RATE_LIMIT_STORAGE="
              f"memory://): a key may get up to {workers}× AUTHENTIQ_RATE_LIMIT, an address "
              f"{workers}× AUTHENTIQ_LOGIN_RATE_LIMIT; redis://... shares them (docs/deployment.md)",
              file=sys.stderr, flush=True)
    with shared_metrics() as metrics_dir, ReadyWatch(url, workers) as watch, sock:
        print(f"  /metrics sums every worker's values (prometheus_client multiprocess mode, "
              f"{metrics_dir})", file=sys.stderr, flush=True)
        Multiprocess(config, sockets=[sock]).run()
    return 0 if watch.announced else 3


@contextmanager
def shared_metrics() -> Iterator[str]:
    """The folder the workers' metrics meet in (prometheus_client's multiprocess mode): the
    operator's ``PROMETHEUS_MULTIPROC_DIR``, emptied of an earlier run's files, or a new
    temporary folder, removed when the server stops. Set in the environment before the workers
    start, so each one's prometheus_client finds it when first imported."""
    from authentiq.api.metrics import SHARED_DIR_ENV

    given = os.environ.get(SHARED_DIR_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):  # counts of an earlier run must not add up
            stale.unlink()
        yield given
        return
    made = tempfile.mkdtemp(prefix="authentiq-metrics-")
    os.environ[SHARED_DIR_ENV] = made
    try:
        yield made
    finally:
        os.environ.pop(SHARED_DIR_ENV, None)
        shutil.rmtree(made, ignore_errors=True)


def inspect(args: argparse.Namespace) -> int:
    from authentiq.cli.client import inspect_photos
    from authentiq.web.report_view import AGAINST, against, headline, retakes

    report = inspect_photos(args.url, args.photos, brand=args.brand, model=args.model,
                            client_ref=args.client_ref, timeout=args.timeout,
                            api_key=args.api_key or os.environ.get("AUTHENTIQ_API_KEY"))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    h = headline(report)
    print(f"verdict: {h.verdict.upper()}   ({h.decided_by})")
    print(f"  {h.automated()}")
    retake = {t["view"]: t for t in retakes(report)}
    if retake:
        print("retake these photos:")
        for t in retake.values():
            print(f"  {t['view']}: {t['message']}")
    for reason in report.get("reasons", []):
        print(f"  - {reason['detail']}" + (f"  [{AGAINST}]" if against(reason) else ""))
    refs = report["references"]
    claimed = refs["claimed"]
    matches = ", ".join(f"{m['similarity']:.3f}" for m in claimed["matches"]) or "none"
    print(f"closest genuine {claimed['brand']}/{claimed['model']} references "
          f"({claimed['count']} enrolled): {matches}")
    others = ", ".join(f"{m['brand']}/{m['model']} {m['similarity']:.3f}" for m in refs["other_products"])
    if others:
        print(f"best matches among other models: {others}")
    for q in report.get("views", []):
        print(f"  {q['view']:<10} {_view_state(q, retake, v2='retake' not in report)}")
    base = args.url.rstrip("/")
    print(f"report: {base}{report['links']['self']}  ·  page: {base}{report['links']['page']}")
    return 0


def _view_state(view: dict[str, Any], retake: dict[str, dict[str, str]], *, v2: bool) -> str:
    if view["view"] in retake:
        return f"RETAKE: {retake[view['view']]['reason']}"
    if view["usable"]:
        return "ok"
    # v3 lists every photo to retake; an unusable one it leaves out was optional and ignored
    return f"RETAKE: {view['reason']}" if v2 else f"unusable ({view['reason']}), ignored"


def openapi(args: argparse.Namespace) -> int:
    from authentiq.api.app import create_app
    from authentiq.settings import Settings

    text = json.dumps(create_app(Settings()).openapi(), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0

def build_engine(args: argparse.Namespace) -> int:
    import dataclasses

    from authentiq.errors import BackendUnavailable
    from authentiq.inference.backends.tensorrt_lib import import_tensorrt
    from authentiq.inference.engine_build import load_or_build
    from authentiq.inference.engine_compat import describe
    from authentiq.inference.select import build_options, usable_gpu
    from authentiq.settings import Settings

    given = {"tensorrt_model_path": args.model, "engine_dir": args.engine_dir,
             "max_batch_size": args.max_batch, "trt_workspace_mib": args.workspace_mib,
             "trt_optimization_level": args.opt_level,
             "trt_hardware_compatibility": args.hardware_compat,
             "trt_version_compatible": args.version_compat, "tensorrt_flavour": args.flavour}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    model = settings.model
    options = build_options(model, settings.batcher)
    if args.opt_batch is not None:
        options = dataclasses.replace(options, opt_batch=args.opt_batch)
    trt = import_tensorrt(None if model.tensorrt_flavour == "auto" else model.tensorrt_flavour)
    try:
        gpu = usable_gpu(model.gpu_index)
    except BackendUnavailable as exc:
        if not trt.rtx:  # load_or_build refuses with the reason; say first why there is no GPU
            print(f"no GPU ({exc.detail})", file=sys.stderr)
        else:
            print(f"no GPU ({exc.detail}); {trt.label} builds ahead of time for its portable "
                  f"set of GPUs", file=sys.stderr)
        gpu = None
    engine = load_or_build(model.tensorrt_model_path, model.engine_dir, trt, gpu, options,
                           force=args.force)
    state = "built" if engine.built else "cache hit"
    print(f"{state}: {engine.path} ({len(engine.plan) / 1e6:.1f} MB, {engine.seconds:.1f} s)")
    print(f"  {trt.label} · built on: {gpu.label if gpu else 'no GPU'} · runs on: "
          f"{describe(engine.runs_on)} · key {engine.key[:16]}")
    profile = engine.fields["profile"]
    print(f"  profile batch {profile['min'][0]}/{profile['opt'][0]}/{profile['max'][0]} "
          f"(min/opt/max) · options {engine.fields['options']}")
    return 0


def report_schema(args: argparse.Namespace) -> int:
    from authentiq.api.report_schema import write

    print(f"wrote {write(Path(args.out_dir))}")
    return 0


def audit_verify(args: argparse.Namespace) -> int:
    from authentiq.storage.db import open_configured
    from authentiq.storage.reviews import verify_chain

    engine = open_configured(args.database_url, existing=True)
    try:
        result = verify_chain(engine)
    finally:
        engine.dispose()
    if result.ok:
        print(f"review log intact: {result.entries} entries, every hash and link verified")
        return 0
    print(f"REVIEW LOG TAMPERED: {len(result.problems)} problem(s) in {result.entries} entries")
    for problem in result.problems:
        print(f"  - {problem}")
    return 1

"""Triton backend: batches go to a Triton Inference Server over gRPC (``AUTHENTIQ_BACKEND=triton``).

GPU inference then lives on a separate, shared cluster (a repository made by ``authentiq
export-triton``); every AuthentiQ worker keeps its own batcher in front, and Triton's dynamic
batcher merges the batches of all workers. The model contract is read from the server's model
config (the ``authentiq.*`` parameters the export writes), so no model file is needed here.

Failures: a server that cannot be reached or whose model is not ready → ``BackendUnavailable``
(503 + Retry-After at the API, retried by clients); a server that rejects the batch (queue full,
timed out in its queue) → the same; anything else Triton reports → ``InferenceFailed``.

Each batch carries the time its last caller has left (the batcher's deadline), both as the gRPC
deadline and as Triton's queue timeout for the request, so Triton drops work nobody waits for;
a batch without a deadline gets the configured request timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from authentiq.contract.model_spec import (
    INPUT_NAME,
    OPTIONAL_OUTPUTS,
    OUTPUT_NAMES,
    ModelSpec,
    check_io,
)
from authentiq.contract.triton import TRITON_HINT, model_id_parameter, spec_from_parameters
from authentiq.errors import BackendUnavailable, DeadlineExceeded, InferenceFailed
from authentiq.inference.backends.base import BackendInfo, Outputs

log = logging.getLogger(__name__)
RETRY_AFTER_S = 2  # what a client is told to wait when Triton is away or full
UNAVAILABLE = ("StatusCode.UNAVAILABLE", "StatusCode.RESOURCE_EXHAUSTED",
               "StatusCode.DEADLINE_EXCEEDED", "Exceeds maximum queue size",
               "Request timeout expired", "is not ready")


def _grpc() -> Any:
    try:
        import tritonclient.grpc as grpcclient
    except ImportError as exc:
        raise BackendUnavailable(f"AUTHENTIQ_BACKEND=triton needs tritonclient: {TRITON_HINT}"
                                 ) from exc
    return grpcclient


def fetch_spec(url: str, model: str, ready_wait_s: float = 30.0) -> ModelSpec:
    """The model contract from the server's config, waiting for the model like the backend does."""
    backend = TritonBackend(url, model, ready_wait_s=ready_wait_s)
    backend.close()
    return backend.spec


class TritonBackend:
    def __init__(self, url: str, model: str, *, timeout_s: float = 30.0,
                 ready_wait_s: float = 30.0) -> None:
        self.grpc = _grpc()
        self.url, self.model, self.timeout_s = url, model, timeout_s
        self._local = threading.local()  # one client (gRPC channel) per batcher thread
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        config = self._wait_for_model(ready_wait_s)
        check_io({i["name"] for i in config.get("input", [])},
                 {o["name"] for o in config.get("output", [])}, f"triton {url}/{model}")
        outputs = {o["name"] for o in config.get("output", [])}
        self.output_names = [*OUTPUT_NAMES, *(o for o in OPTIONAL_OUTPUTS if o in outputs)]
        self.spec: ModelSpec = spec_from_parameters(config.get("parameters", {}),
                                                    f"triton {url}/{model}")
        identity = model_id_parameter(config.get("parameters", {}))
        if not identity:  # references and the registry are keyed by it: refuse, saying what to do
            raise BackendUnavailable(
                f"triton {url}/{model}: the model's config carries no authentiq.model_id (exported "
                f"before model ids existed); export it again with `authentiq export-triton`")
        self.max_batch_size = int(config.get("max_batch_size", 0)) or 1
        version = self._client().get_model_metadata(model, as_json=True).get("versions", ["?"])[-1]
        runtime = config.get("backend") or config.get("platform")
        self.info = BackendInfo(name="triton", device=f"triton:{url}", precision=self.spec.precision,
                                engine_id=f"{model}@{version} ({runtime})",
                                max_batch_size=self.max_batch_size, model_id=identity)
        log.info("Triton %s: model %s version %s ready (%s, %s, max batch %d)", url, model, version,
                 runtime, self.spec.version_key, self.max_batch_size)

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self.grpc.InferenceServerClient(self.url)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _wait_for_model(self, wait_s: float) -> dict[str, Any]:
        end = time.monotonic() + wait_s
        last = "not asked yet"
        while True:
            try:
                if self._client().is_model_ready(self.model):
                    config: dict[str, Any] = self._client().get_model_config(
                        self.model, as_json=True)["config"]
                    return config
                last = f"model {self.model!r} is not ready (is it in the repository?)"
            except self.grpc.InferenceServerException as exc:
                last = str(exc.message() or exc)
            if time.monotonic() >= end:
                raise BackendUnavailable(f"Triton at {self.url}: {last}")
            time.sleep(0.5)

    def run(self, views: np.ndarray, *, deadline: float | None = None) -> Outputs:
        parts = [self._infer(views[i:i + self.max_batch_size], deadline)
                 for i in range(0, len(views), self.max_batch_size)]
        if len(parts) == 1:
            return parts[0]
        return Outputs.concat(parts)

    def time_left(self, deadline: float | None) -> float:
        """Seconds to give Triton: what is left until ``deadline`` (``time.monotonic()``), at most
        the request timeout; DeadlineExceeded when nothing is left."""
        if deadline is None:
            return self.timeout_s
        left = min(self.timeout_s, deadline - time.monotonic())
        if left <= 0:
            raise DeadlineExceeded("the batch's deadline passed before it was sent to Triton")
        return left

    def _infer(self, views: np.ndarray, deadline: float | None) -> Outputs:
        grpc = self.grpc
        request = grpc.InferInput(INPUT_NAME, list(views.shape), "FP32")
        request.set_data_from_numpy(np.ascontiguousarray(views, dtype=np.float32))
        left = self.time_left(deadline)
        try:
            result = self._client().infer(
                self.model, [request], outputs=[grpc.InferRequestedOutput(o) for o in self.output_names],
                client_timeout=left, timeout=max(1, int(left * 1_000_000)))
        except grpc.InferenceServerException as exc:
            text = f"{exc.status()} {exc.message()}"
            if any(marker in text for marker in UNAVAILABLE):
                raise BackendUnavailable(f"Triton at {self.url}: {exc.message()}",
                                         retry_after=RETRY_AFTER_S) from exc
            raise InferenceFailed(f"Triton at {self.url} failed a batch of {len(views)}: "
                                  f"{exc.message()}") from exc
        return Outputs.named({o: result.as_numpy(o) for o in self.output_names})

    def failure(self) -> str | None:
        return None  # a server that is away is retried (503 + Retry-After), not fatal here

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

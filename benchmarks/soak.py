"""Soak and faults: sustained mixed load while the server is restarted, the database goes away
and the webhook receiver fails; then an account of every request.

    python -m benchmarks.soak                    # 5 minutes (the table in docs/reliability.md)
    python -m benchmarks.soak --duration 60      # a quick look

Loopback only: one ``authentiq serve`` process on PostgreSQL (a fresh database
``authentiq_soak`` on 127.0.0.1:5432, reached through a TCP proxy that can cut it off), a local
webhook receiver, and client threads that send sync and async inspections with an
Idempotency-Key, retry every failure with the same key (as a marketplace backend does) and
sometimes resend a request that already succeeded (a duplicate retry).

Faults, at fractions of the duration: SIGTERM + restart (0.2), database cut for ``--outage``
seconds (0.4), SIGKILL + restart (0.6), webhook receiver answering 500 for 15 s (0.75).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from authentiq.modelling.synthetic import make_item
from benchmarks._common import free_port, machine
from benchmarks.faults import TcpProxy, WebhookReceiver

PG = "postgresql+psycopg://postgres@127.0.0.1:{port}/authentiq_soak"


@dataclass
class Outcome:
    mode: str
    attempts: list[str] = field(default_factory=list)  # what each attempt got
    accepted_id: str | None = None
    duplicate: str | None = None  # "same" / "different" when resent after success


class Server:
    def __init__(self, folder: Path, db_port: int, port: int) -> None:
        self.folder, self.port = folder, port
        self.env = {**os.environ, "AUTHENTIQ_DATABASE_URL": PG.format(port=db_port),
                    "AUTHENTIQ_BLOB_DIR": str(folder / "blobs"), "AUTHENTIQ_AUTH": "required",
                    "AUTHENTIQ_JOB_LEASE_S": "20", "AUTHENTIQ_POLL_S": "0.2",
                    "AUTHENTIQ_WEBHOOK_BACKOFF_S": "0.5", "AUTHENTIQ_WEBHOOK_MAX_ATTEMPTS": "20"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.rss: list[tuple[int, float, int]] = []  # (generation, seconds since start, KiB)
        self.exits: list[str] = []

    def start(self) -> None:
        with (self.folder / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "authentiq", "serve", "--port", str(self.port),
                 "--log-level", "warning", "--workers", "1"],  # RSS of one process
                env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        self.generation += 1
        self.started = time.monotonic()
        url = f"http://127.0.0.1:{self.port}/readyz"
        for _ in range(1200):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start; see " + str(self.folder / "server.log"))

    def stop(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(120)
        self.exits.append(f"{sig.name} → exit {code}")

    def sample(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.rss.append((self.generation, time.monotonic() - self.started,
                                     int(line.split()[1])))
        except OSError:
            pass


def payloads(n: int) -> list[tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]]:
    out = []
    for i in range(n):
        item = make_item(910_000_000 + i, counterfeit=i % 3 == 0)
        out.append(({"brand": item.brand, "model": item.model},
                    [(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in item.views.items()]))
    return out


def client(url: str, key: str, bodies: list, stop: threading.Event, results: list[Outcome],
           async_share: float, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": key}) as http:
        while not stop.is_set():
            mode = "async" if rng.random() < async_share else "sync"
            fields, files = rng.choice(bodies)
            outcome = Outcome(mode)
            results.append(outcome)
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            path = "/v1/inspections" + ("?mode=async" if mode == "async" else "")
            for _ in range(60):
                try:
                    r = http.post(path, data=fields, files=files, headers=headers)
                except httpx.TransportError as exc:
                    outcome.attempts.append(f"transport:{type(exc).__name__}")
                    time.sleep(0.5)
                    continue
                if r.status_code in (201, 202):
                    outcome.attempts.append(str(r.status_code))
                    outcome.accepted_id = r.json()["id"]
                    break
                kind = r.json().get("type", "").rsplit("/", 1)[-1] if r.headers.get(
                    "content-type", "").startswith("application/problem+json") else ""
                outcome.attempts.append(f"{r.status_code}:{kind}")
                if r.status_code < 500 and r.status_code not in (409, 429):
                    break  # a client error: final (409 in-progress and 429 say: retry later)
                time.sleep(min(float(r.headers.get("retry-after", 1)), 2.0))
            if outcome.accepted_id and rng.random() < 0.1:  # the answer "got lost": resend it
                try:
                    again = http.post(path, data=fields, files=files, headers=headers)
                    outcome.duplicate = "same" if again.status_code in (201, 202) and \
                        again.json()["id"] == outcome.accepted_id else f"different:{again.status_code}"
                except httpx.TransportError:
                    outcome.duplicate = "transport"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--async-share", type=float, default=0.4)
    parser.add_argument("--outage", type=float, default=10, help="seconds without the database")
    args = parser.parse_args()

    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS authentiq_soak WITH (FORCE)")
        conn.execute("CREATE DATABASE authentiq_soak")
    folder = Path(tempfile.mkdtemp(prefix="authentiq-soak-"))
    proxy = TcpProxy("127.0.0.1", 5432)
    receiver = WebhookReceiver()
    port = free_port()
    server = Server(folder, proxy.port, port)
    created = subprocess.run([sys.executable, "-m", "authentiq", "keys", "create", "soak",
                              "--scopes", "admin", "--rate-limit", "100000/minute",
                              "--webhook", receiver.url], env=server.env, check=True,
                             capture_output=True, text=True).stdout
    key = created.splitlines()[1]
    server.start()
    url = f"http://127.0.0.1:{port}"
    bodies = payloads(8)
    stop = threading.Event()
    results: list[Outcome] = []
    clients = [threading.Thread(target=client, args=(url, key, bodies, stop, results,
                                                     args.async_share, i)) for i in range(args.clients)]
    events: list[tuple[float, str]] = []
    t0 = time.monotonic()

    def at(share: float) -> None:
        while time.monotonic() - t0 < share * args.duration:
            server.sample()
            time.sleep(0.5)

    def note(what: str) -> None:
        events.append((time.monotonic() - t0, what))

    for c in clients:
        c.start()
    at(0.2)
    note("SIGTERM")
    server.stop(signal.SIGTERM)
    server.start()
    note("restarted")
    at(0.4)
    note(f"database cut for {args.outage:.0f} s")
    proxy.cut()
    time.sleep(args.outage)
    proxy.restore()
    note("database back")
    at(0.6)
    note("SIGKILL")
    server.stop(signal.SIGKILL)
    server.start()
    note("restarted")
    at(0.75)
    note("webhook receiver failing for 15 s")
    receiver.failing = True
    time.sleep(15)
    receiver.failing = False
    note("webhook receiver back")
    at(1.0)
    stop.set()
    for c in clients:
        c.join(180)
    note("load stopped")

    # --- the account ----------------------------------------------------------------------
    http = httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": key})
    accepted = [o for o in results if o.accepted_id]
    jobs = {o.accepted_id for o in accepted if o.mode == "async"}
    end = time.monotonic() + 180
    states: dict[str, str] = {}
    while time.monotonic() < end:
        states = {j: http.get(f"/v1/jobs/{j}").json()["status"] for j in jobs}
        if all(s in ("succeeded", "failed") for s in states.values()):
            break
        time.sleep(1)
    delivered: set[str] = set()
    while time.monotonic() < end:
        delivered = {r.payload["data"]["job"]["id"] for r in receiver.accepted()}
        if jobs <= delivered:
            break
        time.sleep(1)
    note("drained")
    server.sample()
    sync_ok = sum(http.get(f"/v1/reports/{o.accepted_id}").status_code == 200
                  for o in accepted if o.mode == "sync")
    reports_total = http.get("/v1/reports", params={"limit": 1}).json()["total"]
    server.stop(signal.SIGTERM)
    proxy.close()

    attempts = Counter(a for o in results for a in o.attempts)
    given_up = [o for o in results if not o.accepted_id]
    deliveries = Counter(r.delivery_id for r in receiver.received if r.status < 300)
    print(f"\n## Soak: {args.duration:.0f} s, {args.clients} clients ({args.async_share:.0%} async), "
          f"{machine()}\n")
    print("| event | at (s) |\n|---|---:|")
    for t, what in events:
        print(f"| {what} | {t:.1f} |")
    print("\n| requests (logical, each retried with its Idempotency-Key) | count |\n|---|---:|")
    rows = [
        ("submitted", len(results)),
        ("accepted: sync 201", sum(o.mode == "sync" for o in accepted)),
        ("accepted: async 202", len(jobs)),
        ("not accepted (gave up or a client error)", len(given_up)),
        ("sync 201 whose report reads back", sync_ok),
        ("async jobs succeeded", sum(s == "succeeded" for s in states.values())),
        ("async jobs failed", sum(s == "failed" for s in states.values())),
        ("async jobs still open after the drain", sum(s not in ("succeeded", "failed")
                                                      for s in states.values())),
        ("reports stored (should equal accepted)", reports_total),
        ("duplicate resends answered with the same id", sum(o.duplicate == "same" for o in results)),
        *((f"duplicate resends answered {what}", n) for what, n in Counter(
            o.duplicate for o in results if o.duplicate not in (None, "same")).items()),
        ("async jobs whose webhook arrived (signed)", len(jobs & delivered)),
        ("webhook deliveries received more than once", sum(n > 1 for n in deliveries.values())),
    ]
    for what, n in rows:
        print(f"| {what} | {n} |")
    print("\n| attempt outcome | count |\n|---|---:|")
    for what, n in attempts.most_common():
        print(f"| {what} | {n} |")
    undocumented = sum(n for a, n in attempts.items() if a.startswith("5") and not a.startswith(
        ("503:", "504:")))
    print(f"\nundocumented 5xx: {undocumented}; server exits: {'; '.join(server.exits)}")
    print("\n| server | RSS after 30 s (MiB) | RSS at its end (MiB) | samples |\n|---|---:|---:|---:|")
    for gen in sorted({g for g, _, _ in server.rss}):
        samples = [(t, kib) for g, t, kib in server.rss if g == gen]
        warm = [kib for t, kib in samples if t >= 30] or [samples[-1][1]]
        print(f"| #{gen} | {warm[0] / 1024:.0f} | {samples[-1][1] / 1024:.0f} | {len(samples)} |")
    print(f"\nlogs: {folder}/server.log")


if __name__ == "__main__":
    main()

"""Async inspections and signed webhooks through the real app, a real database and a real HTTP
receiver: 202 before the work, the same verdict as sync, nothing lost across restarts and worker
deaths, every webhook signed, retried with backoff and logged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from authentiq.api.app import create_app
from authentiq.contract.deadline import Deadline
from authentiq.inference.batcher import Priority
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.pipeline.inspection import Upload
from authentiq.settings import JobSettings, Settings
from authentiq.storage.db import make_engine
from authentiq.storage.jobs import JobRow, JobStore
from authentiq.storage.keys import create_key
from authentiq.storage.reports import ReportRow
from authentiq.storage.tenants import create_tenant
from authentiq.storage.webhooks import set_webhook, sign, verify
from benchmarks.faults import TcpProxy, WebhookReceiver
from tests.conftest import files_of, make_settings

FAST = {"poll_s": 0.05, "webhook_backoff_s": 0.05, "webhook_timeout_s": 5}


def form(item: SyntheticItem, **extra: str) -> dict[str, str]:
    return {"brand": item.brand, "model": item.model, **extra}


def wait(predicate: Callable[[], Any], timeout: float = 30) -> Any:
    end = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
    return value


def finished(client: TestClient, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        return job if job["status"] in ("succeeded", "failed") else None
    result: dict[str, Any] = wait(done)
    return result


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def fast_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, **FAST))) as c:
        yield c


def test_async_answers_202_then_gives_the_sync_verdict(fast_client: TestClient,
                                                       genuine_item: SyntheticItem,
                                                       tmp_path: Path) -> None:
    r = fast_client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                         data=form(genuine_item, client_ref="sku-1"))
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["priority"] == "bulk"
    assert job["report_id"] is None and job["links"]["report"] is None

    job = finished(fast_client, job["id"])
    assert job["status"] == "succeeded" and job["report_id"] == job["id"] and job["attempts"] == 1
    report = fast_client.get(job["links"]["report"]).json()
    sync = fast_client.post("/v1/inspections", files=files_of(genuine_item),
                            data=form(genuine_item)).json()
    assert report["client_ref"] == "sku-1" and report["verdict"] == job["verdict"] == sync["verdict"]
    assert report["probabilities"] == sync["probabilities"]
    assert not any((tmp_path / "blobs" / "jobs").iterdir())  # its photos now live in the report
    assert fast_client.get("/v1/jobs/" + "0" * 32).status_code == 404


def test_async_refuses_what_it_can_check_at_once(fast_client: TestClient,
                                                 genuine_item: SyntheticItem, tmp_path: Path) -> None:
    bad_view = fast_client.post("/v1/inspections?mode=async", data=form(genuine_item),
                                files=[*files_of(genuine_item), ("sole", ("x.jpg", b"abc", "image/jpeg"))])
    assert bad_view.status_code == 422 and bad_view.json()["type"].endswith("/unknown-view")
    product = fast_client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                               data={"brand": "Nobody", "model": "Nothing"})
    assert product.status_code == 422 and product.json()["type"].endswith("/unknown-product")
    engine = fast_client.app.state.services.store.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(JobRow)).one() == 0
    assert not any((tmp_path / "blobs" / "jobs").iterdir())


def test_a_photo_that_cannot_be_read_fails_the_job_with_its_problem(
        fast_client: TestClient, genuine_item: SyntheticItem) -> None:
    files = [(v, (n, b"not an image" if v == "logo" else data, t))
             for v, (n, data, t) in files_of(genuine_item)]
    job = fast_client.post("/v1/inspections?mode=async", files=files, data=form(genuine_item)).json()
    job = finished(fast_client, job["id"])
    assert job["status"] == "failed" and job["verdict"] is None and job["report_id"] is None
    assert job["error"]["type"].endswith("/unsupported-media-type") and job["error"]["view"] == "logo"
    assert fast_client.get(f"/v1/reports/{job['id']}").status_code == 404


def test_idempotent_async_submission(fast_client: TestClient, genuine_item: SyntheticItem) -> None:
    headers = {"Idempotency-Key": "order-77"}
    first = fast_client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                             data=form(genuine_item), headers=headers)
    again = fast_client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                             data=form(genuine_item), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = fast_client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                             data=form(genuine_item, client_ref="else"), headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    as_sync = fast_client.post("/v1/inspections", files=files_of(genuine_item),
                               data=form(genuine_item), headers=headers)
    assert as_sync.status_code == 422  # the same key for a sync call is another request
    engine = fast_client.app.state.services.store.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(JobRow)).one() == 1


def test_webhook_is_signed_retried_with_backoff_and_logged(
        tmp_path: Path, genuine_item: SyntheticItem, receiver: WebhookReceiver) -> None:
    receiver.fail_next = 2  # the marketplace is down for two attempts
    settings = make_settings(tmp_path, **{**FAST, "webhook_backoff_s": 0.2})
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
        row, key = create_key(engine, "marketplace", ["submit"])
        create_tenant(engine, "another")
        _, other = create_key(engine, "another-marketplace", ["submit"], tenant="another")
        _, admin = create_key(engine, "ops", ["admin"])
        secret = set_webhook(engine, row.id, receiver.url).secret
        client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]
        mine = {"X-API-Key": key}
        job = client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                          data=form(genuine_item), headers=mine).json()
        finished(client, job["id"], mine)
        wait(receiver.accepted)
        job = client.get(f"/v1/jobs/{job['id']}", headers=mine).json()
        assert client.get(f"/v1/jobs/{job['id']}", headers={"X-API-Key": other}).status_code == 404
        assert client.get(f"/v1/jobs/{job['id']}", headers={"X-API-Key": admin}).status_code == 200
        log = client.get("/v1/webhooks/deliveries", headers=mine).json()["items"]
        assert client.get("/v1/webhooks/deliveries",
                          headers={"X-API-Key": other}).json()["items"] == []

    attempts = receiver.received
    assert [a.status for a in attempts] == [500, 500, 204]
    assert len({a.delivery_id for a in attempts}) == 1 and len({a.body for a in attempts}) == 1
    for a in attempts:
        assert a.event == "inspection.completed"
        assert verify(secret, a.signature, a.body)
        assert not verify(secret, a.signature, a.body.replace(b"authentic", b"counterfeit"))
    payload = attempts[-1].payload
    assert payload["id"] == attempts[-1].delivery_id and payload["type"] == "inspection.completed"
    assert payload["data"]["job"]["id"] == job["id"] == payload["data"]["report"]["id"]
    assert payload["data"]["report"]["verdict"] == job["verdict"]
    [delivery] = job["deliveries"]
    assert log == [delivery]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [entry["status_code"] for entry in delivery["log"]] == [500, 500, 204]
    gaps = [(datetime.fromisoformat(b["at"]) - datetime.fromisoformat(a["at"])).total_seconds()
            for a, b in zip(delivery["log"], delivery["log"][1:], strict=False)]
    assert gaps[0] >= 0.8 * 0.2 and gaps[1] >= 0.8 * 0.4  # waited (at least) 0.2 s, then 0.4 s


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    from authentiq.services.dispatcher import Dispatcher

    dispatcher = Dispatcher(make_engine("sqlite://"),
                            JobSettings(webhook_backoff_s=5, webhook_backoff_max_s=60))
    for attempt, base in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (12, 60)]:
        waits = [dispatcher.backoff(attempt) for _ in range(200)]
        assert 0.8 * base <= min(waits) < max(waits) <= 1.2 * base


def test_failed_delivery_gives_up_then_redelivers_on_request(
        tmp_path: Path, genuine_item: SyntheticItem, receiver: WebhookReceiver) -> None:
    receiver.failing = True
    settings = make_settings(tmp_path, **FAST, webhook_max_attempts=3)
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
        row, key = create_key(engine, "marketplace", ["submit"], rate_limit="1000/minute")
        set_webhook(engine, row.id, receiver.url)
        client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]
        mine = {"X-API-Key": key}
        job = client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                          data=form(genuine_item), headers=mine).json()

        def failed() -> list[dict[str, Any]]:
            return client.get("/v1/webhooks/deliveries", params={"status": "failed"},
                              headers=mine).json()["items"]
        [delivery] = wait(failed)
        assert delivery["attempts"] == 3 and delivery["job_id"] == job["id"]
        time.sleep(0.3)
        assert len(receiver.received) == 3  # gave up: no fourth attempt

        receiver.failing = False
        again = client.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=mine)
        assert again.status_code == 202 and again.json()["status"] == "pending"
        wait(receiver.accepted)
        assert receiver.accepted()[0].delivery_id == delivery["id"]  # same id: receivers dedupe
        assert client.post("/v1/webhooks/deliveries/" + "0" * 32 + "/redeliver",
                           headers=mine).status_code == 404


def test_signature_recipe() -> None:
    body, secret = b'{"id":"d1"}', "whsec_test"
    header = sign(secret, body, timestamp=1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify(secret, header, body, now=1_800_000_100)
    assert not verify(secret, header, body, now=1_800_000_000 + 301)  # too old: a replay
    assert not verify("whsec_other", header, body, now=1_800_000_000)
    assert not verify(secret, header, body + b" ", now=1_800_000_000)
    for broken in ("", "t=abc,v1=00", "v1=00", "t=1800000000"):
        assert not verify(secret, broken, body, now=1_800_000_000)


def test_accepted_jobs_survive_a_restart(tmp_path: Path, database_url: str,
                                         genuine_item: SyntheticItem) -> None:
    """An API-only process (job_workers=0) accepts; a later process runs what it accepted."""
    accept_only = make_settings(tmp_path, database_url=database_url, job_workers=0, **FAST)
    with TestClient(create_app(accept_only)) as client:
        ids = [client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                           data=form(genuine_item, client_ref=f"r{i}")).json()["id"] for i in range(3)]
        time.sleep(0.3)
        assert {client.get(f"/v1/jobs/{i}").json()["status"] for i in ids} == {"queued"}
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url, **FAST))) as client:
        jobs = [finished(client, i) for i in ids]
        assert [j["status"] for j in jobs] == ["succeeded"] * 3
        assert [client.get(f"/v1/reports/{i}").json()["client_ref"] for i in ids] == ["r0", "r1", "r2"]


@contextmanager
def job_store(settings: Settings) -> Iterator[JobStore]:
    from authentiq.api.resources import webhook_body
    from authentiq.storage.blobs import BlobStore

    engine = make_engine(settings.database_url)
    try:
        yield JobStore(engine, BlobStore(settings.blob_dir / "jobs"), webhook_body)
    finally:
        engine.dispose()


def test_a_dead_workers_job_runs_again_once_its_lease_ends(
        tmp_path: Path, database_url: str, genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, database_url=database_url, job_lease_s=0.5, **FAST)
    with TestClient(create_app(settings.model_copy(update={"job_workers": 0}))):
        pass  # creates the schema
    with job_store(settings) as store:
        uploads = [Upload(v, b) for v, b in genuine_item.views.items()]
        job = store.submit(uploads, brand=genuine_item.brand, model=genuine_item.model,
                           client_ref=None, priority=Priority.BULK, key_id=None, tenant_id="default")
        [claimed] = store.claim(1, lease_s=0.5, max_attempts=3)  # a worker took it, then died
        assert claimed.id == job.id and claimed.status == "running"
        assert store.claim(1, lease_s=0.5, max_attempts=3) == []  # leased: nobody else takes it
    with TestClient(create_app(settings)) as client:
        done = finished(client, job.id)
    assert done["status"] == "succeeded" and done["attempts"] == 2


def test_a_job_slower_than_its_lease_keeps_it_and_runs_once(
        tmp_path: Path, genuine_item: SyntheticItem) -> None:
    """A running job's worker extends its lease (every third of it): no other worker claims it
    meanwhile. The slow inspection is a stand-in: the real one, delayed by 1.2 s (4 leases)."""
    settings = make_settings(tmp_path, job_workers=1, job_lease_s=0.3, **FAST)
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        real = services.inspector.inspect

        async def slow_inspect(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(1.2)
            return await real(*args, **kwargs)

        services.inspector.inspect = slow_inspect
        job = client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                          data=form(genuine_item)).json()
        wait(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running")
        other_worker = []
        for _ in range(8):  # another worker polling all along: the job is never claimable
            other_worker += services.jobs.claim(1, lease_s=0.3, max_attempts=3)
            time.sleep(0.1)
        done = finished(client, job["id"])
    assert other_worker == []
    assert done["status"] == "succeeded" and done["attempts"] == 1


def test_a_job_whose_report_was_stored_before_the_crash_is_not_run_twice(
        tmp_path: Path, genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, job_workers=0, job_lease_s=0.3, **FAST)
    with TestClient(create_app(settings)) as client:
        job = client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                          data=form(genuine_item)).json()
        services = client.app.state.services  # type: ignore[attr-defined]
        services.jobs.claim(1, lease_s=0.3, max_attempts=3)
        # The worker stored the report (under the job's id) and died before marking the job done.
        uploads = [Upload(v, b) for v, b in genuine_item.views.items()]
        client.portal.call(lambda: services.inspector.inspect(  # type: ignore[union-attr]
            uploads, brand=genuine_item.brand, model=genuine_item.model, client_ref=None,
            tenant_id="default", report_id=job["id"]))
    with TestClient(create_app(settings.model_copy(update={"job_workers": 2}))) as client:
        done = finished(client, job["id"])
        engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
        with Session(engine) as session:
            reports = session.exec(select(func.count()).select_from(ReportRow)).one()
    assert done["status"] == "succeeded" and reports == 1


def test_a_job_that_keeps_killing_its_worker_is_given_up(tmp_path: Path,
                                                        genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, job_workers=0, **FAST)
    with TestClient(create_app(settings)):
        pass
    with job_store(settings) as store:
        job = store.submit([Upload("logo", genuine_item.views["logo"])], brand=genuine_item.brand,
                           model=genuine_item.model, client_ref=None, priority=Priority.BULK,
                           key_id=None, tenant_id="default")
        with Session(store.engine) as session:  # three runs each ended with its worker's death
            session.execute(update(JobRow).where(col(JobRow.id) == job.id).values(
                status="running", attempts=3, lease_until=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        assert store.claim(5, lease_s=60, max_attempts=3) == []
        ended = store.get(job.id, tenant=None)
    assert ended.status == "failed" and ended.error is not None
    assert ended.error["type"].endswith("/job-crashed")
    assert not (settings.blob_dir / "jobs" / job.id).exists()


def test_an_async_job_past_its_deadline_fails_and_its_webhook_says_so(
        tmp_path: Path, genuine_item: SyntheticItem, receiver: WebhookReceiver) -> None:
    """mode=async honours timeout_ms: a job not done by its deadline fails with the synchronous
    call's problem (deadline-exceeded, 504), nothing runs, and the webhook is inspection.failed."""
    with TestClient(create_app(make_settings(tmp_path, **FAST))) as client:
        engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
        row, key = create_key(engine, "marketplace", ["submit"])
        secret = set_webhook(engine, row.id, receiver.url).secret
        client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]
        mine = {"X-API-Key": key}
        accepted = client.post("/v1/inspections?mode=async&timeout_ms=1", headers=mine,
                               files=files_of(genuine_item), data=form(genuine_item))
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()
        deadline = datetime.fromisoformat(job["deadline_at"])
        assert deadline <= datetime.fromisoformat(job["created_at"]) + timedelta(seconds=1)
        job = finished(client, job["id"], mine)
        assert job["status"] == "failed" and job["report_id"] is None and job["verdict"] is None
        assert job["error"]["type"].endswith("/deadline-exceeded") and job["error"]["status"] == 504
        assert job["attempts"] == 0  # failed where it waited: never run
        assert client.get(f"/v1/reports/{job['id']}", headers=mine).status_code == 404
        [delivery] = wait(receiver.accepted)
        metrics = client.get("/metrics").text
    assert delivery.event == "inspection.failed" and verify(secret, delivery.signature, delivery.body)
    assert delivery.payload["data"]["job"]["error"]["type"].endswith("/deadline-exceeded")
    assert "report" not in delivery.payload["data"]
    assert 'authentiq_jobs_total{status="failed"} 1.0' in metrics
    assert not any((tmp_path / "blobs" / "jobs").iterdir())  # its photos are dropped


def test_an_async_deadline_holds_while_the_job_waits_and_across_processes(
        tmp_path: Path, database_url: str, genuine_item: SyntheticItem) -> None:
    """The deadline is stored with the job: a job that waited past it in the queue of an
    API-only process fails when a worker process starts; jobs within theirs, or without one,
    run as before. timeout_ms past 24 h is capped, not refused."""
    accept_only = make_settings(tmp_path, database_url=database_url, job_workers=0, **FAST)
    with TestClient(create_app(accept_only)) as client:
        def submit(query: str) -> dict[str, Any]:
            r = client.post(f"/v1/inspections?mode=async{query}", files=files_of(genuine_item),
                            data=form(genuine_item))
            assert r.status_code == 202, r.text
            body: dict[str, Any] = r.json()
            return body
        late, roomy, plain = submit("&timeout_ms=300"), submit("&timeout_ms=120000"), submit("")
        capped = submit(f"&timeout_ms={10**15}")
        time.sleep(0.5)
        assert client.get(f"/v1/jobs/{late['id']}").json()["status"] == "queued"  # nobody runs jobs
    assert plain["deadline_at"] is None
    ahead = datetime.fromisoformat(roomy["deadline_at"]) - datetime.fromisoformat(roomy["created_at"])
    assert timedelta(seconds=119) < ahead <= timedelta(seconds=120)
    ahead = datetime.fromisoformat(capped["deadline_at"]) - datetime.fromisoformat(capped["created_at"])
    assert timedelta(hours=23, minutes=59) < ahead <= timedelta(hours=24)
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url, **FAST))) as client:
        done = {name: finished(client, job["id"])
                for name, job in [("late", late), ("roomy", roomy), ("plain", plain), ("capped", capped)]}
    assert done["late"]["status"] == "failed" and done["late"]["attempts"] == 0
    assert done["late"]["error"]["type"].endswith("/deadline-exceeded")
    assert [done[n]["status"] for n in ("roomy", "plain", "capped")] == ["succeeded"] * 3


def test_only_waiting_jobs_are_expired_by_the_store(tmp_path: Path, database_url: str,
                                                    genuine_item: SyntheticItem) -> None:
    """A job its worker is running keeps its deadline in the pipeline; the store fails only jobs
    still waiting (queued, or their worker's lease ran out), and never claims an overdue one."""
    settings = make_settings(tmp_path, database_url=database_url, job_workers=0, **FAST)
    with TestClient(create_app(settings)):
        pass  # creates the schema
    uploads = [Upload("logo", genuine_item.views["logo"])]
    with job_store(settings) as store:
        def submit(deadline: Deadline | None) -> JobRow:
            return store.submit(uploads, brand=genuine_item.brand, model=genuine_item.model,
                                client_ref=None, priority=Priority.BULK, key_id=None,
                                tenant_id="default", deadline=deadline)
        running = submit(Deadline.from_timeout(0.3))
        assert [j.id for j in store.claim(1, lease_s=60, max_attempts=3)] == [running.id]
        overdue, roomy, plain = submit(Deadline.from_timeout(0.3)), submit(Deadline.from_timeout(60)), submit(None)
        time.sleep(0.4)
        assert {j.id for j in store.claim(5, lease_s=60, max_attempts=3)} == {roomy.id, plain.id}
        assert [j.id for j in store.expire()] == [overdue.id]
        assert store.expire() == []  # ended once: one webhook
        states = {j.id: store.get(j.id, tenant=None).status for j in (running, overdue, roomy, plain)}
    assert states == {running.id: "running", overdue.id: "failed", roomy.id: "running",
                      plain.id: "running"}
    assert not (settings.blob_dir / "jobs" / overdue.id).exists()


@pytest.mark.postgres
def test_database_outage_answers_503_and_recovers(tmp_path: Path, genuine_item: SyntheticItem,
                                                  postgres_url: str) -> None:
    """The database is cut off (a TCP proxy drops every connection): 503 + Retry-After, nothing
    half-accepted; once it is back, the same process serves again."""
    url = httpx.URL(postgres_url)
    proxy = TcpProxy(url.host, url.port or 5432)
    via_proxy = str(url.copy_with(port=proxy.port))
    try:
        with TestClient(create_app(make_settings(tmp_path, database_url=via_proxy, **FAST))) as client:
            assert client.get("/v1/reports").status_code == 200
            proxy.cut()
            down = client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                               data=form(genuine_item))
            assert down.status_code == 503, down.text
            assert down.json()["type"].endswith("/database-unavailable")
            assert down.headers["retry-after"] == "5"
            assert client.get("/v1/reports").status_code == 503
            assert not any((tmp_path / "blobs" / "jobs").iterdir())  # nothing half-accepted
            proxy.restore()
            job = client.post("/v1/inspections?mode=async", files=files_of(genuine_item),
                              data=form(genuine_item)).json()
            assert finished(client, job["id"])["status"] == "succeeded"
    finally:
        proxy.close()

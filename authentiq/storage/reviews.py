"""Human reviews of reports: an append-only log, each entry chained to the previous by a hash.

A review confirms or overrides a report's verdict, always with a reason. The report keeps its
automated verdict (the immutable body and ``reports.verdict``); ``final_verdict``,
``review_status`` and ``version`` change in the same transaction as the review is appended.

The chain is global: entry *n* stores ``prev_hash`` (entry *n−1*'s hash) and
``hash = sha256(canonical JSON of its fields + prev_hash)``. Appending locks one counter row, so
entries get consecutive numbers in commit order on SQLite and PostgreSQL alike. ``verify_chain``
(``authentiq audit verify``) recomputes every hash, checks the links, that nothing after the last
entry was removed (the counter), and that each report's final verdict is its last review's.

The reviewer is the authenticated caller: ``key_id`` and ``key_name`` are recorded and hashed
into the chain, and ``reviewer`` reads "<name> (key <id>)". A name typed by the reviewer is
only a ``note`` beside it (a person behind a shared key). Entries written before keys were
recorded have neither field; the hash covers a field only when it is set, so they still verify.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from authentiq.contract.text import check_text
from authentiq.errors import InvalidField, ReportNotFound, ReviewConflict
from authentiq.storage.db import Counter, ensure_counter
from authentiq.storage.keys import Principal
from authentiq.storage.reports import ReportRow, ReviewRow, visible_to
from authentiq.storage.tenants import Visible

CHAIN = "reviews"
GENESIS = "0" * 64
VERDICTS = ("authentic", "counterfeit", "inconclusive")
Decision = Literal["confirm", "override"]
FINDINGS = ("not_a_product",)  # what a review may record beside an inconclusive final verdict
ANONYMOUS = "anonymous (API keys not enforced)"


def entry_hash(row: ReviewRow) -> str:
    fields = {"seq": row.seq, "report_id": row.report_id, "created_at": _iso(row.created_at),
              "reviewer": row.reviewer, "decision": row.decision,
              "previous_verdict": row.previous_verdict, "verdict": row.verdict,
              "reason": row.reason, "prev_hash": row.prev_hash}
    for name in ("key_id", "key_name", "note", "finding"):  # absent from entries before them
        if getattr(row, name) is not None:
            fields[name] = getattr(row, name)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ensure_chain(engine: Engine) -> None:
    ensure_counter(engine, CHAIN)


def append_review(engine: Engine, report_id: str, *, tenant: Visible, reviewer: Principal | None,
                  decision: Decision, verdict: str | None, reason: str, expected_version: int,
                  note: str | None = None, finding: str | None = None) -> ReviewRow:
    """Append one review by ``reviewer`` (None: keys are not enforced, recorded as anonymous)
    of a report ``tenant`` may see; 409 if the report's version is not ``expected_version``.
    ``finding``: ``not_a_product`` (the photos show no product), only with the final verdict
    inconclusive — an override to it, or a confirmation of it."""
    if finding is not None and finding not in FINDINGS:
        raise InvalidField(f"unknown finding {finding!r}; the one finding a review records is "
                           f"{', '.join(FINDINGS)}", field="finding")
    reason = check_text(reason.strip(), "reason", 4000, multiline=True)
    if len(reason) < 3:
        raise InvalidField("a review needs a reason (at least 3 characters)", field="reason")
    if note is not None:
        note = check_text(note.strip(), "note", 200) or None
    for name, value in (("reason", reason), ("note", note or "")):
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            # PostgreSQL stores no lone surrogate; refused on every database so both behave alike
            raise InvalidField(f"the {name} contains a lone surrogate", field=name)
    with Session(engine) as session:
        # Lock the chain head first: one appender at a time, in commit order.
        session.execute(update(Counter).where(col(Counter.name) == CHAIN)
                        .values(value=Counter.value + 1))  # type: ignore[arg-type]
        head = session.get(Counter, CHAIN, populate_existing=True)
        report = session.exec(visible_to(select(ReportRow), tenant)
                              .where(col(ReportRow.id) == report_id)
                              .execution_options(populate_existing=True)).first()
        if report is None or head is None:
            raise ReportNotFound(f"no report with id {report_id!r}")
        if report.version != expected_version:
            raise ReviewConflict(
                f"report {report_id} is at version {report.version}, not {expected_version}: it was "
                "reviewed meanwhile; reload it and review again", current_version=report.version)
        if decision == "confirm":
            if verdict is not None and verdict != report.final_verdict:
                raise InvalidField(
                    f"a confirmation keeps the verdict {report.final_verdict}; it cannot say "
                    f"{verdict} (to change the verdict, override it)", field="verdict")
            new_verdict = report.final_verdict
        elif verdict in VERDICTS:
            new_verdict = verdict
        else:
            raise InvalidField(f"an override needs a verdict, one of {', '.join(VERDICTS)}",
                               field="verdict")
        if finding is not None and new_verdict != "inconclusive":
            raise InvalidField(
                f"{finding} goes with the verdict inconclusive (neither authentic nor counterfeit), "
                f"not {new_verdict}: override to inconclusive with it", field="finding")
        previous = session.exec(select(ReviewRow).where(ReviewRow.seq == head.value - 1)).first()
        row = ReviewRow(seq=head.value, report_id=report_id, created_at=datetime.now(UTC),
                        reviewer=reviewer.identity if reviewer else ANONYMOUS,
                        key_id=reviewer.key_id if reviewer else None,
                        key_name=reviewer.name if reviewer else None, note=note, finding=finding,
                        decision=decision, previous_verdict=report.final_verdict,
                        verdict=new_verdict, reason=reason,
                        prev_hash=previous.hash if previous is not None else GENESIS, hash="")
        row.hash = entry_hash(row)
        session.add(row)
        report.final_verdict = new_verdict
        report.final_finding = finding  # the latest review's word: a later one without it clears it
        report.review_status = "confirmed" if new_verdict == report.verdict else "overridden"
        report.version += 1
        session.add(report)
        session.commit()
        session.refresh(row)
        return row


def review_by_seq(engine: Engine, seq: int, *, tenant: Visible) -> ReviewRow:
    """One review, if ``tenant`` may see its report."""
    query = visible_to(select(ReviewRow).join(ReportRow, col(ReviewRow.report_id) == col(ReportRow.id)),
                       tenant).where(col(ReviewRow.seq) == seq)
    with Session(engine) as session:
        row: ReviewRow | None = session.exec(query).first()
    if row is None:
        raise ReportNotFound(f"no review {seq}")
    return row


class Reviews:
    """The review log on one engine: what routes call (they never hold the engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_chain(engine)

    def append(self, report_id: str, *, tenant: Visible, reviewer: Principal | None,
               decision: Decision, verdict: str | None, reason: str, expected_version: int,
               note: str | None = None, finding: str | None = None) -> ReviewRow:
        """See :func:`append_review`."""
        return append_review(self.engine, report_id, tenant=tenant, reviewer=reviewer,
                             decision=decision, verdict=verdict, reason=reason,
                             expected_version=expected_version, note=note, finding=finding)

    def by_seq(self, seq: int, *, tenant: Visible) -> ReviewRow:
        return review_by_seq(self.engine, seq, tenant=tenant)


@dataclass(frozen=True)
class Reviewed:
    """A reviewed report's row and its reviews, oldest first (the last one decides)."""

    report: ReportRow
    reviews: list[ReviewRow]

    @property
    def final_label(self) -> str:
        """The final verdict, or the last review's finding beside it (``not_a_product``)."""
        last = self.reviews[-1]
        return last.finding if last.finding is not None else self.report.final_verdict


def reviewed_reports(engine: Engine, *, tenant: str, since: datetime | None = None,
                     batch: int = 200) -> Iterator[Reviewed]:
    """``tenant``'s reviewed reports, oldest first, with their reviews; ``since``: only those
    reviewed at or after it (any review: the last one is then at or after it too). Read in
    batches of ``batch`` reports, so a large log is never held at once."""
    query = (select(ReportRow.id).where(col(ReportRow.tenant_id) == tenant)
             .where(col(ReportRow.review_status) != "unreviewed")
             .order_by(col(ReportRow.created_at), col(ReportRow.id)))
    if since is not None:
        recent = select(ReviewRow.report_id).where(col(ReviewRow.created_at) >= _aware(since))
        query = query.where(col(ReportRow.id).in_(recent))
    with Session(engine) as session:
        ids = list(session.exec(query))
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        with Session(engine) as session:
            rows = {r.id: r for r in session.exec(select(ReportRow).where(
                col(ReportRow.tenant_id) == tenant).where(col(ReportRow.id).in_(chunk)))}
            reviews: dict[str, list[ReviewRow]] = {}
            for review in session.exec(select(ReviewRow).where(col(ReviewRow.report_id).in_(chunk))
                                       .order_by(col(ReviewRow.seq))):
                reviews.setdefault(review.report_id, []).append(review)
        for report_id in chunk:
            if report_id in rows and reviews.get(report_id):
                yield Reviewed(rows[report_id], reviews[report_id])


@dataclass
class ChainReport:
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(engine: Engine) -> ChainReport:
    out = ChainReport()
    last_verdict: dict[str, str] = {}
    with Session(engine) as session:
        prev, expected_seq = GENESIS, 1
        for row in session.exec(select(ReviewRow).order_by(col(ReviewRow.seq))):
            out.entries += 1
            if row.seq != expected_seq:
                out.problems.append(f"entry {expected_seq} is missing (next present: {row.seq})")
            if row.prev_hash != prev:
                out.problems.append(f"entry {row.seq}: prev_hash does not match entry {row.seq - 1}")
            if entry_hash(row) != row.hash:
                out.problems.append(f"entry {row.seq}: content does not match its hash (altered)")
            prev, expected_seq = row.hash, row.seq + 1
            last_verdict[row.report_id] = row.verdict
        head = session.get(Counter, CHAIN)
        if head is not None and head.value != out.entries and not out.problems:
            out.problems.append(f"the chain head says {head.value} entries, {out.entries} found "
                                "(entries were removed from the end)")
        for report_id, verdict in last_verdict.items():
            report = session.get(ReportRow, report_id)
            if report is not None and report.final_verdict != verdict:
                out.problems.append(f"report {report_id}: final verdict {report.final_verdict!r} "
                                    f"is not its last review's {verdict!r}")
    return out


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return (when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()

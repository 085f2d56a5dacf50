"""A request's deadline: one value from the route to the batcher.

A route makes one :class:`Deadline` when the request arrives (from ``?timeout_ms``, capped at
``AUTHENTIQ_REQUEST_TIMEOUT_S``, or that default) and every stage it passes through — decode
admission, the decode itself, the batcher's queue — asks it how long is left, instead of each
stage converting a float of its own. It is a point on one clock, :func:`time.monotonic` (the
clock asyncio's event loop runs on), so it can be made and read outside the event loop too;
waits are always given as ``remaining()`` seconds, never as a time on another clock.

An async job's deadline outlives the process that accepted it: the job row stores it as a UTC
time (:meth:`Deadline.wall_clock`) and the worker that runs the job makes it a
:class:`Deadline` again (:meth:`Deadline.until`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    at: float  # on ``clock``
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def from_timeout(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        """``seconds`` from now (zero or less: already passed)."""
        return cls(clock() + seconds, clock)

    @classmethod
    def until(cls, when: datetime, clock: Clock = time.monotonic) -> Deadline:
        """The deadline at the UTC time ``when`` (a time without zone is taken as UTC, as the
        database gives it back)."""
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return cls.from_timeout((when - datetime.now(UTC)).total_seconds(), clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.at

    def wall_clock(self) -> datetime:
        """The deadline as a UTC time, to store (what is left of it, from now)."""
        return datetime.now(UTC) + timedelta(seconds=self.remaining())


def time_left(deadline: Deadline | None) -> float | None:
    """Seconds left, as ``asyncio.wait_for`` takes them; None: no deadline."""
    return None if deadline is None else deadline.remaining()


__all__ = ["Deadline", "time_left"]

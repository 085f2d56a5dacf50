"""The request deadline: one value, one clock, from the route to the batcher (and through a job row)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from authentiq.contract.deadline import Deadline, time_left

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_remaining_counts_down_and_never_goes_negative() -> None:
    clock = FakeClock()
    deadline = Deadline.from_timeout(2.5, clock)
    assert deadline.remaining() == 2.5 and not deadline.expired()
    clock.now += 2
    assert deadline.remaining() == pytest.approx(0.5) and not deadline.expired()
    clock.now += 0.5
    assert deadline.remaining() == 0 and deadline.expired()  # expired at the instant itself
    clock.now += 10
    assert deadline.remaining() == 0.0 and deadline.expired()


def test_a_timeout_of_zero_or_less_has_already_passed() -> None:
    assert Deadline.from_timeout(0).expired()
    assert Deadline.from_timeout(-1).remaining() == 0.0


def test_it_is_a_frozen_value_and_its_clock_is_not_part_of_it() -> None:
    a, b = Deadline(5.0, FakeClock()), Deadline(5.0)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.at = 6.0  # type: ignore[misc]


def test_the_default_clock_is_the_event_loops() -> None:
    """One clock: asyncio's loop runs on time.monotonic, so a deadline made outside the loop and
    the loop's own timers agree."""
    async def check() -> None:
        loop = asyncio.get_running_loop()
        deadline = Deadline.from_timeout(1.0)
        assert abs((loop.time() + 1.0) - deadline.at) < 0.05

    asyncio.run(check())
    assert abs(Deadline.from_timeout(0).at - time.monotonic()) < 0.05


def test_wall_clock_round_trip_keeps_what_is_left() -> None:
    """An async job stores its deadline as a UTC time; the worker that runs it gets it back."""
    deadline = Deadline.from_timeout(30)
    stored = deadline.wall_clock()
    assert stored.tzinfo is UTC
    assert abs((stored - datetime.now(UTC)).total_seconds() - 30) < 1
    again = Deadline.until(stored.replace(tzinfo=None))  # SQLite gives times back without zone
    assert abs(again.remaining() - deadline.remaining()) < 1
    assert Deadline.until(datetime.now(UTC) - timedelta(seconds=1)).expired()


def test_time_left_is_what_wait_for_takes() -> None:
    assert time_left(None) is None
    assert time_left(Deadline.from_timeout(-5)) == 0.0

    async def late() -> None:
        await asyncio.wait_for(asyncio.sleep(1), time_left(Deadline.from_timeout(0.01)))

    with pytest.raises(TimeoutError):
        asyncio.run(late())

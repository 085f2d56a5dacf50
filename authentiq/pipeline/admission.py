"""Fair admission of decodes: a bounded pool shared between clients, and a memory budget.

Decoding is the expensive, unbounded-looking part of a request: a 100 kB PNG can decode to
hundreds of MB and a second of CPU. :class:`DecodeGate` admits one decode at a time per slot
(``slots`` = the preprocessing threads) while the memory that decodes in flight hold stays under
``capacity_bytes``, and chooses whom to admit next **round-robin between clients** (the API key,
or the client address while keys are not enforced), not first come first served: a client that
queued twenty expensive photos does not make the next client's one photo wait behind them.

- A client holds at most ``per_client_slots`` slots with *large* decodes (over ``small_bytes``;
  by default one slot less than all of them), so another client always finds a slot free for
  its photos; small decodes (a JPEG decoded at 1/8 scale) are not capped.
- The next waiter of the chosen client is admitted only when its bytes fit; while they do not,
  other clients whose photo fits go first (a large photo waits for memory, not everyone).
- A waiter whose deadline passes is removed and answered 504; a cancelled one (client gone) is
  removed. A ticket is released when its decode *thread* ends, not when its request gives up, so
  the budget counts the memory really held.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from authentiq.contract.deadline import Deadline, time_left
from authentiq.errors import DeadlineExceeded, TooManyInFlight


@dataclass(eq=False)
class _Waiter:
    client: str
    cost: int
    future: asyncio.Future[Ticket]


@dataclass(eq=False)
class Ticket:
    gate: DecodeGate
    client: str
    cost: int
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate._release(self)


class DecodeGate:
    def __init__(self, slots: int, capacity_bytes: int, per_client_slots: int | None = None,
                 small_bytes: int = 16 * 2**20) -> None:
        if slots < 1 or capacity_bytes < 1:
            raise ValueError("slots and capacity_bytes must be positive")
        self.slots, self.capacity, self.small_bytes = slots, capacity_bytes, small_bytes
        self.per_client = per_client_slots or max(1, slots - 1)
        self.held_bytes = 0
        self.peak_bytes = 0
        self._running: dict[str, int] = {}  # large decodes running, per client
        self._slots_used = 0
        self._waiting: OrderedDict[str, deque[_Waiter]] = OrderedDict()  # round-robin order

    @property
    def running(self) -> int:
        return self._slots_used

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    async def admit(self, client: str, cost: int, deadline: Deadline | None = None) -> Ticket:
        """Wait for this client's turn, a free slot and ``cost`` bytes, within ``deadline``
        (None: no deadline). A cost above the whole capacity is admitted alone (never starved)."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(client, min(cost, self.capacity), loop.create_future())
        self._waiting.setdefault(client, deque()).append(waiter)
        self._dispatch()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), time_left(deadline))
        except TimeoutError:
            if self._withdraw(waiter):
                raise DeadlineExceeded("the request's deadline passed while its photos waited "
                                       "to be decoded") from None
            return waiter.future.result()  # admitted at the same moment: keep the ticket
        except asyncio.CancelledError:
            if not self._withdraw(waiter):
                waiter.future.result().release()  # admitted, but nobody will use it
            raise

    def _withdraw(self, waiter: _Waiter) -> bool:
        queue = self._waiting.get(waiter.client)
        if queue is None or waiter not in queue:
            return False
        queue.remove(waiter)
        if not queue:
            del self._waiting[waiter.client]
        self._dispatch()  # a large waiter leaving may let smaller ones through
        return True

    def _release(self, ticket: Ticket) -> None:
        self.held_bytes -= ticket.cost
        self._slots_used -= 1
        if ticket.cost > self.small_bytes:
            self._running[ticket.client] -= 1
            if not self._running[ticket.client]:
                del self._running[ticket.client]
        self._dispatch()

    def _dispatch(self) -> None:
        while self._slots_used < self.slots and self._waiting:
            for client, queue in self._waiting.items():  # round-robin: least recently served first
                head = queue[0]
                if head.cost > self.small_bytes and self._running.get(client, 0) >= self.per_client:
                    continue
                if self.held_bytes + head.cost <= self.capacity:
                    break
            else:
                return  # nobody may start now; a release will look again
            queue.popleft()
            if queue:
                self._waiting.move_to_end(client)
            else:
                del self._waiting[client]
            self._slots_used += 1
            if head.cost > self.small_bytes:
                self._running[client] = self._running.get(client, 0) + 1
            self.held_bytes += head.cost
            self.peak_bytes = max(self.peak_bytes, self.held_bytes)
            head.future.set_result(Ticket(self, client, head.cost))


class InFlight:
    """Requests each client has running; one past ``limit`` is refused at once (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count: dict[str, int] = {}

    def enter(self, client: str) -> None:
        if self._count.get(client, 0) >= self.limit:
            raise TooManyInFlight(f"{client} already has {self.limit} requests running; wait "
                                  f"for one to finish", retry_after=1)
        self._count[client] = self._count.get(client, 0) + 1

    def leave(self, client: str) -> None:
        self._count[client] -= 1
        if not self._count[client]:
            del self._count[client]

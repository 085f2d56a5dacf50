"""A running server switching to a newly promoted model, without a restart or a refused request.

:class:`ServedModel` holds the :class:`~authentiq.services.container.Services` of the model a
worker serves. When its :class:`~authentiq.services.models.ModelWatch` sees another release
promoted, it opens a second set of services for the promoted release's file (model, batcher,
reference index with that model's embeddings: promotion embedded them first), hands new
requests to it, then retires the old set: its job claiming, webhooks and watch stop at once
(running jobs finish, queued ones are claimed by the new set), and its model closes once every
request that holds it is done. A report names the model that made it either way.

If the switch cannot be made — no file of the promoted release on this host, a model that does
not load — the worker keeps the old model and refuses inspections (503 ``model-not-promoted``)
and tries again at growing intervals (:class:`authentiq.services.models.ModelWatch`), so a file
copied to the host later is served without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType

from authentiq.services.container import Services

log = logging.getLogger(__name__)


class ServedModel:
    """``open_services(switching)`` for the promoted model, now and after every promotion
    (``switching``: the set served until then);
    ``on_switch`` is told each set of services as it starts serving (the app puts it where
    requests find it). ``drain_s``: how long a retired set waits for the requests holding it."""

    def __init__(self, open_services: Callable[[Services | None],
                                               AbstractAsyncContextManager[Services]],
                 on_switch: Callable[[Services], None], drain_s: float) -> None:
        self._open, self._on_switch, self._drain_s = open_services, on_switch, drain_s
        self._stack = AsyncExitStack()
        self._switching: asyncio.Task[None] | None = None
        self._closing = False
        self.current: Services | None = None
        self.switches = 0

    async def __aenter__(self) -> Services:
        self.current = await self._stack.enter_async_context(self._open(None))
        self._serve(self.current)
        return self.current

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._closing = True  # no switch starts from now on; one under way finishes first
        try:
            if self._switching is not None:
                await asyncio.gather(self._switching, return_exceptions=True)
        finally:
            await self._stack.aclose()

    def _serve(self, services: Services) -> None:
        services.models.on_promotion = self.switch
        self._on_switch(services)

    def switch(self) -> None:
        """Switch to the promoted model in the background (once at a time: a promotion during
        a switch is seen when it ends)."""
        if not self._closing and (self._switching is None or self._switching.done()):
            self._switching = asyncio.create_task(self._switch(), name="authentiq-model-switch")

    async def _switch(self) -> None:
        old = self.current
        assert old is not None
        before, wanted = old.backend.info.model_id, old.models.promoted_release
        stack = AsyncExitStack()
        try:
            new = await stack.enter_async_context(self._open(old))
            # What is promoted now: another promotion (or a rollback) may have come meanwhile.
            await asyncio.to_thread(new.models.refresh)
        except Exception:
            await self._abandon(stack, old, "open the promoted model")
            return
        after, promoted = new.backend.info.model_id, new.models.refusal is None
        if self._closing or after == before or not promoted:
            await stack.aclose()
            if self._closing or promoted:  # shutting down, or rolled back to the served model
                return
            if new.models.promoted_release == wanted:
                # no file of the release here: served_settings fell back to the configured file
                # (the served model, or the one this worker started on)
                old.models.refuse()
            # else promoted again while this one opened: the old watch's next poll asks for it
            return
        try:
            await new.start()
        except Exception:
            await self._abandon(stack, old, "start the promoted model's background work")
            return
        old_stack, self.current, self._stack = self._stack, new, stack
        self._serve(new)
        self.switches += 1
        log.warning("switched to the promoted model %s (%s) from %s, without a restart", after,
                    new.backend.spec.version_key, before)
        try:
            await old.retire()
            if not await old.users.idle(self._drain_s):
                log.warning("closing model %s with %d requests still holding it after %.0f s",
                            before, old.users.count, self._drain_s)
        except Exception:  # the new model serves; the old one is closed all the same
            log.exception("retiring the previously served model %s failed", before)
        finally:
            await old_stack.aclose()

    @staticmethod
    async def _abandon(stack: AsyncExitStack, old: Services, what: str) -> None:
        """A switch that failed at ``what``: close what it opened, keep ``old`` and refuse."""
        log.exception("could not %s; this worker keeps model %s and refuses inspections until "
                      "a switch succeeds", what, old.backend.info.model_id)
        await stack.aclose()
        old.models.refuse()

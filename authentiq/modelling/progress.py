"""Progress of long modelling work (training, calibration, evaluation), reported to whoever runs it.

The modelling code says what it is doing through a :class:`Progress`; it never prints. The base
class does nothing (library use, tests, ``-q``); the command line passes one that draws tqdm
bars and lines on standard error (:mod:`authentiq.cli.progress`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    """Silent by default; subclasses show what they are told."""

    def note(self, message: str) -> None:
        """One line worth reading: a stage started, finished, was skipped, or resumed."""

    def start(self, description: str, total: int, unit: str) -> None:
        """A counted task begins (``total`` units of ``unit``)."""

    def advance(self, n: int = 1, **figures: object) -> None:
        """``n`` more units done; ``figures`` (loss, accuracy ...) shown beside the count."""

    def finish(self) -> None:
        """The counted task is over (its bar goes)."""

    @contextmanager
    def task(self, description: str, total: int, unit: str) -> Iterator[Progress]:
        """``start`` ... ``finish`` around a block, finishing on errors too."""
        self.start(description, total, unit)
        try:
            yield self
        finally:
            self.finish()


SILENT = Progress()

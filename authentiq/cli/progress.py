"""What long modelling commands show on standard error: a line per stage, a tqdm bar per counted
task (epochs with their loss and validation figures, calibration batches, scored items)."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from authentiq.modelling.progress import SILENT, Progress


class ConsoleProgress(Progress):
    """Lines and bars on ``stream`` (standard error: standard output keeps the results)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar: tqdm[None] | None = None

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def start(self, description: str, total: int, unit: str) -> None:
        self.finish()
        self.bar = tqdm(total=total, desc=description, unit=unit, file=self.stream,
                        leave=False, dynamic_ncols=True,
                        disable=None)  # bars on a terminal only; the lines always

    def advance(self, n: int = 1, **figures: object) -> None:
        if self.bar is None:
            return
        if figures:
            self.bar.set_postfix({k: f"{v:.4f}" if isinstance(v, float) else v
                                  for k, v in figures.items()}, refresh=False)
        self.bar.update(n)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_for(quiet: bool) -> Progress:
    """The console's progress, or none with ``-q``."""
    return SILENT if quiet else ConsoleProgress()

"""The command line's argument parser: every option says what it does and, where it has one, its
default; every subcommand's ``--help`` opens with the one-line help its parent lists."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

SPANS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
         "w": timedelta(weeks=1)}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (examples keep their lines); an option's default is
    shown after its help unless it has none (None, False) or the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        none = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if not action.option_strings or none or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """Give each subcommand without a description the help its parent lists it with."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                sub = action.choices[listed.dest]
                if sub.description is None and listed.help:
                    sub.description = listed.help[:1].upper() + listed.help[1:] + "."
                describe_subcommands(sub)


def options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """Every option of ``parser`` and its subcommands, named by the command path (for tests)."""
    out: list[tuple[str, argparse.Action]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += [(f"{name} {path}".strip(), a) for path, a in options(sub)]
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            out.append(("", action))
    return out


def since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: ``7d``, ``12h``, ``2w``, ``30m`` before now, or a date / ISO 8601 time (UTC
    if it names no zone)."""
    now = now or datetime.now(UTC)
    try:
        if m := re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text.lower()):
            return now - int(m[1]) * SPANS[m[2]]
        when = datetime.fromisoformat(text.strip())
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        when.astimezone(UTC)  # a time zone that pushes it out of range fails here, not later
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} reaches outside the calendar") from None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a span (7d, 12h, 2w, 30m) nor a date (2026-11-01, "
            f"2026-11-01T08:00:00Z)") from None
    return when


def positive_int(text: str) -> int:
    """A whole number, 1 or more (epochs, widths, batch sizes, item counts)."""
    return _whole(text, least=1)


def count(text: str) -> int:
    """A whole number, 0 or more (items to use, where 0 leaves a part out)."""
    return _whole(text, least=0)


def _whole(text: str, *, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
    return value


def positive_float(text: str) -> float:
    """A number above 0 and finite (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value

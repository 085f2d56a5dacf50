"""One screen at the end of ``make test``: each pass's counts and duration, why tests were
skipped (grouped), the slowest tests, and a closing ``total:`` line.

    python scripts/test_summary.py var/test-results      (the JUnit XML files pytest wrote)
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SHOWN_FAILURES = 10  # the rest are in pytest's own output above the summary


@dataclass
class Pass:
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    skips: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slow: list[tuple[float, str]] = field(default_factory=list)


def read(path: Path) -> Pass:
    """A pass from pytest's JUnit XML (``--junitxml``); named after the file (``1-sqlite.xml``)."""
    out = Pass(path.stem.split("-", 1)[-1])
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        out.seconds += float(suite.get("time", 0))
    for case in root.iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        out.slow.append((float(case.get("time", 0)), test))
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            out.passed += 1
        elif outcome.tag == "skipped":
            out.skipped += 1
            out.skips[_reason(outcome.get("message", ""))] += 1
        else:
            out.failed += 1
            out.failures.append(f"{test}: {(outcome.get('message') or '').splitlines()[0][:100]}")
    return out


def _reason(message: str) -> str:
    return message.removeprefix("Skipped: ").strip() or "(no reason given)"


def render(passes: list[Pass]) -> str:
    lines = ["", "=" * 30 + " make test: summary " + "=" * 30,
             f"{'pass':<12}{'passed':>8}{'failed':>8}{'skipped':>9}{'time':>10}"]
    for p in passes:
        lines.append(f"{p.name:<12}{p.passed:>8}{p.failed:>8}{p.skipped:>9}{_time(p.seconds):>10}")
    failures = [f"FAILED [{p.name}] {failure}" for p in passes for failure in p.failures]
    lines += failures[:SHOWN_FAILURES]
    if len(failures) > SHOWN_FAILURES:
        lines.append(f"... and {len(failures) - SHOWN_FAILURES} more failures (the log above has all)")
    skips = [(p.name, reason, n) for p in passes for reason, n in p.skips.most_common()]
    if skips:
        lines.append("skipped, and why:")
        lines += [f"  [{name}] {n} × {reason}" for name, reason, n in skips]
    slow = sorted(((t, f"[{p.name}] {test}") for p in passes for t, test in p.slow), reverse=True)[:5]
    if slow:
        lines.append("slowest tests:")
        lines += [f"  {_time(t):>7}  {test}" for t, test in slow]
    total = (sum(p.passed for p in passes), sum(p.failed for p in passes),
             sum(p.skipped for p in passes))
    lines.append(f"total: {total[0]} passed, {total[1]} failed, {total[2]} skipped "
                 f"in {_time(sum(p.seconds for p in passes))}")
    return "\n".join(lines)


def _time(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "var/test-results")
    files = sorted(folder.glob("*.xml"))
    if not files:
        print(f"no test results in {folder}", file=sys.stderr)
        return 1
    print(render([read(f) for f in files]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

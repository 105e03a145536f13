"""Shared helpers: the benchmark registry entry, goals, result rows, timing and the printed table.

A benchmark reports :class:`Row` values. A row's *ratio* is always a cost ratio, "how many times
the plain baseline's cost": for a rate (higher is better) that is ``baseline / value``, for a
latency (lower is better) ``value / baseline``. Goals are checked on the value or on that ratio.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, TextIO

Op = Literal[">=", "<=", "<", ">"]


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One subcommand of ``python -m benchmarks``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Sequence[Row]]


@dataclass(frozen=True, slots=True)
class Goal:
    op: Op
    target: float
    unit: str

    def met(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.target
        if self.op == "<=":
            return value <= self.target
        if self.op == "<":
            return value < self.target
        return value > self.target

    def __str__(self) -> str:
        symbol = {">=": "≥", "<=": "≤", "<": "<", ">": ">"}[self.op]
        sep = "" if self.unit in ("×", "/s") else " "
        return f"{symbol} {format_number(self.target)}{sep}{self.unit}"


@dataclass(frozen=True, slots=True)
class Row:
    measurement: str
    value: float
    unit: str
    baseline: float | None = None
    higher_is_better: bool = False
    goals: tuple[Goal, ...] = ()  # on the value
    ratio_goals: tuple[Goal, ...] = ()  # on the cost ratio
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or self.value == 0:
            return None
        return self.baseline / self.value if self.higher_is_better else self.value / self.baseline

    @property
    def met(self) -> bool | None:
        checks = [goal.met(self.value) for goal in self.goals]
        ratio = self.ratio
        if self.ratio_goals:
            checks += [ratio is not None and goal.met(ratio) for goal in self.ratio_goals]
        return all(checks) if checks else None


def format_number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


HEADER = ("measurement", "value", "unit", "baseline", "ratio", "goal", "met?")


def table_lines(rows: Sequence[Row]) -> list[str]:
    cells: list[tuple[str, ...]] = [HEADER]
    for row in rows:
        ratio = row.ratio
        met = row.met
        goals = [str(goal) for goal in row.goals] + [f"ratio {goal}" for goal in row.ratio_goals]
        cells.append(
            (
                row.measurement,
                format_number(row.value),
                row.unit,
                "-" if row.baseline is None else format_number(row.baseline),
                "-" if ratio is None else f"{ratio:.2f}×",
                "; ".join(goals) or "-",
                "-" if met is None else ("yes" if met else "NO"),
            )
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    numeric = {1, 3, 4}

    def render(line: tuple[str, ...]) -> str:
        parts = [
            text.rjust(widths[i]) if i in numeric else text.ljust(widths[i])
            for i, text in enumerate(line)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if i in numeric else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return [render(cells[0]), rule, *(render(line) for line in cells[1:])]


def print_table(title: str, rows: Sequence[Row], *, out: TextIO = sys.stdout) -> None:
    print(f"\n## {title}\n", file=out)
    for line in table_lines(rows):
        print(line, file=out)
    notes = [f"- {row.measurement}: {row.note}" for row in rows if row.note]
    if notes:
        print(file=out)
        for line in notes:
            print(line, file=out)
    out.flush()


def progress(message: str) -> None:
    """Progress lines go to stderr so that stdout holds only the tables."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed[0]`` is the wall time in seconds.

    A full collection runs before the clock starts, so garbage left by set-up is not billed to
    the measured code.
    """
    elapsed: list[float] = [0.0]
    gc.collect()
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - started


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024

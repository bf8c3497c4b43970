"""Progress of long work on stderr: count, rate and time left.

On a terminal, a transient rich bar. Elsewhere (a pipe, a log file, nohup) a bar would be noise,
so work that asks for them gets a few plain lines instead. GANKD_QUIET=1 silences both, and under
torchrun only the main process (RANK 0) reports: N processes would print the same thing N times.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def reporting() -> bool:
    """Whether this process shows progress: not silenced, and the main one under torchrun."""
    return not os.environ.get("GANKD_QUIET") and os.environ.get("RANK", "0") == "0"


def duration(seconds: float) -> str:
    """`2m01s`, `1h02m`, or `?` for an unknown time."""
    if not math.isfinite(seconds):
        return "?"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def speed(done: int, left: int, seconds: float, unit: str = "it") -> str:
    """`3.21 it/s  ETA 2m01s`: the mean rate of `done` items in `seconds`, and the time the `left`
    ones take at that rate."""
    rate = done / seconds if seconds > 0 else 0.0
    return f"{rate:.3g} {unit}/s  ETA {duration(left / rate if rate else math.nan)}"


def progress(items: Iterable[T], description: str, total: int | None = None, unit: str = "it",
             lines: int = 0) -> Iterator[T]:
    """Iterate over `items` with a transient progress bar on the terminal; elsewhere, print `lines`
    evenly spaced lines (`projecting 100/200  5.1 step/s  ETA 0m19s`), none by default."""
    if not reporting():
        yield from items
    elif not sys.stderr.isatty():
        yield from _with_lines(items, description, total, unit, lines)
    else:
        yield from _with_bar(items, description, total, unit)


def _with_lines(items: Iterable[T], description: str, total: int | None, unit: str, lines: int) -> Iterator[T]:
    total = total if total is not None else len(items) if hasattr(items, "__len__") else 0
    marks = {math.ceil(total * k / lines) for k in range(1, lines + 1)} if lines and total else set()
    start = time.perf_counter()
    for done, item in enumerate(items, 1):
        yield item  # the caller's work on it is done when the loop asks for the next one
        if done in marks:
            print(f"{description} {done}/{total}  {speed(done, total - done, time.perf_counter() - start, unit)}",
                  file=sys.stderr, flush=True)


def _with_bar(items: Iterable[T], description: str, total: int | None, unit: str) -> Iterator[T]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:.3g} {unit}/s" if task.speed else "")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeRemainingColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        yield from bar.track(items, total=total, description=description)

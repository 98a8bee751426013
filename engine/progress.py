"""Progress of long operations (apply's changes, a plan's reads), reported to a sink the CLI chooses.

Why: a 10,000-change apply runs for minutes at the cloud quotas; silent, it looks hung to a person and to a
CI log. The engine reports progress into a `ProgressSink` it finds on `run.Context.progress` (providers get
it as `provider.progress`): `task(label, total, unit)` opens a task, `advance(n, failed=k)` reports work done,
`close()` ends it. The sink decides what a person sees:

- `SILENT` (the default): nothing, for library callers and tests;
- `LineProgress`: off a terminal (CI logs), on stderr, a line at most every `interval` seconds (10) *and* at
  least `step` (5 %) of the total apart, whichever comes later (without a total: every `interval`), then a
  final line: `apply: 1,200/10,000 changes (12%), 48/s, 0 failed, about 3 min 03 s left`. Its clock is
  injected, so the rule is tested without sleeping;
- `BarProgress`: on a terminal, rich.progress bars on stderr, one per task (done/total, rate, ETA, failures).

Nothing is ever written to stdout, so `--format json` output is unaffected. Every sink is thread-safe: apply
reports from its worker threads.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from engine.humanize import count, duration, rate

INTERVAL_SECONDS = 10.0
STEP = 0.05


class Task:
    """One operation's progress; the base class reports nowhere."""

    def advance(self, n: int = 1, *, failed: int = 0) -> None:
        """`n` more items done, `failed` of them failed."""

    def set_total(self, total: int | None) -> None:
        """The total became known (or changed)."""

    def close(self) -> None:
        """The operation ended (the sink writes its final line)."""

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ProgressSink:
    """Where tasks report; the base class is silent."""

    def task(
        self, label: str, total: int | None = None, *, unit: str = "items", final: bool = True, failures: bool = False
    ) -> Task:
        """Open a task. `final`: write a final line even when no line was written before (apply); a read says
        nothing when it ended before its first line was due. `failures`: the lines count failures."""
        return Task()

    def close(self) -> None:
        """No task will report any more (a live display stops)."""


SILENT = ProgressSink()


@dataclass
class _State:
    label: str
    total: int | None
    unit: str
    final: bool
    failures: bool
    started: float
    done: int = 0
    failed: int = 0
    last_time: float = 0.0
    last_done: int = 0
    lines: int = 0
    closed: bool = False


def progress_line(
    label: str,
    done: int,
    total: int | None,
    unit: str,
    elapsed: float,
    *,
    failed: int | None = None,
    final: bool = False,
) -> str:
    """`apply: 1,200/10,000 changes (12%), 48/s, 0 failed, about 3 min 03 s left` (final: `…, done in 25 s`)."""
    per_second = done / elapsed if elapsed > 0 else 0.0
    if total:
        head = f"{label}: {count(done)}/{count(total)} {unit} ({min(100, int(100 * done / total))}%)"
    else:
        head = f"{label}: {count(done)} {unit}"
    parts = [head]
    if done and elapsed > 0:
        parts.append(rate(per_second))
    if failed is not None:
        parts.append(f"{count(failed)} failed")
    if final:
        parts.append(f"done in {duration(elapsed)}")
    elif total and per_second > 0 and done < total:
        left = duration((total - done) / per_second)
        parts.append(f"{left} left" if left.startswith("under") else f"about {left} left")
    return ", ".join(parts)


class _LineTask(Task):
    def __init__(self, sink: LineProgress, state: _State) -> None:
        self._sink, self._s = sink, state

    def advance(self, n: int = 1, *, failed: int = 0) -> None:
        self._sink._advance(self._s, n, failed)

    def set_total(self, total: int | None) -> None:
        with self._sink._lock:
            self._s.total = total

    def close(self) -> None:
        self._sink._close(self._s)


class LineProgress(ProgressSink):
    """Lines on a stream (stderr) for logs: every `interval` seconds and `step` of the total, whichever comes
    later, then a final line. `clock` is injected (monotonic seconds).

    Hand-written because rich.progress draws a live display (off a terminal it renders once, when it stops); a CI
    log needs sparse, complete lines, each readable on its own."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL_SECONDS,
        step: float = STEP,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self.interval = interval
        self.step = step
        self._write = write
        self._lock = threading.Lock()

    def _emit(self, line: str) -> None:
        if self._write is not None:
            self._write(line)
            return
        stream = self._stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def task(
        self, label: str, total: int | None = None, *, unit: str = "items", final: bool = True, failures: bool = False
    ) -> Task:
        now = self._clock()
        return _LineTask(self, _State(label, total, unit, final, failures, now, last_time=now))

    def due(self, s: _State, now: float) -> bool:
        """The rule: `interval` seconds since the last line, and (with a total) `step` of it done since then."""
        if now - s.last_time < self.interval:
            return False
        if s.total:
            return (s.done - s.last_done) >= self.step * s.total
        return s.done > s.last_done

    def _line(self, s: _State, now: float, final: bool = False) -> str:
        return progress_line(
            s.label,
            s.done,
            s.total if s.total and s.done <= s.total else None,
            s.unit,
            now - s.started,
            failed=s.failed if s.failures else None,
            final=final,
        )

    def _advance(self, s: _State, n: int, failed: int) -> None:
        with self._lock:
            s.done += n
            s.failed += failed
            now = self._clock()
            if s.closed or not self.due(s, now):
                return
            s.last_time, s.last_done = now, s.done
            s.lines += 1
            line = self._line(s, now)
        self._emit(line)

    def _close(self, s: _State) -> None:
        with self._lock:
            if s.closed:
                return
            s.closed = True
            if not (s.final or s.lines):
                return
            line = self._line(s, self._clock(), final=True)
        self._emit(line)


def _bar_columns() -> list[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):  # items per second in plain numbers (rich's own speed column counts bytes)
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(rate(speed) if speed else "", style="progress.data.speed")

    class Failed(ProgressColumn):
        def render(self, task: Any) -> Text:
            failed = task.fields.get("failed")
            if failed is None:
                return Text("")
            return Text(f"{count(failed)} failed", style="red" if failed else "dim")

    return [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TaskProgressColumn(),
        Rate(),
        TimeRemainingColumn(),
        Failed(),
    ]


class _BarTask(Task):
    def __init__(self, sink: BarProgress, task_id: Any, failures: bool, keep: bool) -> None:
        self._sink, self._id, self._failures, self._keep = sink, task_id, failures, keep
        self._failed = 0
        self._closed = False

    def advance(self, n: int = 1, *, failed: int = 0) -> None:
        with self._sink._lock:
            self._failed += failed
            if self._sink._bars is not None and not self._closed:
                fields = {"failed": self._failed} if self._failures else {}
                self._sink._bars.update(self._id, advance=n, **fields)

    def set_total(self, total: int | None) -> None:
        with self._sink._lock:
            if self._sink._bars is not None:
                self._sink._bars.update(self._id, total=total)

    def close(self) -> None:
        self._sink._close(self)


class BarProgress(ProgressSink):
    """rich.progress bars on a terminal (stderr); the display starts with the first task and stops when the
    last open task closes. Apply's bars stay on screen when done (`final`); a read's bar goes."""

    def __init__(self, stream: IO[str] | None = None, *, color: bool = True) -> None:
        self._stream = stream
        self._color = color
        self._lock = threading.RLock()
        self._bars: Any = None
        self._open = 0

    def task(
        self, label: str, total: int | None = None, *, unit: str = "items", final: bool = True, failures: bool = False
    ) -> Task:
        from rich.console import Console
        from rich.progress import Progress

        with self._lock:
            if self._bars is None:
                console = Console(
                    file=self._stream or sys.stderr, force_terminal=True, no_color=not self._color, highlight=False
                )
                # stderr lines written while the bars are live (diagnostics, import's page lines) print above
                # them; stdout is never touched (the bars' console writes to stderr)
                self._bars = Progress(
                    *_bar_columns(), console=console, transient=False, redirect_stdout=False, redirect_stderr=True
                )
                self._bars.start()
            fields = {"failed": 0} if failures else {"failed": None}
            task_id = self._bars.add_task(label, total=total, unit=unit, **fields)
            self._open += 1
            return _BarTask(self, task_id, failures, final)

    def _close(self, task: _BarTask) -> None:
        with self._lock:
            if task._closed:
                return
            task._closed = True
            if self._bars is None:
                return
            if task._keep:
                bar = self._bars.tasks[[t.id for t in self._bars.tasks].index(task._id)]
                if bar.total is None or bar.completed > bar.total:
                    self._bars.update(task._id, total=bar.completed)
                self._bars.stop_task(task._id)
            else:  # a read: its bar goes when it is done (its total was only the declared count)
                self._bars.remove_task(task._id)
            self._open -= 1
            if self._open <= 0:
                self.close()

    def close(self) -> None:
        with self._lock:
            if self._bars is not None:
                self._bars.stop()
                self._bars = None
                self._open = 0


def sink_for(
    stream: IO[str], env: Mapping[str, str], *, color: bool = False, clock: Callable[[], float] = time.monotonic
) -> ProgressSink:
    """The sink the CLI uses: FLEETCTL_PROGRESS=auto (bars on a terminal, lines otherwise) | bar | lines | off;
    FLEETCTL_PROGRESS_SECONDS sets the line interval (default 10)."""
    mode = (env.get("FLEETCTL_PROGRESS") or "auto").strip().lower()
    if mode not in ("auto", "bar", "lines", "off"):
        raise ValueError(f"FLEETCTL_PROGRESS must be auto, bar, lines or off, not {mode!r}")
    if mode == "off":
        return SILENT
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if mode == "bar" or (mode == "auto" and tty and env.get("TERM") != "dumb"):
        return BarProgress(stream, color=color)
    seconds = env.get("FLEETCTL_PROGRESS_SECONDS")
    try:
        interval = float(seconds) if seconds else INTERVAL_SECONDS
    except ValueError:
        raise ValueError(f"FLEETCTL_PROGRESS_SECONDS must be a number of seconds, not {seconds!r}") from None
    return LineProgress(stream, clock=clock, interval=max(0.0, interval))


@dataclass
class TaskRecord:
    """One task's numbers as `RecordingProgress` keeps them."""

    label: str
    total: int | None
    unit: str
    done: int = 0
    failed: int = 0
    closed: bool = False


class _RecordedTask(Task):
    def __init__(self, record: TaskRecord, lock: threading.Lock) -> None:
        self._r, self._lock = record, lock

    def advance(self, n: int = 1, *, failed: int = 0) -> None:
        with self._lock:
            self._r.done += n
            self._r.failed += failed

    def set_total(self, total: int | None) -> None:
        self._r.total = total

    def close(self) -> None:
        self._r.closed = True


@dataclass
class RecordingProgress(ProgressSink):
    """Keeps every task's numbers: what library callers and tests inspect after a run."""

    tasks: list[TaskRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def task(
        self, label: str, total: int | None = None, *, unit: str = "items", final: bool = True, failures: bool = False
    ) -> Task:
        record = TaskRecord(label, total, unit)
        self.tasks.append(record)
        return _RecordedTask(record, self._lock)

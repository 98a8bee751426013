"""Progress (engine/progress.py): the "every 10 s or every 5 %, whichever comes later" rule with a fake clock, the
line format, the terminal bars, the sink the CLI picks; the providers' reads and apply report into run.Context."""

from __future__ import annotations

import io
import re

import pytest

from engine import progress
from engine.progress import SILENT, BarProgress, LineProgress, RecordingProgress, progress_line, sink_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(total: int | None = 10_000, **kw):
    clock, out = FakeClock(), []
    sink = LineProgress(clock=clock, write=out.append, **kw)
    task = sink.task("apply", total, unit="changes", failures=True)
    return clock, out, task


def test_a_line_every_10_seconds_when_5_percent_comes_first():
    clock, out, task = _lines(100_000)
    for _ in range(10):  # 1,000 changes per second: 5 % (5,000) is reached after 5 s
        clock.now += 0.5
        task.advance(500)
    assert out == []  # 5 s: 5 % done, but 10 s have not passed
    for _ in range(10):
        clock.now += 0.5
        task.advance(500)
    assert out == ["apply: 10,000/100,000 changes (10%), 1,000/s, 0 failed, about 1 min 30 s left"]  # t = 10 s
    clock.now += 9.5
    task.advance(9_500)
    assert len(out) == 1  # 9.5 s later: not yet
    clock.now += 0.5
    task.advance(500)
    assert out[-1] == "apply: 20,000/100,000 changes (20%), 1,000/s, 0 failed, about 1 min 20 s left"


def test_a_line_every_5_percent_when_10_seconds_come_first():
    clock, out, task = _lines()
    for _ in range(100):  # 10 changes per second: 5 % (500 changes) takes 50 s
        clock.now += 1.0
        task.advance(10)
    assert out == [
        "apply: 500/10,000 changes (5%), 10/s, 0 failed, about 15 min 50 s left",
        "apply: 1,000/10,000 changes (10%), 10/s, 0 failed, about 15 min 00 s left",
    ]
    clock.now += 5
    task.advance(1, failed=1)
    task.close()
    assert out[-1] == "apply: 1,001/10,000 changes (10%), 9.5/s, 1 failed, done in 1 min 45 s"
    task.advance(5)  # after close: nothing more
    assert len(out) == 3


def test_without_a_total_every_10_seconds_and_reads_end_quietly():
    clock, out = FakeClock(), []
    sink = LineProgress(clock=clock, write=out.append)
    read = sink.task("read aws-eu", None, unit="things", final=False)
    for _ in range(25):
        clock.now += 1
        read.advance(250)
    assert out == ["read aws-eu: 2,500 things, 250/s", "read aws-eu: 5,000 things, 250/s"]
    read.close()
    assert out[-1] == "read aws-eu: 6,250 things, 250/s, done in 25 s"
    quick = sink.task("read aws-eu", 3, unit="certificates", final=False)
    quick.advance(3)
    quick.close()  # over before its first line was due: says nothing
    assert len(out) == 3


def test_more_than_the_declared_total_is_counted_without_a_percentage():
    clock, out = FakeClock(), []
    sink = LineProgress(clock=clock, write=out.append, interval=0)
    read = sink.task("read aws-eu", 100, unit="things", final=False)
    clock.now += 1
    read.advance(250)  # the account holds more things than the fleet declares
    assert out == ["read aws-eu: 250 things, 250/s"]


def test_the_line_format():
    assert (
        progress_line("apply", 1200, 10_000, "changes", 25.0, failed=0)
        == "apply: 1,200/10,000 changes (12%), 48/s, 0 failed, about 3 min 03 s left"
    )
    assert (
        progress_line("read aws-eu", 12_000, 100_000, "things", 4.8)
        == "read aws-eu: 12,000/100,000 things (12%), 2,500/s, about 35 s left"
    )
    assert progress_line("apply", 0, 5, "changes", 0.0, failed=0) == "apply: 0/5 changes (0%), 0 failed"


def test_thread_safe_counting():
    from concurrent.futures import ThreadPoolExecutor

    clock, out, task = _lines(8000, interval=0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: task.advance(1), range(8000)))
    task.close()
    assert out[-1].startswith("apply: 8,000/8,000 changes (100%)")
    percents = [int(re.search(r"\((\d+)%\)", line).group(1)) for line in out]
    assert percents == sorted(percents) and len(out) <= 21


def test_bars_on_a_terminal_stay_for_apply_and_go_for_reads():
    stream = io.StringIO()
    sink = BarProgress(stream, color=False)
    read = sink.task("read aws-eu", 3, unit="things", final=False)
    read.advance(3)
    read.close()
    apply = sink.task("apply", 4, unit="changes", failures=True)
    apply.advance(3)
    apply.advance(1, failed=1)
    apply.close()
    shown = stream.getvalue()
    assert "4/4" in shown and "1 failed" in shown and "apply" in shown
    final = shown.rsplit("\r", 1)[-1]
    assert "apply" in final and "read aws-eu" not in final.split("apply")[-1]


def test_the_sink_the_cli_picks():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(sink_for(Tty(), {"TERM": "xterm"}), BarProgress)
    assert isinstance(sink_for(io.StringIO(), {}), LineProgress)
    assert isinstance(sink_for(Tty(), {"TERM": "dumb"}), LineProgress)
    assert sink_for(Tty(), {"FLEETCTL_PROGRESS": "off"}) is SILENT
    assert isinstance(sink_for(io.StringIO(), {"FLEETCTL_PROGRESS": "bar"}), BarProgress)
    assert sink_for(io.StringIO(), {"FLEETCTL_PROGRESS_SECONDS": "2"}).interval == 2
    with pytest.raises(ValueError, match="FLEETCTL_PROGRESS must be"):
        sink_for(io.StringIO(), {"FLEETCTL_PROGRESS": "loud"})


def test_library_callers_get_a_silent_sink():
    from engine.run import Context

    assert Context().progress is SILENT
    task = SILENT.task("x", 3)
    task.advance(3)
    task.close()


def test_recording_sink_sees_the_providers_reads(aws_env, fleet_dir, tmp_path):
    """The AWS provider's read reports things and certificates read, against the declared counts."""
    from engine import run

    rec = RecordingProgress()
    result = run.plan(fleet_dir, run.Context(journal_path=tmp_path / "j.jsonl", progress=rec), targets={"aws-eu"})
    things = [t for t in rec.tasks if t.unit == "things"]
    assert things and things[0].label == "read aws-eu" and things[0].closed
    declared = sum(1 for d in result.fleet.desired if d.kind == "aws.Thing" and d.address.target == "aws-eu")
    assert things[0].total == declared and things[0].done == 0  # an empty account: nothing listed yet
    specs = {n: m.spec for n, m in result.fleet.targets().items()}
    applied = RecordingProgress()
    report = run.apply(result.plan, run.Context(journal_path=tmp_path / "j.jsonl", progress=applied), fleet_dir, specs)
    phase = [t for t in applied.tasks if t.label == "apply"]
    assert phase and phase[0].done == phase[0].total == len(report.applied) and phase[0].failed == 0
    again = RecordingProgress()
    run.plan(fleet_dir, run.Context(journal_path=tmp_path / "j.jsonl", progress=again), targets={"aws-eu"})
    assert [t.done for t in again.tasks if t.unit == "things"] == [declared]


def test_progress_module_writes_nothing_to_stdout(capsys):
    clock, out = FakeClock(), io.StringIO()
    sink = LineProgress(out, clock=clock, interval=0)
    t = sink.task("apply", 2, unit="changes")
    clock.now += 1
    t.advance(2)
    t.close()
    captured = capsys.readouterr()
    assert captured.out == "" and out.getvalue().count("\n") == 2
    assert progress.STEP == 0.05 and progress.INTERVAL_SECONDS == 10


def test_the_last_second():
    assert (
        progress_line("apply", 990, 1000, "changes", 10.0, failed=0)
        == "apply: 990/1,000 changes (99%), 99/s, 0 failed, under 1 s left"
    )

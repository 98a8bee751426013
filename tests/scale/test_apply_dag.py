"""apply runs its creates and updates as a dependency graph (engine/run/applying.py `run_dag`): a unit starts when the units
it depends on have ended, not when the whole previous wave has. A thing whose certificate is registered is created
while the next certificates are still being registered, so the two quotas overlap instead of adding up."""

from __future__ import annotations

import threading
import time

from engine.model import Action, Address, Change
from engine.run import run_dag


def change(kind: str, name: str, deps: tuple[str, ...] = ()) -> Change:
    return Change(
        Address.of("aws", "aws-eu", kind, name),
        "aws." + kind,
        Action.CREATE,
        depends_on=tuple(Address.of("aws", "aws-eu", *d.split("/")) for d in deps),
    )


def recorder(seconds: dict[str, float] | None = None):
    lock = threading.Lock()
    events: list[tuple[str, str, float]] = []

    def fn(unit) -> None:
        names = [c.address.name for c in (unit if isinstance(unit, list) else [unit])]
        with lock:
            events.extend(("start", n, time.monotonic()) for n in names)
        time.sleep(max((seconds or {}).get(n, 0.0) for n in names))
        with lock:
            events.extend(("end", n, time.monotonic()) for n in names)

    return fn, events


def test_a_unit_starts_only_after_its_dependencies_ended_and_dependants_overlap_the_next_wave():
    certs = [change("Certificate", f"c{i}") for i in range(12)]
    things = [change("Thing", f"t{i}", (f"Certificate/c{i}",)) for i in range(12)]
    fn, events = recorder({**{f"c{i}": 0.05 for i in range(12)}, **{f"t{i}": 0.01 for i in range(12)}})
    run_dag([certs, things], fn, workers=3)
    at = {(kind, n): t for kind, n, t in events}
    for i in range(12):
        assert at[("start", f"t{i}")] >= at[("end", f"c{i}")]  # never before its certificate
    assert at[("start", "t0")] < at[("end", "c11")]  # ... but before the last certificate
    assert {n for kind, n, _ in events if kind == "end"} == {c.address.name for c in certs + things}


def test_ready_units_of_later_waves_go_first():
    certs = [change("Certificate", f"c{i}") for i in range(6)]
    things = [change("Thing", f"t{i}", (f"Certificate/c{i}",)) for i in range(6)]
    fn, events = recorder({f"c{i}": 0.02 for i in range(6)})
    run_dag([certs, things], fn, workers=1 + 1)
    starts = [n for kind, n, _ in events if kind == "start"]
    # once c0 has ended, t0 is ready and is taken before the certificates still waiting
    assert starts.index("t0") < starts.index("c5")


def test_a_batch_waits_for_every_member_dependency_and_one_worker_keeps_wave_order():
    certs = [change("Certificate", f"c{i}") for i in range(4)]
    batch = [change("Thing", f"t{i}", (f"Certificate/c{i}",)) for i in range(4)]
    group = change("ThingGroup", "g", ("Thing/t3",))
    fn, events = recorder({"c3": 0.1})
    run_dag([certs, [batch], [group]], fn, workers=4)
    at = {(kind, n): t for kind, n, t in events}
    assert min(at[("start", f"t{i}")] for i in range(4)) >= at[("end", "c3")]
    assert at[("start", "g")] >= at[("end", "t3")]
    fn, events = recorder()
    run_dag([certs, [batch], [group]], fn, workers=1)
    assert [n for kind, n, _ in events if kind == "start"] == ["c0", "c1", "c2", "c3", "t0", "t1", "t2", "t3", "g"]

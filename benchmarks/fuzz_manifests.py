"""Manifest fuzzing, the long profile (issue 13): hypothesis mutates valid fleets (tests/fuzz_manifests.py) and
every case runs validate, lint and (device-only fleets) plan in-process. Prints cases run, failures, the time per
case (median, max) and the peak memory; the fast profile of the same cases runs in CI as
tests/test_fuzz_manifests.py.

Run (from the repository root):
    .venv/bin/python benchmarks/fuzz_manifests.py --examples 2000 [--seed 1] [--json out.json]
Exit code 1 when a case failed (each failure is printed with the case that made it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402 - after the sys.path line above

from tests import fuzz_manifests as fz  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the figures (and every failure) to this file")
    args = parser.parse_args(argv)
    work = fz.workdir()
    bases, env = fz.make_bases(work / "bases")
    times: list[float] = []
    per_command: dict[str, list[float]] = {}
    failures: list[dict[str, object]] = []
    errors = 0
    slow: list[tuple[float, str, dict[str, float]]] = []
    started = time.perf_counter()

    @hypothesis_seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fz.cases(bases))
    def run(case: tuple) -> None:
        nonlocal errors
        base, target, changes = case
        out = fz.check_case(base, target, changes, work / "case", env)
        times.append(sum(out.seconds.values()))
        for name, seconds in out.seconds.items():
            per_command.setdefault(name, []).append(seconds)
        errors += out.errors
        if times[-1] > 2:
            slow.append((times[-1], fz.case_text(base, target, changes), dict(out.seconds)))
        if out.failures:
            failures.append({"case": fz.case_text(base, target, changes), "failures": out.failures})
            print(f"FAIL {fz.case_text(base, target, changes)}", *out.failures, sep="\n  ", flush=True)
        if len(times) % 100 == 0:
            print(f"… {len(times)} cases, {len(failures)} failing, {time.perf_counter() - started:.0f} s", flush=True)

    try:
        run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "cases": len(times),
        "failingCases": len(failures),
        "errorDiagnostics": errors,
        "wallSeconds": round(time.perf_counter() - started, 1),
        "medianCaseSeconds": round(statistics.median(times), 4) if times else None,
        "maxCaseSeconds": round(max(times), 3) if times else None,
        "perCommand": {
            name: {"runs": len(v), "medianSeconds": round(statistics.median(v), 4), "maxSeconds": round(max(v), 3)}
            for name, v in sorted(per_command.items())
        },
        "peakRssMb": round(fz.peak_rss_mb(), 1),
    }
    print(
        f"{figures['cases']} cases, {figures['failingCases']} failing, {errors} error diagnostics (all checked for "
        f"file:line); per case median {figures['medianCaseSeconds']} s, max {figures['maxCaseSeconds']} s; "
        f"peak RSS {figures['peakRssMb']} MB; {figures['wallSeconds']} s in all"
    )
    for name, f in figures["perCommand"].items():
        print(f"  {name:<9} {f['runs']:>5} runs, median {f['medianSeconds']} s, max {f['maxSeconds']} s")
    for seconds, case, commands in sorted(slow, reverse=True)[:10]:
        print(f"  slowest: {seconds:.2f} s {', '.join(f'{k} {v:.2f} s' for k, v in commands.items())}: {case[:400]}")
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "failures": failures}, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU-only benchmark of the planner's diff at fleet scale (issue 12: a 100k-thing plan must not get slower than
1.2x when the diff goes to the leaf).

Why this exists: bench_scale.py's `plan` workload measures the read through the quota proxy (minutes at 100k);
the diff's own cost is hidden in it. This plans N desired/actual Thing pairs (attributes, groups, principals)
plus a few policies straight through engine.plan.planner.plan, no cloud and no I/O, with none or a few percent
of the things changed (an attribute, a group member, a policy statement), and prints the best of R runs.

Run (from the repository root, the code under test first on the path):
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_diff.py --things 100000 --changed 0,3 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import time

from engine.model import ActualResource, Address, DesiredResource
from engine.plan.planner import PlanOptions, plan


def fleet(n: int, changed_pct: float) -> tuple[list[DesiredResource], list[ActualResource]]:
    desired, actual = [], []
    every = int(100 / changed_pct) if changed_pct else 0
    for i in range(n):
        address = Address.of("aws", "aws-eu", "Thing", f"T{i:06d}")
        spec = {
            "thingType": "sensor",
            "attributes": {"serial": f"SN{i:06d}", "site": "paris", "floor": str(i % 9)},
            "groups": sorted(["readers", f"zone-{i % 50}"]),
            "principals": [f"cert-{i:06d}"],
        }
        state = json.loads(json.dumps(spec))
        if every and i % every == 0:
            kind = (i // every) % 3
            if kind == 0:
                state["attributes"]["site"] = "lyon"
            elif kind == 1:
                state["groups"] = sorted(state["groups"] + ["legacy"])
            else:
                state["principals"] = []
        desired.append(DesiredResource(address, "aws.Thing", spec))
        actual.append(ActualResource(address, "aws.Thing", state, token=str(i), managed=True))
    for i in range(20):
        address = Address.of("aws", "aws-eu", "Policy", f"P{i:02d}")
        doc = {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": f"S{k}", "Effect": "Allow", "Action": [f"iot:A{k}"], "Resource": ["*"]} for k in range(10)
            ],
        }
        spec = {"document": doc, "keepVersions": 5}
        state = json.loads(json.dumps(spec))
        if changed_pct:
            state["document"]["Statement"].append(
                {"Sid": "Widen", "Effect": "Allow", "Action": "iot:*", "Resource": "*"}
            )
        desired.append(DesiredResource(address, "aws.Policy", spec))
        actual.append(ActualResource(address, "aws.Policy", state, token="1", managed=True))
    return desired, actual


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--things", type=int, default=100_000)
    ap.add_argument("--changed", default="0,3", help="comma-separated percentages of changed things")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for pct in [float(p) for p in args.changed.split(",")]:
        desired, actual = fleet(args.things, pct)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()
            result = plan(desired, actual, PlanOptions(created_at="2026-12-03T00:00:00Z"))
            best = min(best, time.process_time() - start)
        print(
            f"things={args.things} changed={pct:g}% changes={len(result.changes)} "
            f"fields={sum(len(c.fields) for c in result.changes)} cpu={best:.3f}s (best of {args.repeat})"
        )


if __name__ == "__main__":
    main()

"""Benchmark of `fleetctl import` (issue 7): API calls per thing, wall time and peak memory for a script-built
account of N things, against moto on loopback, and the time AWS's default quotas would impose on those calls.

Why this exists: DESIGN §4 measures performance with benchmarks that print figures, not timed tests. The account is
built the way registerDevice.py builds one (a shared `pubSubToAny` policy attached to every certificate, one
certificate per thing named by MAC, a thing type, an `owner` attribute), plus thing groups so the large-file split is
exercised. Certificates are registered with RegisterCertificateWithoutCA from public PEMs made by
engine.sandbox.certs (moto's CreateKeysAndCertificate makes an RSA key per call, ~60 ms; the import reads both kinds
of certificate the same way). No private key is written anywhere.

The import runs in-process (engine.importer.core.run_import, the CLI's engine) without pacing, so the measured wall
time is local time (engine + moto + loopback HTTP); the floor is the time the default per-API quotas
(engine/ratelimit.py, research/quotas.md §1.1) would impose on the counted calls: the sum of
calls/rate over the APIs when phases run one after the other (what the import does), and the binding API alone
when every API is paced in parallel. moto answers ListCertificates, ListTargetsForPolicy and
ListThingsInThingGroup in one response where AWS pages them at 250: the table says so. Then `fleetctl plan` runs on
the written manifests and must show no changes.

Run: .venv/bin/python benchmarks/bench_import.py --things 10000 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402  (the account is built by "scripts", not by fleetctl)
from botocore.config import Config  # noqa: E402

from engine import run  # noqa: E402
from engine.importer.core import run_import  # noqa: E402
from engine.importer.model import ImportRequest  # noqa: E402
from engine.quotas import AWS_DEFAULT, AWS_IOT_QUOTAS  # noqa: E402
from engine.sandbox import certs as sandbox_certs  # noqa: E402

AWS_PAGED = {"list_certificates": 250, "list_targets_for_policy": 250, "list_things_in_thing_group": 250}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_moto(state: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.sandbox.aws", "--state-dir", str(state)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if (state / "aws.json").exists():
            return proc, json.loads((state / "aws.json").read_text())["endpointUrl"]
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("moto did not start")


def seed(endpoint: str, n: int, groups: int, workers: int) -> float:
    """registerDevice.py's account for n devices (BYO certificates), spread over `groups` thing groups."""
    c = boto3.client(
        "iot",
        region_name="eu-west-2",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 3}, max_pool_connections=workers),
    )
    started = time.perf_counter()
    c.create_policy(
        policyName="pubSubToAny",
        policyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iot:*"], "Resource": ["*"]}]}
        ),
    )
    c.create_thing_type(thingTypeName="IoTReady")
    for g in range(groups):
        c.create_thing_group(thingGroupName=f"site-{g:02}")
    ca = sandbox_certs.make_ca({"CN": "Bench CA"})

    def device(i: int) -> None:
        mac = f"246F28{i:06X}"
        pem = sandbox_certs.issue({"CN": mac}, ca).pem
        arn = c.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")["certificateArn"]
        c.attach_policy(policyName="pubSubToAny", target=arn)
        c.create_thing(thingName=mac, thingTypeName="IoTReady", attributePayload={"attributes": {"owner": "bench"}})
        c.attach_thing_principal(thingName=mac, principal=arn)
        c.add_thing_to_thing_group(thingGroupName=f"site-{i % groups:02}", thingName=mac)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(device, range(n)))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--things", type=int, default=10000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="threads seeding the account (moto answers 500 to concurrent AttachThingPrincipal calls now and then)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the written manifests")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fleetctl-bench-import-"))
    proc, endpoint = start_moto(work / "moto")
    try:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "eu-west-2",
            "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
            "FLEETCTL_GIT_COMMIT": "0" * 40,
            "FLEETCTL_JOURNAL": str(work / "journal.jsonl"),
        }
        os.environ.update(env)  # boto3 takes credentials from the process environment
        print(f"seeding {args.things:,} things (registerDevice.py's account, {args.groups} groups) ...", flush=True)
        seeded = seed(endpoint, args.things, args.groups, args.workers)
        fleet = work / "fleet"
        fleet.mkdir()
        shutil.copy(ROOT / "fleet" / "targets.yaml", fleet / "targets.yaml")
        out = work / "imported"
        rss_before = rss_mb()
        started = time.perf_counter()
        cpu = time.process_time()
        report = run_import(ImportRequest("aws-eu", out, fleet), run.Context(env=env))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        rss_after = rss_mb()
        plan_started = time.perf_counter()
        planned = run.plan(out, run.Context(env=env))
        plan_wall = time.perf_counter() - plan_started
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    n = args.things
    calls = dict(sorted(report.calls.items()))
    aws_calls = {
        op: (math.ceil(n / AWS_PAGED[op]) if op in AWS_PAGED and k == 1 and n > AWS_PAGED[op] else k)
        for op, k in calls.items()
    }
    api_names = boto3.client("iot", region_name="eu-west-2").meta.method_to_api_mapping

    def tps(op: str) -> float:
        return AWS_IOT_QUOTAS.get(api_names.get(op, op), AWS_DEFAULT).tps

    sequential = sum(k / tps(op) for op, k in aws_calls.items())
    parallel = max(k / tps(op) for op, k in aws_calls.items())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    files = sum(1 for p in out.rglob("*.yaml"))
    total, total_aws = sum(calls.values()), sum(aws_calls.values())
    print(f"\nfleetctl import of {n:,} things (seeding took {seeded:.0f}s; moto on loopback, no pacing)\n")
    print(
        f"  resources written     {sum(report.written.values()):,}: "
        + ", ".join(f"{k.split('.')[1]} {v:,}" for k, v in report.written.items())
    )
    print(f"  wall time             {wall:.1f} s   (client CPU {cpu:.1f} s)")
    for phase, seconds in report.phases.items():
        print(f"    {phase:<20}{seconds:.1f} s")
    print(
        f"  API calls             {total:,} measured, {total_aws:,} on AWS (paged lists)  = "
        f"{total_aws / n:.3f} per thing"
    )
    print(f"  peak RSS              {rss_after:.0f} MB (before the import: {rss_before:.0f} MB)")
    print(f"  output                {files} manifest files, {size / 1e6:.1f} MB")
    print(
        f"  quota floor           {sequential:,.0f} s with phases in sequence (as the import runs), "
        f"{parallel:,.0f} s if every API were paced in parallel"
    )
    print(f"  plan after import     {len(planned.plan.changes)} change(s) in {plan_wall:.1f} s")
    print("\n  API                           calls   on AWS   TPS   floor s")
    for op in calls:
        print(f"  {op:<28}{calls[op]:>7,}  {aws_calls[op]:>7,}  {tps(op):>4.0f}  {aws_calls[op] / tps(op):>8,.1f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "things": n,
                    "wall": wall,
                    "cpu": cpu,
                    "phases": report.phases,
                    "calls": calls,
                    "awsCalls": aws_calls,
                    "callsPerThing": total_aws / n,
                    "peakRssMb": rss_after,
                    "rssBeforeMb": rss_before,
                    "floorSequential": sequential,
                    "floorParallel": parallel,
                    "planChanges": len(planned.plan.changes),
                    "planWall": plan_wall,
                },
                indent=2,
            )
        )
    if args.keep:
        print(f"\n  manifests kept in {out}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not planned.plan.changes else 1


if __name__ == "__main__":
    raise SystemExit(main())

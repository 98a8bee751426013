"""Incremental drift benchmark (issue 16): N things with certificate links, a snapshot, 500 out-of-band changes,
then `drift --since-snapshot` at AWS's default quotas.

What it measures: the incremental read's wall time, its API calls per API and the quota floor of those calls,
against the floor of a full read at full fidelity (one ListThingPrincipals per linked thing at 10 TPS: N/10 s),
and whether the incremental drift finds exactly the changed resources (all of them, nothing else).

Set-up (not measured): moto in this process; the shared kinds applied through the engine; the N things and
certificates seeded into moto's backend (creating them through the API is bench_scale.py's `apply` workload);
the snapshot taken by a full read through a quota proxy with raised quotas (the full read at default quotas is
N/10 s, its floor is reported instead of waited for); the 500 changes made through that proxy with boto3, so
its CloudTrail records them. Measured: the incremental drift through a second proxy at the default quotas and
30-80 ms latency, sharing the first one's event history, with the engine paced (FLEETCTL_RATE_LIMIT=on).

The 500 changes, each on its own thing: links detached, certificates deactivated, certificates given a wider
policy, things deleted (detach first), 125 each.

Run (from the repository root):
    .venv/bin/python benchmarks/bench_incremental_drift.py --things 10000
    .venv/bin/python benchmarks/bench_incremental_drift.py --things 100000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_aws import GROUP, POLICY, REGION, TARGET, THING_TYPE, device_certificates, thing_name, write_fleet  # noqa: E402

CHANGES = 500
KINDS = ("detach", "deactivate", "widen", "delete")


def now() -> datetime:
    return datetime.now(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--things", type=int, default=10000)
    parser.add_argument("--changes", type=int, default=CHANGES)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fleetctl-bench-certs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    n = args.things

    import boto3
    from moto.iot.models import iot_backends

    from engine import run
    from engine import snapshot as snapshots
    from engine.providers.aws.scoped import seconds
    from engine.providers.aws.trail import Settings
    from engine.quotas import AWS_IOT_QUOTAS, Quota
    from engine.sandbox.aws import reset, start_moto
    from engine.sandbox.quota_proxy import QuotaProxy

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    os.environ.pop("FLEETCTL_NOW", None)
    server, moto_url = start_moto()
    reset(moto_url)
    work = Path(tempfile.mkdtemp(prefix="fleetctl-incr-"))
    root = work / "fleet"
    t0 = time.perf_counter()
    certs = device_certificates(args.cache, n)
    write_fleet(root, n, certs, "cert")
    print(f"fleet of {n:,} things with certificates written in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    fast = {api: Quota(api, 100000) for api in AWS_IOT_QUOTAS}
    setup_proxy = QuotaProxy(moto_url, latency_ms=(0, 0), quotas=fast).start()
    env = {**os.environ, "AWS_ENDPOINT_URL": setup_proxy.endpoint_url, "FLEETCTL_RATE_LIMIT": "off"}

    def ctx(e) -> run.Context:
        return run.Context(env=e, journal_path=work / "journal.jsonl", workers=32, clock=now)

    # the shared kinds through the engine (against moto directly: no events, as if applied long ago)
    first = run.plan(root, ctx({**env, "AWS_ENDPOINT_URL": moto_url}))
    shared = [c for c in first.plan.changes if c.kind not in ("aws.Thing", "aws.Certificate")]
    specs = {k: m.spec for k, m in first.fleet.targets().items()}
    assert run.apply(
        type(first.plan)(**{**first.plan.__dict__, "changes": tuple(shared)}),
        ctx({**env, "AWS_ENDPOINT_URL": moto_url}),
        root,
        specs,
    ).ok
    backend = iot_backends["123456789012"][REGION]
    group = backend.describe_thing_group(GROUP)
    t0 = time.perf_counter()
    for i in range(n):
        name = thing_name(i, n)
        cert = backend.register_certificate_without_ca((certs / f"{name}.pem").read_text(), "ACTIVE")
        backend.attach_policy(POLICY, cert.arn)
        thing = backend.create_thing(
            name, THING_TYPE, {"attributes": {"serial": str(i), "site": "bench", "managed-by": "fleetctl"}}
        )
        group.things[thing.arn] = thing
        backend.attach_thing_principal(name, cert.arn)
    print(f"seeded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    t0 = time.perf_counter()
    base = run.plan(root, ctx(env), snapshot=run.SnapshotUse(None, "the benchmark's first read", Settings()))
    assert base.plan.changes == (), [str(c.address) for c in base.plan.changes[:5]]
    snap = work / "drift.snapshot"
    snapshots.write(snap, base.snapshot)
    print(
        f"snapshot of a full read (raised quotas) in {time.perf_counter() - t0:.0f} s, "
        f"{snap.stat().st_size / 1e6:.1f} MB",
        file=sys.stderr,
    )

    iot = boto3.client("iot", region_name=REGION, endpoint_url=setup_proxy.endpoint_url)
    iot.create_policy(
        policyName="wide-open",
        policyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
        ),
    )
    rng = random.Random(args.seed)
    chosen = rng.sample(range(n), args.changes)
    expected = set()
    for k, i in enumerate(chosen):
        name = thing_name(i, n)
        arn = iot.list_thing_principals(thingName=name)["principals"][0]
        cid = arn.rsplit("/", 1)[-1]
        what = KINDS[k % len(KINDS)]
        if what == "detach":
            iot.detach_thing_principal(thingName=name, principal=arn)
            expected.add(f"aws/{TARGET}/Thing/{name}")
        elif what == "deactivate":
            iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
            expected.add(f"aws/{TARGET}/Certificate/{name}-cert")
        elif what == "widen":
            iot.attach_policy(policyName="wide-open", target=arn)
            expected.add(f"aws/{TARGET}/Certificate/{name}-cert")
        else:
            iot.detach_thing_principal(thingName=name, principal=arn)
            iot.delete_thing(thingName=name)
            expected.add(f"aws/{TARGET}/Thing/{name}")

    proxy = QuotaProxy(moto_url).start()  # AWS's default quotas and 30-80 ms latency
    proxy.trail = setup_proxy.trail  # the same account's event history
    measured_env = {**env, "AWS_ENDPOINT_URL": proxy.endpoint_url, "FLEETCTL_RATE_LIMIT": "on"}
    started = time.perf_counter()
    result = run.plan(root, ctx(measured_env), snapshot=run.SnapshotUse(snapshots.load(snap), None, Settings()))
    wall = time.perf_counter() - started
    trust = result.plan.options["reads"][0]
    found = {str(c.address) for c in result.plan.changes}
    calls = proxy.stats.to_json()["calls"]
    floor = seconds(calls)
    full_floor = n / AWS_IOT_QUOTAS["ListThingPrincipals"].tps
    out = {
        "things": n,
        "changes": args.changes,
        "found": len(found),
        "missed": sorted(expected - found)[:10],
        "extra": sorted(found - expected)[:10],
        "exact": found == expected,
        "wallSeconds": round(wall, 1),
        "readSeconds": round(result.stats["readSeconds"], 1),
        "calls": calls,
        "totalCalls": sum(calls.values()),
        "throttled": proxy.stats.to_json()["throttled"],
        "floorSeconds": round(floor, 1),
        "eta": round(floor / wall, 2) if wall else None,
        "fullReadFloorSeconds": full_floor,
        "moto upstreamSeconds": round(sum(proxy.stats.upstream_seconds.values()), 1),
        "trust": trust,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    proxy.stop()
    setup_proxy.stop()
    server.stop()
    return 0 if found == expected else 1


if __name__ == "__main__":
    sys.exit(main())

"""Incremental drift (issue 16) against the quota proxy + moto: a seeded random sequence of out-of-band changes
(links detached and re-attached, certificates deactivated, policies widened, things deleted), some made just
before a read while CloudTrail's delivery delay still hides them (inside the next window's overlap) and some
made while a read runs: after every quiescent round, the incremental read equals a full read."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from benchmarks.bench_aws import REGION, device_certificates, thing_name, write_fleet
from engine import run
from engine import snapshot as snapshots
from engine.providers.aws.trail import Settings
from engine.quotas import AWS_IOT_QUOTAS, Quota
from engine.sandbox.quota_proxy import QuotaProxy

N = 24
DELAY = 1.0  # the sandbox's CloudTrail delivery delay (AWS: ~5 min average)
OVERLAP = timedelta(seconds=4)


def real_clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def account(aws_env, moto_server, tmp_path):
    root = tmp_path / "fleet"
    write_fleet(root, N, device_certificates(tmp_path / "certs", N), "cert")
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl", workers=16, clock=real_clock)
    first = run.plan(root, ctx)
    assert run.apply(first.plan, ctx, root, {n: m.spec for n, m in first.fleet.targets().items()}).ok
    fast = {api: Quota(api, 1000) for api in AWS_IOT_QUOTAS} | {"LookupEvents": AWS_IOT_QUOTAS["LookupEvents"]}
    proxy = QuotaProxy(moto_server, latency_ms=(0, 0), quotas=fast, trail_delay_s=DELAY).start()
    env = {**aws_env, "AWS_ENDPOINT_URL": proxy.endpoint_url}
    iot = boto3.client("iot", region_name=REGION, endpoint_url=proxy.endpoint_url)
    yield root, env, iot, proxy
    proxy.stop()


def read(root: Path, env: dict, tmp_path: Path, use: run.SnapshotUse | None) -> run.PlanResult:
    ctx = run.Context(env=env, journal_path=tmp_path / "journal.jsonl", workers=16, clock=real_clock)
    return run.plan(root, ctx, snapshot=use)


def state(result: run.PlanResult) -> dict:
    return {str(c.address): (c.action.value, sorted(f.path for f in c.fields)) for c in result.plan.changes}


def change(iot, rng: random.Random, alive: set[str], extra_policy: str) -> str:
    name = rng.choice(sorted(alive))
    cert_arn = lambda: iot.list_thing_principals(thingName=name)["principals"]  # noqa: E731
    what = rng.choice(["detach", "deactivate", "widen", "delete", "attribute"])
    arns = cert_arn()
    if what == "detach" and arns:
        iot.detach_thing_principal(thingName=name, principal=arns[0])
    elif what == "deactivate" and arns:
        iot.update_certificate(certificateId=arns[0].rsplit("/", 1)[-1], newStatus="INACTIVE")
    elif what == "widen" and arns:
        iot.attach_policy(policyName=extra_policy, target=arns[0])
    elif what == "delete":
        for arn in arns:
            iot.detach_thing_principal(thingName=name, principal=arn)
        iot.delete_thing(thingName=name)
        alive.discard(name)
    else:
        iot.update_thing(
            thingName=name, attributePayload={"attributes": {"site": f"moved-{rng.randint(0, 99)}"}, "merge": True}
        )
    return f"{what} {name}"


@pytest.mark.parametrize("seed", [7, 1016])
def test_incremental_equals_full_after_every_quiescent_round(account, tmp_path, seed):
    root, env, iot, proxy = account
    rng = random.Random(seed)
    iot.create_policy(
        policyName="wide-open",
        policyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}',
    )
    settings = Settings(overlap=OVERLAP)
    base = read(root, env, tmp_path, run.SnapshotUse(None, "first read", settings))
    assert base.plan.options["reads"][0]["mode"] == "full" and base.plan.changes == ()
    snap_file = tmp_path / "drift.snapshot"
    snapshots.write(snap_file, base.snapshot)
    alive = {thing_name(i, N) for i in range(N)}
    made: list[str] = []
    for round_ in range(4):
        for _ in range(rng.randint(1, 4)):
            made.append(change(iot, rng, alive, "wide-open"))
        late = round_ % 2 == 1  # read before the events are delivered: they fall inside the next overlap
        if not late:
            time.sleep(DELAY + 0.3)
        during: list[str] = []
        use = run.SnapshotUse(snapshots.load(snap_file), None, settings)
        if round_ == 2:  # a change while the read runs
            timer = threading.Timer(0.05, lambda during=during: during.append(change(iot, rng, alive, "wide-open")))
            timer.start()
        inc = read(root, env, tmp_path, use)
        if round_ == 2:
            timer.join()
        trust = inc.plan.options["reads"][0]
        assert trust["mode"] == "incremental", trust
        assert trust["linksRead"] < N and trust["linksKept"] > 0
        snapshots.write(snap_file, inc.snapshot)
        if late or during:
            time.sleep(DELAY + 0.3)
            continue  # this read may predate those events; the next round must see them
        full = read(root, env, tmp_path, None)
        assert state(inc) == state(full), (seed, round_, made)
    time.sleep(DELAY + 0.3)  # a last quiescent read: everything made so far, through the overlap
    inc = read(root, env, tmp_path, run.SnapshotUse(snapshots.load(snap_file), None, settings))
    full = read(root, env, tmp_path, None)
    assert state(inc) == state(full) and inc.plan.changes, (seed, made)
    assert inc.plan.options["reads"][0]["mode"] == "incremental"


def test_a_snapshot_for_another_account_or_an_old_one_is_refused_with_a_full_read(account, tmp_path):
    root, env, iot, proxy = account
    base = read(root, env, tmp_path, run.SnapshotUse(None, "first read", Settings()))
    entry = (
        base.snapshot.targets["bench"]
        if "bench" in base.snapshot.targets
        else next(iter(base.snapshot.targets.values()))
    )
    import dataclasses

    other = dataclasses.replace(
        base.snapshot, targets={entry.target: dataclasses.replace(entry, account="999999999999")}
    )
    result = read(root, env, tmp_path, run.SnapshotUse(other, None, Settings()))
    trust = result.plan.options["reads"][0]
    assert trust["mode"] == "full" and "account 999999999999" in trust["fullBecause"]
    old = dataclasses.replace(
        base.snapshot,
        targets={
            entry.target: dataclasses.replace(
                entry, last_full_read="2020-01-01T00:00:00Z", read_at="2020-01-01T00:00:00Z"
            )
        },
    )
    trust = read(root, env, tmp_path, run.SnapshotUse(old, None, Settings())).plan.options["reads"][0]
    assert trust["mode"] == "full" and "maximum snapshot age" in trust["fullBecause"]
    forced = read(root, env, tmp_path, run.SnapshotUse(base.snapshot, None, Settings(full=True)))
    assert forced.plan.options["reads"][0]["fullBecause"] == "--full was given"

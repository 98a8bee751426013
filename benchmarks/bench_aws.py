"""AWS benchmark of issue 2 ("Reads are bulk"): API calls per thing and wall time of plan and apply, side by
side with the per-device script fleetctl replaces, and the ratio to the API-quota floor.

Why this exists: DESIGN §4 says performance is measured by benchmarks that print figures, not by timed unit
tests. This one drives the real engine (engine.run.plan / engine.run.apply with a Context, in-process, so the
provider's call counters are readable) against moto on loopback for a generated fleet of N things, and runs a
faithful reimplementation of the ESP32 seed's registerDevice.py (research/quotas.md §5) for the same N devices
against the same moto. It prints:

- per fleetctl phase (manifest load, plan on an empty account, apply-create, plan after apply, re-apply of the
  unchanged fleet): wall time, API calls (total, per thing, mutating), changes, client CPU, moto CPU, peak RSS;
- calls per AWS API and phase, with each API's default TPS and its provenance ([V] verified, [H] historic
  2019 guide, [U] assumed): the table the engine itself paces and estimates with (engine/ratelimit.py);
- a side-by-side table fleetctl vs script, and the floor: the time AWS's default per-API quotas would impose
  on the counted calls (research/quotas.md §8: calls_api / TPS_api, binding term = the largest).

moto is not rate limited, so the floor is "time the real quotas would impose" and the measured wall time is
"local time" (engine + moto + loopback HTTP); the printout keeps the two apart. Where the sandbox answers a list
call in one response that AWS pages (moto does for ListCertificates, ListTargetsForPolicy and
ListThingsInThingGroup unless engine/sandbox/moto_ext.py pages them), the counts are raised to the pages AWS
would need, and the measured and AWS-equivalent counts are both shown.

The baseline uses boto3 directly on purpose: it reimplements a third-party script, not fleetctl code (the
engine's boto3 stays in engine/providers/aws/client.py). The script writes the private keys AWS returns to
disk; the baseline drops them, and the benchmark never writes a private key (certificates come from
engine.sandbox.certs, whose keys stay in memory).

Run: .venv/bin/python benchmarks/bench_aws.py --things 1000,10000 [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import moto
from botocore import xform_name

from engine import run
from engine.estimate import estimate_line
from engine.journal import Journal
from engine.manifest.fleet import load_fleet
from engine.plan.model import load_plan
from engine.providers.aws.client import is_mutating
from engine.quotas import AWS_DEFAULT, AWS_IOT_QUOTAS, Quota, overrides_from_env, with_overrides
from engine.sandbox import certs as sandbox_certs
from engine.sandbox.aws import reset

REGION = "eu-west-2"
TARGET = "bench"
POLICY, THING_TYPE, GROUP = "bench-policy", "bench-type", "bench-group"
SHARD = 1000  # things per manifest file
RETRY_ROUNDS = 3  # re-applies allowed to converge changes moto failed
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# ---------------------------------------------------------------------------------------------------- quotas
# List calls moto (without engine/sandbox/moto_ext.py's paging) answers in one response where AWS pages them.
# Page size: ListThingsInThingGroup 250 [V], the other two 250 assumed [U] (research/quotas.md §11).
AWS_PAGE = 250
PAGED_LISTS = {
    "ListCertificates": ("list_certificates", "certificates"),
    "ListTargetsForPolicy": ("list_targets_for_policy", "targets"),
    "ListThingsInThingGroup": ("list_things_in_thing_group", "things"),
}


def quota(api: str) -> Quota:
    """The default TPS the engine itself paces and estimates with (engine/ratelimit.py, research/quotas.md
    §1.1), with FLEETCTL_QUOTAS overrides (raised quotas) applied."""
    if not _QUOTAS:
        _QUOTAS.update(with_overrides(AWS_IOT_QUOTAS, overrides_from_env(os.environ)))
    return _QUOTAS.get(api, AWS_DEFAULT)


_QUOTAS: dict[str, Quota] = {}


_API_NAMES: dict[str, str] = {}


def api_name(op: str) -> str:
    """boto3's snake_case operation → the AWS API name the quotas are written against."""
    if not _API_NAMES:
        model = botocore.session.get_session().get_service_model("iot")
        _API_NAMES.update({xform_name(name): name for name in model.operation_names})
    return _API_NAMES.get(op, op)


@dataclass(frozen=True)
class Floor:
    """The time AWS's default quotas impose on a set of calls (ops in one phase may run concurrently)."""

    seconds: float  # binding term: max over APIs of calls / TPS
    binding: str  # that API, with its TPS and tag
    serial_seconds: float  # sum over APIs (if every call ran one after another)

    @staticmethod
    def of(calls: Mapping[str, int]) -> Floor:
        terms = {api: n / quota(api).tps for api, n in calls.items() if n}
        if not terms:
            return Floor(0.0, "-", 0.0)
        api = max(sorted(terms), key=lambda a: terms[a])
        q = quota(api)
        return Floor(terms[api], f"{api} @{q.tps:g} TPS [{q.tag}]", sum(terms.values()))


@dataclass(frozen=True)
class Listing:
    """What one read pass lists through a paged API: items per listing (the account's certificates; each
    policy's targets; each group's things), and whether the sandbox already pages it as AWS does."""

    sizes: tuple[int, ...]
    paged: bool

    @property
    def aws_pages(self) -> int:
        return sum(max(1, math.ceil(n / AWS_PAGE)) for n in self.sizes)


def aws_equivalent(calls: Mapping[str, int], listings: Mapping[str, Listing]) -> dict[str, int]:
    """Counts as AWS would page them. Where the sandbox answered each listing in one call, a phase that made
    k such calls ran k / len(sizes) read passes, each of which costs `aws_pages` calls on AWS."""
    out = dict(calls)
    for api, listing in listings.items():
        if out.get(api) and listing.sizes and not listing.paged:
            out[api] = out[api] // len(listing.sizes) * listing.aws_pages
    return out


# ------------------------------------------------------------------------------------------ measuring phases
def _server_cpu(pid: int | None) -> float | None:
    """CPU seconds used so far by the moto process (Linux /proc), or None when it is not ours."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)  # measured against moto, by AWS API name
    aws_calls: dict[str, int] = field(default_factory=dict)  # as AWS would page them
    changes: int | None = None
    cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    peak_rss_mb: float = 0.0  # process peak so far (ru_maxrss is monotonic)
    load_avg: float = 0.0  # 1-minute load average at the end (shared host?)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.aws_calls.values())

    @property
    def mutating(self) -> int:
        return sum(n for api, n in self.aws_calls.items() if is_mutating(xform_name(api)))

    @property
    def floor(self) -> Floor:
        return Floor.of(self.aws_calls)

    def to_json(self, things: int) -> dict[str, Any]:
        out = asdict(self)
        fl = self.floor
        out.update(
            totalCalls=self.total,
            mutatingCalls=self.mutating,
            callsPerThing=self.total / things if things else None,
            floorSeconds=fl.seconds,
            floorBinding=fl.binding,
            floorSerialSeconds=fl.serial_seconds,
        )
        return out


class Meter:
    """Wall time, client CPU, moto CPU, peak RSS and the host's load around one phase."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def run(self, phase: Phase, fn: Callable[[], Any]) -> Any:
        cpu0, srv0, t0 = _cpu(), _server_cpu(self.server_pid), time.perf_counter()
        result = fn()
        phase.seconds = time.perf_counter() - t0
        phase.cpu_seconds = _cpu() - cpu0
        srv1 = _server_cpu(self.server_pid)
        phase.server_cpu_seconds = srv1 - srv0 if srv0 is not None and srv1 is not None else None
        phase.peak_rss_mb = _peak_rss_mb()
        phase.load_avg = os.getloadavg()[0]
        return result


def _api_counts(op_counts: Mapping[str, int]) -> dict[str, int]:
    out: collections.Counter[str] = collections.Counter()
    for op, n in op_counts.items():
        out[api_name(op)] += n
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------------- certificates, fleet
def device_certificates(cache_root: Path, n: int) -> Path:
    """A folder of N device certificates (public PEMs) issued by one CA, cached per N.

    The CA's key and the device keys live only in memory while the certificates are made; nothing but
    public certificates is written. A `complete` marker is written last, so a killed run is regenerated.
    """
    folder = cache_root / f"n{n}"
    if (folder / "complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ca = sandbox_certs.make_ca({"CN": "fleetctl bench CA", "O": "fleetctl bench"})
    (folder / "ca.pem").write_text(ca.pem)
    for i in range(n):
        name = thing_name(i, n)
        (folder / f"{name}.pem").write_text(sandbox_certs.issue({"CN": name, "O": "fleetctl bench"}, ca).pem)
    (folder / "complete").write_text(f"{n}\n")
    return folder


def thing_name(i: int, n: int) -> str:
    return f"bench-{i:0{max(5, len(str(n - 1)))}d}"


def write_fleet(root: Path, n: int, cert_dir: Path, policy_on: str) -> None:
    """Target, one Policy, one ThingType, one ThingGroup, N Certificates and N Things, SHARD things per file."""
    aws = root / "aws"
    (aws / "certs").mkdir(parents=True)
    (root / "targets.yaml").write_text(
        f"apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {{name: {TARGET}}}\nspec:\n  aws: {{region: {REGION}}}\n"
    )
    group_policies = f"  policies: [{POLICY}]\n" if policy_on == "group" else ""
    (aws / "base.yaml").write_text(
        f"apiVersion: aws.fleetctl.io/v1\nkind: Policy\nmetadata: {{name: {POLICY}, target: {TARGET}}}\nspec:\n"
        '  document:\n    Version: "2012-10-17"\n    Statement:\n'
        "      - Effect: Allow\n        Action: iot:Connect\n"
        f'        Resource: "arn:aws:iot:{REGION}:123456789012:client/${{iot:Connection.Thing.ThingName}}"\n'
        "---\n"
        f"apiVersion: aws.fleetctl.io/v1\nkind: ThingType\nmetadata: {{name: {THING_TYPE}, target: {TARGET}}}\n"
        "spec:\n  description: benchmark devices\n  searchableAttributes: [serial]\n"
        "---\n"
        f"apiVersion: aws.fleetctl.io/v1\nkind: ThingGroup\nmetadata: {{name: {GROUP}, target: {TARGET}}}\n"
        f"spec:\n  description: every benchmark device\n{group_policies}"
    )
    cert_policies = f"  policies: [{POLICY}]\n" if policy_on == "cert" else ""
    for start in range(0, n, SHARD):
        docs = []
        for i in range(start, min(n, start + SHARD)):
            name = thing_name(i, n)
            shutil.copyfile(cert_dir / f"{name}.pem", aws / "certs" / f"{name}.pem")
            docs.append(
                f"apiVersion: aws.fleetctl.io/v1\nkind: Certificate\nmetadata: {{name: {name}-cert, target: {TARGET}}}\n"
                f"spec:\n  certificatePem: {{file: certs/{name}.pem}}\n  status: ACTIVE\n{cert_policies}"
                "---\n"
                f"apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {{name: {name}, target: {TARGET}}}\n"
                f'spec:\n  thingType: {THING_TYPE}\n  attributes: {{serial: "{i}", site: bench}}\n'
                f"  groups: [{GROUP}]\n  principals: [{name}-cert]\n"
            )
        (aws / f"things-{start // SHARD:03d}.yaml").write_text("---\n".join(docs))


# ---------------------------------------------------------------------------------------------- the sandbox
class Sandbox:
    """moto on loopback in a process of its own (so its CPU and memory are not the engine's), or a given one."""

    def __init__(self, endpoint_url: str | None, state_dir: Path) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if endpoint_url is None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.sandbox.aws", "--state-dir", str(state_dir)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            state = state_dir / "aws.json"
            deadline = time.monotonic() + 60
            while not state.is_file():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("error: moto did not start (python -m engine.sandbox.aws)")
                time.sleep(0.1)
            endpoint_url = json.loads(state.read_text())["endpointUrl"]
        host = urllib.parse.urlparse(endpoint_url).hostname
        if host not in LOOPBACK:
            raise SystemExit(f"error: --endpoint-url must be a loopback sandbox (got host {host!r})")
        self.endpoint_url: str = endpoint_url

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def reset(self) -> None:
        reset(self.endpoint_url)

    def boto(self) -> Any:
        return boto3.client("iot", region_name=REGION, endpoint_url=self.endpoint_url)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def listing_sizes(iot: Any) -> dict[str, Listing]:
    """What the paged list calls of a read pass would return right now (probed before a phase, uncounted)."""

    def items(op: str, key: str, **kw: Any) -> tuple[int, int]:
        pages = list(iot.get_paginator(op).paginate(**kw, PaginationConfig={"PageSize": AWS_PAGE}))
        return sum(len(page.get(key, [])) for page in pages), len(pages)

    policies = [p["policyName"] for page in iot.get_paginator("list_policies").paginate() for p in page["policies"]]
    groups = [g["groupName"] for page in iot.get_paginator("list_thing_groups").paginate() for g in page["thingGroups"]]
    args = {
        "ListCertificates": [{}],
        "ListTargetsForPolicy": [{"policyName": p} for p in policies],
        "ListThingsInThingGroup": [{"thingGroupName": g} for g in groups],
    }
    out = {}
    for api, (op, key) in PAGED_LISTS.items():
        counted = [items(op, key, **kw) for kw in args[api]]
        out[api] = Listing(
            tuple(n for n, _ in counted), paged=all(pages >= math.ceil(n / AWS_PAGE) for n, pages in counted)
        )
    return out


# ------------------------------------------------------------------------------------------- fleetctl runs
def bench_env(endpoint_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "FLEETCTL_NOW": "2026-01-01T00:00:00Z",
        "FLEETCTL_GIT_COMMIT": "0" * 40,
        "FLEETCTL_ACTOR": "bench",
        "FLEETCTL_RATE_LIMIT": "off",
    }  # local time is measured unpaced; the quotas give the floor
    env.pop("AWS_PROFILE", None)
    return env


def _provider_calls(stats: Mapping[str, Any]) -> dict[str, int]:
    calls: collections.Counter[str] = collections.Counter()
    for provider in stats.values():
        calls.update(provider.get("calls", {}))
    return _api_counts(calls)


def _journal_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def journal_write_seconds(folder: Path, samples: int = 300) -> float:
    """Mean time of one journal entry (append + fsync) on the journal's filesystem: a probe with the real
    Journal, taken before and after apply, since fsync latency varies with the disk's load."""
    probe = folder / "journal-probe.jsonl"
    journal = Journal(probe, lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "p-probe", "0" * 40, "bench")
    t0 = time.perf_counter()
    for i in range(samples):
        journal.write(
            "success", address=f"aws/{TARGET}/Thing/{thing_name(i, samples)}", op="create_thing", requestId="0" * 36
        )
    seconds = (time.perf_counter() - t0) / samples
    probe.unlink()
    return seconds


def run_fleetctl(fleet: Path, work: Path, box: Sandbox, n: int, workers: int, meter: Meter) -> list[Phase]:
    env = bench_env(box.endpoint_url)
    iot = box.boto()

    def ctx() -> run.Context:
        return run.Context(env=env, journal_path=work / "journal.jsonl", workers=workers)

    phases: list[Phase] = []
    load = Phase("load manifests")
    fleet_obj = meter.run(load, lambda: run.load(fleet, ctx()))
    load.detail = {
        "manifests": len(fleet_obj.manifests),
        "desiredResources": len(fleet_obj.desired),
        "files": sum(1 for _ in fleet.rglob("*.yaml")),
    }
    phases.append(load)
    del fleet_obj

    def plan_phase(name: str) -> tuple[Phase, run.PlanResult]:
        sizes = listing_sizes(iot)
        phase = Phase(name)
        result = meter.run(phase, lambda: run.plan(fleet, ctx()))
        phase.calls = _provider_calls(result.stats["providers"])
        phase.aws_calls = aws_equivalent(phase.calls, sizes)
        phase.changes = len(result.plan.changes)
        phase.detail = {
            "readSeconds": result.stats["readSeconds"],
            "summary": result.plan.counts(),
            "estimate": estimate_line(result.plan.options.get("estimate") or {}),
            "errors": [d.summary for d in result.plan.diagnostics if d.severity.value == "error"][:5],
        }
        return phase, result

    empty, first = plan_phase("plan (empty account)")
    plan_file = work / "plan.json"
    t0 = time.perf_counter()
    plan_file.write_text(first.plan.dumps())
    empty.detail.update(planFileBytes=plan_file.stat().st_size, planFileWriteSeconds=time.perf_counter() - t0)
    phases.append(empty)
    del first

    # `fleetctl apply PLANFILE`: load the plan, load the fleet for its Target specs, stale check, apply.
    sizes = listing_sizes(iot)
    create = Phase("apply (create)")
    journal_before = _journal_lines(work / "journal.jsonl")

    def apply_planfile() -> run.ApplyReport:
        t = time.perf_counter()
        plan_obj = load_plan(str(plan_file))
        create.detail["loadPlanSeconds"] = time.perf_counter() - t
        t = time.perf_counter()
        specs = {name: m.spec for name, m in load_fleet(fleet, env, resolve_secrets=False).targets().items()}
        create.detail["loadFleetSeconds"] = time.perf_counter() - t
        c = ctx()
        report = run.apply(plan_obj, c, fleet, specs, check=True)
        create.detail["applySeconds"] = report.seconds
        return report

    fsync_before = journal_write_seconds(work)
    report = meter.run(create, apply_planfile)
    create.calls = _provider_calls(report.stats)
    create.aws_calls = aws_equivalent(create.calls, sizes)
    create.changes = len(report.applied)
    entries = _journal_lines(work / "journal.jsonl") - journal_before
    create.detail.update(
        workers=workers,
        applied=len(report.applied),
        failed=len(report.failed),
        skipped=len(report.skipped),
        failures=[f"{a}: {m}" for a, m in report.failed[:5]],
        journalEntries=entries,
        journalSecondsEstimate=entries * (fsync_before + journal_write_seconds(work)) / 2,
        staleCheckSeconds=create.seconds
        - report.seconds
        - create.detail["loadPlanSeconds"]
        - create.detail["loadFleetSeconds"],
    )
    phases.append(create)

    def apply_path() -> tuple[run.PlanResult, run.ApplyReport | None, dict[str, int]]:
        """`fleetctl apply PATH --auto-approve`: plan, and apply only when there are changes."""
        c = ctx()
        result = run.plan(fleet, c)
        rep = (
            run.apply(result.plan, c, fleet, {k: m.spec for k, m in result.fleet.targets().items()})
            if result.plan.has_changes
            else None
        )
        return result, rep, _provider_calls({f"{k[0]}/{k[1]}": p.stats() for k, p in c.providers.items()})

    if report.failed or report.skipped:
        # moto's IoT backend is not thread-safe: under concurrent requests some calls die with a 500 page
        # ("OrderedDict mutated during iteration"). Converge them the way a user would, and say so.
        sizes = listing_sizes(iot)
        retry = Phase("apply (retry failed)")

        def converge() -> None:
            calls: collections.Counter[str] = collections.Counter()
            for rounds in range(1, RETRY_ROUNDS + 1):
                result, rep, used = apply_path()
                calls.update(used)
                retry.detail.setdefault("changesPerRound", []).append(len(result.plan.changes))
                retry.detail.update(
                    rounds=rounds, failed=len(rep.failed) if rep else 0, skipped=len(rep.skipped) if rep else 0
                )
                if rep is None or rep.ok:
                    break
            retry.calls = dict(sorted(calls.items()))

        meter.run(retry, converge)
        retry.aws_calls = aws_equivalent(retry.calls, sizes)
        retry.changes = retry.detail["changesPerRound"][0]
        phases.append(retry)

    after, _ = plan_phase("plan (after apply)")
    phases.append(after)

    sizes = listing_sizes(iot)
    again = Phase("re-apply (unchanged)")
    result, _, again.calls = meter.run(again, apply_path)
    again.aws_calls = aws_equivalent(again.calls, sizes)
    again.changes = len(result.plan.changes)
    phases.append(again)
    return phases


# -------------------------------------------------------------------------------- the per-device script
SCRIPT_POLICY = "PubSubToAny"
SCRIPT_POLICY_DOC = '{"Version": "2012-10-17","Statement": [{"Effect": "Allow","Action": ["iot:*"],"Resource": ["*"]}]}'
SCRIPT_OWNER = "owner_name"


class CountingClient:
    """A boto3 IoT client that counts every call it makes, and the calls the service rejected."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()

    def __getattr__(self, op: str) -> Callable[..., Any]:
        method = getattr(self._client, op)

        def call(**kwargs: Any) -> Any:
            self.calls[op] += 1
            try:
                return method(**kwargs)
            except Exception:
                self.errors[op] += 1
                raise

        return call


def register_device(client: Any, device_id: str) -> None:
    """registerDevice.py's boto3 sequence for one device (IoTReady, research/quotas.md §5), call for call.

    The script's bare `except:` clauses are `except Exception` here (same effect on service errors). It writes
    the certificate and both keys to aws_credentials/<id>.*; this reimplementation keeps nothing.
    """
    try:
        client.create_policy(policyName=SCRIPT_POLICY, policyDocument=SCRIPT_POLICY_DOC)
    except Exception:
        pass  # "Reusing existing policy."
    try:
        response = client.list_thing_principals(thingName=device_id)
        for principal in response["principals"]:
            principal_id = principal.split("/")[1]
            client.detach_thing_principal(thingName=device_id, principal=principal)
            client.detach_policy(policyName=SCRIPT_POLICY, target=principal)
            client.update_certificate(certificateId=principal_id, newStatus="INACTIVE")
            client.delete_certificate(certificateId=principal_id, forceDelete=True)
    except Exception:
        pass
    certs = client.create_keys_and_certificate(setAsActive=True)
    certificate_arn = certs["certificateArn"]
    del certs  # the keys are dropped, never written
    client.attach_principal_policy(policyName=SCRIPT_POLICY, principal=certificate_arn)
    attributes = {"attributes": {"owner": SCRIPT_OWNER}}
    try:
        client.create_thing(thingName=device_id, thingTypeName=THING_TYPE, attributePayload=attributes)
    except Exception:
        client.delete_thing(thingName=device_id)
        client.create_thing(thingName=device_id, thingTypeName=THING_TYPE, attributePayload=attributes)
    client.attach_thing_principal(thingName=device_id, principal=certificate_arn)


def run_script(name: str, box: Sandbox, names: list[str], budget: float, meter: Meter) -> Phase:
    """Devices one after another, as prepare.sh runs the script once per flashed device, within `budget` s."""
    client = CountingClient(boto3.client("iot", region_name=REGION, endpoint_url=box.endpoint_url))
    phase = Phase(name)
    done, failed = 0, 0

    def loop() -> None:
        nonlocal done, failed
        deadline = time.perf_counter() + budget
        for device in names:
            try:
                register_device(client, device)
            except Exception:  # the script prints "Try again" and exits 1
                failed += 1
            done += 1
            if time.perf_counter() > deadline:
                break

    meter.run(phase, loop)
    phase.calls = _api_counts(client.calls)
    phase.aws_calls = dict(phase.calls)  # the script makes no list calls moto leaves unpaged
    phase.detail = {
        "devices": done,
        "of": len(names),
        "failedDevices": failed,
        "rejectedCalls": _api_counts(client.errors),
    }
    return phase


# -------------------------------------------------------------------------------------------------- report
def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}" if abs(v) >= 0.1 or v == 0 else f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _scaled(phase: Phase, n: int) -> Floor:
    """The floor for the whole fleet when a script pass covered only part of it (calls per device are fixed)."""
    done = phase.detail.get("devices") or n
    return Floor.of({api: round(c * n / done) for api, c in phase.aws_calls.items()})


def render(n: int, fleetctl: list[Phase], script: list[Phase], meta: Mapping[str, Any]) -> str:
    by = {p.name: p for p in fleetctl}
    out = [
        f"== AWS benchmark: {n:,} things — fleetctl {meta['engine']} vs registerDevice.py, against moto "
        f"{meta['moto']} on {meta['endpoint']} ({meta['cpus']} CPUs, workers={meta['workers']}, "
        f"policy on {meta['policyOn']}) =="
    ]
    out.append(
        "moto is NOT rate limited: 'floor s' is the time AWS's default per-API quotas would impose on the "
        "counted calls (research/quotas.md §8: calls/TPS, binding API = the largest term);\n'wall s' is the "
        "measured local time (engine + moto + loopback). Expect at least max(floor, wall) on AWS.\n"
    )
    rows = []
    for p in fleetctl + script:
        per = p.detail.get("devices") or n
        rows.append(
            [
                p.name,
                p.seconds,
                p.total if p.calls else None,
                p.total / per if p.calls else None,
                p.mutating if p.calls else None,
                p.changes,
                p.cpu_seconds,
                p.server_cpu_seconds,
                p.peak_rss_mb,
                p.load_avg,
                p.floor.seconds if p.calls else None,
                p.floor.binding if p.calls else "",
            ]
        )
    out.append(
        _table(
            [
                "phase",
                "wall s",
                "calls",
                "calls/thing",
                "mutating",
                "changes",
                "cpu s",
                "moto cpu s",
                "peak RSS MB",
                "load avg",
                "floor s",
                "binding API (default TPS)",
            ],
            rows,
        )
    )
    notes = []
    for p in script:
        if p.detail["devices"] < p.detail["of"]:
            notes.append(
                f"'{p.name}' covered {p.detail['devices']:,} of {p.detail['of']:,} devices within the "
                "--script-budget; its per-device figures are over those, its floor is scaled to all."
            )
    c = by["apply (create)"].detail
    notes.append(
        f"apply (create): {c['applied']:,} changes applied, {c['failed']} failed, {c['skipped']} skipped "
        f"with {c['workers']} workers; of its wall time: load plan {c['loadPlanSeconds']:.2f} s, re-load "
        f"fleet for Target specs {c['loadFleetSeconds']:.2f} s, stale check {c['staleCheckSeconds']:.2f} s, "
        f"changes {c['applySeconds']:.2f} s; {c['journalEntries']:,} journal entries (fsync each, "
        f"≈{c['journalSecondsEstimate']:.1f} s serialised)."
    )
    retry = by.get("apply (retry failed)")
    if retry is not None:
        notes.append(
            f"apply (create): moto failed {c['failed']:,} changes and {c['skipped']:,} dependants were skipped "
            f"(e.g. {c['failures'][0] if c['failures'] else '-'}). moto's IoT backend is not thread-safe: "
            "a request that iterates a table while another inserts dies with an HTML 500 page, which the "
            f"engine reports as 'does not implement'. 'apply (retry failed)' ran `fleetctl apply PATH` "
            f"{retry.detail['rounds']} time(s) to converge them ({retry.detail['failed']} still failing)."
        )
    e = by["plan (empty account)"].detail
    notes.append(
        f"plan (empty account): read {e['readSeconds']:.2f} s; plan file {e['planFileBytes'] / 1e6:.1f} MB; "
        f"the plan's own estimate: {e['estimate'] or '-'}"
    )
    notes.append(f"plan (after apply): read {by['plan (after apply)'].detail['readSeconds']:.2f} s.")
    out.append("\n".join("note: " + s for s in notes) + "\n")

    apis = sorted({a for p in fleetctl + script for a in p.aws_calls})
    rows = []
    for api in apis:
        q = quota(api)
        row: list[Any] = [api, f"{q.tps:g} [{q.tag}]"]
        for p in fleetctl[1:] + script:
            measured, aws = p.calls.get(api, 0), p.aws_calls.get(api, 0)
            row.append(f"{aws:,}" + (f" ({measured:,})" if measured != aws else "") if aws else "")
        rows.append(row)
    out.append(
        "Calls per API and phase (AWS-equivalent pages; the sandbox's measured count in parentheses where "
        "it answered in one response a list AWS pages at 250):"
    )
    out.append(_table(["API", "TPS [tag]"] + [p.name for p in fleetctl[1:] + script], rows) + "\n")

    create, rerun = script[0], script[1]
    f_create = Floor.of(
        {
            a: by["plan (empty account)"].aws_calls.get(a, 0) + by["apply (create)"].aws_calls.get(a, 0)
            for a in set(by["plan (empty account)"].aws_calls) | set(by["apply (create)"].aws_calls)
        }
    )
    f_create_sum = by["plan (empty account)"].floor.seconds + by["apply (create)"].floor.seconds
    fc_wall = by["plan (empty account)"].seconds + by["apply (create)"].seconds
    again = by["re-apply (unchanged)"]
    s_create_floor, s_rerun_floor = _scaled(create, n), _scaled(rerun, n)
    s_create_wall = create.seconds * n / create.detail["devices"]
    s_rerun_wall = rerun.seconds * n / rerun.detail["devices"]
    creds = rerun.calls.get("CreateKeysAndCertificate", 0) * n // max(1, rerun.detail["devices"])
    fc_create_calls = by["plan (empty account)"].total + by["apply (create)"].total
    rows = [
        ["calls/device, create (plan + apply)", fc_create_calls / n, create.total / create.detail["devices"]],
        [
            "  mutating calls/device, create",
            by["apply (create)"].mutating / n,
            create.mutating / create.detail["devices"],
        ],
        *([["  + calls to retry what moto failed", retry.total, None]] if retry is not None else []),
        ["calls/device, re-run of the same fleet", again.total / n, rerun.total / rerun.detail["devices"]],
        ["mutating calls on re-run (whole fleet)", again.mutating, round(rerun.mutating * n / rerun.detail["devices"])],
        ["credentials rotated on re-run", 0, creds],
        ["wall s, create (local, moto)", fc_wall, s_create_wall],
        ["wall s, re-run (local, moto)", again.seconds, s_rerun_wall],
        ["floor s, create (AWS default quotas)", f_create_sum, s_create_floor.seconds],
        ["  binding API, create", f"{by['apply (create)'].floor.binding}", s_create_floor.binding],
        ["floor s, re-run (AWS default quotas)", again.floor.seconds, s_rerun_floor.seconds],
        ["  binding API, re-run", again.floor.binding, s_rerun_floor.binding],
        [
            "local wall / floor, create",
            fc_wall / f_create_sum if f_create_sum else None,
            s_create_wall / s_create_floor.seconds if s_create_floor.seconds else None,
        ],
        [
            "local wall / floor, re-run",
            again.seconds / again.floor.seconds if again.floor.seconds else None,
            s_rerun_wall / s_rerun_floor.seconds if s_rerun_floor.seconds else None,
        ],
    ]
    out.append("Side by side (script figures scaled to the whole fleet where a pass was sampled):")
    out.append(_table(["", "fleetctl", "script (registerDevice.py)"], rows))
    out.append(
        f"floor s, create, fleetctl: phases summed (plan, then apply); a single max over both phases would be "
        f"{f_create.seconds:,.1f} s ({f_create.binding})."
    )
    out.append("local wall / floor < 1 means the quotas, not fleetctl or the script, would set the pace on AWS.\n")
    return "\n".join(out)


def quota_legend(used: set[str]) -> str:
    rows = [
        [api, f"{quota(api).tps:g}", quota(api).tag, quota(api).code or "", quota(api).source] for api in sorted(used)
    ]
    return (
        "Default TPS per API (engine/ratelimit.py; V verified current default, H 2019 guide only, U assumed):\n"
        + _table(["API", "TPS", "tag", "quota code", "source"], rows)
        + "\n"
    )


# ----------------------------------------------------------------------------------------------------- main
def bench_one(n: int, args: argparse.Namespace, box: Sandbox, meter: Meter, meta: dict[str, Any]) -> dict[str, Any]:
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] N={n:,}: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix=f"fleetctl-bench-{n}-", dir=args.work_dir))
    try:
        t0 = time.perf_counter()
        cert_dir = device_certificates(Path(args.cert_cache), n)
        fleet = work / "fleet"
        write_fleet(fleet, n, cert_dir, args.policy_on)
        setup_seconds = time.perf_counter() - t0
        log(f"certificates and manifests ready in {setup_seconds:.1f} s; fleetctl phases")
        box.reset()
        fleetctl = run_fleetctl(fleet, work, box, n, args.workers, meter)
        log("fleetctl done; per-device script (create)")
        box.reset()
        setup = box.boto()
        setup.create_thing_type(thingTypeName=THING_TYPE)  # registerDevice.py expects the type to exist
        names = [thing_name(i, n) for i in range(n)]
        script = [run_script("script (create)", box, names, args.script_budget, meter)]
        log("per-device script (re-run)")
        script.append(run_script("script (re-run)", box, names, args.script_budget, meter))
        text = render(n, fleetctl, script, {**meta, "endpoint": box.endpoint_url})
        by = {p.name: p for p in fleetctl}
        retry = by.get("apply (retry failed)")
        ok = (
            by["plan (after apply)"].changes == 0
            and by["re-apply (unchanged)"].mutating == 0
            and (retry is None or (retry.detail["failed"] == 0 and retry.detail["skipped"] == 0))
        )
        if not ok:
            text += "\nFAIL: the fleet did not converge: the plan after apply is not empty or the re-apply mutated.\n"
        print(text, flush=True)
        used = {a for p in fleetctl + script for a in p.aws_calls}
        return {
            "things": n,
            "ok": ok,
            "setupSeconds": setup_seconds,
            "usedApis": sorted(used),
            "fleetctl": [p.to_json(n) for p in fleetctl],
            "script": [p.to_json(n) for p in script],
        }
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--things", default="1000,10000", help="fleet sizes, comma separated (default 1000,10000)")
    parser.add_argument("--endpoint-url", help="a running loopback sandbox (default: start moto for the run)")
    parser.add_argument("--workers", type=int, default=run.Context().workers, help="apply workers (Context.workers)")
    parser.add_argument(
        "--policy-on",
        choices=("cert", "group"),
        default="cert",
        help="attach the policy to each certificate (like the script) or to the thing group",
    )
    parser.add_argument(
        "--script-budget",
        type=float,
        default=300.0,
        help="seconds per script pass; a pass stops after the device that crosses it (default 300)",
    )
    parser.add_argument(
        "--cert-cache",
        default=str(Path(tempfile.gettempdir()) / "fleetctl-bench-certs"),
        help="folder caching the generated public certificates, per N",
    )
    parser.add_argument("--work-dir", default=None, help="where the temporary fleet and journal go")
    parser.add_argument("--keep", action="store_true", help="keep the generated fleet, plan file and journal")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "").replace(",", "")) for s in args.things.split(",") if s.strip()]
    for key, value in bench_env("http://127.0.0.1").items():  # boto3 reads credentials from the process env
        if key.startswith("AWS_") and key != "AWS_ENDPOINT_URL":
            os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    state = Path(tempfile.mkdtemp(prefix="fleetctl-bench-moto-"))
    box = Sandbox(args.endpoint_url, state)
    meter = Meter(box.pid)
    from importlib.metadata import version

    meta = {
        "engine": version("fleetctl"),
        "moto": moto.__version__,
        "boto3": boto3.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "policyOn": args.policy_on,
        "scriptBudgetSeconds": args.script_budget,
    }
    runs = []
    try:
        for n in sizes:
            runs.append(bench_one(n, args, box, meter, meta))
    finally:
        box.stop()
        shutil.rmtree(state, ignore_errors=True)
    used = {a for r in runs for a in r["usedApis"]}
    print(quota_legend(used))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"meta": meta, "quotas": {a: asdict(quota(a)) for a in sorted(used)}, "runs": runs}, indent=2)
            + "\n"
        )
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

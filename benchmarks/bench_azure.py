"""Azure benchmark of issue 3: API calls per device and wall time of plan and apply against the local IoT Hub
emulator, beside the floor the S1 quotas would impose (research/quotas.md §8.3).

Why this exists: DESIGN §4 says performance is measured by benchmarks that print figures, not by timed unit tests.
This one drives the real engine in-process (engine.run.plan / engine.run.apply with a fresh Context per phase, the
way separate CLI invocations work, so the provider's call counters are readable) through the real azure-iot-hub SDK
against fleetctl's emulator, started as a child process (`python -m engine.sandbox.azure_emulator`) so that its CPU
is not counted as the engine's. For each fleet size N it prints, per phase:

- wall time, API calls (total, per device, mutating) by IoT Hub throttle class, changes, client and emulator CPU;
- the **floor**: the time an S1×1 hub's throttles (engine.quotas.azure_hub_quotas, quotas.md §2.1: registry
  100/min, query 20/min, twin updates 50/s, twin reads 100/s) would impose on those calls, the binding class being
  the largest term (quotas.md §8: independent buckets);
- which path the creates took: bulk registry calls (`POST /devices`, ≤100 devices each, identity + twin + ownership
  tag in one entry). Whether IoT Hub counts a bulk call once or once per device is not documented (quotas.md §11),
  so the floor of the create is printed both ways;
- a baseline on the same emulator: the per-device script an operator runs today (`az iot hub device-identity
  create` then `az iot hub device-twin update`, two calls per device), for up to --baseline-devices devices.

The emulator is not rate limited here, so "wall" is local time (engine + emulator + loopback HTTPS) and the floor is
what the real quotas would add; the printout keeps the two apart.

`--paths` (issue 6, W11) instead compares the three ways an apply creates N devices, on the **quota-faithful**
emulator (the options `fleetctl sandbox up --quota-faithful` gives it: IoT Hub S1×1 throttles, 50 ms latency,
import/export jobs at ~1,000,000 devices per hour, quotas.md §2.2 [P]) with fleetctl paced at the same quotas
(FLEETCTL_RATE_LIMIT=on, FLEETCTL_AZURE_HUB_TIER=S1:1): one import job (the Target's `azure.importExport`), bulk
registry calls (≤100 devices each), and individual changes (one registry request per device; measured at
--individual-max devices and extrapolated linearly, because 10,000 of them take 100 minutes). For each it prints the
apply's calls by throttle class, throttles, wall time, the floor of the path and η = floor / wall:
individual N / (100/min); bulk ⌈N/100⌉ / (100/min) as the emulator counts a bulk call once (per device it would be
the individual floor, quotas.md §11); import job N / the job throughput. Each path starts from an empty hub; the
plan is made, saved and applied as `fleetctl apply PLANFILE` does (stale check included, reported apart), and the
import-job path is re-planned to show it converged.

Run: .venv/bin/python benchmarks/bench_azure.py --devices 1000,10000 [--json out.json]
     .venv/bin/python benchmarks/bench_azure.py --paths --devices 1000,10000 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_aws import Meter, _table  # noqa: E402  (the AWS benchmark's wall/CPU/RSS meter and table layout)

from engine import run
from engine.manifest.fleet import load_fleet
from engine.plan.model import load_plan
from engine.providers.azure.client import AzureClient
from engine.providers.azure.provider import make_provider
from engine.quotas import azure_hub_quotas, azure_operation_class
from engine.sandbox.manager import quota_args

TARGET = "bench"
MUTATING = ("create", "update", "put", "delete", "bulk", "generate", "verify")


# ------------------------------------------------------------------------------------------------ measuring
@dataclass
class Floor:
    seconds: float
    binding: str

    @classmethod
    def of(cls, by_class: Mapping[str, float], tier: str = "S1", units: int = 1) -> Floor:
        quotas = azure_hub_quotas(tier, units)
        terms = {c: n / quotas[c].tps for c, n in by_class.items() if n and c in quotas}
        if not terms:
            return cls(0.0, "-")
        binding = max(sorted(terms), key=lambda c: terms[c])
        return cls(terms[binding], binding)


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)  # by wire operation (AzureClient names)
    changes: int | None = None
    cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    peak_rss_mb: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def mutating(self) -> int:
        return sum(n for op, n in self.calls.items() if op.rsplit(".", 1)[-1].startswith(MUTATING))

    @property
    def by_class(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for op, n in self.calls.items():
            out[azure_operation_class(op)] += n
        return dict(sorted(out.items()))

    def floor(self, per_device_bulk: bool = False) -> Floor:
        """The S1×1 floor; `per_device_bulk` counts each device of a bulk call as one registry operation."""
        classes: dict[str, float] = dict(self.by_class)
        if per_device_bulk and self.detail.get("bulkDevices"):
            classes["registry"] += self.detail["bulkDevices"] - self.calls.get("bulk_create_or_update_devices", 0)
        return Floor.of(classes)

    def to_json(self, devices: int) -> dict[str, Any]:
        floor, per_device = self.floor(), self.floor(per_device_bulk=True)
        return {
            **asdict(self),
            "byClass": self.by_class,
            "totalCalls": self.total,
            "mutatingCalls": self.mutating,
            "callsPerDevice": self.total / devices,
            "floorSeconds": floor.seconds,
            "floorBinding": floor.binding,
            "floorSecondsBulkPerDevice": per_device.seconds,
        }


# ------------------------------------------------------------------------------------------------ sandbox
class Emulator:
    """fleetctl's Azure emulator in a child process on loopback (its CPU is not the engine's)."""

    def __init__(self, work: Path, extra: list[str] | None = None) -> None:
        self.dir = work / "emulator"
        self.dir.mkdir(parents=True)
        self.log = open(self.dir / "azure.log", "ab")  # noqa: SIM115 - the child writes to it until stop() closes it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.sandbox.azure_emulator", "--state-dir", str(self.dir), *(extra or [])],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        info = self.dir / "azure.json"
        while not info.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Azure emulator did not start; see {self.dir / 'azure.log'}")
            time.sleep(0.1)
        time.sleep(0.1)
        self.info = json.loads(info.read_text())

    def env(self, work: Path) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLEETCTL_")},
            "FLEETCTL_HUB_CONNECTION_STRING": self.info["hub_connection_string"],
            "FLEETCTL_DPS_CONNECTION_STRING": self.info["dps_connection_string"],
            "REQUESTS_CA_BUNDLE": self.info["ca_bundle"],
            "FLEETCTL_ARM_ENDPOINT": self.info["arm_base_url"],
            "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
            "FLEETCTL_GIT_COMMIT": "0" * 40,
            "FLEETCTL_JOURNAL": str(work / "journal.jsonl"),
        }

    def control(self, method: str, path: str) -> Any:
        response = requests.request(
            method, f"https://{self.info['host']}/_emulator/{path}", verify=self.info["ca_pem_path"], timeout=30
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def client(self) -> AzureClient:
        return AzureClient(self.info["hub_connection_string"], ca_bundle=self.info["ca_pem_path"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ------------------------------------------------------------------------------------------------- the fleet
def device_id(i: int) -> str:
    return f"nina-{i:06d}"


def target_yaml(extra: str = "") -> str:
    """The benchmark's Target: the emulated hub, its connection string by reference; `extra` lines under azure:."""
    return f"""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: {TARGET}}}
spec:
  azure:
    hub: {{hostName: fleetctl-sandbox-hub.azure-devices.net, connectionString: {{env: FLEETCTL_HUB_CONNECTION_STRING}}}}
{extra}"""


def write_fleet(root: Path, n: int) -> None:
    """A Target and N devices (X.509 CA-signed, twin tags and desired properties), 1,000 per file."""
    (root / "devices").mkdir(parents=True)
    (root / "targets.yaml").write_text(target_yaml())
    for start in range(0, n, 1000):
        docs = [
            f"apiVersion: azure.fleetctl.io/v1\nkind: Device\n"
            f"metadata: {{name: {device_id(i)}, target: {TARGET}}}\nspec:\n  authentication: {{type: x509CA}}\n  tags: {{site: paris, batch: '{i // 1000}'}}\n"
            f"  desired: {{telemetryInterval: 30}}\n"
            for i in range(start, min(n, start + 1000))
        ]
        (root / "devices" / f"devices-{start // 1000:03d}.yaml").write_text("---\n".join(docs))


def _stats(ctx: run.Context) -> tuple[dict[str, int], dict[str, int]]:
    calls: Counter[str] = Counter()
    paths: Counter[str] = Counter()
    for provider in ctx.providers.values():
        stats = provider.stats()
        calls.update(stats.get("calls", {}))
        paths.update(stats.get("paths", {}))
    return dict(calls), dict(paths)


def run_fleetctl(fleet: Path, work: Path, emulator: Emulator, n: int, workers: int, meter: Meter) -> list[Phase]:
    env = emulator.env(work)

    def ctx() -> run.Context:
        return run.Context(env=env, journal_path=work / "journal.jsonl", workers=workers)

    phases: list[Phase] = []
    load = Phase("load manifests")
    loaded = meter.run(load, lambda: run.load(fleet, ctx()))
    load.detail = {"manifests": len(loaded.manifests), "files": sum(1 for _ in fleet.rglob("*.yaml"))}
    phases.append(load)

    def plan_phase(name: str) -> tuple[Phase, run.PlanResult]:
        phase, c = Phase(name), ctx()
        result = meter.run(phase, lambda: run.plan(fleet, c))
        phase.calls, _ = _stats(c)
        phase.changes = len(result.plan.changes)
        phase.detail = {"readSeconds": result.stats["readSeconds"], "summary": result.plan.counts()}
        return phase, result

    def apply_file(name: str, plan_file: Path) -> Phase:
        """`fleetctl apply PLANFILE`: load the plan and the fleet's Targets, stale check, apply."""
        phase, c = Phase(name), ctx()

        def go() -> run.ApplyReport:
            specs = {k: m.spec for k, m in load_fleet(fleet, env, resolve_secrets=False).targets().items()}
            return run.apply(load_plan(str(plan_file)), c, fleet, specs, check=True)

        report = meter.run(phase, go)
        phase.calls, paths = _stats(c)
        phase.changes = len(report.applied)
        phase.detail = {
            "applySeconds": report.seconds,
            "failed": len(report.failed),
            "skipped": len(report.skipped),
            "failures": [f"{a}: {m}" for a, m in report.failed[:3]],
            "bulkCalls": paths.get("bulk-create calls", 0),
            "bulkDevices": paths.get("bulk-create devices", 0),
        }
        return phase

    empty, first = plan_phase("plan (empty hub)")
    plan_file = work / "plan.json"
    plan_file.write_text(first.plan.dumps())
    empty.detail["planFileBytes"] = plan_file.stat().st_size
    phases.append(empty)
    phases.append(apply_file("apply (create)", plan_file))
    phases.append(plan_phase("plan (after apply)")[0])

    again, c = Phase("re-apply (unchanged)"), ctx()

    def reapply() -> run.PlanResult:
        result = run.plan(fleet, c)
        if result.plan.has_changes:
            run.apply(result.plan, c, fleet, {k: m.spec for k, m in result.fleet.targets().items()})
        return result

    result = meter.run(again, reapply)
    again.calls, _ = _stats(c)
    again.changes = len(result.plan.changes)
    phases.append(again)

    for path in (fleet / "devices").glob("*.yaml"):
        path.write_text(path.read_text().replace("telemetryInterval: 30", "telemetryInterval: 15"))
    changed, result = plan_phase("plan (desired changed on every device)")
    plan_file.write_text(result.plan.dumps())
    phases.append(changed)
    phases.append(apply_file("apply (twin update)", plan_file))
    return phases


def run_baseline(emulator: Emulator, count: int, meter: Meter) -> Phase:
    """What an operator scripts today, per device: `az iot hub device-identity create --am x509_ca` then
    `az iot hub device-twin update --tags … --desired …` (two registry/twin calls, one device after another)."""
    emulator.control("POST", "reset")
    client = emulator.client()
    phase = Phase(f"script: create + twin update ×{count}")

    def go() -> None:
        for i in range(count):
            client.create_device(f"script-{i:06d}", {"type": "x509CA"})
            client.update_twin(
                f"script-{i:06d}",
                {"tags": {"site": "paris"}, "properties": {"desired": {"telemetryInterval": 30}}},
                None,
            )

    meter.run(phase, go)
    phase.calls = dict(client.calls)
    phase.changes = count
    return phase


# ------------------------------------------------------------------------------------------------- printing
def render(n: int, phases: list[Phase], baseline: Phase | None) -> str:
    rows = []
    for p in phases + ([baseline] if baseline else []):
        devices = baseline.changes if p is baseline and baseline else n
        floor = p.floor()
        rows.append(
            [
                p.name,
                p.seconds,
                p.total,
                p.total / devices,
                p.mutating,
                p.changes,
                p.cpu_seconds,
                p.server_cpu_seconds,
                round(p.peak_rss_mb),
                floor.seconds,
                floor.binding,
                (floor.seconds / p.seconds) if p.seconds and floor.seconds else None,
            ]
        )
    out = [
        f"\n=== {n:,} devices ===",
        _table(
            [
                "phase",
                "wall s",
                "calls",
                "calls/dev",
                "mutating",
                "changes",
                "client CPU s",
                "emulator CPU s",
                "RSS MB",
                "S1 floor s",
                "binding",
                "floor/wall",
            ],
            rows,
        ),
        "",
    ]
    create = next(p for p in phases if p.name == "apply (create)")
    per_call, per_device = create.floor(), create.floor(per_device_bulk=True)
    out.append(
        f"create path: bulk registry API, {create.detail['bulkCalls']} call(s) for "
        f"{create.detail['bulkDevices']} devices (≤100 per call; identity, twin tags/desired and ownership "
        f"tag in one entry); failed {create.detail['failed']}."
    )
    out.append(
        f"  S1×1 floor if a bulk call counts once: {per_call.seconds:.1f} s; if it counts per device: "
        f"{per_device.seconds:.1f} s ({per_device.seconds / 60:.1f} min) — quotas.md §11 leaves this open."
    )
    if baseline:
        scaled = baseline.floor().seconds * n / baseline.changes
        out.append(
            f"  per-device script: {baseline.total / baseline.changes:.1f} calls/device, "
            f"{baseline.seconds / baseline.changes * 1000:.2f} ms/device here; its S1×1 floor for {n:,} "
            f"devices: {scaled:.0f} s ({scaled / 60:.1f} min)."
        )
    for p in phases:
        out.append(f"{p.name}: calls by operation {dict(sorted(p.calls.items()))}")
    return "\n".join(out)


def bench_one(n: int, args: argparse.Namespace, meter_for: Callable[[Emulator], Meter]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"fleetctl-bench-azure-{n}-"))
    emulator = Emulator(work)
    try:
        meter = meter_for(emulator)
        fleet = work / "fleet"
        write_fleet(fleet, n)
        phases = run_fleetctl(fleet, work, emulator, n, args.workers, meter)
        server = emulator.control("GET", "stats")
        baseline = run_baseline(emulator, min(n, args.baseline_devices), meter) if args.baseline_devices else None
        print(render(n, phases, baseline), flush=True)
        print(f"emulator requests over the fleetctl phases, by class: {server['requests']}", flush=True)
        return {
            "devices": n,
            "workers": args.workers,
            "phases": [p.to_json(n) for p in phases],
            "baseline": baseline.to_json(baseline.changes or 1) if baseline else None,
            "emulator": server,
        }
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------- apply paths (W11)
PATHS = ("import-job", "bulk", "individual")


def write_paths_fleet(root: Path, n: int, container_env: str | None, threshold: int, poll: float) -> None:
    """A Target (with an import/export container when `container_env` is set) and N devices from a ThingSet range
    (identity, twin tags and desired properties: what a create carries whichever the path)."""
    root.mkdir(parents=True)
    jobs = (
        (
            f"    importExport: {{containerUrl: {{env: {container_env}}}, threshold: {threshold}, "
            f"pollSeconds: {poll}, timeoutSeconds: 7200}}\n"
        )
        if container_env
        else ""
    )
    (root / "fleet.yaml").write_text(
        target_yaml(jobs)
        + f"""\
---
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {{name: nina}}
spec:
  range: {{start: 0, count: {n}, width: 6}}
  template:
    - apiVersion: azure.fleetctl.io/v1
      kind: Device
      metadata: {{name: "nina-${{id}}", target: {TARGET}}}
      spec:
        authentication: {{type: x509CA}}
        tags: {{site: paris}}
        desired: {{telemetryInterval: 30}}
"""
    )


def path_floor(path: str, n: int, registry_calls: int, job_rate: float) -> float:
    registry = azure_hub_quotas("S1", 1)["registry"].tps
    if path == "import-job":
        return n / job_rate
    return (registry_calls if path == "bulk" else n) / registry


def run_path(path: str, n: int, emulator: Emulator, work: Path, args: argparse.Namespace, meter: Meter) -> Phase:
    """Plan and `apply PLANFILE` N device creates on an empty quota-faithful hub through one path."""
    emulator.control("POST", "reset")
    fleet = work / f"fleet-{path}-{n}"
    write_paths_fleet(
        fleet, n, "FLEETCTL_IMPORT_CONTAINER_URL" if path == "import-job" else None, args.threshold, args.poll_seconds
    )
    env = {
        **emulator.env(work),
        "FLEETCTL_RATE_LIMIT": "on",
        "FLEETCTL_AZURE_HUB_TIER": "S1:1",
        "FLEETCTL_IMPORT_CONTAINER_URL": emulator.info["import_container_url"],
    }
    factory = None
    if path == "individual":

        def factory(kind: str, target: str, spec: Any, env: Mapping[str, str], **_: Any) -> Any:
            return make_provider(target, spec, env, bulk=False)

    def ctx() -> run.Context:
        return run.Context(
            env=env, journal_path=work / f"journal-{path}-{n}.jsonl", workers=args.workers, provider_factory=factory
        )

    planned = run.plan(fleet, ctx())
    plan_file = work / f"plan-{path}-{n}.json"
    plan_file.write_text(planned.plan.dumps())
    before = emulator.control("GET", "stats")
    phase, c = Phase(f"{path} ×{n:,}"), ctx()

    def go() -> run.ApplyReport:
        specs = {k: m.spec for k, m in load_fleet(fleet, env, resolve_secrets=False).targets().items()}
        return run.apply(load_plan(str(plan_file)), c, fleet, specs, check=True)

    report = meter.run(phase, go)
    after = emulator.control("GET", "stats")
    stats = next(iter(c.providers.values())).stats()
    phase.calls, phase.changes = stats["calls"], len(report.applied)
    registry_calls = sum(v for op, v in phase.calls.items() if azure_operation_class(op) == "registry")
    floor = path_floor(path, n, registry_calls, args.job_rate)
    throttled = {
        k: v - before["throttled"].get(k, 0) for k, v in after["throttled"].items() if v - before["throttled"].get(k, 0)
    }
    phase.detail = {
        "devices": n,
        "applySeconds": report.seconds,
        "failed": len(report.failed),
        "failures": [f"{a}: {m}" for a, m in report.failed[:3]],
        "floorSeconds": floor,
        "eta": floor / report.seconds if report.seconds else None,
        "throttledByEmulator": throttled,
        "retriesOn429": stats["throttles"],
        "paths": stats.get("paths", {}),
        "jobDeviceOperations": after["jobs"]["deviceOperations"],
        "importJobs": stats.get("importJobs"),
        "rateLimiter": stats.get("rateLimiter"),
    }
    if path == "import-job" and args.verify:
        again = run.plan(fleet, ctx())
        phase.detail["replanChanges"] = len(again.plan.changes)
    return phase


def render_paths(rows: list[Phase], args: argparse.Namespace) -> str:
    table = []
    for p in rows:
        d = p.detail
        table.append(
            [
                p.name,
                d["devices"],
                p.changes,
                d["failed"],
                p.total,
                p.mutating,
                ", ".join(f"{k} {v}" for k, v in p.by_class.items()),
                sum(d["throttledByEmulator"].values()),
                d["applySeconds"],
                p.seconds - d["applySeconds"],
                d["floorSeconds"],
                d["eta"],
            ]
        )
    out = [
        _table(
            [
                "path",
                "N",
                "applied",
                "failed",
                "calls",
                "mutating",
                "calls by class",
                "429s",
                "apply s",
                "stale check s",
                "floor s",
                "η",
            ],
            table,
        )
    ]
    for p in rows:
        if p.name.startswith("individual") and args.extrapolate:
            per = p.detail["applySeconds"] / p.detail["devices"]
            for n in args.extrapolate:
                out.append(
                    f"individual ×{n:,} (extrapolated from ×{p.detail['devices']}): ~{per * n:,.0f} s "
                    f"({per * n / 60:.0f} min), floor {n / azure_hub_quotas('S1', 1)['registry'].tps:,.0f} s"
                )
        if p.detail.get("replanChanges") is not None:
            out.append(
                f"{p.name}: re-plan after the apply shows {p.detail['replanChanges']} change(s); jobs "
                f"{p.detail['importJobs']}"
            )
    return "\n".join(out)


def bench_paths(args: argparse.Namespace) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="fleetctl-bench-azure-paths-"))
    extra = quota_args("azure")
    extra[extra.index("--job-rate") + 1] = f"{args.job_rate:g}"
    emulator = Emulator(work, extra)
    rows: list[Phase] = []
    try:
        meter = Meter(emulator.proc.pid)
        sizes = [int(x) for x in args.devices.split(",") if x.strip()]
        args.extrapolate = [n for n in sizes if n > args.individual_max]
        for n in sizes:
            for path in PATHS:
                if path == "individual" and n > args.individual_max:
                    continue
                rows.append(run_path(path, n, emulator, work, args, meter))
                print(render_paths(rows[-1:], argparse.Namespace(extrapolate=[])), flush=True)
        if args.individual_max and all(n > args.individual_max for n in sizes):
            rows.append(run_path("individual", args.individual_max, emulator, work, args, meter))
        print("\n" + render_paths(rows, args), flush=True)
        return [{**p.to_json(p.detail["devices"]), "path": p.name.split(" ")[0]} for p in rows]
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="1000,10000", help="comma-separated fleet sizes")
    parser.add_argument("--workers", type=int, default=8, help="apply concurrency (engine.run.Context.workers)")
    parser.add_argument(
        "--baseline-devices",
        type=int,
        default=1000,
        help="devices the per-device script creates (0: skip); its floor is scaled to N",
    )
    parser.add_argument(
        "--paths",
        action="store_true",
        help="compare import job, bulk and individual applies on the quota-faithful emulator (W11)",
    )
    parser.add_argument(
        "--individual-max",
        type=int,
        default=300,
        help="--paths: the individual path is measured up to this many devices, extrapolated above",
    )
    parser.add_argument(
        "--job-rate",
        type=float,
        default=1_000_000 / 3600,
        help="--paths: the emulator's import job throughput, devices/s (peer assumption: 1M/h)",
    )
    parser.add_argument("--threshold", type=int, default=1000, help="--paths: azure.importExport.threshold")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="--paths: azure.importExport.pollSeconds")
    parser.add_argument(
        "--no-verify", dest="verify", action="store_false", help="--paths: skip re-planning after the import-job apply"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.set_defaults(workload="azure")  # what docs/performance.md's snippet names say (its test checks)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.paths:
        print(
            f"fleetctl Azure apply paths: python {sys.version.split()[0]}, {os.cpu_count()} CPUs; quota-faithful "
            f"emulator (S1×1, 50 ms latency, jobs at {args.job_rate:g} devices/s); fleetctl paced at S1×1"
        )
        results = bench_paths(args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        return 0
    results = []
    print(
        f"fleetctl Azure benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs; emulator on loopback "
        "HTTPS (not rate limited); floors from the S1×1 throttles of research/quotas.md §2.1"
    )
    for n in (int(x) for x in args.devices.split(",") if x.strip()):
        results.append(bench_one(n, args, lambda emulator: Meter(emulator.proc.pid)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

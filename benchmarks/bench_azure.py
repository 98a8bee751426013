"""Azure benchmark of issue 3: API calls per device and wall time of plan and apply against the local IoT Hub
emulator, beside the floor the S1 quotas would impose (research/quotas.md §8.3).

Why this exists: DESIGN §4 says performance is measured by benchmarks that print figures, not by timed unit tests.
This one drives the real engine in-process (engine.run.plan / engine.run.apply with a fresh Context per phase, the
way separate CLI invocations work, so the provider's call counters are readable) through the real azure-iot-hub SDK
against fleetctl's emulator, started as a child process (`python -m engine.sandbox.azure_emulator`) so that its CPU
is not counted as the engine's. For each fleet size N it prints, per phase:

- wall time, API calls (total, per device, mutating) by IoT Hub throttle class, changes, client and emulator CPU;
- the **floor**: the time an S1×1 hub's throttles (engine.ratelimit.azure_hub_quotas, quotas.md §2.1: registry
  100/min, query 20/min, twin updates 50/s, twin reads 100/s) would impose on those calls, the binding class being
  the largest term (quotas.md §8: independent buckets);
- which path the creates took: bulk registry calls (`POST /devices`, ≤100 devices each, identity + twin + ownership
  tag in one entry). Whether IoT Hub counts a bulk call once or once per device is not documented (quotas.md §11),
  so the floor of the create is printed both ways;
- a baseline on the same emulator: the per-device script an operator runs today (`az iot hub device-identity
  create` then `az iot hub device-twin update`, two calls per device), for up to --baseline-devices devices.

The emulator is not rate limited here, so "wall" is local time (engine + emulator + loopback HTTPS) and the floor is
what the real quotas would add; the printout keeps the two apart.

Run: .venv/bin/python benchmarks/bench_azure.py --devices 1000,10000 [--json out.json]
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import requests
from bench_aws import Meter, _table        # the AWS benchmark's wall/CPU/RSS meter and table layout (same folder)

from engine import run
from engine.manifest.fleet import load_fleet
from engine.plan.model import load_plan
from engine.providers.azure.client import AzureClient
from engine.ratelimit import azure_hub_quotas, azure_operation_class

TARGET = "bench"
MUTATING = ("create", "update", "put", "delete", "bulk", "generate", "verify")


# ------------------------------------------------------------------------------------------------ measuring
@dataclass
class Floor:
    seconds: float
    binding: str

    @classmethod
    def of(cls, by_class: Mapping[str, float], tier: str = "S1", units: int = 1) -> "Floor":
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
    calls: dict[str, int] = field(default_factory=dict)          # by wire operation (AzureClient names)
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
        return {**asdict(self), "byClass": self.by_class, "totalCalls": self.total, "mutatingCalls": self.mutating,
                "callsPerDevice": self.total / devices, "floorSeconds": floor.seconds, "floorBinding": floor.binding,
                "floorSecondsBulkPerDevice": per_device.seconds}


# ------------------------------------------------------------------------------------------------ sandbox
class Emulator:
    """fleetctl's Azure emulator in a child process on loopback (its CPU is not the engine's)."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "emulator"
        self.dir.mkdir(parents=True)
        self.log = open(self.dir / "azure.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.sandbox.azure_emulator", "--state-dir",
                                      str(self.dir)], stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        info = self.dir / "azure.json"
        while not info.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Azure emulator did not start; see {self.dir / 'azure.log'}")
            time.sleep(0.1)
        time.sleep(0.1)
        self.info = json.loads(info.read_text())

    def env(self, work: Path) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("FLEETCTL_")},
                "FLEETCTL_HUB_CONNECTION_STRING": self.info["hub_connection_string"],
                "FLEETCTL_DPS_CONNECTION_STRING": self.info["dps_connection_string"],
                "REQUESTS_CA_BUNDLE": self.info["ca_bundle"], "FLEETCTL_ARM_ENDPOINT": self.info["arm_base_url"],
                "FLEETCTL_NOW": "2026-11-21T10:00:00Z", "FLEETCTL_GIT_COMMIT": "0" * 40,
                "FLEETCTL_JOURNAL": str(work / "journal.jsonl")}

    def control(self, method: str, path: str) -> Any:
        response = requests.request(method, f"https://{self.info['host']}/_emulator/{path}",
                                    verify=self.info["ca_pem_path"], timeout=30)
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


def write_fleet(root: Path, n: int) -> None:
    """A Target and N devices (X.509 CA-signed, twin tags and desired properties), 1,000 per file."""
    (root / "devices").mkdir(parents=True)
    (root / "targets.yaml").write_text(f"""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: {TARGET}}}
spec:
  azure:
    hub: {{hostName: fleetctl-sandbox-hub.azure-devices.net, connectionString: {{env: FLEETCTL_HUB_CONNECTION_STRING}}}}
""")
    for start in range(0, n, 1000):
        docs = [f"apiVersion: azure.fleetctl.io/v1\nkind: Device\n"
                f"metadata: {{name: {device_id(i)}, target: {TARGET}}}\nspec:\n  authentication: {{type: x509CA}}\n  tags: {{site: paris, batch: '{i // 1000}'}}\n"
                f"  desired: {{telemetryInterval: 30}}\n" for i in range(start, min(n, start + 1000))]
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
        phase.detail = {"applySeconds": report.seconds, "failed": len(report.failed), "skipped": len(report.skipped),
                        "failures": [f"{a}: {m}" for a, m in report.failed[:3]],
                        "bulkCalls": paths.get("bulk-create calls", 0),
                        "bulkDevices": paths.get("bulk-create devices", 0)}
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
            client.update_twin(f"script-{i:06d}", {"tags": {"site": "paris"},
                                                   "properties": {"desired": {"telemetryInterval": 30}}}, None)

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
        rows.append([p.name, p.seconds, p.total, p.total / devices, p.mutating, p.changes, p.cpu_seconds,
                     p.server_cpu_seconds, round(p.peak_rss_mb), floor.seconds, floor.binding,
                     (floor.seconds / p.seconds) if p.seconds and floor.seconds else None])
    out = [f"\n=== {n:,} devices ===",
           _table(["phase", "wall s", "calls", "calls/dev", "mutating", "changes", "client CPU s", "emulator CPU s",
                   "RSS MB", "S1 floor s", "binding", "floor/wall"], rows), ""]
    create = next(p for p in phases if p.name == "apply (create)")
    per_call, per_device = create.floor(), create.floor(per_device_bulk=True)
    out.append(f"create path: bulk registry API, {create.detail['bulkCalls']} call(s) for "
               f"{create.detail['bulkDevices']} devices (≤100 per call; identity, twin tags/desired and ownership "
               f"tag in one entry); failed {create.detail['failed']}.")
    out.append(f"  S1×1 floor if a bulk call counts once: {per_call.seconds:.1f} s; if it counts per device: "
               f"{per_device.seconds:.1f} s ({per_device.seconds / 60:.1f} min) — quotas.md §11 leaves this open.")
    if baseline:
        scaled = baseline.floor().seconds * n / baseline.changes
        out.append(f"  per-device script: {baseline.total / baseline.changes:.1f} calls/device, "
                   f"{baseline.seconds / baseline.changes * 1000:.2f} ms/device here; its S1×1 floor for {n:,} "
                   f"devices: {scaled:.0f} s ({scaled / 60:.1f} min).")
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
        return {"devices": n, "workers": args.workers, "phases": [p.to_json(n) for p in phases],
                "baseline": baseline.to_json(baseline.changes or 1) if baseline else None, "emulator": server}
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="1000,10000", help="comma-separated fleet sizes")
    parser.add_argument("--workers", type=int, default=8, help="apply concurrency (engine.run.Context.workers)")
    parser.add_argument("--baseline-devices", type=int, default=1000,
                        help="devices the per-device script creates (0: skip); its floor is scaled to N")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    results = []
    print(f"fleetctl Azure benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs; emulator on loopback "
          "HTTPS (not rate limited); floors from the S1×1 throttles of research/quotas.md §2.1")
    for n in (int(x) for x in args.devices.split(",") if x.strip()):
        results.append(bench_one(n, args, lambda emulator: Meter(emulator.proc.pid)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

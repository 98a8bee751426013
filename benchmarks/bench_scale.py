"""Fleet-scale benchmark (issue 6): 10,000 and 100,000 devices against the quota-faithful sandbox.

Why this exists: DESIGN §4 asks for benchmarks that print figures (API calls per device, wall time, the ratio
η = T_floor / T_measured to the API-quota floor of research/quotas.md §8), not timed unit tests. moto alone
never throttles, so here every API call goes through engine/sandbox/quota_proxy.py: AWS IoT's default per-API
quotas (one token bucket per operation), its page sizes and 30-80 ms of latency. fleetctl paces itself with
engine/ratelimit.py (FLEETCTL_RATE_LIMIT=on), as it does against AWS.

Workloads (research/quotas.md §9):
- `load`   (W1)  manifest load + validation of N devices: a ThingSet + CSV vs plain YAML (1,000 things per file).
- `plan`   (W3)  plan of an N-thing account that already holds the fleet, registry-only read strategy: the
                 things manage no certificate links (the policy sits on the thing group), so the floor is
                 ListThings at 10 TPS, 250 per page (§8.1: 4 s / 10k, 40 s / 100k). Peak RSS is W15.
- `apply`  (W5/W7) apply-create of N things through the API (CreateThing + AddThingToThingGroup, 100 TPS each:
                 floor N/100 s, §8.2), then a re-apply of the unchanged fleet (target: 0 mutating calls).
                 `--certs` adds one BYO certificate per device (RegisterCertificateWithoutCA, 10 TPS: floor N/10 s).
- `script` (W14) the per-device script fleetctl replaces (IoTReady's registerDevice.py, reimplemented call for
                 call in benchmarks/bench_aws.py), one device after another, through the same proxy.

Every measured phase runs in a child process of its own, so peak RSS (VmHWM) and CPU are that phase's.
moto runs in its own process too; the 100,000 things a plan reads are seeded straight into moto's backend in
that process (creating them through the API is the `apply` workload), and the moto process's CPU is reported
apart, because moto's own list calls are O(fleet) per page, which AWS's are not.

Run (from the repository root):
    .venv/bin/python benchmarks/bench_scale.py load --devices 10000,100000
    .venv/bin/python benchmarks/bench_scale.py plan --devices 10000,100000
    .venv/bin/python benchmarks/bench_scale.py apply --devices 10000 [--certs]
    .venv/bin/python benchmarks/bench_scale.py script --devices 200
Add `--json out.json` to keep every figure.
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
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGION, TARGET, GROUP, TYPE, POLICY = "eu-west-2", "aws-eu", "esp32-fleet", "esp32", "esp32-policy"
SHARD = 1000
PAGE = 250


# ---------------------------------------------------------------------------------------------- fleets
def macs(n: int) -> list[str]:
    return [f"24:0A:C4:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}" for i in range(n)]


SHARED = f"""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: {TARGET}}}
spec:
  aws: {{region: {REGION}}}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingType
metadata: {{name: {TYPE}, target: {TARGET}}}
spec: {{description: ESP32 devkits}}
---
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {{name: {POLICY}, target: {TARGET}}}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - {{Effect: Allow, Action: "iot:Connect", Resource: "arn:aws:iot:{REGION}:123456789012:client/${{iot:Connection.Thing.ThingName}}"}}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingGroup
metadata: {{name: {GROUP}, target: {TARGET}}}
spec: {{description: every ESP32, policies: [{POLICY}]}}
"""

THINGSET = (
    """\
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {name: esp32-fleet}
spec:
  csv: {file: devices.csv, id: mac}
  template:
@certificate@    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${mac|compact}", target: @target@, labels: {site: "${site}"}}
      spec:
        thingType: @type@
        attributes: {mac: "${mac}", site: "${site}"}
        groups: [@group@]
@principals@""".replace("@target@", TARGET)
    .replace("@type@", TYPE)
    .replace("@group@", GROUP)
)

CERT_TEMPLATE = f"""\
    - apiVersion: aws.fleetctl.io/v1
      kind: Certificate
      metadata: {{name: "esp32-${{mac|compact}}", target: {TARGET}}}
      spec: {{certificatePem: {{file: "certs/${{mac|compact}}.pem"}}}}
"""


def write_thingset(root: Path, n: int, certs: Path | None = None) -> Path:
    """The fleet as a few lines of YAML and a CSV (what an operator writes)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "shared.yaml").write_text(SHARED)
    (root / "devices.csv").write_text("mac,site\n" + "".join(f"{m},site-{i % 20}\n" for i, m in enumerate(macs(n))))
    template = THINGSET.replace("@certificate@", CERT_TEMPLATE if certs else "").replace(
        "@principals@", '        principals: ["esp32-${mac|compact}"]\n' if certs else ""
    )
    (root / "devices.yaml").write_text(template)
    if certs:
        shutil.copytree(certs, root / "certs")
    return root


def write_plain(root: Path, n: int) -> Path:
    """The same things as one YAML document each, SHARD per file (what a generator script would write)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "shared.yaml").write_text(SHARED)
    for start in range(0, n, SHARD):
        docs = [
            f"apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {{name: esp32-{m.replace(':', '')}, "
            f"target: {TARGET}, labels: {{site: site-{i % 20}}}}}\nspec:\n  thingType: {TYPE}\n"
            f'  attributes: {{mac: "{m}", site: site-{i % 20}}}\n  groups: [{GROUP}]\n'
            for i, m in zip(range(start, min(n, start + SHARD)), macs(n)[start : start + SHARD], strict=True)
        ]
        (root / f"things-{start // SHARD:03d}.yaml").write_text("---\n".join(docs))
    return root


def device_certs(cache: Path, n: int) -> Path:
    """N public device certificates named after the MACs (keys stay in memory), cached per N."""
    from engine.sandbox import certs

    folder = cache / f"esp32-n{n}"
    if (folder / "complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ca = certs.make_ca({"CN": "fleetctl bench ESP32 CA", "O": "fleetctl bench"})
    for m in macs(n):
        compact = m.replace(":", "")
        (folder / f"{compact}.pem").write_text(certs.issue({"CN": compact}, ca).pem)
    (folder / "complete").write_text(f"{n}\n")
    return folder


# ---------------------------------------------------------------------------------------------- processes
def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class Sandbox:
    """moto (own process; seeds things into its backend on request) behind the quota proxy (own process)."""

    def __init__(self, work: Path, latency: str = "30-80") -> None:
        self.dir = work / "sandbox"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.moto = subprocess.Popen([sys.executable, __file__, "_moto", str(self.dir)], cwd=ROOT)
        self.moto_url = self._wait("moto.json")["endpointUrl"]
        self.proxy = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.sandbox.quota_proxy",
                "--upstream",
                self.moto_url,
                "--state-dir",
                str(self.dir),
                "--latency-ms",
                latency,
            ],
            cwd=ROOT,
        )
        self.url = self._wait("quota_proxy.json")["endpointUrl"]

    def _wait(self, name: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.dir / name).is_file():
                try:
                    return json.loads((self.dir / name).read_text())
                except ValueError:
                    pass
            time.sleep(0.1)
        raise SystemExit(f"error: {name} did not appear in {timeout:.0f} s")

    def seed(self, things: list[dict[str, Any]]) -> float:
        """Put things into moto's backend directly (an account that already holds the fleet)."""
        started = time.monotonic()
        (self.dir / "seeded").unlink(missing_ok=True)
        tmp = self.dir / "seed.json.tmp"
        tmp.write_text(json.dumps(things))
        tmp.rename(self.dir / "seed.json")
        self._wait("seeded", timeout=3600)
        return time.monotonic() - started

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST"), timeout=60)

    def proxy_stats(self, reset: bool = False) -> dict[str, Any]:
        path = "/_proxy/reset" if reset else "/_proxy/stats"
        req = urllib.request.Request(self.url + path, method="POST" if reset else "GET")
        return json.loads(urllib.request.urlopen(req, timeout=30).read())

    def moto_cpu(self) -> float:
        return _proc_cpu(self.moto.pid)

    def stop(self) -> None:
        for p in (self.proxy, self.moto):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _moto_main(state: Path) -> int:
    """Child: moto on loopback; seeds `seed.json` things into its backend whenever that file appears."""
    from engine.sandbox.aws import start_moto

    server, url = start_moto()
    (state / "moto.json").write_text(json.dumps({"endpointUrl": url}))
    from moto.iot.models import iot_backends

    while True:
        seed = state / "seed.json"
        if seed.is_file():
            backend = iot_backends["123456789012"][REGION]
            for t in json.loads(seed.read_text()):
                thing = backend.create_thing(t["name"], t["thingType"], {"attributes": t["attributes"]})
                for g in t["groups"]:
                    backend.describe_thing_group(g).things[thing.arn] = thing
            seed.unlink()
            (state / "seeded").write_text(json.dumps({"ok": True}))
        time.sleep(0.2)


def child(args: list[str], env: Mapping[str, str], timeout: float = 4 * 3600) -> dict[str, Any]:
    """Run one measured phase in a child process; it prints one JSON line."""
    out = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=timeout,
    )
    if out.returncode != 0:
        raise SystemExit(f"error: phase {args[0]} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _usage() -> dict[str, float]:
    """CPU and peak RSS of this phase's process. Peak RSS is VmHWM: ru_maxrss is inherited across fork+exec
    on Linux, so a child would report its parent's peak (the benchmark's own) when that is higher."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    hwm = next(
        (
            int(line.split()[1])
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        ),
        r.ru_maxrss,
    )
    return {"cpuSeconds": r.ru_utime + r.ru_stime, "peakRssMb": hwm / 1024}


def _child_load(path: str) -> dict[str, Any]:
    from engine.manifest.fleet import load_fleet

    started = time.perf_counter()
    fleet = load_fleet(Path(path), {})
    wall = time.perf_counter() - started
    return {"seconds": wall, "resources": len(fleet.desired), "errors": len(fleet.diagnostics.errors), **_usage()}


def _child_plan(path: str, out: str | None, apply_too: bool) -> dict[str, Any]:
    from engine import run

    ctx = run.Context(
        journal_path=Path(path).parent / "journal.jsonl", workers=int(os.environ.get("FLEETCTL_WORKERS") or 32)
    )
    started = time.perf_counter()
    result = run.plan(Path(path), ctx)
    plan_seconds = time.perf_counter() - started
    stats = result.stats["providers"].get(f"aws/{TARGET}", {})
    data: dict[str, Any] = {
        "seconds": plan_seconds,
        "readSeconds": result.stats["readSeconds"],
        "changes": len(result.plan.changes),
        "calls": stats.get("calls", {}),
        "throttles": stats.get("throttles", 0),
        "limiter": stats.get("rateLimiter", {}),
        "estimate": result.plan.options.get("estimate", {}),
    }
    if out:
        Path(out).write_text(result.plan.dumps())
    if apply_too and result.plan.changes:
        actx = run.Context(journal_path=ctx.journal_path, workers=ctx.workers)
        started = time.perf_counter()
        report = run.apply(result.plan, actx, result.fleet.root, {n: m.spec for n, m in result.fleet.targets().items()})
        astats = report.stats.get(f"aws/{TARGET}", {})
        data["apply"] = {
            "seconds": time.perf_counter() - started,
            "applied": len(report.applied),
            "failed": len(report.failed),
            "failures": report.failed[:3],
            "skipped": len(report.skipped),
            "calls": astats.get("calls", {}),
            "throttles": astats.get("throttles", 0),
            "limiter": astats.get("rateLimiter", {}),
        }
    return {**data, **_usage()}


def _child_script(url: str, n: int) -> dict[str, Any]:
    import boto3

    from benchmarks.bench_aws import CountingClient, register_device

    client = CountingClient(boto3.client("iot", region_name=REGION, endpoint_url=url))
    try:
        client.create_thing_type(thingTypeName="bench-type")  # the script expects its thing type to exist
    except Exception:
        pass
    client.calls.clear()
    started = time.perf_counter()
    failed = 0
    for m in macs(n):
        try:
            register_device(client, m.replace(":", ""))
        except Exception:
            failed += 1
    return {
        "seconds": time.perf_counter() - started,
        "devices": n,
        "failed": failed,
        "calls": dict(client.calls),
        "rejected": dict(client.errors),
        **_usage(),
    }


# ---------------------------------------------------------------------------------------------- workloads
def _api(op: str) -> str:
    import botocore.session
    from botocore import xform_name

    names = {xform_name(n): n for n in botocore.session.get_session().get_service_model("iot").operation_names}
    return names.get(op, op)


def mutating(calls: Mapping[str, int]) -> int:
    from engine.providers.aws.client import is_mutating

    return sum(n for op, n in calls.items() if is_mutating(op))


def floor_seconds(calls: Mapping[str, int]) -> tuple[float, str]:
    """The binding API's calls / TPS at the default quotas (APIs on their own buckets in parallel)."""
    from engine.quotas import AWS_IOT_QUOTAS, quota_of

    terms = {_api(op): n / quota_of(AWS_IOT_QUOTAS, _api(op)).tps for op, n in calls.items() if n}
    if not terms:
        return 0.0, "-"
    api = max(sorted(terms), key=lambda a: terms[a])
    return terms[api], api


def bench_load(n: int, work: Path) -> list[dict[str, Any]]:
    rows = []
    for shape, writer in (("ThingSet + CSV", write_thingset), ("plain YAML", write_plain)):
        root = writer(work / f"load-{shape.split()[0].lower()}-{n}" / "fleet", n)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        r = child(["_load", str(root)], {})
        rows.append({"workload": "W1 load+validate", "devices": n, "shape": shape, "bytes": size, **r})
        shutil.rmtree(root.parent, ignore_errors=True)
    return rows


def _seed_rows(plan_path: Path) -> list[dict[str, Any]]:
    from engine.plan.model import load_plan

    plan = load_plan(str(plan_path))
    return [
        {
            "name": c.address.name,
            "thingType": c.desired.get("thingType"),
            "attributes": {**c.desired.get("attributes", {}), "managed-by": "fleetctl"},
            "groups": c.desired.get("groups", []),
        }
        for c in plan.changes
        if c.kind == "aws.Thing"
    ]


def _env(box: Sandbox, work: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": box.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "FLEETCTL_RATE_LIMIT": "on",
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
        "FLEETCTL_GIT_COMMIT": "bench",
    }


def _shared_only(box: Sandbox, work: Path, root: Path, env: Mapping[str, str]) -> None:
    """Create the thing type, policy and group through fleetctl (a fleet without its devices)."""
    shared = work / "shared" / "fleet"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "shared.yaml").write_text((root / "shared.yaml").read_text())
    child(["_plan", str(shared), "--apply"], env)


def bench_plan(n: int, work: Path, latency: str) -> dict[str, Any]:
    box = Sandbox(work / f"plan-{n}", latency)
    try:
        env = _env(box, work)
        root = write_thingset(work / f"plan-{n}" / "fleet", n)
        _shared_only(box, work / f"plan-{n}", root, env)
        first = child(
            ["_plan", str(root), "--out", str(work / f"plan-{n}" / "create.json")],
            {**env, "FLEETCTL_RATE_LIMIT": "off", "AWS_ENDPOINT_URL": box.moto_url},
        )
        seed_seconds = box.seed(_seed_rows(work / f"plan-{n}" / "create.json"))
        box.proxy_stats(reset=True)
        cpu0 = box.moto_cpu()
        r = child(["_plan", str(root)], env)
        server = box.proxy_stats()
        pages = math.ceil(n / PAGE)
        floor_registry = pages / 10.0  # §8.1: ListThings, 250/page, 10 TPS
        floor_calls, binding = floor_seconds(r["calls"])
        # moto's own time on the ListThings chain (measured by the proxy) is reported: it lengthens the chain
        emulator = server.get("upstreamSeconds", {}).get("ListThings", 0.0)
        return {
            "workload": "W3 plan, registry-only",
            "devices": n,
            "changesBefore": first["changes"],
            "seedSeconds": round(seed_seconds, 1),
            **r,
            "server": server,
            "callsPerDevice": sum(r["calls"].values()) / n,
            "floorSeconds": floor_registry,
            "eta": floor_registry / r["seconds"],
            "floorOfCallsMade": floor_calls,
            "bindingOfCallsMade": binding,
            "etaOfCallsMade": floor_calls / r["seconds"],
            "motoListThingsSeconds": emulator,
            "motoCpuSeconds": box.moto_cpu() - cpu0,
        }
    finally:
        box.stop()


def bench_apply(n: int, work: Path, latency: str, certs: Path | None) -> dict[str, Any]:
    box = Sandbox(work / f"apply-{n}", latency)
    try:
        env = _env(box, work)
        root = write_thingset(work / f"apply-{n}" / "fleet", n, certs)
        box.proxy_stats(reset=True)
        cpu0 = box.moto_cpu()
        create = child(["_plan", str(root), "--apply"], env)
        server = box.proxy_stats()
        box.proxy_stats(reset=True)
        again = child(["_plan", str(root), "--apply"], env)  # re-apply the unchanged fleet
        ap = create.get("apply", {})
        if certs:  # §8.2 path B: BYO certificate, policy on the thing group
            floor, binding = n / 10.0, "RegisterCertificateWithoutCA @10 TPS"
        else:  # devices that get their certificate at first connect (JITP): CreateThing, AddThingToThingGroup
            floor, binding = n / 100.0, "CreateThing / AddThingToThingGroup @100 TPS"
        return {
            "workload": "W5 apply-create" + (" (+certificates)" if certs else ""),
            "devices": n,
            "plan": {k: create[k] for k in ("seconds", "changes", "estimate")},
            "apply": ap,
            "server": server,
            "mutatingPerDevice": mutating(ap.get("calls", {})) / n,
            "floorSeconds": floor,
            "floorBinding": binding,
            "eta": floor / ap["seconds"] if ap else None,
            "reapply": {
                "changes": again["changes"],
                "mutating": mutating(again.get("calls", {})),
                "seconds": again["seconds"],
                "calls": sum(again["calls"].values()),
            },
            "peakRssMb": max(create["peakRssMb"], again["peakRssMb"]),
            "motoCpuSeconds": box.moto_cpu() - cpu0,
        }
    finally:
        box.stop()


def bench_script(n: int, work: Path, latency: str) -> dict[str, Any]:
    box = Sandbox(work / f"script-{n}", latency)
    try:
        r = child(["_script", box.url, str(n)], _env(box, work))
        r["server"] = box.proxy_stats()
        return {
            "workload": "W14 per-device script",
            **r,
            "callsPerDevice": sum(r["calls"].values()) / n,
            "secondsPerDevice": r["seconds"] / n,
        }
    finally:
        box.stop()


# ---------------------------------------------------------------------------------------------- report
def report(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        w = r["workload"]
        if w.startswith("W1 "):
            out.append(
                f"{w:<26} {r['devices']:>7} devices  {r['shape']:<14} {r['bytes'] / 1e6:6.1f} MB  "
                f"wall {r['seconds']:7.1f} s  cpu {r['cpuSeconds']:7.1f} s  peak RSS {r['peakRssMb']:6.0f} MB  "
                f"({r['resources']} resources, {r['errors']} errors)"
            )
        elif w.startswith("W3"):
            out.append(
                f"{w:<26} {r['devices']:>7} devices  wall {r['seconds']:7.1f} s (read after the load "
                f"{r['readSeconds']:.1f} s; the ListThings chain starts while the fleet loads)  "
                f"calls {sum(r['calls'].values())} ({r['callsPerDevice']:.4f}/device)  changes {r['changes']}  "
                f"throttled {r['throttles']} (server {sum(r['server']['throttled'].values())})  "
                f"floor §8.1 {r['floorSeconds']:.1f} s → η {r['eta']:.2f}; floor of the calls made "
                f"{r['floorOfCallsMade']:.1f} s ({r['bindingOfCallsMade']}) → η {r['etaOfCallsMade']:.2f}; "
                f"moto's time on the ListThings pages {r['motoListThingsSeconds']:.1f} s  peak RSS "
                f"{r['peakRssMb']:.0f} MB  cpu {r['cpuSeconds']:.1f} s  moto cpu {r['motoCpuSeconds']:.1f} s"
            )
        elif w.startswith("W5"):
            ap = r["apply"]
            out.append(
                f"{w:<26} {r['devices']:>7} devices  apply wall {ap['seconds']:7.1f} s  applied {ap['applied']} "
                f"failed {ap['failed']}  mutating {r['mutatingPerDevice']:.2f}/device  throttled "
                f"{ap['throttles']} (server {sum(r['server']['throttled'].values())})  floor {r['floorSeconds']:.0f} s "
                f"({r['floorBinding']}) → η {r['eta']:.2f}  estimate: {r['plan']['estimate'].get('seconds')} s "
                f"bound by {r['plan']['estimate'].get('binding')}  re-apply: {r['reapply']['changes']} changes, "
                f"{r['reapply']['mutating']} mutating calls, {r['reapply']['seconds']:.1f} s  peak RSS "
                f"{r['peakRssMb']:.0f} MB  moto cpu {r['motoCpuSeconds']:.1f} s"
            )
        elif w.startswith("W14"):
            out.append(
                f"{w:<26} {r['devices']:>7} devices  wall {r['seconds']:7.1f} s ({r['secondsPerDevice']:.3f} s/device, "
                f"→ {r['secondsPerDevice'] * 10_000 / 60:.0f} min per 10,000 devices, extrapolated)  "
                f"{r['callsPerDevice']:.1f} calls/device, {sum(r['rejected'].values())} rejected"
            )
    return "\n".join(out) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("workload", choices=["load", "plan", "apply", "script"])
    parser.add_argument("--devices", default="10000", help="comma-separated fleet sizes")
    parser.add_argument("--latency-ms", default="30-80")
    parser.add_argument("--certs", action="store_true", help="apply: one BYO certificate per device")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--cert-cache", type=Path, default=Path(tempfile.gettempdir()) / "fleetctl-bench-certs")
    parser.add_argument("--json", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_moto":
        return _moto_main(Path(argv[1]))
    if argv and argv[0] in ("_load", "_plan", "_script"):
        if argv[0] == "_load":
            data = _child_load(argv[1])
        elif argv[0] == "_plan":
            out = argv[argv.index("--out") + 1] if "--out" in argv else None
            data = _child_plan(argv[1], out, "--apply" in argv)
        else:
            data = _child_script(argv[1], int(argv[2]))
        print(json.dumps(data))
        return 0
    args = build_parser().parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="fleetctl-scale-"))
    rows: list[dict[str, Any]] = []
    for n in [int(x) for x in args.devices.split(",")]:
        if args.workload == "load":
            rows += bench_load(n, work)
        elif args.workload == "plan":
            rows.append(bench_plan(n, work, args.latency_ms))
        elif args.workload == "apply":
            rows.append(bench_apply(n, work, args.latency_ms, device_certs(args.cert_cache, n) if args.certs else None))
        else:
            rows.append(bench_script(n, work, args.latency_ms))
        print(report(rows[-2:] if args.workload == "load" else rows[-1:]), end="", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

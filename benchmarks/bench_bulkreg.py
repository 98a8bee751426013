"""AWS bulk registration vs per-call apply (issue 6, item 4), against the quota-faithful sandbox.

Why this exists: AWS's StartThingRegistrationTask creates a batch of devices from a JSON-lines file in S3 with
O(1) client calls, but AWS documents that it "calls other AWS IoT control plane APIs" subject to the same
throttling quotas (research/quotas.md §1.3). This benchmark measures what that means for fleetctl: client calls,
wall time and η = T_floor / T_measured for the same fleet applied both ways, and how many journal entries (and
request ids) each path leaves for an audit or an interrupted apply.

Each (fleet size, path) runs in a sandbox of its own, started as `fleetctl sandbox up --quota-faithful` starts
it (engine/sandbox/manager.py): moto with its bulk registration tasks paced at AWS IoT's default per-API quotas
(`--pace-tasks`, engine/sandbox/moto_bulkreg.py) behind the quota proxy (default quotas, page sizes, 30-80 ms of
latency per call, engine/sandbox/quota_proxy.py), with FLEETCTL_RATE_LIMIT=on. The shared resources (thing type,
policy, group, and with --certs a registered CA) are applied first; the measured phase is `fleetctl plan` +
`apply` of the devices (bench_scale.py's `_plan --apply` child, 32 workers), then a re-plan must show 0 changes.

Fleets (ESP32 MACs, as bench_scale.py): N things with two attributes in one thing group that carries the
policy; `--certs` adds a device certificate per thing issued by a CA registered with AWS IoT (bulk registration
registers only certificates of registered CAs). Floors (research/quotas.md §8.2): N/100 s without certificates
(CreateThing, AddThingToThingGroup @100 TPS), N/10 s with them (RegisterCertificate @10 TPS).

Run (from the repository root):
    .venv/bin/python benchmarks/bench_bulkreg.py bulkreg --devices 1000,10000 [--certs] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_scale  # noqa: E402  (its fleets' conventions and its measured `_plan` child phase)

REGION, TARGET, GROUP, TYPE, POLICY = (
    bench_scale.REGION,
    bench_scale.TARGET,
    bench_scale.GROUP,
    bench_scale.TYPE,
    bench_scale.POLICY,
)
BUCKET = "fleetctl-bulk-bench"
ROLE = "arn:aws:iam::123456789012:role/fleetctl-bulk-registration"
PATHS = ("per-call", "task")


def write_fleet(root: Path, n: int, certs: Path | None, bulk: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    target = f"  aws: {{region: {REGION}}}\n"
    if bulk:
        target = (
            f'  aws:\n    region: {REGION}\n    bulkRegistration: {{bucket: {BUCKET}, roleArn: "{ROLE}", '
            f"threshold: 1000}}\n"
        )
    shared = bench_scale.SHARED.replace(f"  aws: {{region: {REGION}}}\n", target)
    if certs:
        shared += f"""\
---
apiVersion: aws.fleetctl.io/v1
kind: CACertificate
metadata: {{name: esp32-ca, target: {TARGET}}}
spec: {{certificatePem: {{file: certs/ca.pem}}, verificationCertificatePem: {{file: certs/ca-verification.pem}}}}
"""
        shutil.copytree(certs, root / "certs", dirs_exist_ok=True)
    (root / "shared.yaml").write_text(shared)
    (root / "devices.csv").write_text(
        "mac,site\n" + "".join(f"{m},site-{i % 20}\n" for i, m in enumerate(bench_scale.macs(n)))
    )
    cert = (
        f"""\
    - apiVersion: aws.fleetctl.io/v1
      kind: Certificate
      metadata: {{name: "esp32-${{mac|compact}}", target: {TARGET}}}
      spec: {{certificatePem: {{file: "certs/${{mac|compact}}.pem"}}, caCertificate: esp32-ca}}
"""
        if certs
        else ""
    )
    principal = '        principals: ["esp32-${mac|compact}"]\n' if certs else ""
    (root / "devices.yaml.off").write_text(f"""\
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {{name: esp32-fleet}}
spec:
  csv: {{file: devices.csv, id: mac}}
  template:
{cert}    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {{name: "esp32-${{mac|compact}}", target: {TARGET}}}
      spec:
        thingType: {TYPE}
        attributes: {{mac: "${{mac}}", site: "${{site}}"}}
        groups: [{GROUP}]
{principal}""")
    return root


def ca_certs(cache: Path, n: int) -> Path:
    """A CA, its verification certificate for the sandbox account's registration code, and N device
    certificates it issued (public PEMs only), cached per N."""
    from engine.sandbox import certs
    from engine.sandbox.moto_ext import sandbox_registration_code

    folder = cache / f"esp32-ca-n{n}"
    if (folder / "complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ca = certs.make_ca({"CN": "fleetctl bench ESP32 CA", "O": "fleetctl bench"})
    (folder / "ca.pem").write_text(ca.pem)
    code = sandbox_registration_code("123456789012", REGION)
    (folder / "ca-verification.pem").write_text(certs.verification_certificate(ca, code).pem)
    for m in bench_scale.macs(n):
        compact = m.replace(":", "")
        (folder / f"{compact}.pem").write_text(certs.issue({"CN": compact}, ca).pem)
    (folder / "complete").write_text(f"{n}\n")
    return folder


class Sandbox:
    """`fleetctl sandbox up --quota-faithful` in a folder of its own (moto paced, quota proxy, Azure emulator)."""

    def __init__(self, base: Path) -> None:
        from engine.sandbox import manager

        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        text = manager.up(base, quota_faithful=True)
        self.env = dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines() if "=" in line)
        self.url = self.env["AWS_ENDPOINT_URL"]

    def stats(self) -> dict[str, Any]:
        return json.loads(urllib.request.urlopen(self.url + "/_proxy/stats", timeout=30).read())

    def reset_stats(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/_proxy/reset", method="POST"), timeout=30).read()

    def stop(self) -> None:
        from engine.sandbox import manager

        manager.down(self.base)


def _boto(service: str, url: str) -> Any:
    import boto3

    return boto3.client(
        service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _tasks(url: str) -> list[dict[str, Any]]:
    iot = _boto("iot", url)
    return [iot.describe_thing_registration_task(taskId=t) for t in iot.list_thing_registration_tasks()["taskIds"]]


def _journal(path: Path, since: int) -> dict[str, int]:
    from engine.journal import read_entries

    entries = list(read_entries(path))[since:]
    return {
        "entries": len(entries),
        "requestIds": sum(1 for e in entries if e.get("requestId")),
        "perChange": sum(1 for e in entries if "address" in e and "op" not in e),
        "taskEvents": sum(1 for e in entries if str(e.get("event", "")).startswith("task-")),
    }


def bench(n: int, path: str, work: Path, certs: Path | None) -> dict[str, Any]:
    box = Sandbox(work / f"sandbox-{path}-{n}")
    try:
        env = {
            **box.env,
            "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
            "FLEETCTL_GIT_COMMIT": "bench",
            "FLEETCTL_WORKERS": "32",
        }
        _boto("s3", box.url).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        root = write_fleet(work / f"{path}-{n}" / "fleet", n, certs, bulk=path == "task")
        bench_scale.child(["_plan", str(root), "--apply"], env)  # the shared resources, not measured
        (root / "devices.yaml.off").rename(root / "devices.yaml")
        journal = root.parent / "journal.jsonl"
        before = _journal(journal, 0)["entries"]
        box.reset_stats()
        r = bench_scale.child(["_plan", str(root), "--apply"], env)
        server = box.stats()
        ap = r.get("apply", {})
        tasks = _tasks(box.url)
        task_seconds = sum((t["lastModifiedDate"] - t["creationDate"]).total_seconds() for t in tasks)
        replan = None
        if not certs or n <= 1000:  # with certificates a re-plan reads ListThingPrincipals per thing (10 TPS)
            replan = bench_scale.child(["_plan", str(root)], env)["changes"]
        floor, binding = (
            (n / 10.0, "RegisterCertificate @10 TPS")
            if certs
            else (n / 100.0, "CreateThing / AddThingToThingGroup @100 TPS")
        )
        calls = ap.get("calls", {})
        client_calls = sum(calls.values())
        return {
            "workload": "bulkreg" + (" +certificates" if certs else ""),
            "devices": n,
            "path": path,
            "planSeconds": r["seconds"],
            "estimate": r.get("estimate", {}),
            "apply": ap,
            "clientCalls": client_calls,
            "clientCallsPerDevice": client_calls / n,
            "mutatingCalls": bench_scale.mutating(calls),
            "serverCalls": server.get("total"),
            "serverThrottled": sum(server.get("throttled", {}).values()),
            "tasks": len(tasks),
            "taskSeconds": task_seconds,
            "journal": _journal(journal, before),
            "floorSeconds": floor,
            "floorBinding": binding,
            "eta": floor / ap["seconds"] if ap.get("seconds") else None,
            "replanChanges": replan,
            "peakRssMb": r.get("peakRssMb"),
        }
    finally:
        box.stop()


def report(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        ap, j = r["apply"], r["journal"]
        bulk = next((n for n in r["estimate"].get("notes") or () if n.get("path") == "aws-bulk-registration"), {})
        out.append(
            f"{r['workload']:<24} {r['devices']:>6} devices  {r['path']:<8}  apply {ap.get('seconds', 0):7.1f} s  "
            f"applied {ap.get('applied')} failed {ap.get('failed')}  client calls {r['clientCalls']} "
            f"({r['clientCallsPerDevice']:.3f}/device, {r['mutatingCalls']} mutating, throttled "
            f"{ap.get('throttles', 0)})  tasks {r['tasks']} ({r['taskSeconds']:.1f} s)  journal "
            f"{j['entries']} entries, {j['requestIds']} request ids  floor {r['floorSeconds']:.0f} s "
            f"({r['floorBinding']}) → η {r['eta']:.2f}  estimate {r['estimate'].get('seconds')} s "
            f"bound by {r['estimate'].get('binding')}{' (bulk: ' + str(bulk.get('tasks')) + ' task(s), ~' + str(bulk.get('clientCalls')) + ' client calls)' if bulk.get('tasks') else ''}  "
            f"re-plan: {'not run' if r['replanChanges'] is None else str(r['replanChanges']) + ' changes'}"
        )
    return "\n".join(out) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("workload", choices=["bulkreg"])
    parser.add_argument("--devices", default="1000,10000", help="comma-separated fleet sizes")
    parser.add_argument("--certs", action="store_true", help="a device certificate of a registered CA per thing")
    parser.add_argument("--paths", default=",".join(PATHS), help="per-call,task (default: both)")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--cert-cache", type=Path, default=Path(tempfile.gettempdir()) / "fleetctl-bench-certs")
    parser.add_argument("--json", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="fleetctl-bulkreg-"))
    rows: list[dict[str, Any]] = []
    for n in [int(x) for x in args.devices.split(",")]:
        certs = ca_certs(args.cert_cache, n) if args.certs else None
        for path in args.paths.split(","):
            started = time.monotonic()
            rows.append(bench(n, path, work, certs))
            rows[-1]["benchSeconds"] = time.monotonic() - started
            print(report(rows[-1:]), end="", flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Effective-permission benchmark (issue 14): `fleetctl authz matrix` and the effective-permission lint rules on
a 100,000-thing fleet, each in a child process of its own (wall time, CPU, peak RSS = VmHWM).

The fleet is what an operator writes for a large ESP32 fleet (docs/performance.md): a ThingSet over a CSV of
MACs, one thing type, one thing group carrying a policy scoped per thing (client id, telemetry and command topics,
the thing's shadow) and a site-wide topic scoped by the `site` attribute (20 sites), plus a parent group with a
Deny. `--certs` adds one certificate per device (public PEMs generated once and cached, like bench_scale.py's).
`permission_delta` is timed on the plan of a policy change (the actual side allowed telemetry only on
dt/${thing}/*; the desired side adds command, shadow and site topics), the fleet load timed apart.
Targets (issue 14): each phase ≤ 30 s and ≤ 1 GB.

Run (from the repository root):
    .venv/bin/python benchmarks/bench_authz.py --devices 100000
    .venv/bin/python benchmarks/bench_authz.py --devices 10000 --certs
Add `--json out.json` to keep every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

REGION, TARGET = "eu-west-2", "aws-eu"
TN = "${{iot:Connection.Thing.ThingName}}"
ARN = f"arn:aws:iot:{REGION}:123456789012:"
SHARED = f"""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: {TARGET}}}
spec:
  aws: {{region: {REGION}, accountId: "123456789012"}}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingType
metadata: {{name: esp32, target: {TARGET}}}
spec: {{description: ESP32 devkits}}
---
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {{name: esp32-policy, target: {TARGET}}}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - {{Effect: Allow, Action: "iot:Connect", Resource: "{ARN}client/{TN}"}}
      - Effect: Allow
        Action: [iot:Publish, iot:Receive]
        Resource: ["{ARN}topic/dt/{TN}/*", "{ARN}topic/cmd/{TN}/*", "{ARN}topic/$aws/things/{TN}/shadow/*",
                   "{ARN}topic/site/${{{{iot:Connection.Thing.Attributes[site]}}}}/broadcast"]
      - Effect: Allow
        Action: iot:Subscribe
        Resource: ["{ARN}topicfilter/cmd/{TN}/*", "{ARN}topicfilter/$aws/things/{TN}/shadow/*",
                   "{ARN}topicfilter/site/${{{{iot:Connection.Thing.Attributes[site]}}}}/broadcast"]
---
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {{name: fleet-guard, target: {TARGET}}}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - {{Sid: NoDebug, Effect: Deny, Action: iot:Publish, Resource: "{ARN}topic/dt/*/debug"}}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingGroup
metadata: {{name: fleet, target: {TARGET}}}
spec: {{description: every device, policies: [fleet-guard]}}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingGroup
metadata: {{name: esp32-fleet, target: {TARGET}}}
spec: {{parent: fleet, description: every ESP32, policies: [esp32-policy]}}
""".replace("{{", "{").replace("}}", "}")

THINGSET = """\
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {name: esp32-fleet}
spec:
  csv: {file: devices.csv, id: mac}
  template:
@certificate@    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${mac|compact}", target: aws-eu}
      spec:
        thingType: esp32
        attributes: {mac: "${mac}", site: "${site}"}
        groups: [esp32-fleet]
@principals@"""
CERT_TEMPLATE = """\
    - apiVersion: aws.fleetctl.io/v1
      kind: Certificate
      metadata: {name: "esp32-${mac|compact}", target: aws-eu}
      spec: {certificatePem: {file: "certs/${mac|compact}.pem"}}
"""


def write_fleet(root: Path, n: int, certs: Path | None) -> Path:
    from bench_scale import macs

    root.mkdir(parents=True, exist_ok=True)
    (root / "shared.yaml").write_text(SHARED)
    (root / "devices.csv").write_text("mac,site\n" + "".join(f"{m},site-{i % 20}\n" for i, m in enumerate(macs(n))))
    (root / "devices.yaml").write_text(
        THINGSET.replace("@certificate@", CERT_TEMPLATE if certs else "").replace(
            "@principals@", '        principals: ["esp32-${mac|compact}"]\n' if certs else ""
        )
    )
    if certs:
        (root / "certs").symlink_to(certs)
    return root


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(args: list[str], out: str) -> None:
    """Child process: run the CLI in-process, record wall time, CPU and peak RSS."""
    from click.testing import CliRunner

    from engine.cli import cli

    started = time.perf_counter()
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    wall = time.perf_counter() - started
    r = resource.getrusage(resource.RUSAGE_SELF)
    Path(out).write_text(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "cpu_s": round(r.ru_utime + r.ru_stime, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "exit_code": res.exit_code,
                "output_tail": res.stdout[-1500:],
            }
        )
    )


def delta_phase(root: str, out: str) -> None:
    """Child process: load the fleet, make an "actual" side where the per-thing policy was narrower (telemetry
    on dt/${thing}/* only), and time permission_delta over the 100,000-thing plan (the load is timed apart)."""
    from engine.authz.delta import permission_delta
    from engine.manifest.fleet import load_fleet
    from engine.model import ActualResource

    started = time.perf_counter()
    fleet = load_fleet(root, resolve_secrets=False)
    loaded = time.perf_counter() - started
    actual = []
    for r in fleet.desired:
        spec = r.spec
        if r.kind == "aws.Policy" and r.address.name == "esp32-policy":
            doc = json.loads(json.dumps(spec["document"]))
            for st in doc["Statement"]:
                if "iot:Publish" in (st.get("Action") or []):
                    st["Resource"] = [x for x in st["Resource"] if "/dt/" in x]
            spec = {**spec, "document": doc}
        actual.append(ActualResource(r.address, r.kind, spec))
    from engine.authz.principals import target_specs

    targets = target_specs(fleet)
    started = time.perf_counter()
    deltas = permission_delta(fleet.desired, actual, targets=targets)
    wall = time.perf_counter() - started
    r = resource.getrusage(resource.RUSAGE_SELF)
    Path(out).write_text(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "load_s": round(loaded, 2),
                "cpu_s": round(r.ru_utime + r.ru_stime, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "exit_code": 0,
                "output_tail": "\n".join(d.summary for d in deltas),
            }
        )
    )


def run_phase(name: str, args: list[str], mode: str = "_phase") -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        pass
    subprocess.run(
        [sys.executable, __file__, mode, tmp.name, *args],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "FLEETCTL_NOW": "2026-11-21T10:00:00Z"},
    )
    figures = json.loads(Path(tmp.name).read_text())
    os.unlink(tmp.name)
    figures["phase"] = name
    return figures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_phase":
        phase(argv[2:], argv[1])
        return 0
    if argv and argv[0] == "_delta":
        delta_phase(argv[2], argv[1])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", default="100000", help="comma-separated fleet sizes")
    p.add_argument("--certs", action="store_true", help="one certificate per device")
    p.add_argument("--json", help="write every figure to this file")
    ns = p.parse_args(argv)
    results = []
    for n in [int(x) for x in ns.devices.split(",")]:
        with tempfile.TemporaryDirectory(prefix="fleetctl-authz-") as tmp:
            certs = None
            if ns.certs:
                from bench_scale import device_certs

                certs = device_certs(Path(tempfile.gettempdir()) / "fleetctl-bench-certs", n)
            root = write_fleet(Path(tmp) / "fleet", n, certs)
            for name, args in (
                ("load (validate)", ["validate", str(root)]),
                ("authz matrix", ["authz", "matrix", "--fleet", str(root)]),
                (
                    "lint effective (FL011,FL012,FL015,FL016)",
                    ["lint", str(root), "--select", "FL011,FL012,FL015,FL016"],
                ),
            ):
                figures = run_phase(name, args)
                figures["devices"] = n
                figures["certs"] = ns.certs
                results.append(figures)
                print(
                    f"{n:>7,} things{' + certs' if ns.certs else ''}  {name:<42} {figures['wall_s']:>7.2f} s wall "
                    f"{figures['cpu_s']:>7.2f} s CPU  peak {figures['peak_rss_mb']:>7.1f} MB  exit "
                    f"{figures['exit_code']}",
                    flush=True,
                )
                if name == "authz matrix":
                    print("    " + figures["output_tail"].strip().splitlines()[-1])
            figures = run_phase("permission_delta (after the load)", [str(root)], mode="_delta")
            figures.update(devices=n, certs=ns.certs)
            results.append(figures)
            print(
                f"{n:>7,} things{' + certs' if ns.certs else ''}  {'permission_delta (load ' + str(figures['load_s']) + ' s apart)':<42} "
                f"{figures['wall_s']:>7.2f} s wall {figures['cpu_s']:>7.2f} s CPU  peak "
                f"{figures['peak_rss_mb']:>7.1f} MB",
                flush=True,
            )
            for line in figures["output_tail"].splitlines():
                print("    " + line)
    if ns.json:
        Path(ns.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

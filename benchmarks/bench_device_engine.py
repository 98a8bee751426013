"""Benchmark: `fleetctl plan` (engine.run.plan) over a folder of N device dumps (not a test; prints figures).

What `bench_device_plan.py` measures for the device library alone, measured here through the whole engine the
way `fleetctl plan FLEET --dumps DIR --out plan.json` runs: loading and expanding the manifests (four
DeviceConfigs listing N devices between them, an AWS Target), reading every dump in bulk, resolving the desired
values (one DescribeEndpoint against moto on loopback for `{awsIotEndpoint: aws-eu}`, a secret from the
environment, the Amazon root CA from a file), the library's diff, the cross-checks, the pure planner, and
writing the plan file and its text rendering. Dumps come from `bench_device_plan.py`'s generators (a quarter
per built-in model). Prints wall time per phase, the per-device cost, the plan file's size, and peak memory
(the process's max RSS; moto runs in a process of its own and is not counted).

    .venv/bin/python benchmarks/bench_device_engine.py [--devices 10000] [--endpoint-url URL] [--apply]

`--apply` also applies the plan (the artifacts of every device into a temporary folder) and times it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_aws import Sandbox  # noqa: E402
from bench_device_plan import GENERATORS  # noqa: E402

from engine import run  # noqa: E402
from engine.plan.render import text  # noqa: E402

CA = HERE.parent / "tests" / "device" / "data" / "AmazonRootCA1.pem"
GROUP_VALUES = {
    "springcard-springpark": """\
    profile: {network: mqtt_client, primary: smartreader}
    mqtt_broker: {awsIotEndpoint: aws-eu}
    mqtt_tls: {tls: true, sni: true, verify_cn: true, server_trust: ca, server_ca_slot: 9}
    mqtt_client_options: "5614030A1E1E"
    mqtt_password: {env: BENCH_MQTT_PASSWORD}""",
    "ublox-nina-w13": """\
    wifi.ssid: fleet-iot
    wifi.auth: wpa_psk
    wifi.psk: {env: BENCH_WIFI_PSK}
    ca: {name: AmazonRootCA1.pem, content: {file: certs/AmazonRootCA1.pem}}
    start_mode: data""",
    "st-spwf01": """\
    tls_domain: {awsIotEndpoint: aws-eu}
    f_ca: {file: certs/AmazonRootCA1.pem}
    ip_hostname: fleet-module""",
    "esp32-nvs": """\
    endpoint: {awsIotEndpoint: aws-eu}
    mqtt_port: 8883
    ca: {file: certs/AmazonRootCA1.pem}""",
}


def write_fleet(root: Path, devices: dict[str, list[str]]) -> Path:
    fleet = root / "fleet"
    (fleet / "certs").mkdir(parents=True)
    shutil.copy(CA, fleet / "certs" / "AmazonRootCA1.pem")
    (fleet / "targets.yaml").write_text(
        "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: aws-eu}\nspec: {aws: {region: eu-west-2}}\n"
    )
    for model, ids in devices.items():
        listed = "\n".join(f'    "{device}": {{}}' for device in ids)
        (fleet / f"{model}.yaml").write_text(
            f"apiVersion: device.fleetctl.io/v1\nkind: DeviceConfig\nmetadata: {{name: {model}-fleet}}\nspec:\n"
            f"  model: {model}\n  values:\n{GROUP_VALUES[model]}\n  devices:\n{listed}\n"
        )
    return fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--endpoint-url", default=None, help="a running loopback sandbox (default: start moto)")
    parser.add_argument("--apply", action="store_true", help="also apply the plan (write every artifact)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetctl-bench-engine-") as tmp:
        root = Path(tmp)
        dumps = root / "dumps"
        dumps.mkdir()
        started = time.perf_counter()
        names = list(GENERATORS)
        devices: dict[str, list[str]] = {name: [] for name in names}
        for i in range(args.devices):
            model = names[i % len(names)]
            device, filename, body = GENERATORS[model](i)
            (dumps / filename).write_text(body)
            devices[model].append(device)
        fleet = write_fleet(root, devices)
        generate_s = time.perf_counter() - started
        sandbox = Sandbox(args.endpoint_url, root / "sandbox")
        try:
            os.environ.update(
                {
                    "AWS_ENDPOINT_URL": sandbox.endpoint_url,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "eu-west-2",
                }
            )  # boto3's chain
            env = {
                **os.environ,
                "FLEETCTL_DUMPS": str(dumps),
                "FLEETCTL_JOURNAL": str(root / "state" / "journal.jsonl"),
                "FLEETCTL_DEVICE_STATE": str(root / "state" / "device-state.json"),
                "FLEETCTL_ARTIFACTS": str(root / "out"),
                "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
                "FLEETCTL_GIT_COMMIT": "0" * 40,
                "BENCH_MQTT_PASSWORD": "bench-password",
                "BENCH_WIFI_PSK": "bench passphrase",
            }
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t0 = time.perf_counter()
            journal = root / "state" / "journal.jsonl"
            loaded = run.load(fleet, run.Context(env=env, journal_path=journal))
            t1 = time.perf_counter()
            ctx = run.Context(env=env, journal_path=journal)
            cpu = time.process_time()
            result = run.plan(fleet, ctx)
            t2 = time.perf_counter()
            plan_cpu = time.process_time() - cpu
            plan_file = root / "plan.json"
            plan_file.write_text(result.plan.dumps())
            t3 = time.perf_counter()
            rendered = text(result.plan)
            t4 = time.perf_counter()
            rss_plan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            errors = [d for d in result.plan.diagnostics if d.severity.value == "error"]
            device_changes = sum(c.kind == "device.DeviceConfig" for c in result.plan.changes)
            fields = sum(len(c.fields) for c in result.plan.changes)
            apply_s = apply_cpu = None
            if args.apply:
                t5, cpu = time.perf_counter(), time.process_time()
                report = run.apply(
                    result.plan,
                    run.Context(env=env, journal_path=journal),
                    fleet,
                    {n: m.spec for n, m in loaded.targets().items()},
                )
                apply_s, apply_cpu = time.perf_counter() - t5, time.process_time() - cpu
                assert report.ok, report.failed[:3]
        finally:
            sandbox.stop()
        n = args.devices
        plan_s = t2 - t1
        read_s = result.stats["readSeconds"]
        print(
            f"devices: {n} ({', '.join(f'{len(v)} {k}' for k, v in devices.items())}); generate dumps: "
            f"{generate_s:.2f} s"
        )
        print(f"load+validate+expand (run.load alone): {t1 - t0:.2f} s")
        print(
            f"fleetctl plan (run.plan: load, read dumps, resolve, diff, cross-check, plan): {plan_s:.2f} s "
            f"({1000 * plan_s / n:.2f} ms/device, {n / plan_s:.0f} devices/s; {plan_cpu:.2f} s of CPU)"
        )
        print(
            f"  of which read (dumps, endpoint, library diff, cross-checks): {read_s:.2f} s "
            f"({1000 * read_s / n:.2f} ms/device)"
        )
        print(f"  device provider: {result.stats['providers'].get('device/', {})}")
        print(
            f"plan file: {(t3 - t2):.2f} s to write, {plan_file.stat().st_size / 2**20:.1f} MiB; "
            f"text rendering: {(t4 - t3):.2f} s, {len(rendered) / 2**20:.1f} MiB"
        )
        print(f"changes: {device_changes} device change(s), {fields} field change(s), {len(errors)} error(s)")
        if apply_s is not None:
            print(
                f"apply (stale check, artifacts of {device_changes} devices, journal, device state file): "
                f"{apply_s:.2f} s ({1000 * apply_s / max(device_changes, 1):.2f} ms/device; {apply_cpu:.2f} s of "
                "CPU)"
            )
        print(
            f"max RSS: {rss_before:.1f} MiB before the plan, {rss_plan:.1f} MiB after it "
            f"(the process's peak, ru_maxrss)"
        )


if __name__ == "__main__":
    main()

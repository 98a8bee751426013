"""Benchmark: the device half of a plan for a large fleet (not a test; run it by hand or in CI and read it).

Generates N dumps (default 10,000, spread over the four built-in models, a quarter each) in a temporary
folder, then times, per phase, parsing every dump, resolving desired values, diffing and rendering the
artifacts to disk. Prints wall time per phase, per-device cost, and peak memory (tracemalloc peak of the
timed phases, and the process's max RSS).

    .venv/bin/python benchmarks/bench_device_plan.py [--devices 10000] [--no-render] [--no-tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.providers.device import (  # noqa: E402
    DeviceModel,
    Resolved,
    builtin_models,
    diff_device,
    parse_dump,
    render,
    resolve_desired,
)

ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.eu-west-2.amazonaws.com"
CERT = (Path(__file__).resolve().parent.parent / "tests" / "device" / "data" / "AmazonRootCA1.pem").read_bytes()


def springcore_dump(i: int) -> tuple[str, str, str]:
    serial = f"DB{i:06X}"
    doc = {
        "format": "fleetctl.springcore-dump/v1",
        "captured_at": "2025-05-12T09:14:03Z",
        "device": {
            "VendorName": "SpringCard",
            "ProductName": "SpringPark",
            "Firmware": "SpringCore/E518/SpringPark",
            "SerialNumber": serial,
        },
        "config": {
            "C0": "00" if i % 3 else "64",
            "80": "00" * 20,
            "84": "04",
            "86": "" if i % 2 else "6F6C642E6578616D706C65",
            "88": "0000000000",
            "89": "5314030A1E1E",
            "8E": "737072696E67636172642F737072696E67636F7265",
        },
    }
    return serial, f"{serial}.json", json.dumps(doc, indent=2)


def mac(i: int, prefix: str) -> str:
    return prefix + "-" + "-".join(f"{(i >> s) & 0xFF:02X}" for s in (16, 8, 0))


def ublox_dump(i: int) -> tuple[str, str, str]:
    device = mac(i, "D4-CA-6E")
    text = (
        'ATI0\nNINA-W132-04B-00\nOK\nATI9\n"3.1.0-025"\nOK\n'
        f"AT+UMLA=2\n+UMLA:{device.replace('-', '')}\nOK\n"
        'AT+UWSC=0\n+UWSC:0,0,0\n+UWSC:0,2,""\n+UWSC:0,5,1\n+UWSC:0,100,2\n+UWSC:0,101,0.0.0.0\nOK\n'
        'AT+USECMNG=4,0,"AmazonRootCA1.pem"\nERROR\nAT+UDDRP=0\n+UDDRP:0,"",0\nOK\nAT+UMSM?\n+UMSM:0\nOK\n'
    )
    return device, f"nina-{device}.at", text


def spwf_dump(i: int) -> tuple[str, str, str]:
    device = mac(i, "00-80-E1")
    text = (
        "+WIND:1:Poweron (170111-665d284-SPWF01S)\n"
        f"AT+S.GCFG=nv_wifi_macaddr\n#  nv_wifi_macaddr = {device.replace('-', ':')}\nOK\n"
        "AT+S.GCFG=ip_use_dhcp\n#  ip_use_dhcp = 1\nOK\nAT+S.GCFG=ip_hostname\n#  ip_hostname = iwm\nOK\n"
    )
    return device, f"spwf-{device}.at", text


def esp_dump(i: int) -> tuple[str, str, str]:
    device = mac(i, "24-0A-C4")
    doc = {
        "format": "fleetctl.esp-nvs-dump/v1",
        "device": {"mac": device.replace("-", ":"), "firmware": "app 1.0"},
        "nvs": {"aws/port": 8883, "wifi/ssid": "factory"},
        "slots": {"ca": None},
    }
    return device, f"{device}.json", json.dumps(doc, indent=2)


def values(model: str, device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if model == "springcard-springpark":
        return (
            {
                "profile": {"network": "mqtt_client", "primary": "smartreader"},
                "mqtt_broker": ENDPOINT,
                "mqtt_tls": {"tls": True, "sni": True, "server_trust": "ca", "server_ca_slot": 9},
                "mqtt_client_options": "5614030A1E1E",
            },
            {"admin_password": Resolved.of("per-device", sensitive=True)},
        )
    if model == "ublox-nina-w13":
        return (
            {
                "wifi.ssid": "fleet",
                "wifi.auth": "wpa_psk",
                "wifi.psk": Resolved.of("pw", sensitive=True),
                "ca": {"name": "AmazonRootCA1.pem", "content": Resolved.of(CERT, sensitive=False, source="ca.pem")},
                "mqtt.peer": f"mqtt://{ENDPOINT}:8883/?ca=AmazonRootCA1.pem&client={device}",
                "start_mode": "data",
            },
            {},
        )
    if model == "st-spwf01":
        return (
            {"tls_domain": ENDPOINT, "f_ca": Resolved.of(CERT, sensitive=False, source="ca.pem")},
            {"ip_hostname": device.lower()},
        )
    return (
        {"endpoint": ENDPOINT, "ca": Resolved.of(CERT, sensitive=False, source="ca.pem")},
        {"thing_name": device.replace("-", "")},
    )


GENERATORS: dict[str, Callable[[int], tuple[str, str, str]]] = {
    "springcard-springpark": springcore_dump,
    "ublox-nina-w13": ublox_dump,
    "st-spwf01": spwf_dump,
    "esp32-nvs": esp_dump,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument("--no-tracemalloc", action="store_true")
    args = parser.parse_args()
    models: dict[str, DeviceModel] = builtin_models()
    with tempfile.TemporaryDirectory(prefix="fleetctl-bench-") as tmp:
        root = Path(tmp)
        dumps_dir, out_dir = root / "dumps", root / "out"
        dumps_dir.mkdir()
        started = time.perf_counter()
        fleet: list[tuple[str, str, Path]] = []
        names = list(GENERATORS)
        for i in range(args.devices):
            name = names[i % len(names)]
            device, filename, text = GENERATORS[name](i)
            (dumps_dir / filename).write_text(text)
            fleet.append((name, device, dumps_dir / filename))
        generate_s = time.perf_counter() - started

        if not args.no_tracemalloc:
            tracemalloc.start()
        timings = {"parse": 0.0, "resolve": 0.0, "diff": 0.0, "render": 0.0}
        counts = {"changes": 0, "artifacts": 0}
        wall = time.perf_counter()
        for model_name, device, path in fleet:
            model = models[model_name]
            t0 = time.perf_counter()
            dump = parse_dump(path, model, expected_id=device)
            t1 = time.perf_counter()
            group, per_device = values(model_name, device)
            desired, problems = resolve_desired(model, group, per_device, device_id=dump.device_id)
            assert not problems, problems
            t2 = time.perf_counter()
            changes = diff_device(model, desired, dump, {})
            t3 = time.perf_counter()
            if not args.no_render:
                counts["artifacts"] += len(render(model, dump.device_id, changes, desired, out_dir, dump=dump))
            t4 = time.perf_counter()
            counts["changes"] += len(changes)
            for phase, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                timings[phase] += seconds
        wall_s = time.perf_counter() - wall
        peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else None
        if tracemalloc.is_tracing():
            tracemalloc.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.devices
    print(f"devices: {n} ({', '.join(f'{n // len(names)} {m}' for m in names)})")
    print(f"generate dumps: {generate_s:.2f} s")
    print(
        f"parse+resolve+diff{'' if args.no_render else '+render'} wall: {wall_s:.2f} s "
        f"({1000 * wall_s / n:.3f} ms/device, {n / wall_s:.0f} devices/s)"
        + (" [under tracemalloc]" if peak is not None else "")
    )
    for phase, seconds in timings.items():
        print(f"  {phase:8s} {seconds:7.2f} s  {1000 * seconds / n:.3f} ms/device")
    print(f"changes: {counts['changes']}, artifacts: {counts['artifacts']}")
    if peak is not None:
        print(f"peak traced memory: {peak / 2**20:.1f} MiB")
    print(f"max RSS: {rss_mib:.1f} MiB")


if __name__ == "__main__":
    main()

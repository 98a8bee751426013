"""Shared data for the device library tests: built-in models, PEM material, desired values per adapter
and the golden-file helper (``FLEETCTL_UPDATE_GOLDEN=1`` rewrites the golden files; default compares bytes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.providers.device import Resolved

HERE = Path(__file__).parent
REPO = HERE.parent.parent
DATA = HERE / "data"
GOLDEN = HERE / "golden"
DUMPS = REPO / "fleet" / "dumps"

AMAZON_ROOT = (DATA / "AmazonRootCA1.pem").read_bytes()
CLIENT_CERT = (DATA / "client-cert.pem").read_bytes()
# PEM framing around a harmless body: key slots only need the PEM shape; fleetctl never parses keys.
FAKE_KEY = b"-----BEGIN PRIVATE KEY-----\nZmxlZXRjdGwgdGVzdCBmaXh0dXJlOyBub3QgYSBrZXk=\n-----END PRIVATE KEY-----\n"
ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.eu-west-2.amazonaws.com"


def springpark_group() -> dict[str, Any]:
    """The seed 000 AWS configuration (registers C0, 86, 88, 89), at group level."""
    return {
        "profile": {"network": "mqtt_client", "primary": "smartreader"},
        "mqtt_broker": ENDPOINT,
        "mqtt_tls": {
            "tls": True,
            "sni": True,
            "verify_cn": True,
            "server_trust": "ca",
            "server_ca_slot": 9,
            "client_auth": True,
            "client_cert_slot": 13,
            "key_store": "atecc",
            "client_key_slot": 13,
            "chain_ca": True,
            "client_ca_slot": 15,
        },
        "mqtt_client_options": "5614030A1E1E",
    }


def springpark_device() -> dict[str, Any]:
    """Seed 000 static IP (register 80) plus a per-device admin password from a secret reference."""
    return {
        "ipv4": {"address": "192.168.5.152", "netmask": "255.255.255.0", "gateway": "192.168.5.1"},
        "admin_password": Resolved.of("paris-admin-01", sensitive=True),
    }


def nina_values() -> dict[str, Any]:
    return {
        "wifi.active_on_startup": True,
        "wifi.ssid": "fleet-iot",
        "wifi.auth": "wpa_psk",
        "wifi.psk": Resolved.of("correct horse battery", sensitive=True),
        "ca": {
            "name": "AmazonRootCA1.pem",
            "content": Resolved.of(AMAZON_ROOT, sensitive=False, source="certs/AmazonRootCA1.pem"),
        },
        "cert": {
            "name": "nina-cert.pem",
            "content": Resolved.of(CLIENT_CERT, sensitive=False, source="certs/nina-D4CA6E0A1B2C.pem"),
        },
        "key": {"name": "nina-key.pem", "content": Resolved.of(FAKE_KEY, sensitive=True)},
        "mqtt.peer": {
            "host": ENDPOINT,
            "port": 8883,
            "query": {
                "ca": "AmazonRootCA1.pem",
                "cert": "nina-cert.pem",
                "privKey": "nina-key.pem",
                "client": "D4CA6E0A1B2C",
                "pt": "fleet/D4CA6E0A1B2C/evt",
                "st": "fleet/D4CA6E0A1B2C/cmd/#",
                "encr": 3,
                "keepAlive": 60,
            },
        },
        "start_mode": "data",
    }


def spwf_values() -> dict[str, Any]:
    return {
        "tls_domain": ENDPOINT,
        "f_ca": Resolved.of(AMAZON_ROOT, sensitive=False, source="certs/AmazonRootCA1.pem"),
        "f_cert": CLIENT_CERT.decode(),
        "f_key": Resolved.of(FAKE_KEY, sensitive=True, source="/run/secrets/spwf-00-80-E1-B7-3C-21.key"),
        "ip_hostname": "spwf-paris-1",
    }


def esp_values() -> dict[str, Any]:
    return {
        "thing_name": "240AC45F129C",
        "endpoint": ENDPOINT,
        "wifi_ssid": "fleet-iot",
        "wifi_pass": Resolved.of("correct horse battery", sensitive=True),
        "ca": Resolved.of(AMAZON_ROOT, sensitive=False, source="certs/AmazonRootCA1.pem"),
        "cert": Resolved.of(CLIENT_CERT, sensitive=False),
        "key": Resolved.of(FAKE_KEY, sensitive=True, source="/run/secrets/240AC45F129C.key"),
    }


def assert_golden(case: str, files: dict[str, str]) -> None:
    """Compare `files` (name → text) with ``golden/<case>/``; rewrite them when FLEETCTL_UPDATE_GOLDEN=1."""
    folder = GOLDEN / case
    if os.environ.get("FLEETCTL_UPDATE_GOLDEN") == "1":
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_bytes(text.encode("utf-8"))
        return
    assert folder.is_dir(), f"no golden files for {case}; run with FLEETCTL_UPDATE_GOLDEN=1"
    assert sorted(p.name for p in folder.iterdir()) == sorted(files), f"golden file set of {case} differs"
    for name, text in files.items():
        assert (folder / name).read_bytes() == text.encode("utf-8"), f"golden/{case}/{name} differs"

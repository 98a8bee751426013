"""Issue 13.2: secret fingerprints are keyed (engine/fingerprint.py). A plan file (a CI artifact) holds no digest a
dictionary reverses; the same value and key give the same fingerprint in any process, another key another one;
a changed secret is still a change; a plan made with another key (or an older fleetctl's `sha256:`) is refused
by apply with the reason."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine import fingerprint as fp
from tests.conftest import ROOT
from tests.device.provider_support import ADMIN_PASSWORD, WIFI_PSK, device_changes, workspace

KEY_A = "key-a-0123456789abcdef-for-tests"
KEY_B = "key-b-fedcba9876543210-for-tests"
# a small "leaked passwords" dictionary holding the fleet's low-entropy secrets among ordinary words
DICTIONARY = [
    "password",
    "123456",
    "admin",
    "letmein",
    "hunter2",
    "paris-admin-01",
    "correct horse battery",
    "Mq7t-pass-9x!z",
    "wifi-password",
    "changeme",
]


def _plain_digests(word: str) -> set[str]:
    """Every plain sha256 an attacker would try for a candidate: of the text, of its bytes NUL-padded to any
    register size up to 64, and of its upper-case hex (as SpringCore artifacts carry text)."""
    data = word.encode("utf-8")
    variants = [data, data.hex().upper().encode()] + [data.ljust(n, b"\0") for n in range(len(data) + 1, 65)]
    return {hashlib.sha256(v).hexdigest() for v in variants}


def _fingerprint_in_subprocess(value: str, env: dict[str, str]) -> str:
    code = "import sys; from engine.model import secret_fingerprint; print(secret_fingerprint(sys.argv[1]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, value],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_plan_holds_no_plain_sha256_of_any_secret(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    plan = ws.plan_json()
    text = (ws.root / "plan.json").read_text()
    hexes = set(re.findall(r"[0-9a-f]{64}", text))
    for word in DICTIONARY:
        assert not (_plain_digests(word) & hexes), word  # the dictionary attack finds nothing
    for key in (ws.keys / "nina-D4CA6E0A1B2C.key", ws.keys / "esp32-240AC45F129C.key"):
        assert hashlib.sha256(key.read_bytes()).hexdigest() not in hexes
    # the scan does find what is public: the plain sha256 of a CA certificate the devices load
    ca = (ws.fleet / "devices" / "certs" / "AmazonRootCA1.pem").read_bytes()
    assert hashlib.sha256(ca).hexdigest() in hexes
    secret_tokens = re.findall(r'"secret": \{[^}]*\},\s*"(\w+)": "([^"]+)"', text)
    assert secret_tokens and all(k == "fingerprint" and v.startswith("hmac-sha256:") for k, v in secret_tokens)
    sensitive = [
        p[3]
        for c in device_changes(plan).values()
        for p in c["ids"]["planned"]
        if p[1] in ("wifi.psk", "admin_password", "wifi_pass", "wifi_psk")
    ]
    assert sensitive and all(s.startswith(f"hmac-sha256:{fp.current_key().id}:") for s in sensitive)


def test_same_value_same_key_same_fingerprint_in_two_processes(tmp_path: Path) -> None:
    first = _fingerprint_in_subprocess(WIFI_PSK, {fp.KEY_ENV: KEY_A})
    second = _fingerprint_in_subprocess(WIFI_PSK, {fp.KEY_ENV: KEY_A})
    other_key = _fingerprint_in_subprocess(WIFI_PSK, {fp.KEY_ENV: KEY_B})
    other_value = _fingerprint_in_subprocess(WIFI_PSK + "!", {fp.KEY_ENV: KEY_A})
    assert first == second and first.startswith("hmac-sha256:")
    assert len({first, other_key, other_value}) == 3
    assert first.split(":")[1] != other_key.split(":")[1]  # the key id says which key made it
    assert hashlib.sha256(WIFI_PSK.encode()).hexdigest() not in first


def test_without_the_variable_a_private_key_file_is_made_once(tmp_path: Path) -> None:
    env = {fp.KEY_ENV: "", "HOME": str(tmp_path / "home")}
    first = _fingerprint_in_subprocess(ADMIN_PASSWORD, env)
    key_file = tmp_path / "home" / ".fleetctl" / "fingerprint.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    assert _fingerprint_in_subprocess(ADMIN_PASSWORD, env) == first  # plan and apply on one machine agree
    other_runner = {fp.KEY_ENV: "", "HOME": str(tmp_path / "runner-2")}
    assert _fingerprint_in_subprocess(ADMIN_PASSWORD, other_runner) != first  # another runner: another key
    assert _fingerprint_in_subprocess(ADMIN_PASSWORD, {**env, fp.KEY_ENV: KEY_A}) != first


def test_short_key_is_a_plain_error_naming_the_setting(tmp_path: Path, monkeypatch) -> None:
    from tests.conftest import run_cli

    res = run_cli("validate", str(ROOT / "fleet"), env={fp.KEY_ENV: "short"})
    assert res.exit_code == 1
    assert "FLEETCTL_FINGERPRINT_KEY is set but shorter than 16 characters" in res.stderr
    assert "short" not in res.stderr.replace("shorter", "") and "internal error" not in res.output


def test_mismatch_explained() -> None:
    key = fp._key_from_env(KEY_A)
    assert fp.explain_mismatch(fp.fingerprint("x", key), key) is None
    other = fp.fingerprint("x", fp._key_from_env(KEY_B))
    assert f"this run has key {key.id}" in (fp.explain_mismatch(other, key) or "")
    assert "older fleetctl" in (fp.explain_mismatch("sha256:" + "0" * 64, key) or "")
    assert fp.parse("sha256:" + "a" * 64).scheme == "legacy"
    assert KEY_A not in repr(key)


def test_changed_secret_is_still_a_change(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    ws.plan_json()
    assert ws.apply(ws.root / "plan.json").exit_code == 0
    ws.read_back()
    assert "No changes." in ws.plan().stdout
    ws.env["FLEETCTL_WIFI_PSK"] = "a new passphrase"
    changed = device_changes(ws.plan_json())
    for device, register in (
        ("D4-CA-6E-0A-1B-2C", "registers.wifi.psk"),
        ("00-80-E1-B7-3C-21", "registers.wifi_psk"),
        ("24-0A-C4-5F-12-9C", "registers.wifi_pass"),
    ):
        fields = {f["path"]: f for f in changed[device]["fields"]}
        assert fields[register]["after"] == "(sensitive)" and fields[register]["sensitive"], (device, fields)
    assert "a new passphrase" not in (ws.root / "plan.json").read_text()


def test_apply_with_another_key_says_so(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    ws.env[fp.KEY_ENV] = KEY_A
    ws.plan_json()
    ws.env[fp.KEY_ENV] = KEY_B
    res = ws.apply(ws.root / "plan.json")
    assert res.exit_code == 1
    assert "fingerprint key" in res.stderr and "FLEETCTL_FINGERPRINT_KEY" in res.stderr, res.stderr
    assert WIFI_PSK not in res.output and KEY_A not in res.output and KEY_B not in res.output


def test_old_plan_file_with_plain_sha256_is_refused_with_the_reason(aws_env, tmp_path: Path) -> None:
    """Migration: a plan file made before keyed fingerprints holds `"sha256": "sha256:…"` secret tokens; apply
    refuses those devices and says to make the plan again."""
    ws = workspace(tmp_path)
    ws.plan_json()
    path = ws.root / "plan.json"
    text = re.sub(
        r'("secret": \{[^}]*\},\s*)"fingerprint": "hmac-sha256:[0-9a-f]{8}:([0-9a-f]{64})"',
        r'\1"sha256": "sha256:\2"',
        path.read_text(),
    )
    path.write_text(text)
    res = ws.apply(path)
    assert res.exit_code == 1
    assert "older fleetctl" in res.stderr and "make the plan again" in res.stderr, res.stderr


@pytest.mark.parametrize("value", ["hunter2", b"\x00\x01binary"])
def test_memoised_and_stable(value) -> None:
    key = fp._key_from_env(KEY_A)
    assert fp.fingerprint(value, key) == fp.fingerprint(value, key)
    assert json.dumps(fp.fingerprint(value, key)).count(":") == 2


def test_dump_token_keys_the_secret_registers_it_covers() -> None:
    """A device's plan token digests its dump; a password the dump read back enters it keyed: with every other
    value public (a converged device holds what the manifests say), a plain digest would be reversible."""
    from engine.providers.device import builtin_models
    from engine.providers.device.diff import fingerprint_of
    from engine.providers.device.dumps import read_dump
    from tests.device.helpers import DUMPS

    esp = builtin_models()["esp32-nvs"]
    doc = json.loads((DUMPS / "24-0A-C4-5F-12-9C.json").read_text())

    def token(psk: str, tmp: Path) -> tuple[str, str]:
        doc["nvs"]["wifi/pass"] = psk
        path = tmp / f"{len(psk)}-24-0A-C4-5F-12-9C.json"
        path.write_text(json.dumps(doc))
        dump, problems = read_dump(path, esp, expected_id="24-0A-C4-5F-12-9C")
        assert not problems, problems
        return fingerprint_of(dump), fingerprint_of(dump, sensitive=["wifi_pass"])

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        plain, keyed = token("hunter2", Path(folder))
        plain_other, keyed_other = token("hunter22", Path(folder))
    # `plain` is what an attacker computes from the public values and the right guess: the keyed token differs
    assert keyed not in (plain, plain_other)
    assert keyed_other != keyed  # and it still changes with the secret

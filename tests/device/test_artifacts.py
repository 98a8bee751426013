"""Every adapter's parse → diff → render path against golden artifacts, file modes, determinism, and the
cases where rendering must refuse."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from engine.providers.device import (
    Artifact,
    ArtifactKind,
    DeviceModel,
    RenderError,
    diff_device,
    parse_dump,
    render,
    resolve_desired,
)

from .helpers import (
    DUMPS,
    assert_golden,
    esp_values,
    nina_values,
    springpark_device,
    springpark_group,
    spwf_values,
)

CASES: dict[str, tuple[str, str, dict[str, Any], dict[str, Any], dict[str, str]]] = {
    # case: (model, dump, group values, device values, recorded fingerprints)
    "springpark-DA1275B0": ("springcard-springpark", "DA1275B0.json", springpark_group(), springpark_device(), {}),
    "springpark-DA1275B1": (
        "springcard-springpark",
        "DA1275B1.json",
        springpark_group(),
        {
            "ipv4": {"address": "192.168.5.153", "netmask": "255.255.255.0", "gateway": "192.168.5.1"},
            "location": "Paris gate 2",
        },
        {},
    ),
    "springpark-DA1275B2": ("springcard-springpark", "DA1275B2.json", springpark_group(), {}, {}),
    "nina-w13": ("ublox-nina-w13", "nina-D4-CA-6E-0A-1B-2C.at", nina_values(), {}, {}),
    "spwf01": ("st-spwf01", "spwf-00-80-E1-B7-3C-21.at", spwf_values(), {}, {}),
    "spwf01-no-slot-change": ("st-spwf01", "spwf-00-80-E1-B7-3C-21.at", spwf_values(), {}, {}),
    "esp32-nvs": ("esp32-nvs", "24-0A-C4-5F-12-9C.json", {}, esp_values(), {}),
}


def _recorded_all_slots(case: str, models: dict[str, DeviceModel]) -> dict[str, str]:
    if case != "spwf01-no-slot-change":
        return CASES[case][4]
    desired, _ = resolve_desired(models["st-spwf01"], spwf_values(), None, device_id="x")
    return {key: slot.fingerprint for key, slot in desired.slots.items()}


def run_case(case: str, models: dict[str, DeviceModel]) -> tuple[list[Any], list[Artifact]]:
    model_name, dump_name, group, device, _ = CASES[case]
    model = models[model_name]
    dump = parse_dump(DUMPS / dump_name, model)
    desired, problems = resolve_desired(model, group, device, device_id=dump.device_id)
    assert problems == []
    changes = diff_device(model, desired, dump, _recorded_all_slots(case, models))
    return changes, render(model, dump.device_id, changes, desired, Path("out"), dump=dump)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, models: dict[str, DeviceModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    changes, artifacts = run_case(case, models)
    files = {
        "changes.json": json.dumps([c.to_json() for c in changes], indent=2) + "\n",
        "artifacts.json": json.dumps(
            [{k: v for k, v in a.to_json().items() if k != "content"} for a in artifacts], indent=2
        )
        + "\n",
    }
    for artifact in artifacts:
        if artifact.path is not None:
            path = Path(artifact.path)
            written = path.read_bytes()
            assert written == artifact.content.encode()
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o600 if artifact.contains_secrets else 0o644), (artifact.path, oct(mode))
            if artifact.kind is not ArtifactKind.PAYLOAD or not artifact.contains_secrets:
                files[path.name] = written.decode()
    assert_golden(case, files)


def test_render_is_deterministic(
    models: dict[str, DeviceModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for case in CASES:
        first = [(a.kind, a.path, a.content, a.argv) for a in run_case(case, models)[1]]
        second = [(a.kind, a.path, a.content, a.argv) for a in run_case(case, models)[1]]
        assert first == second


def test_springcore_seed_values(models: dict[str, DeviceModel], tmp_path: Path) -> None:
    """Seed 000: 02C0 = 0x64, registers C0/86/88/89 (+80 for a static IP), 0289 = 5614030A1E1E."""
    model = models["springcard-springpark"]
    dump = parse_dump(DUMPS / "DA1275B0.json", model)
    desired, _ = resolve_desired(model, springpark_group(), springpark_device(), device_id="DA1275B0")
    artifacts = render(model, "DA1275B0", diff_device(model, desired, dump), desired, tmp_path)
    config = json.loads(artifacts[0].content)["config"]
    assert config["C0"] == "64" and config["89"] == "5614030A1E1E" and config["88"] == "27098D4D8F"
    assert config["80"] == "C0A80598FFFFFF00C0A805010000000000000000"
    assert list(config)[-1] == "C0"  # the mode switch last
    assert artifacts[0].contains_secrets  # admin password (02FF) is in the file
    assert artifacts[1].argv == ("SpringCoreConfig", "--file", str(tmp_path / "DA1275B0.json"), "--no-load-defaults")
    assert "content" not in artifacts[0].to_json()  # never in a plan file


def test_no_changes_no_artifacts(models: dict[str, DeviceModel], tmp_path: Path) -> None:
    model = models["springcard-springpark"]
    desired, _ = resolve_desired(model, {"profile": "00"}, None, device_id="DA1275B0")
    dump = parse_dump(DUMPS / "DA1275B0.json", model)
    assert render(model, "DA1275B0", diff_device(model, desired, dump), desired, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_springcore_slot_command(models: dict[str, DeviceModel], tmp_path: Path) -> None:
    model = models["springcard-springpark"]
    from .helpers import AMAZON_ROOT

    desired, _ = resolve_desired(model, {"x509/05": AMAZON_ROOT.decode()}, None, device_id="DA1275B0")
    dump = parse_dump(DUMPS / "DA1275B0.json", model)
    artifacts = render(model, "DA1275B0", diff_device(model, desired, dump), desired, tmp_path)
    assert [a.kind for a in artifacts] == [ArtifactKind.PAYLOAD, ArtifactKind.COMMAND]
    assert artifacts[1].argv == ("SpringCoreSE", "x509", "setcrt", "05", str(tmp_path / "DA1275B0.x509_05.pem"))


def test_esp_needs_dump_and_keeps_device_slots(models: dict[str, DeviceModel], tmp_path: Path) -> None:
    model = models["esp32-nvs"]
    dump = parse_dump(DUMPS / "24-0A-C4-5F-12-9C.json", model)
    desired, _ = resolve_desired(model, None, {"thing_name": "240AC45F129C"}, device_id=dump.device_id)
    changes = diff_device(model, desired, dump)
    with pytest.raises(RenderError, match="needs the dump"):
        render(model, dump.device_id, changes, desired, tmp_path)
    text = (DUMPS / "24-0A-C4-5F-12-9C.json").read_text().replace('"ca": null', '"ca": "' + "A" * 32 + '"')
    with_ca = parse_dump(text, model)
    with pytest.raises(RenderError, match="slot ca is on the device but not in the desired values"):
        render(model, dump.device_id, diff_device(model, desired, with_ca), desired, tmp_path, dump=with_ca)
    assert list(tmp_path.iterdir()) == []  # nothing written on refusal


def test_at_value_with_quote_is_refused(models: dict[str, DeviceModel], tmp_path: Path) -> None:
    model = models["ublox-nina-w13"]
    dump = parse_dump(DUMPS / "nina-D4-CA-6E-0A-1B-2C.at", model)
    desired, _ = resolve_desired(model, {"wifi.ssid": 'say "hi"'}, None, device_id=dump.device_id)
    with pytest.raises(RenderError, match="double quote"):
        render(model, dump.device_id, diff_device(model, desired, dump), desired, tmp_path)

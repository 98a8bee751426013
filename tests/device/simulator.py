"""A device simulator for the tests: carries out the artifacts `fleetctl apply` wrote on a device dump, and writes
the dump the device would report when read again (the vendor's read-back shape).

Why: apply produces artifacts instead of talking to a device, so "plan after apply shows no changes" for a device
means: after the artifacts reached it and it was read back. This module is that device and that read-back, for
tests only. It follows what the vendors document: SpringCoreConfig writes the CONFIG_DATA registers of the JSON;
a u-blox module stores AT+UWSC / AT+UDDRP / AT+UMSM settings and reports +USECMNG MD5s of what was imported; an
SPWF01 stores AT+S.SCFG variables (TLS slots and the domain cannot be read back); nvs_partition_gen builds the
whole NVS partition from the CSV. Values a device never reads back (passwords, the PSK) are left out of the dump.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import shlex
from pathlib import Path

from engine.providers.device import DeviceModel
from engine.providers.device.dumps import split_at_params


def push(model: DeviceModel, device_id: str, artifacts: Path, dump: Path) -> None:
    """Run the device's artifacts (from `artifacts/<model>/`) and rewrite `dump` as the device reads back."""
    folder = artifacts / model.name
    handler = {"springcore": _springcore, "ublox-at": _ublox, "spwf-at": _spwf, "esp-nvs": _esp_nvs}
    handler[model.adapter.value](model, device_id, folder, dump)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


def _payload(folder: Path, name: str) -> bytes:
    path = Path(name)
    return (path if path.is_absolute() else folder / path).read_bytes()


# --------------------------------------------------------------------------------------------------- SpringCore
def _springcore(model: DeviceModel, device_id: str, folder: Path, dump: Path) -> None:
    doc = json.loads(dump.read_text())
    config = folder / f"{device_id}.json"
    if config.exists():
        for section, entries in json.loads(config.read_text()).items():
            bank = {"config": "02", "templates": "03"}[section]
            target = doc.setdefault(section, {})
            for low, value in entries.items():
                for key in list(target):  # the register as the earlier read-back spelled it
                    if key.split(".")[0].upper() in (low, bank + low):
                        del target[key]
                reg = model.by_address(bank + low)
                if reg is not None and reg.readable:
                    target[low] = value
    script = folder / f"{device_id}.sh"
    if script.exists():  # SpringCoreSE x509 setcrt <index> <file>
        for line in script.read_text().splitlines():
            argv = shlex.split(line) if line and not line.startswith("#") else []
            if argv[:3] == ["SpringCoreSE", "x509", "setcrt"]:
                doc.setdefault("slots", {})[f"x509/{argv[3]}"] = _md5(_payload(folder, argv[4]))
    dump.write_text(json.dumps(doc, indent=2) + "\n")


# --------------------------------------------------------------------------------------------------- AT scripts
def _script_commands(folder: Path, name: str) -> list[tuple[str, bytes | None]]:
    """(command, payload) of every command line of an .at script."""
    out: list[tuple[str, bytes | None]] = []
    path = folder / name
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if line.startswith("@file:"):
            out[-1] = (out[-1][0], _payload(folder, line.removeprefix("@file:")))
        elif line and not line.startswith("#"):
            out.append((line, None))
    return out


def _blocks(text: str) -> list[list[str]]:
    """A transcript as blocks: a command line and its lines up to OK/ERROR (comment lines kept as blocks)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        answer = re.match(r"#\s+\w+\s*=", line)  # an SPWF GCFG answer belongs to its command
        if line.startswith(("AT", "+WIND")) or (line.startswith("#") and not answer) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return blocks


def _ublox(model: DeviceModel, device_id: str, folder: Path, dump: Path) -> None:
    blocks = _blocks(dump.read_text())
    wsc: dict[int, str] = {}
    certs: dict[tuple[int, str], str | None] = {}
    peer, mode = '""', "0"
    head: list[list[str]] = []
    for block in blocks:
        command = block[0]
        if command == "AT+UWSC=0":
            for line in block[1:]:
                if line.startswith("+UWSC:"):
                    params = line.removeprefix("+UWSC:").split(",", 2)
                    wsc[int(params[1])] = params[2]
        elif command.startswith("AT+USECMNG=4,"):
            params = split_at_params(command.split("=", 1)[1])
            answer = next((line for line in block[1:] if line.startswith("+USECMNG:")), None)
            certs[(int(params[1]), params[2])] = split_at_params(answer.split(":", 1)[1])[-1] if answer else None
        elif command == "AT+UDDRP=0":
            peer = split_at_params(block[1].split(":", 1)[1])[1] if len(block) > 2 else '""'
            peer = f'"{peer}"'
        elif command == "AT+UMSM?":
            mode = block[1].split(":", 1)[1]
        else:
            head.append(block)
    for command, payload in _script_commands(folder, f"{device_id}.at"):
        name, _, args = command.removeprefix("AT+").partition("=")
        params = split_at_params(args)
        if name == "USECMNG" and params[0] == "0":
            assert payload is not None and len(payload) == int(params[3]), "payload size differs from the command"
            certs[(int(params[1]), params[2])] = _md5(payload)
        elif name == "UWSC":
            reg = model.by_address(f"UWSC=0,{params[1]}")
            if reg is None or reg.readable:
                wsc[int(params[1])] = args.split(",", 2)[2]
        elif name == "UDDRP":
            peer = args.split(",", 1)[1].rsplit(",", 1)[0]
        elif name == "UMSM":
            mode = params[0]
    lines = [line for block in head for line in block]
    lines += ["AT+UWSC=0", *(f"+UWSC:0,{tag},{value}" for tag, value in sorted(wsc.items())), "OK"]
    for (kind, name), md5 in sorted(certs.items()):
        lines.append(f'AT+USECMNG=4,{kind},"{name}"')
        lines += [f'+USECMNG:4,{kind},"{name}","{md5}"', "OK"] if md5 else ["ERROR"]
    lines += [
        "AT+UDDRP=0",
        f"+UDDRP:0,{peer},2" if peer != '""' else '+UDDRP:0,"",0',
        "OK",
        "AT+UMSM?",
        f"+UMSM:{mode}",
        "OK",
    ]
    dump.write_text("\n".join(lines) + "\n")


def _spwf(model: DeviceModel, device_id: str, folder: Path, dump: Path) -> None:
    blocks = _blocks(dump.read_text())
    variables: dict[str, str] = {}
    order: list[str] = []
    head: list[list[str]] = []
    for block in blocks:
        match = re.fullmatch(r"AT\+S\.GCFG=(\w+)", block[0])
        if match:
            value = next((re.sub(r"^#\s+\w+\s*=\s*", "", line) for line in block[1:] if line.startswith("#")), "")
            variables[match.group(1)] = value
            order.append(match.group(1))
        else:
            head.append(block)
    for command, _ in _script_commands(folder, f"{device_id}.at"):
        if command.startswith("AT+S.SCFG="):
            name, value = command.removeprefix("AT+S.SCFG=").split(",", 1)
            reg = model.by_address(name)
            if reg is not None and not reg.readable:
                continue
            variables[name] = value
        elif command.startswith("AT+S.SSIDTXT="):
            data = command.removeprefix("AT+S.SSIDTXT=").encode().ljust(32, b"\0")
            variables["wifi_ssid"] = ":".join(f"{b:02X}" for b in data)
        else:
            continue
        name = "wifi_ssid" if command.startswith("AT+S.SSIDTXT=") else name
        if name not in order:
            order.append(name)
    lines = [line for block in head for line in block]
    for name in order:
        lines += [f"AT+S.GCFG={name}", f"#  {name} = {variables[name]}", "OK"]
    dump.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------- ESP32 NVS
def _esp_nvs(model: DeviceModel, device_id: str, folder: Path, dump: Path) -> None:
    doc = json.loads(dump.read_text())
    rows = list(csv.reader((folder / f"{device_id}.csv").read_text().splitlines()))
    assert rows[0] == ["key", "type", "encoding", "value"]
    nvs: dict[str, object] = {}
    slots: dict[str, str | None] = {slot.name: None for slot in model.slots}
    namespace = ""
    for key, kind, encoding, value in rows[1:]:
        if kind == "namespace":
            namespace = key
            continue
        address = f"{namespace}/{key}"
        if kind == "file":
            slot = next(s for s in model.slots if s.address == address)
            slots[slot.name] = _md5(_payload(folder, value))
        elif encoding == "string":
            nvs[address] = value
        elif encoding == "hex2bin":
            nvs[address] = base64.b64encode(bytes.fromhex(value)).decode()
        else:
            nvs[address] = int(value)
    doc["nvs"], doc["slots"] = nvs, slots  # the image replaces the whole partition
    dump.write_text(json.dumps(doc, indent=2) + "\n")

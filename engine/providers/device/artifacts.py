"""Vendor artifacts: the files and commands that carry out a device plan.

Why: fleetctl does not talk to devices; it renders what the vendor's own tools take (a SpringCoreConfig
JSON and its command line, u-blox and ST AT scripts, an ESP-IDF NVS CSV and the nvs_partition_gen /
parttool commands). One renderer per adapter, registered in `_RENDERERS`, turns the ordered changes into
those artifacts. Output is deterministic (same inputs, same bytes). Artifacts that hold a secret are flagged
and written with mode 0600, the others 0644; slot payloads that come from a file are referenced by path
(``@file:``) rather than copied.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine import fsutil

from .codecs import codec, to_hex
from .diff import ChangeKind, RegisterChange, commit_steps
from .dumps import DeviceDump
from .problems import Problem, RenderError
from .regmap import Adapter, DeviceModel, Register, RegType
from .values import DesiredConfig, DesiredSlot


class ArtifactKind(enum.Enum):
    SPRINGCORE_CONFIG = "springcore-config-json"
    AT_SCRIPT = "at-script"
    NVS_CSV = "nvs-csv"
    PAYLOAD = "payload"
    COMMAND = "command"


@dataclass(frozen=True)
class Artifact:
    """A rendered file (`path` set, `content` its text) or a command (`argv`, `content` its shell line)."""

    kind: ArtifactKind
    path: str | None
    contains_secrets: bool
    content: str = field(repr=False)
    argv: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plan form; the content of a secret-bearing artifact is never included."""
        out: dict[str, Any] = {"kind": self.kind.value, "contains_secrets": self.contains_secrets}
        if self.path is not None:
            out["path"] = self.path
        if self.argv:
            out["argv"] = list(self.argv)
        if not self.contains_secrets and self.kind is not ArtifactKind.PAYLOAD:
            out["content"] = self.content
        return out


def _command(argv: Iterable[str]) -> Artifact:
    args = tuple(argv)
    return Artifact(ArtifactKind.COMMAND, None, False, shlex.join(args), args)


@dataclass
class _Context:
    model: DeviceModel
    device_id: str
    changes: Sequence[RegisterChange]
    desired: DesiredConfig
    outdir: Path
    dump: DeviceDump | None
    artifacts: list[Artifact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def file(self, suffix: str) -> str:
        return str(self.outdir / f"{self.device_id}{suffix}")

    def payload(self, want: DesiredSlot) -> str:
        """Path of a slot's content: its source file when known, else a file written next to the script."""
        if want.source:
            return want.source
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", want.key)
        path = self.file(f".{stem}" if stem.endswith(".pem") else f".{stem}.pem")
        if any(a.path == path for a in self.artifacts):
            return path
        self.artifacts.append(
            Artifact(ArtifactKind.PAYLOAD, path, want.sensitive, want.content.decode("utf-8", errors="strict"))
        )
        return path

    def registers(self) -> list[tuple[RegisterChange, Register]]:
        out = []
        for change in self.changes:
            reg = self.model.register(change.name)
            if change.kind is ChangeKind.REGISTER and reg is not None:
                out.append((change, reg))
        return out

    def slots(self) -> list[tuple[RegisterChange, DesiredSlot]]:
        return [(c, self.desired.slots[c.name]) for c in self.changes if c.kind is ChangeKind.SLOT]


def _value(change: RegisterChange) -> bytes:
    assert change.value is not None, f"change {change.name} carries no value"
    return change.value


# ---------------------------------------------------------------------------------------------------------
# SpringCore: SpringCoreConfig JSON (CONFIG_DATA shape, 2-digit low-byte addresses, uppercase hex).

_SPRINGCORE_SECTIONS: Mapping[int, str] = MappingProxyType({0x02: "config", 0x03: "templates"})


def _render_springcore(ctx: _Context) -> None:
    sections: dict[str, dict[str, str]] = {}
    secret = False
    for change, reg in ctx.registers():
        number = int(reg.address, 16)
        section = _SPRINGCORE_SECTIONS[number >> 8]
        sections.setdefault(section, {})[f"{number & 0xFF:02X}"] = to_hex(_value(change))
        secret = secret or change.sensitive
    if sections:
        path = ctx.file(".json")
        ordered = {name: sections[name] for name in _SPRINGCORE_SECTIONS.values() if name in sections}
        ctx.artifacts.append(
            Artifact(ArtifactKind.SPRINGCORE_CONFIG, path, secret, json.dumps(ordered, indent=2) + "\n")
        )
        ctx.artifacts.append(_command(("SpringCoreConfig", "--file", path, "--no-load-defaults")))
    for _, want in ctx.slots():
        slot = ctx.model.slot(want.slot)
        assert slot is not None and want.index is not None
        source = ctx.payload(want)
        ctx.artifacts.append(
            _command(
                arg.replace("{index}", f"{want.index:02X}").replace("{file}", source) for arg in slot.write_command
            )
        )


# ---------------------------------------------------------------------------------------------------------
# AT scripts (u-blox u-connectXpress and ST SPWF01).

_QUOTED_AT_TYPES = frozenset({RegType.STRING, RegType.URL})


class _Script:
    """An AT script: one command per line, each followed by ``# expect:`` lines; ``@file:`` payloads."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.lines = [f"# fleetctl: {ctx.model.name} {ctx.device_id}; send each line, check each '# expect:'"]
        self.secret = False

    def command(self, line: str, *expect: str, secret: bool = False) -> None:
        self.lines.append(line)
        self.lines.extend(f"# expect: {e}" for e in expect or ("OK",))
        self.secret = self.secret or secret

    def payload(self, line: str, want: DesiredSlot, *expect: str) -> None:
        self.lines.append(line)
        self.lines.extend(f"# expect: {e}" for e in expect[:1])
        self.lines.append(f"@file:{self.ctx.payload(want)}")
        self.lines.extend(f"# expect: {e}" for e in expect[1:] or ("OK",))

    def commit(self) -> None:
        for command in commit_steps(self.ctx.model, self.ctx.changes):
            self.command(command)

    def finish(self) -> None:
        self.ctx.artifacts.insert(
            0, Artifact(ArtifactKind.AT_SCRIPT, self.ctx.file(".at"), self.secret, "\n".join(self.lines) + "\n")
        )


def _at_text(ctx: _Context, reg: Register, data: bytes, *, quote: bool) -> str:
    text = codec(reg).to_text(reg, data)
    if any(ch in text for ch in '"\r\n'):
        ctx.problems.append(Problem((reg.name,), "an AT parameter cannot carry a double quote or a line break"))
    return f'"{text}"' if quote and reg.type in _QUOTED_AT_TYPES else text


def _render_ublox(ctx: _Context) -> None:
    script = _Script(ctx)
    for _, want in ctx.slots():
        slot = ctx.model.slot(want.slot)
        assert slot is not None
        md5 = hashlib.md5(want.content, usedforsecurity=False).hexdigest().upper()
        head = f'{slot.usecmng_type},"{want.stored_name}"'
        script.payload(f"AT+USECMNG=0,{head},{len(want.content)}", want, ">", f'+USECMNG:0,{head},"{md5}"', "OK")
    for change, reg in ctx.registers():
        separator = "," if "=" in reg.address else "="
        suffix = f",{reg.connect_scheme}" if reg.connect_scheme is not None else ""
        text = _at_text(ctx, reg, _value(change), quote=True)
        script.command(f"AT+{reg.address}{separator}{text}{suffix}", secret=change.sensitive)
    script.commit()
    script.finish()


# SPWF write styles: how a register is written (declared per register in the model as `write`).
_SPWF_WRITES: Mapping[str, Callable[[Register, str], str]] = MappingProxyType(
    {
        "scfg": lambda reg, text: f"AT+S.SCFG={reg.address},{text}",
        "ssidtxt": lambda reg, text: f"AT+S.SSIDTXT={text}",
        "tlsdomain": lambda reg, text: f"AT+S.TLSDOMAIN={reg.address},{text}",
    }
)


def _render_spwf(ctx: _Context) -> None:
    script = _Script(ctx)
    slot_changed = bool(ctx.slots())
    clean = slot_changed and ctx.model.clean_before_load
    if clean:
        # clean,all erases every TLS slot and the domain: reload all desired slots and the domain.
        script.command("AT+S.TLSCERT2=clean,all")
        rank = {s.name: i for i, s in enumerate(ctx.model.slots)}
        slots = sorted(ctx.desired.slots.values(), key=lambda w: (rank[w.slot], w.key))
    else:
        slots = [want for _, want in ctx.slots()]
    for want in slots:
        slot = ctx.model.slot(want.slot)
        assert slot is not None
        script.payload(f"AT+S.TLSCERT={slot.address},{len(want.content)}", want)
    writes: list[tuple[Register, bytes, bool]] = [(reg, _value(c), c.sensitive) for c, reg in ctx.registers()]
    if clean:
        changed = {reg.name for reg, _, _ in writes}
        for name, want_reg in ctx.desired.registers.items():
            reg = ctx.model.register(name)
            if reg is not None and reg.write == "tlsdomain" and name not in changed:
                writes.insert(0, (reg, want_reg.after(reg, reg.default), want_reg.sensitive))
        writes.sort(key=lambda w: 0 if w[0].write == "tlsdomain" else 1)
    for reg, data, sensitive in writes:
        text = _at_text(ctx, reg, data, quote=False)
        script.command(_SPWF_WRITES[reg.write or "scfg"](reg, text), secret=sensitive)
    script.commit()
    script.finish()


# ---------------------------------------------------------------------------------------------------------
# ESP-IDF NVS: a CSV for nvs_partition_gen.py; the image replaces the whole partition.


def _nvs_encoding(reg: Register) -> str:
    if reg.type in (RegType.STRING, RegType.URL, RegType.IPV4):
        return "string"
    if reg.type in (RegType.U8, RegType.U16, RegType.U32, RegType.BOOL, RegType.ENUM):
        return {1: "u8", 2: "u16", 4: "u32"}.get(reg.size, "hex2bin")
    return "hex2bin"


def _nvs_text(reg: Register, data: bytes) -> str:
    encoding = _nvs_encoding(reg)
    if encoding == "string":
        return codec(reg).to_text(reg, data)
    if encoding == "hex2bin":
        return to_hex(data)
    return str(int.from_bytes(data, "big"))


def _render_esp_nvs(ctx: _Context) -> None:
    if ctx.dump is None:
        ctx.problems.append(
            Problem(
                (),
                "esp-nvs renders a whole partition image: render needs the dump to "
                "carry over the keys the plan does not change",
            )
        )
        return
    changed = {c.name: _value(c) for c, _ in ctx.registers()}
    rows: dict[str, list[list[str]]] = {}
    secret = False
    for reg in ctx.model.registers:
        want = ctx.desired.registers.get(reg.name)
        current = ctx.dump.values.get(reg.name)
        if reg.name in changed:
            data = changed[reg.name]
        elif want is not None:
            data = want.after(reg, current if current is not None else reg.default)
        elif current is not None:
            data = current
        else:
            continue
        namespace, key = reg.address.split("/", 1)
        rows.setdefault(namespace, []).append([key, "data", _nvs_encoding(reg), _nvs_text(reg, data)])
        secret = secret or reg.sensitive or (want is not None and want.sensitive)
    desired_slots = {slot_want.slot: slot_want for slot_want in ctx.desired.slots.values()}
    for slot in ctx.model.slots:
        content = desired_slots.get(slot.name)
        if content is None:
            if ctx.dump.slots.get(slot.name):
                ctx.problems.append(
                    Problem(
                        ("slots", slot.name),
                        f"slot {slot.name} is on the device but not in "
                        "the desired values; the new image would erase it",
                    )
                )
            continue
        namespace, key = slot.address.split("/", 1)
        rows.setdefault(namespace, []).append([key, "file", "string", ctx.payload(content)])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key", "type", "encoding", "value"])
    for namespace, entries in rows.items():
        writer.writerow([namespace, "namespace", "", ""])
        writer.writerows(entries)
    csv_path, bin_path = ctx.file(".csv"), ctx.file(".bin")
    partition = ctx.model.partition
    size = int(partition.get("size", 0x6000))
    ctx.artifacts.insert(0, Artifact(ArtifactKind.NVS_CSV, csv_path, secret, buffer.getvalue()))
    ctx.artifacts.append(_command(("nvs_partition_gen.py", "generate", csv_path, bin_path, f"0x{size:X}")))
    ctx.artifacts.append(
        _command(
            ("parttool.py", "write_partition", f"--partition-name={partition.get('name', 'nvs')}", "--input", bin_path)
        )
    )


_RENDERERS: Mapping[Adapter, Callable[[_Context], None]] = MappingProxyType(
    {
        Adapter.SPRINGCORE: _render_springcore,
        Adapter.UBLOX_AT: _render_ublox,
        Adapter.SPWF_AT: _render_spwf,
        Adapter.ESP_NVS: _render_esp_nvs,
    }
)


def _write(path: Path, content: str, secret: bool) -> None:
    """Atomically, with an exact mode (engine/fsutil.py): a device never gets half an artifact."""
    fsutil.write_atomic(path, content, mode=fsutil.PRIVATE if secret else fsutil.PUBLIC)


def write_artifacts(artifacts: Sequence[Artifact], root: str | Path = ".") -> list[Path]:
    """Write every file artifact, its path taken relative to `root` (an absolute path as it is): artifacts that
    hold a secret with mode 0600, the others 0644. Commands are not files. Returns the paths written."""
    written = []
    for artifact in artifacts:
        if artifact.path is not None:
            path = Path(root) / artifact.path
            _write(path, artifact.content, artifact.contains_secrets)
            written.append(path)
    return written


def escaping_artifacts(artifacts: Sequence[Artifact], outdir: str | Path) -> list[Problem]:
    """A problem for every file artifact whose path leaves the artifacts folder (after symlinks): artifact paths
    are built from device ids validated at the manifest (engine/providers/device/kinds.py); this is the second
    fence, so no id can make apply write outside the folder (issue 13.5)."""
    root = Path(os.path.abspath(outdir)).resolve()
    out = []
    for artifact in artifacts:
        if artifact.path is None:
            continue
        target = Path(os.path.abspath(artifact.path)).resolve()
        if not target.is_relative_to(root):
            out.append(
                Problem(
                    (), f"refusing to write artifact {artifact.path}: it resolves outside the artifacts folder {root}"
                )
            )
    return out


def render(
    model: DeviceModel,
    device_id: str,
    changes: Sequence[RegisterChange],
    desired: DesiredConfig,
    outdir: str | Path,
    *,
    dump: DeviceDump | None = None,
    write: bool = True,
) -> list[Artifact]:
    """Render (and, with `write`, write under `outdir`) the artifacts that carry out `changes`.

    Nothing is rendered for an empty change list. Raises `RenderError` (nothing written) when the artifacts
    would lose device state or cannot carry a value; `dump` is required by whole-image adapters (esp-nvs)."""
    if not changes:
        return []
    ctx = _Context(model, device_id, changes, desired, Path(outdir), dump)
    _RENDERERS[model.adapter](ctx)
    ctx.problems.extend(escaping_artifacts(ctx.artifacts, outdir))
    if ctx.problems:
        raise RenderError(ctx.problems)
    if write:
        write_artifacts(ctx.artifacts)
    return ctx.artifacts

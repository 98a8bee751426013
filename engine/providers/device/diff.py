"""Register diff: desired configuration against a dump, as ordered register and slot changes (R1–R9).

Why: this is the device half of `fleetctl plan`. It compares only what the DeviceConfig manages (R1), on
canonical bytes after read-modify-write (R3, R4), treats registers missing from the dump as default (R2),
masks secrets while still detecting their change (R6), compares what a device cannot read back through the
fingerprint recorded at the last apply (R7), compares slots by digest (R8) and returns the changes in write
order (R9). It is a pure function of its inputs: the same inputs give the same list.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.graph import topo_order
from engine.model import secret_fingerprint

from .codecs import display, read_field
from .dumps import DeviceDump
from .regmap import DeviceModel, Register, RegType, SlotSpec
from .values import DesiredConfig, DesiredRegister, DesiredSlot, value_fingerprint

SENSITIVE = "(sensitive)"
UNREADABLE = "(unreadable)"


class Action(enum.Enum):
    """Device change actions; the same words as cloud plan actions (no-ops are never listed)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class ChangeKind(enum.Enum):
    SLOT = "slot"
    REGISTER = "register"


@dataclass(frozen=True)
class RegisterChange:
    """One planned write. `before`/`after` are display forms (``(sensitive)`` for secrets). `fingerprint` is
    the sha256 of what will be written: the engine records it after apply (R7). `value` holds the canonical
    bytes (or slot content) to write for the renderers; it is excluded from `to_json` and from repr, so a
    plan file never carries a secret."""

    action: Action
    name: str
    address: str
    before: str | None
    after: str | None
    sensitive: bool
    reason: str
    kind: ChangeKind = ChangeKind.REGISTER
    assumed_default: bool = False
    fingerprint: str = ""
    value: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "action": self.action.value,
            "name": self.name,
            "address": self.address,
            "before": self.before,
            "after": self.after,
            "sensitive": self.sensitive,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
        }
        if self.assumed_default:
            out["assumed_default"] = True
        return out


def _mask(text: str | None, sensitive: bool) -> str | None:
    return SENSITIVE if sensitive and text is not None else text


def _field_reason(reg: Register, before: bytes, after: bytes) -> str:
    parts = []
    for spec in reg.settable_fields:
        old, new = read_field(reg, before, spec.name), read_field(reg, after, spec.name)
        if old != new:
            parts.append(f"{spec.name}: {_word(old)} -> {_word(new)}")
    return ", ".join(parts)


def _word(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _unrecorded(recorded: Mapping[str, str], key: str, fingerprint: str, what: str) -> str | None:
    """R7: the reason to write an unreadable value, or None when the recorded fingerprint matches."""
    previous = recorded.get(key)
    if previous == fingerprint:
        return None
    return f"{what}; no recorded fingerprint" if previous is None else f"{what}; fingerprint mismatch"


def _register_change(
    reg: Register, want: DesiredRegister, dump: DeviceDump, recorded: Mapping[str, str]
) -> RegisterChange | None:
    sensitive = reg.sensitive or want.sensitive
    if not reg.readable:
        after = want.after(reg, reg.default)
        fingerprint = value_fingerprint(after, sensitive)
        reason = _unrecorded(recorded, reg.name, fingerprint, "unreadable")
        if reason is None:
            return None
        return RegisterChange(
            Action.UPDATE,
            reg.name,
            reg.address,
            _mask(UNREADABLE, sensitive),
            _mask(display(reg, after), sensitive),
            sensitive,
            reason,
            fingerprint=fingerprint,
            value=after,
        )
    assumed = reg.name not in dump.values
    before = dump.values.get(reg.name, reg.default)
    after = want.after(reg, before)
    if before == after:
        return None
    if want.blank and before:
        action, reason = Action.DELETE, "desired blank; writes the default" if after else "desired blank"
    elif assumed or not before:
        action, reason = Action.CREATE, "not in dump; assumed default" if assumed else "blank on device"
    else:
        action, reason = Action.UPDATE, "differs"
    if reg.type is RegType.BITFIELD and not sensitive:
        reason = f"{reason}; {_field_reason(reg, before, after)}"
    return RegisterChange(
        action,
        reg.name,
        reg.address,
        _mask(display(reg, before), sensitive),
        _mask(display(reg, after), sensitive),
        sensitive,
        reason,
        assumed_default=assumed,
        fingerprint=value_fingerprint(after, sensitive),
        value=after,
    )


def slot_address(slot: SlotSpec, want: DesiredSlot) -> str:
    """The address a slot change shows: ``x509/09``, ``USECMNG:0``, ``f_ca``, ``certs/ca``."""
    if want.index is not None:
        return f"{slot.name}/{want.index:02X}"
    return slot.address


def _slot_change(
    slot: SlotSpec, want: DesiredSlot, dump: DeviceDump, recorded: Mapping[str, str]
) -> RegisterChange | None:
    sensitive = want.sensitive
    md5 = "md5:" + hashlib.md5(want.content, usedforsecurity=False).hexdigest().upper()
    if want.key in dump.slots:
        digest = dump.slots[want.key]
        if digest is not None and digest in want.digests:
            return None
        action = Action.CREATE if digest is None else Action.UPDATE
        before = None if digest is None else f"md5:{digest}"
        reason = "absent on device" if digest is None else "digest differs (md5 of PEM and of DER checked)"
    else:
        found = _unrecorded(recorded, want.key, want.fingerprint, "slot not read back")
        if found is None:
            return None
        action, before, reason = Action.UPDATE, UNREADABLE, found
    return RegisterChange(
        action,
        want.key,
        slot_address(slot, want),
        _mask(before, sensitive),
        _mask(md5, sensitive),
        sensitive,
        reason,
        kind=ChangeKind.SLOT,
        fingerprint=want.fingerprint,
        value=want.content,
    )


def _ordered_registers(model: DeviceModel, changes: Sequence[RegisterChange]) -> list[RegisterChange]:
    """R9 step 2: topological on `depends_on` (among the changed), ties by bucket, order, address, name."""
    regs: dict[str, Register] = {}
    for change in changes:
        reg = model.register(change.name)
        assert reg is not None, f"change for unknown register {change.name}"
        regs[change.name] = reg
    ordered, _cycles = topo_order(
        changes, lambda c: c.name, lambda c: regs[c.name].depends_on, lambda c: (regs[c.name].write_key, c.name)
    )
    return ordered  # a depends_on cycle is rejected when the model is loaded; none can reach here


def diff_device(
    model: DeviceModel, desired: DesiredConfig, dump: DeviceDump, recorded: Mapping[str, str] | None = None
) -> list[RegisterChange]:
    """The ordered changes that take `dump` to `desired` (R1–R9): slot writes by slot declaration then key,
    then register writes (order buckets, `depends_on`, mode switches last). Commit steps are not changes:
    see `commit_steps`. `recorded` maps register names and slot keys to the fingerprint recorded at the
    last apply, for what the dump cannot show."""
    if desired.model != model.name or dump.model != model.name:
        raise ValueError(f"model mismatch: model {model.name}, desired {desired.model}, dump {dump.model}")
    recorded = recorded or {}
    slot_rank = {slot.name: i for i, slot in enumerate(model.slots)}
    slot_changes = []
    for key in sorted(desired.slots, key=lambda k: (slot_rank[desired.slots[k].slot], k)):
        want = desired.slots[key]
        spec = model.slot(want.slot)
        assert spec is not None
        change = _slot_change(spec, want, dump, recorded)
        if change is not None:
            slot_changes.append(change)
    register_changes = []
    for name, want_reg in desired.registers.items():
        reg = model.register(name)
        assert reg is not None
        change = _register_change(reg, want_reg, dump, recorded)
        if change is not None:
            register_changes.append(change)
    return slot_changes + _ordered_registers(model, register_changes)


def commit_steps(model: DeviceModel, changes: Sequence[RegisterChange]) -> tuple[str, ...]:
    """R9 step 3: the model's commit commands that apply to this change set, in declaration order, once each."""
    changed = [c.name for c in changes]
    reboot = any(reg.requires_reboot for c in changes if (reg := model.register(c.name)) is not None)
    commands: list[str] = []
    for step in model.commit:
        if step.applies(changed, reboot):
            commands.extend(cmd for cmd in step.commands if cmd not in commands)
    return tuple(commands)


def summary(changes: Iterable[RegisterChange]) -> dict[str, int]:
    counts = {action.value: 0 for action in Action}
    for change in changes:
        counts[change.action.value] += 1
    return counts


def fingerprint_of(dump: DeviceDump, names: Iterable[str] | None = None, sensitive: Iterable[str] = ()) -> str:
    """A stable digest of the dump's state, restricted to `names` (registers and slot keys) when given, so a
    saved plan is refused when the device changed in what the plan manages. Values of the `sensitive`
    registers enter it by their keyed fingerprint (engine/fingerprint.py): once a device matches its manifests
    every other value is public, so a plain digest over a password read back would be reversible."""
    keep = set(names) if names is not None else None
    secret = set(sensitive)

    def wanted(name: str) -> bool:
        return keep is None or name in keep

    state = {
        "device": dump.device_id,
        "model": dump.model,
        "firmware": dump.firmware,
        "values": {
            k: secret_fingerprint(v) if k in secret else v.hex().upper()
            for k, v in sorted(dump.values.items())
            if wanted(k)
        },
        "slots": {k: v for k, v in sorted(dump.slots.items()) if wanted(k)},
        "assumed_default": sorted(n for n in dump.assumed_default if wanted(n)),
    }
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

"""device.fleetctl.io/v1 kinds: DeviceModel (a register map declared in the fleet) and DeviceConfig (the desired
register values of a set of devices), and how they become one desired resource per device.

Why this module: it is the boundary between the fleet's manifests and the device library
(engine/providers/device). It validates what can be validated without touching a device or a cloud (so
`fleetctl validate` catches out-of-range values, unknown enum names, individual registers set for a group, a
host name loaded into a certificate slot, unresolved references, each at its file:line), and it names the devices
a plan compares. No SDK is imported here.

This module declares the two kinds once (`register` at the end: spec model, rank, list keys, expand, diff and
refine hooks) and holds the planner hooks; the parts they are built from sit one concern per module:
spec.py (the group and pydantic spec models), tokens.py (values as desired-spec tokens and back), catalogue.py
(which model a DeviceConfig names), inventory.py (which devices, identities, dumps folder) and expand.py (one
desired resource per device). The device library under them: regmap.py (the register map's types), model.py
(model documents), codecs.py, values.py, dumps.py, diff.py, crosscheck.py, artifacts.py.

Which devices exist (the inventory):
- A DeviceConfig configures the devices listed under `devices:` (keys are device identities: a SpringCore serial
  number, a Wi-Fi MAC in any spelling) and, with `selector: {matchLabels: {...}}`, every known device whose labels
  match. Known devices are the AWS Thing and Azure Device manifests whose name is a device identity, and the
  devices listed by any DeviceConfig of the same model. A device's labels are its Thing's (Device's)
  metadata.labels, overlaid with the `labels` of its `devices:` entry. A device has at most one DeviceConfig.
- A device is planned only when its dump is at hand: `fleetctl plan --dumps DIR` (env FLEETCTL_DUMPS) names the
  folder, and a device's dump is the file named by its identity, optionally after a word and a dash
  (`DA1275B0.json`, `nina-D4-CA-6E-0A-1B-2C.at`). Without a dumps folder no device is planned and a plan holds
  only cloud changes; a configured device without a dump is reported by the plan as a warning. The dump's own
  identity and firmware are checked when it is read (R10).

Values (`values:` for the group, `devices.<ID>.values` per device; the device wins) are the library's typed
values, raw hex (`"5614030A1E1E"`, `{raw: ...}`), or references:
- `{env: NAME}`, `{secretRef: NAME}`, and `{file: path}` where the register or slot is sensitive: secrets. The
  desired state holds only the reference and the value's fingerprint; the value goes to the artifacts that need
  it. A secret that cannot be had now is not a validation error (validate needs no credentials): a plan that
  compares a device needing it reports it at its file:line, and apply fails that device.
- `{file: path}` elsewhere: public material (a CA or client certificate), read relative to the manifest.
- `{certificatePem: NAME}` (`target: T` when several Targets hold NAME): the PEM of an AWS Certificate or
  CACertificate manifest; the device is planned after that certificate.
- `{awsIotEndpoint: TARGET}`: the IoT data endpoint of that AWS Target, resolved when the plan is made;
  `{azureHubHost: TARGET}`: the IoT hub host name of that Azure Target. References may sit inside a structured
  value, e.g. the host of a u-blox peer URL `{host: {awsIotEndpoint: aws-eu}, port: 8883, query: {...}}`.

How the plan gets register-level changes: the desired spec of a device holds the values as written (references
as tokens, secrets as fingerprints), so it cannot be compared with a dump field by field: bitfields are
read-modify-write (R3), unreadable values compare by the fingerprint recorded at the last apply (R7), slots by
digest (R8). The provider's read therefore pairs each dump with the resolved desired configuration through the
library (`diff_device`) and hands the resulting register changes to the planner with the actual resource; this
kind's `diff` hook turns them into `registers.<name>` / `slots.<key>` field changes (masked when sensitive) and
its `refine` hook lists the steps in write order (slots, registers with the mode switch last, commit).
"""

from __future__ import annotations

from dataclasses import replace

from engine.diff import diff_values
from engine.kinds import KindDecl, ListKey, register
from engine.model import ActualResource, Change, DesiredResource, FieldChange

from .expand import expand_config, expand_model
from .spec import GROUP, DeviceConfigSpec, DeviceModelSpec

# ---------------------------------------------------------------------------------------------------------
# Planner hooks.


def diff_registers(desired: DesiredResource, actual: ActualResource) -> list[FieldChange]:
    """The register and slot changes the provider's read computed with the library (R1–R9), as field changes:
    `registers.<name>` and `slots.<key>`, before → after in display form, `(sensitive)` where secret."""
    out: list[FieldChange] = []
    for change in actual.ids.get("changes", ()):
        root = ("slots" if change["kind"] == "slot" else "registers", change["name"])
        before, after, sensitive = change["before"], change["after"], bool(change["sensitive"])
        if not sensitive and isinstance(before, (dict, list)) and type(before) is type(after):
            out.extend(diff_values(before, after, root=root))  # a structured value: to the leaf
        else:
            out.append(FieldChange(".".join(root), before, after, sensitive))
    return out


def refine_steps(change: Change) -> Change:
    """The steps a reviewer sees, in write order (R9): slots, registers (the mode switch last), the commit
    commands, how the artifacts reach the device. The register changes, now in the fields, are kept in `ids`
    only as what apply checks it carries out: (kind, name, action, fingerprint) each."""
    ids = change.ids
    changes = ids.get("changes", ())
    steps = (
        [
            "erase every TLS slot, then load every desired slot and the TLS domain again (the model cleans "
            "before loading)"
        ]
        if ids.get("clean")
        else []
    )
    for c in changes:
        steps.append(
            f"load slot {c['name']}: {c['reason']}"
            if c["kind"] == "slot"
            else f"{c['action']} {c['name']} @{c['address']}: {c['reason']}"
        )
    steps += [f"commit: {command}" for command in ids.get("commit", ())]
    steps += [f"deliver: {ids['deliver']}"] if ids.get("deliver") else []
    registers = sum(c["kind"] == "register" for c in changes)
    parts = [f"{registers} register(s)"] * bool(registers) + [f"{len(changes) - registers} slot(s)"] * bool(
        len(changes) - registers
    )
    planned = [[c["kind"], c["name"], c["action"], c["fingerprint"]] for c in changes]
    compact = {k: v for k, v in ids.items() if k not in ("changes", "commit", "deliver", "clean")}
    return replace(
        change, steps=tuple(steps), reason=" and ".join(parts) + " to write", ids={**compact, "planned": planned}
    )


register(
    KindDecl(
        GROUP,
        "DeviceModel",
        "device",
        DeviceModelSpec,
        rank=80,
        targeted=False,
        expand=expand_model,
        lists=(ListKey("registers", "key", "name"), ListKey("slots", "key", "name")),
        description="The register map of a device model (adapter, registers, slots, commit steps), "
        "declared in the fleet; overrides a built-in model of the same name.",
    )
)
register(
    KindDecl(
        GROUP,
        "DeviceConfig",
        "device",
        DeviceConfigSpec,
        rank=90,
        targeted=False,
        expand=expand_config,
        diff=diff_registers,
        refine=refine_steps,
        calls=lambda change: {},
        description="Desired register values of a set of devices of one model (by label selector or "
        "by identity), compared with their dumps and carried out as vendor artifacts.",
    )
)

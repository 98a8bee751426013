"""Expand the device kinds: a declared DeviceModel is checked, a DeviceConfig becomes one desired resource per
device it configures whose dump is at hand.

Why: this is where the inventory (engine/providers/device/inventory.py), the model catalogue (catalogue.py) and
the value tokens (tokens.py) meet. The library's own checks run here on the group's values once and on each listed
device's values once, before any dump, so `fleetctl validate` reports them at their file:line; a device's desired
spec holds tokens only (no secret), its inputs the files, PEMs and sources the provider resolves at plan time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from engine.diagnostics import error
from engine.manifest.core_kinds import TargetSpec
from engine.manifest.expand import ExpandContext, Expanded
from engine.manifest.specs import spec_as
from engine.manifest.validation import Manifest
from engine.model import Address, DesiredResource
from engine.pki import PemError, cert_info

from .catalogue import check_document, model_for
from .inventory import (
    DUMPS_ENV,
    INVENTORY_KINDS,
    Device,
    configs_of,
    device_id_problem,
    dump_paths,
    known_devices,
    listed_labels,
    selection,
)
from .regmap import DeviceModel
from .spec import KIND, DeviceConfigSpec
from .tokens import Catalog, Tokens, library_values
from .values import resolve_desired

if TYPE_CHECKING:  # for the annotation only: the device provider never imports the AWS one
    from engine.providers.aws.kinds import ThingSpec


@functools.lru_cache(maxsize=4096)
def _cn_of(pem: str) -> str | None:
    try:
        return cert_info(pem).subject_cn
    except PemError:
        return None


def _report(ctx: ExpandContext, problems: Any) -> None:
    for problem in problems:
        ctx.error(problem.message, *problem.path)


def expand_model(ctx: ExpandContext, m: Manifest) -> Expanded:
    """A declared model is data: it is checked here (every problem at its file:line) and used by DeviceConfigs;
    it is no resource of its own (nothing to read or write). A declared model overrides a built-in one of the
    same name (to narrow a firmware match, say)."""
    _, _, problems = check_document(m.doc.data, m.doc.file)
    for problem in problems:
        path = tuple(problem.path)
        if path[:1] == ("spec",):
            ctx.error(problem.message, *path[1:])
        else:
            ctx.diags.add(_error_at(ctx, m, path, problem.message))
    return Expanded()


def _error_at(ctx: ExpandContext, m: Manifest, path: tuple[Any, ...], message: str) -> Any:
    return error(message, source=m.doc.source(path), address=str(m.address), field=".".join(map(str, path)) or None)


def _validate(
    ctx: ExpandContext,
    model: DeviceModel,
    spec: DeviceConfigSpec,
    group: tuple[Tokens, dict[str, Any]],
    devices: Mapping[str, tuple[Tokens, dict[str, Any]]],
) -> None:
    """What the library checks, before any dump: the group's values once, each listed device's values once.
    A value whose reference cannot be resolved now (a secret not at hand) is checked when a plan resolves it."""

    def skip(name: str, message: str) -> None:
        return None

    values = library_values(model, group[1], "group", group[0].lookup, skip)
    _, problems = resolve_desired(
        model, values, None, device_id="*", allow_shared_individual=spec.allowSharedIndividual, group_path=("values",)
    )
    _report(ctx, problems)
    for key, (tokens, device) in devices.items():
        values = library_values(model, device, "device", tokens.lookup, skip)
        _, problems = resolve_desired(model, None, values, device_id=key, device_path=("devices", key, "values"))
        _report(ctx, problems)


def only_aws_target(ctx: ExpandContext) -> list[str]:
    """[the fleet's only AWS Target], the cloud a device talks to when nothing else names one; else []."""
    names = [
        n for (k, _, n), m in ctx.index.items() if k == "fleetctl.Target" and spec_as(m, TargetSpec).aws is not None
    ]
    return names if len(names) == 1 else []


def _client_certificate(
    tokens: Tokens, device: Device, referenced: list[Manifest], path: tuple[Any, ...]
) -> tuple[Manifest, bytes] | None:
    """The certificate a device presents: its entry's `certificate`, else the only principal of its Thing, else
    the only AWS Certificate its values reference. Only an entry's own `certificate` is reported when wrong."""
    explicit = device.entry.certificate if device.entry is not None else None
    if explicit is not None:
        hit = tokens.certificate(explicit, None, path)
        return (hit[0], hit[1]) if hit is not None else None
    things = [m for m in device.known if m.decl.qualified == "aws.Thing"]
    principals = cast("ThingSpec", things[0].spec).principals if len(things) == 1 else []  # aws.Thing: tested
    if len(principals) == 1:
        name, target = principals[0], things[0].target
    else:
        distinct = {m.address: m for m in referenced}
        if len(distinct) != 1:
            return None
        only = next(iter(distinct.values()))
        name, target = only.name, only.target
    hit = tokens.certificate(name, target, path, report=False)
    return (hit[0], hit[1]) if hit is not None else None


def expand_config(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, DeviceConfigSpec)
    ref = model_for(ctx, spec.model, "model")
    if ref is None:
        return Expanded()
    model = ref.model
    catalog = Catalog(ctx)
    tokens = Tokens(ctx, model, catalog)
    group = tokens.level(spec.values, "group", ("values",))
    configs = configs_of(ctx, model.name)
    known = known_devices(ctx, model)
    listed = listed_labels(configs, model)
    selected = selection(m, model, known, listed)
    seen: dict[str, str] = {}
    for key in list(spec.devices):
        problem = device_id_problem(model, key)
        if problem is not None:
            ctx.error(problem, "devices", key)
            selected.pop(model.rules.identity(key), None)
            continue
        ident = model.rules.identity(key)
        if ident in seen:
            ctx.error(f"device '{key}' is listed twice (as '{seen[ident]}' too): both are {ident}", "devices", key)
        seen.setdefault(ident, key)
    for other in configs:
        if other is m:
            break
        for ident in sorted(set(selection(other, model, known, listed)) & set(selected)):
            where = ("devices", selected[ident].key) if selected[ident].key else ("selector",)
            ctx.error(
                f"device {ident} is also configured by DeviceConfig '{other.name}' ({other.source()}); "
                "a device has one DeviceConfig",
                *where,
            )
            del selected[ident]
    own: dict[str, tuple[Tokens, dict[str, Any]]] = {}
    for ident, device in selected.items():
        if device.entry is not None and device.key is not None:
            device_tokens = Tokens(ctx, model, catalog)
            own[ident] = (
                device_tokens,
                device_tokens.level(device.entry.values, "device", ("devices", device.key, "values")),
            )
    _validate(ctx, model, spec, (tokens, group), {selected[i].key or i: pair for i, pair in own.items()})
    folder = ctx.env.get(DUMPS_ENV)
    if not folder:  # validation only: explicit certificates must resolve
        for ident, (device_tokens, _) in own.items():
            _client_certificate(device_tokens, selected[ident], [], ("devices", selected[ident].key, "certificate"))
        return Expanded()
    if not os.path.isdir(folder):
        ctx.diags.add(_error_at(ctx, m, ("metadata", "name"), f"dumps folder not found: {folder}"))
        return Expanded()
    dumps = dump_paths(os.path.abspath(folder), model.rules.identity)
    root = str(ctx.root.resolve())
    fallback = only_aws_target(ctx)
    out: list[DesiredResource] = []
    for ident in sorted(selected):
        device = selected[ident]
        if device_id_problem(model, ident) is not None:  # a Thing named like no device of this model
            continue
        device_tokens, device_values = own.get(ident, (Tokens(ctx, model, catalog), {}))
        paths = dumps.get(ident, ())
        where = ("devices", device.key) if device.key else ("selector",)
        if len(paths) > 1:
            ctx.error(f"several dumps for device {ident}: {', '.join(os.path.basename(p) for p in paths)}", *where)
            continue
        client = _client_certificate(
            device_tokens, device, tokens.certificates + device_tokens.certificates, where + ("certificate",)
        )
        depends = tokens.depends | device_tokens.depends
        thing = next((k for k in device.known if k.decl.qualified in INVENTORY_KINDS), None)
        targets = (
            device_tokens.targets
            + tokens.targets
            + ([thing.target] if thing is not None and thing.target else [])
            + fallback
        )
        cloud: dict[str, Any] = {
            "target": targets[0] if targets else None,
            "thing": thing.name if thing is not None else None,
        }
        if client is not None:
            depends = depends | {client[0].address}
            cloud.update(certificate=client[0].name, certificateCn=_cn_of(client[1].decode("utf-8", "replace")))
        spec_out = {
            "model": model.name,
            "modelDigest": ref.digest,
            "config": m.name,
            "values": group,
            "device": device_values,
            "prune": spec.prune,
            "allowSharedIndividual": spec.allowSharedIndividual,
        }
        inputs = {
            "dump": paths[0] if paths else None,
            "dumps": os.path.abspath(folder),
            "fleetRoot": root,
            "files": {**tokens.files, **device_tokens.files},
            "pems": {**tokens.pems, **device_tokens.pems},
            "sources": {**tokens.sources, **device_tokens.sources},
            "cloud": cloud,
            "model": ref.to_json(),
        }
        out.append(
            DesiredResource(
                Address.of("device", model.name, ident),
                KIND,
                spec_out,
                m.source(),
                tuple(sorted(depends)),
                inputs,
                {**tokens.secrets, **device_tokens.secrets},
            )
        )
    return Expanded(out)

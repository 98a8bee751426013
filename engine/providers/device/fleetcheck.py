"""The device cross-checks of a loaded fleet, for `fleetctl lint`.

Why: a register map can be valid and still never connect (engine/providers/device/crosscheck.py says which
checks); lint reports them without a dump being required and without a cloud call or a secret read. Devices are
resolved as a plan resolves them (engine/providers/device/resolve.py), with placeholder endpoints of each AWS
Target's region unless real ones are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.diagnostics import Diagnostics, Source
from engine.manifest.core_kinds import TargetSpec
from engine.manifest.expand import ExpandContext
from engine.manifest.fleet import Fleet
from engine.manifest.specs import spec_as
from engine.model import DesiredResource

from .catalogue import model_for
from .crosscheck import Finding, crosscheck_device
from .dumps import DeviceDump, read_dump
from .expand import only_aws_target
from .regmap import DeviceModel
from .resolve import Resolved, Resolver
from .spec import KIND, DeviceConfigSpec
from .tokens import Found, Lookup, Tokens, Unavailable, library_values, placeholder_endpoint
from .values import resolve_desired


def device_findings(fleet: Fleet, *, endpoints: Mapping[str, str] | None = None) -> list[Finding]:
    """The device cross-checks of a loaded fleet, for lint: a pure function (no cloud call, no secret read).

    Devices the fleet planned (loaded with a dumps folder) are checked as the plan would leave them, over their
    dump; a DeviceConfig without such devices is checked on its group values over the model defaults. An
    `{awsIotEndpoint: T}` value is the Target's endpoint by construction (`endpoints` may give the real host);
    values holding a secret are left out. Each Finding carries the address and the DeviceConfig's file:line."""
    targets = {name: spec_as(m, TargetSpec) for name, m in fleet.targets().items()}
    known = dict(endpoints or {})
    for name, spec in targets.items():
        if spec.aws is not None:
            known.setdefault(name, placeholder_endpoint(spec.aws.region))
    resolver = Resolver({}, targets)
    resolver.know_endpoints(known)

    def check(d: DesiredResource, model: DeviceModel, lookup: Lookup, dump: DeviceDump | None) -> list[Finding]:
        def secretless(kind: str, token: Mapping[str, Any], key: str, for_slot: bool) -> Found:
            if kind == "secret":
                raise Unavailable("secret")
            return lookup(kind, token, key, for_slot)

        group = library_values(model, d.spec.get("values", {}), "group", secretless, lambda n, m: None)
        device = library_values(model, d.spec.get("device", {}), "device", secretless, lambda n, m: None)
        config, _ = resolve_desired(model, group, device, device_id=d.address.name, allow_shared_individual=True)
        context = resolver.cloud(Resolved(d, model, dump, config, endpoints=known))
        context = replace(context, iot_endpoint=(endpoints or {}).get(context.target))  # only a real one compares
        return [_with(f, str(d.address), d.source) for f in crosscheck_device(model, config, dump, context)]

    out: list[Finding] = []
    planned: set[str] = set()
    for d in sorted((d for d in fleet.desired if d.kind == KIND), key=lambda x: x.address):
        planned.add(d.spec.get("config", ""))
        try:
            model = resolver.model(d)
        except ValueError:
            continue
        dump = read_dump(Path(d.inputs["dump"]), model, expected_id=d.address.name)[0] if d.inputs.get("dump") else None
        out += check(d, model, resolver.lookup(d, resolved=known), dump)
    index = {(m.decl.qualified, m.target, m.name): m for m in fleet.manifests}
    for m in sorted((m for m in fleet.manifests if m.decl.qualified == KIND), key=lambda m: m.name):
        if m.name in planned:
            continue
        ctx = ExpandContext(fleet.root, m, index, {}, Diagnostics(), False)
        config = spec_as(m, DeviceConfigSpec)
        ref = model_for(ctx, config.model)
        if ref is None:
            continue
        tokens = Tokens(ctx, ref.model)
        group = tokens.level(config.values, "group", ("values",))
        stub = DesiredResource(
            m.address,
            KIND,
            {"model": ref.model.name, "values": group},
            m.source(),
            inputs={"cloud": {"target": (tokens.targets + only_aws_target(ctx) + [None])[0]}},
        )

        def lookup(kind: str, token: Mapping[str, Any], key: str, for_slot: bool, _t: Tokens = tokens) -> Found:
            if kind == "awsIotEndpoint":
                return Found(known.get(token["awsIotEndpoint"], ""))
            return _t.lookup(kind, token, key, for_slot)

        out += check(stub, ref.model, lookup, None)
    return out


def _with(finding: Finding, address: str, source: Source | None) -> Finding:
    return replace(finding, address=address, source=str(source) if source else "")

"""The validation stages of a fleet load: envelope (apiVersion, kind, metadata), spec (the kind's pydantic model),
addresses (duplicates), Targets and references (every name resolves, in the right Target). Every problem becomes a
located diagnostic naming the field and what was expected; a later stage runs on whatever the earlier ones accepted."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from engine import kinds as registry
from engine.diagnostics import Diagnostic, Diagnostics, Source, error
from engine.kinds import KindDecl
from engine.manifest.loader import Document
from engine.manifest.types import Envelope, SecretRefModel
from engine.model import Address


@dataclass
class Manifest:
    """One validated document: its kind declaration, envelope and typed spec."""

    decl: KindDecl
    doc: Document
    envelope: Envelope
    spec: BaseModel

    @property
    def name(self) -> str:
        return self.envelope.metadata.name

    @property
    def target(self) -> str | None:
        return self.envelope.metadata.target

    @functools.cached_property
    def address(self) -> Address:  # one object per manifest: 100,000 devices ask for it many times
        return address_for(self.decl, self.name, self.target)

    def source(self, *path: Any) -> Source:
        return self.doc.source(("spec",) + tuple(path)) if path else self.doc.source(("metadata", "name"))


def address_for(decl: KindDecl, name: str, target: str | None) -> Address:
    if decl.targeted:
        return Address.of(decl.provider, target or "-", decl.kind, name)
    return Address.of(decl.provider, decl.kind, name)


def _loc_text(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at `loc` (for 'unknown field' messages); best effort through nested models."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", {})
        info = fields.get(part)
        if info is None:
            return []
        annotation = info.annotation
        current = _model_in(annotation)
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}).keys())


def secret_capable(model: type[BaseModel], loc: tuple[Any, ...]) -> bool:
    """Whether the field at `loc` (or one it sits in) may hold a secret reference: pydantic's `input` of an error
    there is never quoted. Free-form fields (dict[str, Any]) count as secret-capable: device values hold secrets."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            return False
        if _mentions(info.annotation, SecretRefModel) or _free_form(info.annotation):
            return True
        current = _model_in(info.annotation)
    return False


def _mentions(annotation: Any, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(arg, target) for arg in getattr(annotation, "__args__", ()) or ()) or any(
        _mentions(arg, target) for arg in getattr(annotation, "__metadata__", ()) or () if isinstance(arg, type)
    )


def _free_form(annotation: Any) -> bool:
    return annotation is Any or any(a is Any for a in getattr(annotation, "__args__", ()) or ())


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _data_loc(loc: tuple[Any, ...], data: Any, kind: str) -> tuple[Any, ...]:
    """The part of a pydantic error location that is a path in the input `data` (pydantic adds the names of
    union members and validators, `function-after[...]`, which a key written with a `[` must not be taken for);
    a missing field's name, not in the data, ends the path."""
    out: list[Any] = []
    current = data
    for i, part in enumerate(loc):
        if (
            isinstance(current, dict)
            and part in current
            or isinstance(current, list)
            and isinstance(part, int)
            and 0 <= part < len(current)
        ):
            out.append(part)
            current = current[part]
        elif i == len(loc) - 1 and kind == "missing" and isinstance(part, str):
            out.append(part)
    return tuple(out)


def _pydantic_diags(
    exc: ValidationError, doc: Document, prefix: tuple[Any, ...], model: type[BaseModel], address: str | None
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple[Any, ...]] = set()
    data: Any = doc.data
    for part in prefix:
        data = data.get(part) if isinstance(data, dict) else None
    for err in exc.errors(include_url=False):
        loc = _data_loc(tuple(err["loc"]), data, err["type"])
        if loc in seen:
            continue
        seen.add(loc)
        field_path = _loc_text(prefix + loc)
        kind = err["type"]
        if kind in ("extra_forbidden", "missing") and not loc:
            summary, detail = err["msg"], ""
        elif kind == "extra_forbidden":
            allowed = _allowed_fields(model, loc)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            summary = f"unknown field '{loc[-1]}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            detail = f"expected one of: {', '.join(allowed)}" if allowed else ""
        elif kind == "missing":
            summary, detail = f"required field '{loc[-1]}' is missing", ""
        else:
            msg = err["msg"].removeprefix("Value error, ")
            summary = msg
            got = err.get("input")
            quotable = (
                isinstance(got, (str, int, float, bool)) and kind != "value_error" and not secret_capable(model, loc)
            )  # a secret's input is described, never quoted (13.1)
            detail = f"got {got!r}" if quotable else ""
            if not quotable and isinstance(got, str) and kind != "value_error":
                detail = f"got a text of {len(got)} character(s) (not shown: this field may hold a secret)"
        out.append(error(summary, detail, source=doc.source(prefix + loc), address=address, field=field_path))
    return out


def _check_envelope(doc: Document, diags: Diagnostics) -> tuple[KindDecl, Envelope] | None:
    data = doc.data
    if not isinstance(data, dict):
        diags.add(
            error("a manifest document must be a mapping with apiVersion, kind, metadata and spec", source=doc.source())
        )
        return None
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        diags.extend(_pydantic_diags(exc, doc, (), Envelope, None))
        return None
    decl = registry.lookup(envelope.apiVersion, envelope.kind)
    if decl is None:
        known = registry.all_kinds()
        groups = sorted({v for d in known for v in d.api_versions})
        group, _, version = envelope.apiVersion.rpartition("/")
        same_kind = registry.lookup_group(envelope.apiVersion, envelope.kind) if group else None
        served = (
            list(same_kind.versions)
            if same_kind
            else sorted({v for d in known if d.group == group for v in d.versions})
        )
        if served and version not in served:  # a known group (and kind), a version it does not serve
            listed = ", ".join(f"{group}/{v}" for v in served)
            diags.add(
                error(
                    f"apiVersion '{envelope.apiVersion}' is not served: {group} serves {listed}"
                    + (f" for {envelope.kind}" if same_kind else ""),
                    f"expected apiVersion: {listed}",
                    source=doc.source(("apiVersion",)),
                    field="apiVersion",
                )
            )
        elif envelope.apiVersion not in groups:
            hint = difflib.get_close_matches(envelope.apiVersion, groups, n=1)
            diags.add(
                error(
                    f"unknown apiVersion '{envelope.apiVersion}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                    f"expected one of: {', '.join(groups)}",
                    source=doc.source(("apiVersion",)),
                    field="apiVersion",
                )
            )
        else:
            names = sorted(d.kind for d in known if envelope.apiVersion in d.api_versions)
            hint = difflib.get_close_matches(envelope.kind, names, n=1)
            diags.add(
                error(
                    f"unknown kind '{envelope.kind}' for {envelope.apiVersion}"
                    + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                    f"expected one of: {', '.join(names)}",
                    source=doc.source(("kind",)),
                    field="kind",
                )
            )
        return None
    if decl.targeted and not envelope.metadata.target:
        diags.add(
            error(
                f"{decl.kind} needs metadata.target (the Target it lives in)",
                source=doc.source(("metadata",)),
                field="metadata.target",
            )
        )
        return None
    return decl, envelope


def spec_value(spec: BaseModel, path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    return value


def check_references(
    manifests: list[Manifest], index: Mapping[tuple[str, str | None, str], Any], diags: Diagnostics
) -> None:
    for m in manifests:
        for ref in m.decl.references:
            value = spec_value(m.spec, ref.path)
            if value is None:
                continue
            names = value if ref.many else [value]
            for i, name in enumerate(names):
                if not isinstance(name, str):
                    continue
                kinds = (ref.kind,) + ref.optional_kinds
                target = m.target if ref.same_target else None
                if any((k, target, name) in index for k in kinds):
                    continue
                path = tuple(ref.path.split(".")) + ((i,) if ref.many else ())
                candidates = sorted(n for (k, t, n) in index if k in kinds and t == target)
                hint = difflib.get_close_matches(name, candidates, n=1)
                where = f" in target '{m.target}'" if ref.same_target and m.target else ""
                diags.add(
                    error(
                        f"unresolved reference: no {' or '.join(k.split('.')[-1] for k in kinds)} named "
                        f"'{name}'{where}" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                        f"declared: {', '.join(candidates) or 'none'}",
                        source=m.source(*path),
                        address=str(m.address),
                        field="spec." + ".".join(map(str, path)),
                    )
                )


def validate_documents(docs: list[Document], diags: Diagnostics) -> list[Manifest]:
    manifests: list[Manifest] = []
    shared: dict[frozenset[str], set[str]] = {}
    for doc in docs:
        checked = _check_envelope(doc, diags)
        if checked is None:
            continue
        decl, envelope = checked
        try:
            spec = decl.spec_model.model_validate(envelope.spec)
        except ValidationError as exc:
            address = str(address_for(decl, envelope.metadata.name, envelope.metadata.target))
            diags.extend(_pydantic_diags(exc, doc, ("spec",), decl.spec_model, address))
            continue
        envelope.spec = {}  # the typed spec supersedes the raw one (a 100,000-device fleet would hold both)
        _share_fields_sets(envelope, shared)
        _share_fields_sets(spec, shared)
        manifests.append(Manifest(decl, doc, envelope, spec))
    return manifests


def _share_fields_sets(model: BaseModel, shared: dict[frozenset[str], set[str]]) -> None:
    """Give every validated model the one set of its set fields that all models with the same fields share.
    Pydantic keeps a set per model instance (216 bytes): three per document, 65 MB for 100,000 generated devices.
    Validated manifests are never assigned to afterwards (an assignment would add to the shared set; pydantic-core
    needs a real `set`, so a frozenset cannot enforce it)."""
    fields = frozenset(model.__pydantic_fields_set__)
    object.__setattr__(model, "__pydantic_fields_set__", shared.setdefault(fields, set(fields)))
    for value in model.__dict__.values():
        if isinstance(value, BaseModel):
            _share_fields_sets(value, shared)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for item in value:
                if isinstance(item, BaseModel):
                    _share_fields_sets(item, shared)


def index_manifests(manifests: list[Manifest], diags: Diagnostics) -> dict[tuple[str, str | None, str], Manifest]:
    index: dict[tuple[str, str | None, str], Manifest] = {}
    for m in manifests:
        key = (m.decl.qualified, m.target, m.name)
        if key in index:
            first = index[key]
            diags.add(
                error(
                    f"duplicate address {m.address}",
                    f"first declared at {first.source()}",
                    source=m.source(),
                    address=str(m.address),
                )
            )
            continue
        index[key] = m
    return index


def check_targets(manifests: list[Manifest], targets: dict[str, Manifest], diags: Diagnostics) -> None:
    for m in manifests:
        if not m.decl.targeted:
            continue
        t = targets.get(m.target or "")
        if t is None:
            hint = difflib.get_close_matches(m.target or "", list(targets), n=1)
            diags.add(
                error(
                    f"unknown target '{m.target}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                    f"declared targets: {', '.join(sorted(targets)) or 'none'}",
                    source=m.doc.source(("metadata", "target")),
                    address=str(m.address),
                    field="metadata.target",
                )
            )
            continue
        needs = m.decl.provider
        if needs in ("aws", "azure") and getattr(t.spec, needs, None) is None:
            diags.add(
                error(
                    f"target '{m.target}' has no {needs} section, but {m.decl.kind} is an {needs} kind",
                    source=m.doc.source(("metadata", "target")),
                    address=str(m.address),
                    field="metadata.target",
                )
            )

"""The import pipeline, the same for every provider: read → select → public files → names → export → write →
check.

Invariants an operator relies on:
- The account is only read. Adoption is written into the manifests (an annotation) and happens later, as a
  planned update the operator reviews and applies.
- What is written plans clean: every exporter writes a resource's actual state in the shape the kind's
  expand produces, a reference is written only when it resolves, and the output is loaded and validated
  before the import reports success. A field whose reference cannot be written is left out (unmanaged, as it
  is), never emptied: an empty list would plan a detach.
- The output folder starts empty (an import never overwrites manifests); an interrupted import continues
  with `--resume`; the same account gives the same bytes.
- Resources the fleet already declares are left to the fleet when the output goes inside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine import fsutil
from engine import kinds as registry
from engine.clock import iso
from engine.diagnostics import FleetctlError, Severity, error
from engine.importer import writer
from engine.importer.checkpoint import Checkpoint, check_out
from engine.importer.model import Exported, ImportReport, ImportRequest, Note, Unimportable
from engine.importer.registry import ProviderImporter, Session, importer_for
from engine.importer.select import closure, dangling, drop_path, matches, referenced_kinds, rename
from engine.manifest.core_kinds import TargetSpec
from engine.manifest.fleet import load_fleet
from engine.manifest.specs import spec_as
from engine.manifest.types import looks_like_name
from engine.model import ActualResource, Address
from engine.run import Context

Progress = Callable[[str], None]


def resolve_kinds(names: tuple[str, ...], importer: ProviderImporter) -> list[str]:
    """Kind names as users write them (`Thing`, `aws.Thing`, `things`, comma lists) → qualified kinds."""
    if not names:
        return list(importer.kinds)
    index = {}
    for k in importer.kinds:
        short = k.split(".", 1)[1]
        for alias in (k, short, writer.kind_stem(k)):
            index[alias.lower()] = k
    out: list[str] = []
    unknown = []
    for part in (p.strip() for n in names for p in n.split(",")):
        if not part:
            continue
        if part.lower() in index:
            out.append(index[part.lower()])
        else:
            unknown.append(part)
    if unknown:
        raise FleetctlError(
            error(
                f"unknown kind(s) for --kinds: {', '.join(unknown)}",
                f"expected one of: {', '.join(k.split('.', 1)[1] for k in importer.kinds)}",
            )
        )
    return sorted(set(out), key=importer.kinds.index)


def _check_filters(request: ImportRequest, importer: ProviderImporter) -> None:
    valid = set(importer.filter_keys)
    bad = [
        f.key
        for f in request.filters
        if f.key not in valid
        and not any(v.endswith(".KEY") and f.key.startswith(v[:-3]) and len(f.key) > len(v) - 3 for v in valid)
    ]
    if bad:
        raise FleetctlError(
            error(
                f"unknown filter key(s): {', '.join(bad)}",
                "expected: " + "; ".join(f"{k} ({what})" for k, what in importer.filter_keys.items()),
            )
        )


def inside(out: Path, root: Path) -> bool:
    """Is `out` inside the fleet folder (then the fleet's own declarations win)?"""
    try:
        return out.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def run_import(
    request: ImportRequest,
    ctx: Context,
    *,
    progress: Progress = lambda text: None,
    limiter: Any = None,
    provider_factory: Callable[..., Any] | None = None,
) -> ImportReport:
    """Import one target into `request.out`. Raises FleetctlError (nothing half-written is reported as done).

    Calls are paced by the provider's own limiter (engine/ratelimit.py: the default quotas, FLEETCTL_QUOTAS,
    FLEETCTL_RATE_LIMIT in `ctx.env`); `limiter` replaces it (tests and benchmarks).
    """
    started = time.perf_counter()
    if request.resume:
        Checkpoint.forget_output(request.out, request.fingerprint())
    fleet = load_fleet(request.fleet, ctx.env, resolve_secrets=False)
    if fleet.diagnostics.has_errors:
        raise FleetctlError(
            fleet.diagnostics.sorted()
            + [
                error(
                    f"the fleet at {request.fleet} does not validate; fix it first (the import reads its Target and "
                    "skips what it declares)"
                )
            ]
        )
    targets = fleet.targets()
    target = targets.get(request.target)
    if target is None:
        raise FleetctlError(
            error(
                f"no Target named '{request.target}' in {request.fleet}",
                f"declared targets: {', '.join(sorted(targets)) or 'none'} "
                "(--fleet points at the fleet folder that declares it)",
            )
        )
    provider = "aws" if spec_as(target, TargetSpec).aws else "azure"
    importer = importer_for(provider)
    kinds = resolve_kinds(request.kinds, importer)
    _check_filters(request, importer)
    out = request.out
    in_fleet = inside(out, fleet.root)
    check_out(out, request.resume)
    checkpoint = Checkpoint.open(out, request.fingerprint(), resume=request.resume)
    when = iso(ctx.now())
    declared = [d for d in fleet.desired if d.address.provider == provider and d.address.parts[1] == request.target]
    session = Session(
        request.target,
        target.spec,
        ctx.env,
        frozenset(k for k in referenced_kinds(kinds) if k in importer.kinds),
        request.filters,
        declared,
        request.adopt,
        checkpoint,
        request.page_size,
        progress,
        limiter,
        provider_factory,
        sink=ctx.progress,
    )
    report = ImportReport(request.target, out)

    # read, select (filters on the requested kinds, then everything they reference)
    clock = time.perf_counter()
    actual = {a.address: a for a in importer.read(session)}
    report.phases["read"] = time.perf_counter() - clock
    report.resumed = session.resumed
    direct = [a for a, r in actual.items() if r.kind in kinds and matches(request.filters, importer.facts(r))]
    selected = sorted((actual[a] for a in closure(direct, actual)), key=lambda r: r.address)
    clock = time.perf_counter()
    materials = importer.materials(session, selected)
    report.phases["public files"] = time.perf_counter() - clock
    clock = time.perf_counter()
    declared_at = {d.address for d in declared}
    names = importer.names(selected, materials, declared_at | {r.address for r in selected})
    renamed = rename(selected, names)
    origin = {new.address: old for old, new in zip(selected, renamed, strict=True)}
    notes = list(session.notes) + importer.review_notes(renamed)
    notes += [
        Note("endpoint", d.address or "", d.summary) for d in session.diagnostics if d.severity is Severity.WARNING
    ]

    docs = _export(renamed, origin, materials, importer, declared_at if in_fleet else set(), report, notes)
    if request.adopt and not importer.adoptable:
        notes.append(
            Note(
                "attention",
                "",
                f"--adopt: fleetctl cannot yet plan ownership markers for {provider} "
                "resources, so no annotation was written",
            )
        )
    if request.adopt:
        for d in docs:
            if d.kind in importer.adoptable and not origin[d.address].managed:
                d.annotations[importer.adopt_annotation] = "true"
                report.adopted += 1
    splits = importer.split_keys(renamed)
    for d in docs:
        d.split = splits.get(d.address)

    report.written = writer.kinds_count(docs)
    report.notes = sorted(set(notes))
    report.files = _write(
        out, docs, when, report, request, in_fleet, importer, checkpoint, None if in_fleet else target
    )
    report.phases["export and write"] = time.perf_counter() - clock
    clock = time.perf_counter()
    problems = load_fleet(fleet.root if in_fleet else out, ctx.env, resolve_secrets=False).diagnostics
    report.phases["check"] = time.perf_counter() - clock
    if problems.has_errors:
        raise FleetctlError(
            problems.sorted()
            + [
                error(
                    f"the manifests written to {out} do not validate; this is a fleetctl bug. The read state is kept: "
                    "after upgrading, run the same command with --resume"
                )
            ]
        )
    checkpoint.remove()
    report.calls = importer.stats()
    report.paced_seconds = importer.paced_seconds()
    report.seconds = time.perf_counter() - started
    return report


def _export(
    resources: list[ActualResource],
    origin: dict[Address, ActualResource],
    materials: dict[str, dict[str, str]],
    importer: ProviderImporter,
    skip: set[Address],
    report: ImportReport,
    notes: list[Note],
) -> list[Exported]:
    """Each selected resource through its kind's exporter. Then, until nothing changes: a reference that names
    something not written (nor declared) is dropped, leaving its field unmanaged, or skips the resource when the
    field is managed even when omitted; and a spec fleetctl's schema rejects skips the resource."""
    docs: dict[Address, Exported] = {}

    def skipped(kind: str, address: Address, why: str) -> None:
        docs.pop(address, None)
        report.skipped[kind] = report.skipped.get(kind, 0) + 1
        notes.append(Note("skipped", str(address), why))

    for r in resources:
        if r.address in skip:
            report.declared[r.kind] = report.declared.get(r.kind, 0) + 1
        elif not looks_like_name(r.address.name):
            skipped(
                r.kind,
                r.address,
                "its name is not a valid fleetctl name (letters, digits and _.:@-, starting "
                "with a letter or digit, at most 128 characters)",
            )
        else:
            try:
                spec = importer.exporters[r.kind](r, materials.get(str(origin[r.address].address), {}))
            except Unimportable as exc:
                skipped(r.kind, r.address, str(exc))
                continue
            docs[r.address] = Exported(r.address, r.kind, spec, origin[r.address].address)

    valid: set[Address] = set()
    while True:
        changed = False
        known = set(docs) | skip
        for address, d in sorted(docs.items()):
            decl = registry.by_qualified(d.kind)
            if address not in known:  # skipped in this pass
                continue
            for path, missing in sorted(dangling(decl, address, d.spec, known).items()):
                names = ", ".join(sorted(missing))
                changed = True
                if path.split(".")[0] in getattr(decl, "always_managed", ()):
                    skipped(d.kind, address, f"{path} names {names}, which is not written")
                    known.discard(address)
                    break
                drop_path(d.spec, path)
                valid.discard(address)
                notes.append(
                    Note(
                        "unmanaged field",
                        str(address),
                        f"{path} is left out (unmanaged): it names {names}, which is not written",
                    )
                )
        for address, d in sorted(docs.items()):
            if address in valid:
                continue
            try:
                registry.by_qualified(d.kind).spec_model.model_validate(writer.plain_spec(d.spec))
                valid.add(address)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                skipped(d.kind, address, f"fleetctl's schema rejects it ({where}: {first['msg']})")
                changed = True
        if not changed:
            return list(docs.values())


def _write(
    out: Path,
    docs: list[Exported],
    when: str,
    report: ImportReport,
    request: ImportRequest,
    in_fleet: bool,
    importer: ProviderImporter,
    checkpoint: Checkpoint,
    target: Any,
) -> list[str]:
    files, public, report.secrets = writer.render(docs, when)
    if target is not None:
        files[writer.TARGET_COPY] = writer.target_copy(target.doc.data, target.doc.file, when)
    files[writer.SUMMARY] = writer.summary(
        report, request, when, inside=in_fleet, annotation=importer.adopt_annotation, adoptable=importer.adoptable
    )
    if report.secrets:
        files[writer.SECRETS] = writer.secrets_summary(report)
    everything = {**files, **public}
    for stale in checkpoint.previously_written():  # a resumed import rewrites its own earlier output only
        if stale not in everything:
            (out / stale).unlink(missing_ok=True)
    checkpoint.record_written(sorted(everything))
    for rel, text in sorted(everything.items()):
        path = out / rel
        fsutil.write_atomic(path, text, mode=fsutil.PUBLIC)  # manifests for the repository
    return sorted(everything)

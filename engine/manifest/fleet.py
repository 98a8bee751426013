"""From a fleet folder to desired resources, in stages, collecting every diagnostic on the way.

Stages (cloud-custodian's order; validation.py, expand.py, secrets.py): YAML (syntax, duplicate keys) → envelope (apiVersion, kind, metadata)
→ spec (pydantic model of the kind) → addresses (duplicates) → references (every name resolves, in the
right Target) → expand (normalise to the provider's canonical shape, read public files, fingerprint
secrets). A later stage runs on whatever the earlier ones accepted, so one bad document does not hide the
errors of the others.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from engine import kinds as registry
from engine.diagnostics import Diagnostics, error
from engine.fingerprint import key_setting_problem
from engine.manifest import generators
from engine.manifest.confine import FilePolicy, allowance_problem
from engine.manifest.expand import ExpandContext
from engine.manifest.limits import Limits
from engine.manifest.loader import load_path
from engine.manifest.validation import Manifest, check_references, check_targets, index_manifests, validate_documents
from engine.model import Address, DesiredResource, canonical_json


@dataclass
class Fleet:
    root: Path
    manifests: list[Manifest]
    desired: list[DesiredResource]
    diagnostics: Diagnostics

    def targets(self) -> dict[str, Manifest]:
        return {m.name: m for m in self.manifests if m.decl.qualified == "fleetctl.Target"}

    @property
    def digest(self) -> str:
        """Digest of the desired state (what a saved plan was made from)."""
        digest = hashlib.sha256(b"[")  # canonical_json of the whole list, hashed item by item (one 100,000-
        for i, r in enumerate(sorted(self.desired, key=lambda r: r.address)):  # item JSON text is 100s of MB)
            item = (str(r.address), r.kind, r.spec, {k: v.to_json() for k, v in r.secrets.items()})
            digest.update((("," if i else "") + canonical_json(item)).encode())
        digest.update(b"]")
        return "sha256:" + digest.hexdigest()


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector. Loading a 100,000-device fleet allocates millions of long-lived
    objects and no garbage cycles; the collector would traverse all of them at every full pass: 3.6 s of an 8.2 s
    load (docs/performance.md). Reference counting still frees everything that is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_fleet(
    root: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    resolve_secrets: bool = True,
    on_targets: Callable[[dict[str, BaseModel]], None] | None = None,
) -> Fleet:
    """Load, validate and expand a fleet. Never raises for bad input: look at `fleet.diagnostics`.

    `on_targets(specs)` is called with the valid Target specs as soon as the files are parsed, before the
    (long, at 100,000 devices) expansion and validation of everything else: `plan` starts reading the clouds then."""
    with paused_gc():
        return _load_fleet(Path(root), env, resolve_secrets, on_targets)


def _load_fleet(
    root: Path,
    env: Mapping[str, str] | None,
    resolve_secrets: bool,
    on_targets: Callable[[dict[str, BaseModel]], None] | None,
) -> Fleet:
    env = dict(os.environ) if env is None else env
    diags = Diagnostics()
    problem = key_setting_problem()  # the key secret fingerprints are made with (engine/fingerprint.py)
    if problem is not None:
        diags.add(error(problem))
        return Fleet(root, [], [], diags)
    if not root.exists():
        diags.add(error(f"fleet path not found: {root}"))
        return Fleet(root, [], [], diags)
    limits, bad_limits = Limits.from_env(env)  # FLEETCTL_MAX_* (engine/manifest/limits.py)
    diags.extend(bad_limits)
    docs, load_diags = load_path(root, limits)
    diags.extend(load_diags)
    fleet_root = root if root.is_dir() else root.parent
    early = [d for d in docs if isinstance(d.data, dict) and d.data.get("kind") == "Target"]
    early_targets = [m for m in validate_documents(early, Diagnostics()) if m.decl.qualified == "fleetctl.Target"]
    if on_targets is not None:
        on_targets({m.name: m.spec for m in early_targets})
    policy = file_policy(fleet_root, early_targets, diags)
    docs = generators.expand_all(docs, fleet_root, diags, registry.lookup, limits)  # ThingSet rows → documents
    manifests = validate_documents(docs, diags)
    index = index_manifests(manifests, diags)
    manifests = [m for m in manifests if index.get((m.decl.qualified, m.target, m.name)) is m]
    targets = {m.name: m for m in manifests if m.decl.qualified == "fleetctl.Target"}
    check_targets(manifests, targets, diags)
    check_references(manifests, index, diags)
    desired: list[DesiredResource] = []
    shared: dict[tuple[Address, ...], tuple[Address, ...]] = {}
    for m in manifests:
        if m.decl.expand is None:
            continue
        ctx = ExpandContext(fleet_root, m, index, env, diags, resolve_secrets, shared, policy)
        desired.extend(m.decl.expand(ctx, m).resources)
    diags.items = generators.fold(diags.items)  # one template mistake, not one error per generated row
    return Fleet(fleet_root, manifests, desired, diags)


def file_policy(root: Path, targets: list[Manifest], diags: Diagnostics) -> FilePolicy:
    """The fleet's file fence: its folder and every Target's `spec.files.allow` (a refused entry is an error at
    its line and allows nothing)."""
    entries: list[str] = []
    for m in targets:
        files = getattr(m.spec, "files", None)
        for i, entry in enumerate(getattr(files, "allow", None) or ()):
            problem = allowance_problem(entry, root)
            if problem is not None:
                diags.add(
                    error(
                        f"files.allow: {problem}",
                        source=m.source("files", "allow", i),
                        address=str(m.address),
                        field=f"spec.files.allow.{i}",
                    )
                )
            elif entry not in entries:
                entries.append(entry)
    return FilePolicy.of(root, entries)

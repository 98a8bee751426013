"""`plan --changed-since REV`: plan only what a pull request changes, so its plan costs what the change costs.

The fleet folder is loaded twice, as it is now and as it was at REV (`git archive`), and the two desired
states are compared by address — the expanded resources, not file names: moving a manifest to another file
changes nothing, one edited row of a ThingSet CSV changes one device, a new PEM changes its certificate.
The scope of the plan is then:

- `changed`: resources added, or whose desired state (spec, public inputs, secret references, dependencies)
  differs from REV. Secret values are not compared: a rotated secret is not a manifest change (the drift cron,
  which plans everything, sees it).
- `removed`: resources declared at REV and no longer (deleted when owned and pruning is on, as in a full plan).
- `dependants`: resources that reference one whose identity changes (added, removed, or an immutable field
  changed, i.e. a replace): a replaced certificate re-links the things holding it. A property change of a
  thing group does not pull its 100,000 members into the plan.

Providers then read only those addresses (AWS: engine/providers/aws/scoped.py picks describe or list calls by
cost). The nightly `fleetctl drift` still plans the whole fleet: a scoped plan does not look for drift outside
its scope, and says so in the plan.
"""
from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine import kinds as registry
from engine.diagnostics import FleetctlError, error
from engine.manifest.fleet import load_fleet
from engine.model import Address, DesiredResource


@dataclass(frozen=True)
class Scope:
    rev: str
    commit: str
    changed: frozenset[Address] = frozenset()
    removed: frozenset[Address] = frozenset()
    dependants: frozenset[Address] = frozenset()
    previous: tuple[DesiredResource, ...] = ()      # REV's desired state of the removed resources
    files: tuple[str, ...] = ()                      # files that differ (for the plan's note)

    @property
    def planned(self) -> frozenset[Address]:
        """Addresses whose desired state the plan compares."""
        return self.changed | self.dependants

    @property
    def addresses(self) -> frozenset[Address]:
        """Everything the providers read."""
        return self.changed | self.dependants | self.removed

    def to_json(self) -> dict[str, Any]:
        return {"changedSince": self.rev, "commit": self.commit, "changed": len(self.changed),
                "dependants": len(self.dependants), "removed": sorted(str(a) for a in self.removed)}


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetctlError(error(f"git {' '.join(args[:2])} failed: {exc}")) from None
    if out.returncode != 0:
        raise FleetctlError(error(f"git {' '.join(args[:3])} failed", out.stderr.decode(errors="replace").strip()))
    return out.stdout if binary else out.stdout.decode().strip()


def _comparable(d: DesiredResource) -> tuple:
    """What a manifest change can change. Sensitive values are fingerprints of secrets, not manifest text."""
    try:
        sensitive = set(registry.by_qualified(d.kind).sensitive)
    except KeyError:
        sensitive = set()
    spec = {k: v for k, v in d.spec.items() if k not in sensitive}
    return (d.kind, _freeze(spec), _freeze(dict(d.inputs)), tuple(sorted((k, v.source, v.ref) for k, v in d.secrets.items())),
            tuple(sorted(map(str, d.depends_on))))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _identity_changed(before: DesiredResource | None, after: DesiredResource | None) -> bool:
    if before is None or after is None:
        return True
    try:
        immutable = registry.by_qualified(after.kind).immutable
    except KeyError:
        return False
    return any(before.spec.get(f) != after.spec.get(f) for f in immutable)


def compare(before: Iterable[DesiredResource], after: Iterable[DesiredResource]) -> tuple[set[Address], set[Address],
                                                                                         set[Address]]:
    """(changed, removed, dependants) between two desired states."""
    old = {d.address: d for d in before}
    new = {d.address: d for d in after}
    changed = {a for a, d in new.items() if a not in old or _comparable(old[a]) != _comparable(d)}
    removed = set(old) - set(new)
    moved = {a for a in changed | removed if _identity_changed(old.get(a), new.get(a))}
    users: dict[Address, set[Address]] = {}
    for a, d in new.items():
        for dep in d.depends_on:
            users.setdefault(dep, set()).add(a)
    dependants = {u for a in moved for u in users.get(a, ())} - changed
    return changed, removed, dependants


def _fleet_at(repo: Path, rev: str, rel: Path, into: Path) -> Path:
    """Extract the fleet folder as it was at `rev` (tracked files only) into `into`."""
    data = _git(repo, "archive", "--format=tar", rev, "--", str(rel) if str(rel) != "." else ".", binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / rel


def changed_since(root: Path, rev: str, now: Iterable[DesiredResource], env: Mapping[str, str]) -> Scope:
    """The scope of a plan of the changes to the fleet at `root` since git revision `rev`.

    `now` is the fleet's desired state as loaded for the plan. Uncommitted edits count as changes (a PR
    pipeline plans the checked-out head; a workstation plans its working tree).
    """
    root = Path(root).resolve()
    folder = root if root.is_dir() else root.parent
    top = Path(_git(folder, "rev-parse", "--show-toplevel"))
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    rel = folder.relative_to(top)
    pathspec = str(rel) if str(rel) != "." else "."
    files = sorted(set(_git(top, "diff", "--name-only", commit, "--", pathspec).splitlines())
                   | set(_git(top, "ls-files", "--others", "--exclude-standard", "--", pathspec).splitlines()))
    if not files:
        return Scope(rev, commit)
    before: list[DesiredResource] = []
    if _git(top, "ls-tree", "--name-only", commit, "--", pathspec):   # else the folder is new: everything is
        with tempfile.TemporaryDirectory(prefix="fleetctl-rev-") as tmp:
            before = load_fleet(_fleet_at(top, commit, rel, Path(tmp)), env, resolve_secrets=False).desired
    now = list(now)
    changed, removed, dependants = compare(before, now)
    previous = tuple(d for d in before if d.address in removed)
    return Scope(rev, commit, frozenset(changed), frozenset(removed), frozenset(dependants), previous, tuple(files))


def select(desired: Iterable[DesiredResource], scope: Scope) -> list[DesiredResource]:
    planned = scope.planned
    return [d for d in desired if d.address in planned]


@dataclass
class ScopedRead:
    """How run.plan reads one provider key under a scope: the provider's own scoped read when it has one,
    else its bulk read narrowed to the scope's addresses afterwards."""

    addresses: frozenset[Address]
    previous: tuple[DesiredResource, ...] = ()
    calls: dict[str, int] = field(default_factory=dict)

    def read(self, provider: Any, desired_all: list[DesiredResource], desired: list[DesiredResource],
             key: tuple[str, str]) -> Any:
        mine = frozenset(a for a in self.addresses if (a.provider, a.target if a.provider in ("aws", "azure") else "")
                         == key)
        if hasattr(provider, "read_scoped"):
            return provider.read_scoped(desired_all, mine, self.previous)
        result = provider.read(desired, prune=any(a not in {d.address for d in desired} for a in mine))
        result.actual = [a for a in result.actual if a.address in mine]
        return result

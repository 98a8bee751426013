"""`plan --changed-since REV`: plan only what a pull request changes, so its plan costs what the change costs.

The fleet folder is loaded twice, as it is now and as it was at REV (`git archive`; summarised to digests per
address in a child process, so a plan holds one fleet in memory, not two), and the two desired states are
compared by address — the expanded resources, not file names: moving a manifest to another file
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

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from engine import kinds as registry
from engine.diagnostics import FleetctlError, error
from engine.manifest.fleet import load_fleet
from engine.model import Address, DesiredResource, canonical_json

IDENTITY = ("certificateId",)  # what finds a resource no longer declared (a certificate by its id)


@dataclass(frozen=True)
class Scope:
    rev: str
    commit: str
    changed: frozenset[Address] = frozenset()
    removed: frozenset[Address] = frozenset()
    dependants: frozenset[Address] = frozenset()
    previous: tuple[DesiredResource, ...] = ()  # REV's desired state of the removed resources
    files: tuple[str, ...] = ()  # files that differ (for the plan's note)

    @property
    def planned(self) -> frozenset[Address]:
        """Addresses whose desired state the plan compares."""
        return self.changed | self.dependants

    @property
    def addresses(self) -> frozenset[Address]:
        """Everything the providers read."""
        return self.changed | self.dependants | self.removed

    def to_json(self) -> dict[str, Any]:
        return {
            "changedSince": self.rev,
            "commit": self.commit,
            "changed": len(self.changed),
            "dependants": len(self.dependants),
            "removed": sorted(str(a) for a in self.removed),
        }


@overload
def _git(repo: Path, *args: str, binary: Literal[False] = False) -> str: ...
@overload
def _git(repo: Path, *args: str, binary: Literal[True]) -> bytes: ...
def _git(repo: Path, *args: str, binary: bool = False) -> str | bytes:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetctlError(error(f"git {' '.join(args[:2])} failed: {exc}")) from None
    if out.returncode != 0:
        raise FleetctlError(error(f"git {' '.join(args[:3])} failed", out.stderr.decode(errors="replace").strip()))
    return out.stdout if binary else out.stdout.decode().strip()


def _canonical_sha(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


@dataclass(frozen=True)
class Summary:
    """What a comparison needs of one desired resource: digests, not the resource (an older revision of a
    100,000-device fleet is summarised in a process of its own, so a PR plan holds one fleet, not two)."""

    kind: str
    digest: str  # of what a manifest change can change
    identity: str  # of the immutable fields (a change means replace)
    ids: dict[str, str] = field(default_factory=dict)  # certificateId: finds a removed certificate


def summarize(d: DesiredResource) -> Summary:
    """Sensitive values are fingerprints of secrets, not manifest text: they are left out of the digest."""
    try:
        decl = registry.by_qualified(d.kind)
        sensitive, immutable = set(decl.sensitive), decl.immutable
    except KeyError:
        sensitive, immutable = set(), ()
    spec = {k: v for k, v in d.spec.items() if k not in sensitive}
    digest = _canonical_sha(
        [
            d.kind,
            spec,
            dict(d.inputs),
            sorted([k, v.source, v.ref] for k, v in d.secrets.items()),
            sorted(map(str, d.depends_on)),
        ]
    )
    identity = _canonical_sha([d.spec.get(f) for f in immutable])
    return Summary(d.kind, digest, identity, {f: d.spec[f] for f in IDENTITY if d.spec.get(f)})


def compare(
    before: Mapping[Address, Summary], after: Iterable[DesiredResource]
) -> tuple[set[Address], set[Address], set[Address]]:
    """(changed, removed, dependants) between an older desired state (summarised) and the current one."""
    new = {d.address: d for d in after}
    now = {a: summarize(d) for a, d in new.items()}
    changed = {a for a, s in now.items() if a not in before or before[a].digest != s.digest}
    removed = set(before) - set(new)
    moved = {a for a in changed | removed if a not in before or a not in now or before[a].identity != now[a].identity}
    users: dict[Address, set[Address]] = {}
    for a, d in new.items():
        for dep in d.depends_on:
            users.setdefault(dep, set()).add(a)
    dependants = {u for a in moved for u in users.get(a, ())} - changed
    return changed, removed, dependants


def summaries_at(root: Path, env: Mapping[str, str]) -> dict[Address, Summary]:
    """Summaries of the fleet at `root`, computed in a child process (its memory is its own)."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine.incremental", "summarize", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=3600,
    )
    if proc.returncode != 0:
        raise FleetctlError(error("reading the fleet at the older revision failed", proc.stderr.strip()[-2000:]))
    out: dict[Address, Summary] = {}
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        out[Address.parse(row["address"])] = Summary(row["kind"], row["digest"], row["identity"], row.get("ids", {}))
    return out


def _fleet_at(repo: Path, rev: str, rel: Path, into: Path) -> Path:
    """Extract the fleet folder as it was at `rev` (tracked files only) into `into`."""
    data = _git(repo, "archive", "--format=tar", rev, "--", str(rel) if str(rel) != "." else ".", binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / rel


def git_toplevel(root: Path) -> str:
    """The top folder of the git repository holding the fleet at `root` (what Scope.files are relative to)."""
    root = Path(root).resolve()
    return _git(root if root.is_dir() else root.parent, "rev-parse", "--show-toplevel")


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
    files = sorted(
        set(_git(top, "diff", "--name-only", commit, "--", pathspec).splitlines())
        | set(_git(top, "ls-files", "--others", "--exclude-standard", "--", pathspec).splitlines())
    )
    if not files:
        return Scope(rev, commit)
    before: dict[Address, Summary] = {}
    if _git(top, "ls-tree", "--name-only", commit, "--", pathspec):  # else the folder is new: everything is
        with tempfile.TemporaryDirectory(prefix="fleetctl-rev-") as tmp:
            before = summaries_at(_fleet_at(top, commit, rel, Path(tmp)), env)
    changed, removed, dependants = compare(before, now)
    previous = tuple(DesiredResource(a, before[a].kind, dict(before[a].ids)) for a in sorted(removed))
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

    def read(
        self, provider: Any, desired_all: list[DesiredResource], desired: list[DesiredResource], key: tuple[str, str]
    ) -> Any:
        mine = frozenset(
            a for a in self.addresses if (a.provider, a.target if a.provider in ("aws", "azure") else "") == key
        )
        if hasattr(provider, "read_scoped"):
            return provider.read_scoped(desired_all, mine, self.previous)
        result = provider.read(desired, prune=any(a not in {d.address for d in desired} for a in mine))
        result.actual = [a for a in result.actual if a.address in mine]
        return result


def main(argv: list[str]) -> int:
    """`python -m engine.incremental summarize PATH`: one JSON line per desired resource (used by summaries_at)."""
    if len(argv) != 2 or argv[0] != "summarize":
        print("usage: python -m engine.incremental summarize PATH", file=sys.stderr)
        return 2
    fleet = load_fleet(Path(argv[1]), dict(os.environ), resolve_secrets=False)
    for d in fleet.desired:
        s = summarize(d)
        print(
            json.dumps(
                {
                    "address": str(d.address),
                    "kind": s.kind,
                    "digest": s.digest,
                    "identity": s.identity,
                    **({"ids": s.ids} if s.ids else {}),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

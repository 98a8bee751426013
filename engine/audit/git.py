"""What the manifests said at each revision, read straight from git objects (plumbing commands only; nothing is
written): resource addresses of manifest documents, the repository, and each resource's manifest per revision."""

from __future__ import annotations

import fnmatch
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from engine import kinds as registry
from engine.diagnostics import FleetctlError, error
from engine.kinds import ListKey
from engine.manifest.loader import SKIP_DIRS, Document, parse_text
from engine.manifest.validation import address_for
from engine.model import Address


def document_address(data: Any) -> Address | None:
    """The address of a raw manifest document, before validation: the same as `Manifest.address` for a kind
    the registry knows; for a kind it does not (yet) know, provider from the apiVersion group and the Target
    from metadata. None when the document has no kind or name."""
    if not isinstance(data, dict):
        return None
    api_version, kind, metadata = data.get("apiVersion"), data.get("kind"), data.get("metadata")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(metadata, dict)):
        return None
    name, target = metadata.get("name"), metadata.get("target")
    if not isinstance(name, str) or not name:
        return None
    target = target if isinstance(target, str) else None
    decl = registry.lookup_group(api_version, kind)  # history reads manifests of any version
    if decl is not None:
        return address_for(decl, name, target)
    group = api_version.rsplit("/", 1)[0]
    provider = "fleetctl" if group == "fleetctl.io" else group.split(".", 1)[0]
    return Address.of(provider, target, kind, name) if target else Address.of(provider, kind, name)


def address_matcher(pattern: str | None) -> Callable[[str], bool]:
    """A predicate over addresses: exact, a glob (`aws/*/Thing/*`), or a bare name (`DA1275B0`)."""
    if not pattern:
        return lambda address: True
    if any(ch in pattern for ch in "*?["):
        return lambda address: fnmatch.fnmatchcase(address, pattern)
    if "/" not in pattern:
        return lambda address: address.rsplit("/", 1)[-1] == pattern
    return lambda address: address == pattern


# ----------------------------------------------------------------------------------------------- git
class Git:
    """A git repository read through the git command line (plumbing commands only; nothing is written)."""

    def __init__(self, path: Path) -> None:
        start = path if path.is_dir() else path.parent
        out = self.run_in(start, "rev-parse", "--show-toplevel", check=False)
        if out is None:
            raise FleetctlError(
                error(
                    f"{path} is not inside a git repository", "history is read from git: run it in the fleet repository"
                )
            )
        self.top = Path(out.strip())
        rel = os.path.relpath(path.resolve(), self.top.resolve())
        self.prefix = "" if rel == "." else PurePosixPath(Path(rel)).as_posix()
        self._blobs: dict[str, str] = {}

    @staticmethod
    def run_in(cwd: Path, *args: str, check: bool = True) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(cwd), *args],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "GIT_PAGER": "cat", "LC_ALL": "C"},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FleetctlError(error(f"cannot run git: {exc}")) from None
        if proc.returncode != 0:
            if check:
                raise FleetctlError(error(f"git {args[0]} failed: {proc.stderr.strip() or proc.returncode}"))
            return None
        return proc.stdout

    def run(self, *args: str, check: bool = True) -> str | None:
        return self.run_in(self.top, *args, check=check)

    def verify(self, rev: str) -> str:
        out = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if not out:
            raise FleetctlError(error(f"unknown revision '{rev}'", "give a commit, tag or branch of this repository"))
        return out.strip()

    def blobs(self, shas: Iterable[str]) -> dict[str, str]:
        """The text of each blob, read once (`git cat-file --batch`) and cached for the whole run."""
        missing = sorted({s for s in shas if s not in self._blobs})
        if missing:
            proc = subprocess.run(
                ["git", "-C", str(self.top), "cat-file", "--batch"],
                input=("\n".join(missing) + "\n").encode(),
                capture_output=True,
                timeout=120,
            )
            data, pos = proc.stdout, 0
            for sha in missing:
                header_end = data.index(b"\n", pos)
                parts = data[pos:header_end].split()
                size = int(parts[2]) if len(parts) == 3 else 0
                body = data[header_end + 1 : header_end + 1 + size]
                self._blobs[sha] = body.decode("utf-8", errors="replace")
                pos = header_end + 1 + size + 1
        return {s: self._blobs[s] for s in shas}


@dataclass(frozen=True)
class Revision:
    commit: str
    parent: str | None
    author: str
    email: str
    date: str
    message: str


def is_manifest_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (
        path.endswith((".yaml", ".yml"))
        and not any(p.startswith(".") for p in parts)
        and not any(p in SKIP_DIRS for p in parts[:-1])
    )


@dataclass(frozen=True)
class Located:
    """One resource's document at one revision: where it was written and what it said."""

    address: str
    file: str
    line: int
    body: Mapping[str, Any]
    lists: tuple[ListKey, ...] = ()  # the kind's list declarations, under `spec.` (engine/diff.py)


class ManifestHistory:
    """Each revision's manifests under the fleet folder, keyed by address (cached by the folder's tree id)."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self._states: dict[str, dict[str, Located]] = {}

    def revisions(self, since: str | None) -> list[Revision]:
        spec = f"{self.git.verify(since)}..HEAD" if since else "HEAD"
        if self.git.run("rev-parse", "--verify", "--quiet", "HEAD", check=False) is None:
            return []
        out = self.git.run(
            "log",
            "--no-merges",
            "--topo-order",
            "--reverse",
            "--format=%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%s%x1e",
            spec,
            "--",
            self.git.prefix or ".",
        )
        revs = []
        for record in (out or "").split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            commit, parents, author, email, date, message = record.split("\x1f")
            revs.append(Revision(commit, parents.split()[0] if parents else None, author, email, date, message))
        return revs

    def state(self, rev: str | None) -> dict[str, Located]:
        if rev is None:
            return {}
        tree = self.git.run(
            "rev-parse",
            "--verify",
            "--quiet",
            f"{rev}:{self.git.prefix}" if self.git.prefix else f"{rev}^{{tree}}",
            check=False,
        )
        if not tree:
            return {}
        tree = tree.strip()
        if tree not in self._states:
            self._states[tree] = self._load(tree)
        return self._states[tree]

    def _load(self, tree: str) -> dict[str, Located]:
        listing = self.git.run("ls-tree", "-r", "-z", tree) or ""
        files: list[tuple[str, str]] = []
        for entry in listing.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            _mode, kind, sha = meta.split()
            if kind == "blob" and is_manifest_path(path):
                files.append((path, sha))
        texts = self.git.blobs([sha for _, sha in files])
        state: dict[str, Located] = {}
        for path, sha in sorted(files):
            shown = f"{self.git.prefix}/{path}" if self.git.prefix else path
            docs, _diags = parse_text(texts[sha], shown)  # a revision with broken YAML: its other files still count
            for doc in docs:
                located = locate(doc)
                if located is not None and located.address not in state:
                    state[located.address] = located
        return state


def locate(doc: Document) -> Located | None:
    address = document_address(doc.data)
    if address is None:
        return None
    metadata = {k: v for k, v in doc.data["metadata"].items() if k != "name"}
    body = {"apiVersion": doc.data.get("apiVersion"), "metadata": metadata, "spec": doc.data.get("spec", {})}
    api_version, kind = doc.data.get("apiVersion"), doc.data.get("kind")
    decl = registry.lookup(api_version, kind) if isinstance(api_version, str) and isinstance(kind, str) else None
    lists = tuple(ListKey("spec." + rule.path, rule.by, rule.key) for rule in (decl.lists if decl else ()))
    return Located(str(address), doc.file, doc.source(("metadata", "name")).line, body, lists)

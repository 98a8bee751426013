"""Where a fleet may read files from: the fleet folder, and the directories a Target explicitly allows.

Why: fleetctl runs in pull-request pipelines on manifests anyone who can open a PR writes. Without a fence a
`{file: ../../home/runner/.aws/credentials}` (or a ThingSet CSV value substituted into a file path, or a symlink
committed into the fleet) reads any file the CI runner can read. So every `{file: …}` reference — secrets,
certificate PEMs, verification certificates, device slot files, ThingSet CSV files — resolves, after `~`
expansion and symlinks (`Path.resolve()`), to a path inside the fleet folder or inside a directory a Target lists
in `spec.files.allow` (the example fleet's device keys under `~/.fleetctl/keys`). Anything else is an error at the
reference's file:line, whether or not the file exists (the message is no oracle for what exists outside).

An allowance is fleet-wide (the union of every Target's `files.allow`: DeviceConfigs belong to no Target) and must
be narrow: `/`, the home directory, and any directory that contains the fleet folder or the home directory are
refused (they would switch the fence off). Allowances are part of the manifests, so they are reviewed like any
other change (docs/security.md: protect them with CODEOWNERS).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class FileRefError(Exception):
    """A file reference that escapes the fence or is not found; the message names the reference, never content."""


def _resolved(path: str | Path) -> Path:
    try:
        return Path(os.path.expanduser(str(path))).resolve()
    except (OSError, RuntimeError):  # a symlink loop: keep the lexical absolute path
        return Path(os.path.abspath(os.path.expanduser(str(path))))


def allowance_problem(entry: str, root: Path) -> str | None:
    """Why a `files.allow` entry cannot be an allowance, or None."""
    if not entry.strip():
        return "an empty directory name"
    expanded = os.path.expanduser(entry)
    if not os.path.isabs(expanded):
        return f"'{entry}' is not an absolute path (or ~/…); files inside the fleet folder need no allowance"
    path = _resolved(expanded)
    home = _resolved("~")
    fleet = _resolved(root)
    if path == Path(path.anchor):
        return f"'{entry}' is the file system root: it would allow every file"
    if path == home or path in home.parents:
        return f"'{entry}' holds the home directory (cloud credentials, SSH keys): allow a directory below it"
    if path == fleet or path in fleet.parents:
        return f"'{entry}' contains the fleet folder: it would allow every file next to the fleet"
    return None


def allow_entries(target_specs: Iterable[Any]) -> list[str]:
    """Every `files.allow` entry of these Target specs (pydantic TargetSpec or None)."""
    out: list[str] = []
    for spec in target_specs:
        files = getattr(spec, "files", None)
        for entry in getattr(files, "allow", None) or ():
            if entry not in out:
                out.append(entry)
    return out


@dataclass(frozen=True)
class FilePolicy:
    """The fence: the fleet folder and the allowed directories, all resolved (symlinks followed)."""

    root: Path
    allowed: tuple[Path, ...] = ()

    @classmethod
    def of(cls, root: str | Path, allow: Iterable[str] = ()) -> FilePolicy:
        """The policy for a fleet folder; entries `allowance_problem` refuses are left out (load_fleet reports them)."""
        root_path = Path(root)
        if root_path.is_file():
            root_path = root_path.parent
        dirs = tuple(_resolved(e) for e in allow if allowance_problem(e, root_path) is None)
        return cls(_resolved(root_path), dirs)

    @classmethod
    def for_targets(cls, root: str | Path, target_specs: Iterable[Any]) -> FilePolicy:
        """The policy of a fleet folder and its Targets' allowances; memoised (a 100,000-device plan asks per
        secret)."""
        return _policy(
            str(root), tuple(os.path.expanduser(e) for e in allow_entries(target_specs)), os.path.expanduser("~")
        )  # keyed by what `~` means now

    def inside_root(self, path: Path) -> bool:
        return path == self.root or path.is_relative_to(self.root)

    def permits(self, resolved: Path) -> bool:
        return self.inside_root(resolved) or any(resolved.is_relative_to(d) for d in self.allowed)

    def _escape(self, name: str, resolved: Path) -> FileRefError:
        allowed = ", ".join(str(d) for d in self.allowed)
        return FileRefError(
            f"file reference '{name}' resolves outside the fleet folder (to {resolved}); a fleet reads "
            "files only from its own folder"
            + (f" and {allowed}" if allowed else "")
            + ": move the file there, or allow its directory in a Target's spec.files.allow"
        )

    def candidates(self, name: str, bases: Sequence[Path]) -> list[Path]:
        expanded = os.path.expanduser(name)
        if os.path.isabs(expanded):
            return [Path(expanded)]
        return [Path(base) / expanded for base in bases]

    def locate(self, name: str, bases: Sequence[Path]) -> Path:
        """The resolved path of a file reference (relative names: the first base holding the file). Raises
        FileRefError when it is not found or resolves outside the fence (checked before existence)."""
        if "\x00" in name:
            raise FileRefError("file reference contains a NUL character")
        outside: list[Path] = []
        for candidate in self.candidates(name, bases):
            resolved = _resolved(candidate)
            if not self.permits(resolved):
                outside.append(resolved)
            elif resolved.is_file():
                return resolved
        if outside:  # whether or not it exists there: the message is no oracle for files outside
            raise self._escape(name, outside[0])
        where = (
            " and ".join(str(b) for b in dict.fromkeys(str(b) for b in bases))
            if not os.path.isabs(os.path.expanduser(name))
            else ""
        )
        raise FileRefError(f"file not found: '{name}'" + (f" (looked in {where})" if where else ""))

    def check(self, name: str, path: Path) -> Path:
        """`path` (what `name` stands for) resolved; raises FileRefError when it leaves the fence."""
        resolved = _resolved(path)
        if not self.permits(resolved):
            raise self._escape(name, resolved)
        return resolved


@functools.lru_cache(maxsize=64)
def _policy(root: str, allow: tuple[str, ...], home: str) -> FilePolicy:
    return FilePolicy.of(root, allow)


def read_bounded(path: Path, limit: int = 16 * 1024 * 1024) -> bytes:
    """A referenced file's bytes; a file over `limit` (16 MiB: no certificate, key or CSV of a fleet is that
    big) or not a regular file is refused with a message naming its size, never its content."""
    st = path.stat()
    if not path.is_file():
        raise FileRefError(f"'{path}' is not a regular file")
    if st.st_size > limit:
        raise FileRefError(f"'{path}' is {st.st_size} bytes, more than the {limit} a referenced file may have")
    with open(path, "rb") as handle:
        return handle.read(limit + 1)

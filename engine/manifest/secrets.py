"""Secret references (`{env:}`, `{file:}`, `secretRef`) resolved to their value, or to the reason they cannot be: the
only place a secret's value is read. Callers keep it out of every output; a reason names the reference, never the
content. A `{file:}` secret lies outside the fleet repository (or is an encrypted file inside it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from engine.manifest.confine import FilePolicy, FileRefError, read_bounded
from engine.model import SecretRef

ENCRYPTED_SUFFIXES = (".enc", ".sops", ".age", ".gpg")


def resolve_secret_value(
    ref: SecretRef, root: Path, env: Mapping[str, str], policy: FilePolicy | None = None
) -> str | Exception:
    """The secret's value, or the reason it cannot be had. Callers keep the value out of every output; the reason
    names the reference, never the content. A `{file:}` secret lies outside the fleet repository (or is an
    encrypted file inside it) and, outside it, in a directory a Target allows (`policy`; default: none)."""
    if ref.source == "env":
        if ref.ref not in env:
            return LookupError(f"secret environment variable {ref.ref} is not set")
        return env[ref.ref]
    if ref.source == "file":
        policy = policy or FilePolicy.of(root)
        path = Path(os.path.expanduser(ref.ref))
        if not path.is_absolute():
            path = root / path
        try:
            resolved = policy.check(ref.ref, path)
        except FileRefError as exc:
            return ValueError(f"secret {exc}")
        if policy.inside_root(resolved) and not resolved.name.endswith(ENCRYPTED_SUFFIXES):
            return ValueError(
                f"secret file {ref.ref} lies inside the fleet repository; keep secrets outside it "
                "(in a directory a Target's spec.files.allow names) or encrypted (.enc/.sops/.age/.gpg)"
            )
        try:
            data = read_bounded(resolved)
        except FileRefError as exc:
            return ValueError(f"secret file {ref.ref}: {exc}")
        except OSError as exc:
            return LookupError(f"cannot read secret file {ref.ref}: {exc.strerror}")
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            return ValueError(f"secret file {ref.ref} is not UTF-8 text (a file of {len(data)} bytes)")
    key = "FLEETCTL_SECRET_" + "".join(c if c.isalnum() else "_" for c in ref.ref).upper()
    if key in env:
        return env[key]
    return LookupError(f"secretRef '{ref.ref}' is not available (set {key})")

"""Keyed fingerprints of secrets: how a plan says "this secret changed" without holding a guessable digest.

Why a module of its own: a plan file is uploaded as a CI artifact, so an unsalted `sha256:` of a Wi-Fi PSK or an
admin password in it is recovered offline by hashing a dictionary. A secret's fingerprint is therefore an
HMAC-SHA256 under a key that is neither in the repository nor in the plan:

- `FLEETCTL_FINGERPRINT_KEY` (a CI secret, any string of 16 characters or more) when it is set: every runner that
  has it computes the same fingerprints, so a plan made on a pull request is applied on merge by another runner;
- otherwise a per-user key file, `~/.fleetctl/fingerprint.key` (`FLEETCTL_FINGERPRINT_KEY_FILE` names another),
  32 random bytes created mode 0600 on first use. Plan and apply on one machine agree; two CI runners without the
  variable do not (each makes its own key), and apply then refuses the saved plan as stale: set the variable in
  CI. Where the file cannot be created (a read-only home) the process uses a random key of its own, which keeps
  plans safe to publish but usable only by the process that made them.

A fingerprint names its scheme and its key: `hmac-sha256:<key id>:<64 hex>`. The key id is 8 hex digits of an
HMAC of a fixed label under the key (it says which key was used, nothing about the key), so a mismatch between a
plan and the run that applies it is explained ("made with key 1a2b3c4d, this run has 5e6f7a8b") instead of every
secret-bearing resource merely looking changed. A `sha256:` value (fingerprints before this scheme) is recognised
as `legacy`.

A per-fleet salt with a slow KDF (scrypt) was the alternative: its salt must sit in the repository for two
runners to agree, so it only slows a dictionary down (one derivation per guess) instead of stopping it, and a
fleet of 100,000 devices with a password each would pay 100,000 derivations per plan. See docs/security.md.

Both sides of every comparison (desired from the manifests, actual from the cloud or the device state) call
`fingerprint`; the values are memoised per (key, value) within a process.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_ENV = "FLEETCTL_FINGERPRINT_KEY"
KEY_FILE_ENV = "FLEETCTL_FINGERPRINT_KEY_FILE"
SCHEME = "hmac-sha256"
LEGACY = "sha256"
MIN_KEY_CHARS = 16
_KEY_ID_LABEL = b"fleetctl fingerprint key id v1"


class FingerprintKeyError(ValueError):
    """The configured key cannot be used (too short); the message names the setting, never the key."""


@dataclass(frozen=True)
class Key:
    """A fingerprint key and where it came from (`origin` is printable: a setting or a file path, never bytes)."""

    material: bytes
    origin: str

    @property
    def id(self) -> str:
        return hmac.new(self.material, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]

    def __repr__(self) -> str:  # the key never reaches a log or a traceback's locals by repr
        return f"Key(id={self.id}, origin={self.origin})"


def default_key_file() -> Path:
    return Path(os.path.expanduser("~")) / ".fleetctl" / "fingerprint.key"


@functools.lru_cache(maxsize=8)
def _key_from_env(value: str) -> Key:
    if len(value) < MIN_KEY_CHARS:
        raise FingerprintKeyError(
            f"{KEY_ENV} is set but shorter than {MIN_KEY_CHARS} characters; use a random "
            "value (e.g. `openssl rand -hex 32`) stored as a CI secret"
        )
    return Key(value.encode("utf-8"), KEY_ENV)


@functools.lru_cache(maxsize=8)
def _key_from_file(path: str) -> Key:
    file = Path(path)
    try:
        data = file.read_bytes()
        if len(data) >= 32:
            return Key(data, str(file))
    except FileNotFoundError:
        pass
    except OSError:
        return Key(secrets.token_bytes(32), "a random key of this process (cannot read " + str(file) + ")")
    material = secrets.token_bytes(32)
    try:
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(material)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(file, 0o600)  # umask-independent
        return Key(material, str(file))
    except FileExistsError:  # another process made it meanwhile: use theirs
        return _key_from_file.__wrapped__(path)
    except OSError:
        return Key(material, "a random key of this process (cannot create " + str(file) + ")")


def key_setting_problem(env: os._Environ[str] | dict[str, str] | None = None) -> str | None:
    """Why FLEETCTL_FINGERPRINT_KEY cannot be used, or None (unset is fine: the key file is the fallback)."""
    env = os.environ if env is None else env
    try:
        if env.get(KEY_ENV):
            _key_from_env(env[KEY_ENV])
    except FingerprintKeyError as exc:
        return str(exc)
    return None


def current_key(env: os._Environ[str] | dict[str, str] | None = None) -> Key:
    """The key of this run: FLEETCTL_FINGERPRINT_KEY, else the per-user key file (created on first use)."""
    env = os.environ if env is None else env
    value = env.get(KEY_ENV)
    if value:
        return _key_from_env(value)
    return _key_from_file(env.get(KEY_FILE_ENV) or str(default_key_file()))


@functools.lru_cache(maxsize=65536)
def _digest(material: bytes, data: bytes) -> str:
    return hmac.new(material, data, hashlib.sha256).hexdigest()


def fingerprint(value: str | bytes, key: Key | None = None) -> str:
    """`hmac-sha256:<key id>:<hex>` of a secret value. Same value and key → same fingerprint in any process."""
    key = key or current_key()
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return f"{SCHEME}:{key.id}:{_digest(key.material, data)}"


@dataclass(frozen=True)
class Parsed:
    scheme: str  # hmac-sha256 | legacy | unknown
    key_id: str | None


def parse(text: str) -> Parsed:
    """What kind of fingerprint `text` is (for migration messages)."""
    parts = str(text).split(":")
    if len(parts) == 3 and parts[0] == SCHEME:
        return Parsed(SCHEME, parts[1])
    if len(parts) == 2 and parts[0] == LEGACY and len(parts[1]) == 64:
        return Parsed("legacy", None)
    return Parsed("unknown", None)


def explain_mismatch(recorded: str, key: Key | None = None) -> str | None:
    """Why a recorded secret fingerprint cannot match this run's, when the cause is the scheme or the key (a
    legacy `sha256:` value, or another key); None when it was made with this run's key (the secret changed)."""
    key = key or current_key()
    parsed = parse(recorded)
    if parsed.scheme == "legacy":
        return (
            "it is an unkeyed sha256 fingerprint from an older fleetctl; make the plan again (secret "
            "fingerprints are now keyed, docs/security.md)"
        )
    if parsed.scheme == SCHEME and parsed.key_id != key.id:
        return (
            f"it was made with fingerprint key {parsed.key_id}, this run has key {key.id} ({key.origin}); "
            f"plan and apply need the same {KEY_ENV}"
        )
    return None

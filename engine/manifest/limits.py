"""Resource limits on manifest input: what a fleet folder may make fleetctl read, parse and generate.

fleetctl runs in pull-request pipelines on manifests anyone who can open a pull request writes, so a manifest
must not be able to make a load take minutes or gigabytes: a 700-byte YAML alias bomb (`b: &b [*a, *a, ...]`
seven levels deep) stands for 10⁷ nodes. Every limit is declared once, here, with its default, its environment
variable and what it bounds; loader.py and generators.py enforce them and name the limit and the variable in the
error (`… exceeds FLEETCTL_MAX_DEPTH=64; raise it with FLEETCTL_MAX_DEPTH=<n> if the input is intended`).

The defaults pass a 100,000-device fleet with room to spare: written as plain YAML it is 23 MB in 100 files
(230 KB, 1,000 documents each) or one 23 MB file of 100,000 documents; as a ThingSet it is a 2.5 MB CSV of
100,000 rows. Aliases stay allowed (manifests use anchors and `<<` merge keys to share tag sets and values; the
YAML loaders of Kubernetes-style tools bound alias expansion rather than refuse it, as go-yaml does since
CVE-2019-11253), but the nodes they add to a file are bounded, and they are counted from the composed node graph,
where an alias is one shared node, before anything is expanded.

The limits are read from the environment (`FLEETCTL_MAX_*`), so a pipeline raises them for one job without a
change to the fleet a pull request could make. Within them, a load costs time and memory in proportion to the
YAML nodes it reads (libyaml composes ~100,000 nodes a second here, each held as an object until converted), and
the densest text, a flow list of one-digit numbers, holds one node per two bytes: a pipeline that plans untrusted
pull requests may lower FLEETCTL_MAX_FILE_BYTES (a 100,000-device fleet at 1,000 documents per file needs 256 KB
per file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from engine.diagnostics import Diagnostic, error


@dataclass(frozen=True)
class Limit:
    """One limit: the Limits field it sets, its environment variable, its default and what it bounds."""

    name: str
    env: str
    default: int
    bounds: str


LIMITS: tuple[Limit, ...] = (
    Limit("max_file_bytes", "FLEETCTL_MAX_FILE_BYTES", 32 * 1024 * 1024, "bytes of one manifest or ThingSet CSV file"),
    Limit(
        "max_depth",
        "FLEETCTL_MAX_DEPTH",
        64,
        "nesting depth of a YAML document (the document's own node is level 1, a top-level value level 2)",
    ),
    Limit(
        "max_alias_nodes",
        "FLEETCTL_MAX_ALIAS_NODES",
        250_000,
        "nodes the aliases of one file add when expanded (an alias to a mapping of 3 keys adds 7)",
    ),
    Limit("max_documents_per_file", "FLEETCTL_MAX_DOCUMENTS_PER_FILE", 250_000, "YAML documents in one file"),
    Limit(
        "max_documents",
        "FLEETCTL_MAX_DOCUMENTS",
        1_000_000,
        "documents of the whole fleet, generated ones (ThingSet) included",
    ),
    Limit(
        "max_rows",
        "FLEETCTL_MAX_ROWS",
        1_000_000,
        "rows of one ThingSet (CSV data rows or range count; an IoT Hub holds 1,000,000 devices)",
    ),
)


_DEFAULTS = {limit.name: limit.default for limit in LIMITS}


@dataclass(frozen=True)
class Limits:
    """The limits in force for one load (engine values: the loader and the generators take one)."""

    max_file_bytes: int = _DEFAULTS["max_file_bytes"]
    max_depth: int = _DEFAULTS["max_depth"]
    max_alias_nodes: int = _DEFAULTS["max_alias_nodes"]
    max_documents_per_file: int = _DEFAULTS["max_documents_per_file"]
    max_documents: int = _DEFAULTS["max_documents"]
    max_rows: int = _DEFAULTS["max_rows"]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> tuple[Limits, list[Diagnostic]]:
        """The limits, each default overridden by its FLEETCTL_MAX_* variable; a malformed value is an error
        (and its default stays in force)."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        diags: list[Diagnostic] = []
        for limit in LIMITS:
            raw = env.get(limit.env)
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw.strip())
            except ValueError:
                value = 0
            if value < 1:
                diags.append(
                    error(
                        f"{limit.env} must be a positive whole number, got {raw.strip()!r}",
                        f"it limits the {limit.bounds} (default {limit.default:,})",
                    )
                )
                continue
            values[limit.name] = value
        return cls(**values), diags

    def exceeded(self, name: str, what: str) -> tuple[str, str]:
        """(summary, detail) of the error for limit `name`: what was found, the limit and how to raise it."""
        limit = BY_NAME[name]
        value = getattr(self, name)
        return (
            f"{what} exceeds the limit {limit.env}={value}",
            f"the limit bounds the {limit.bounds}; if this input is intended, raise it for the run with "
            f"{limit.env}=<n> (default {limit.default:,})",
        )


BY_NAME = {limit.name: limit for limit in LIMITS}
DEFAULT = Limits()
assert {f.name for f in fields(Limits)} == set(_DEFAULTS)


def describe() -> str:
    """The limits as a Markdown table (docs and `--help` texts quote it)."""
    rows = [f"| `{limit.env}` | {limit.default:,} | {limit.bounds} |" for limit in LIMITS]
    return "\n".join(["| variable | default | bounds |", "|---|---:|---|", *rows])

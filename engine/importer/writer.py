"""Where an import's manifests go, and the summaries an operator reads before merging them.

Layout (stable: the same account imported twice gives the same bytes):
  DIR/<target>/<kinds>.yaml          one file per kind and target: thing-types.yaml, things.yaml, ...
  DIR/<target>/<kinds>/<key>.yaml    when a kind has more than SPLIT documents, split by the importer's key
                                     (things and their certificates by thing group; ungrouped.yaml for the rest)
  DIR/certs/...                      public PEMs, referenced from the manifests as {file: ../certs/x.pem}
  DIR/target.yaml                    a copy of the Target when DIR is outside the fleet, so `plan DIR` runs alone
  DIR/IMPORT.md                      counts, what was skipped or left unmanaged and why, what to do next
  DIR/IMPORT-SECRETS.md              the environment variables to fill in (only when a secret was referenced)
Documents in a file are sorted by name, each opened by `# imported from <address> on <time>`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from engine import kinds as registry
from engine.importer import yamlout
from engine.importer.model import Exported, ImportReport, ImportRequest, PublicFile, SecretSlot

SPLIT = 500
SUMMARY = "IMPORT.md"
SECRETS = "IMPORT-SECRETS.md"
TARGET_COPY = "target.yaml"


def kind_stem(qualified: str) -> str:
    """`aws.ThingType` → `thing-types`, `aws.CACertificate` → `ca-certificates`, `aws.Policy` → `policies`."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", qualified.split(".", 1)[1]).lower()
    if words.endswith("s"):  # already plural: `aws.LoggingOptions` → `logging-options`
        return words
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _file_key(key: str, taken: dict[str, str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", key) or "_"
    if taken.get(stem, key) != key:  # two keys sanitise alike: keep both apart, deterministically
        stem = f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"
    taken[stem] = key
    return stem


def layout(docs: list[Exported]) -> dict[str, list[Exported]]:
    """Relative file path → its documents, sorted by name."""
    by_kind: dict[tuple[str, str], list[Exported]] = {}
    for d in docs:
        by_kind.setdefault((d.address.target, d.kind), []).append(d)
    files: dict[str, list[Exported]] = {}
    for (target, kind), items in sorted(by_kind.items()):
        items.sort(key=lambda d: d.address.name)
        stem = kind_stem(kind)
        if len(items) <= SPLIT:
            files[f"{target}/{stem}.yaml"] = items
            continue
        taken: dict[str, str] = {}
        for d in items:
            name = _file_key(d.split, taken) if d.split else "ungrouped"
            files.setdefault(f"{target}/{stem}/{name}.yaml", []).append(d)
    return dict(sorted(files.items()))


class _Refs:
    """Collects what the manifests reference: public files, and secrets (one variable per secret)."""

    def __init__(self) -> None:
        self.public: dict[str, str] = {}
        self.secrets: dict[str, tuple[str, str]] = {}  # env → (address, what)

    def secret(self, slot: SecretSlot, address: str) -> str:
        env = slot.env
        if self.secrets.get(env, (address, slot.what)) != (address, slot.what):  # two secrets, one name: keep apart
            env = f"{env}_{hashlib.sha1((address + slot.what).encode()).hexdigest()[:6].upper()}"
        self.secrets[env] = (address, slot.what)
        return env


def _resolve(value: Any, manifest_dir: PurePosixPath, refs: _Refs, address: str) -> Any:
    if isinstance(value, PublicFile):
        refs.public[value.path] = value.content
        return {"file": os.path.relpath(value.path, manifest_dir).replace(os.sep, "/")}
    if isinstance(value, SecretSlot):
        return {"env": refs.secret(value, address)}
    if isinstance(value, Mapping):
        return {k: _resolve(v, manifest_dir, refs, address) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, manifest_dir, refs, address) for v in value]
    return value


def plain_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec as the manifest will hold it (public files and secrets as references), for validation."""
    plain: dict[str, Any] = _resolve(spec, PurePosixPath("."), _Refs(), "")
    return plain


def manifest(d: Exported, manifest_dir: PurePosixPath, refs: _Refs) -> dict[str, Any]:
    decl = registry.by_qualified(d.kind)
    metadata: dict[str, Any] = {"name": d.address.name, "target": d.address.target}
    if d.annotations:
        metadata["annotations"] = dict(sorted(d.annotations.items()))
    spec = _resolve(d.spec, manifest_dir, refs, str(d.address))
    return {"apiVersion": decl.api_version, "kind": decl.kind, "metadata": metadata, "spec": spec}


def render(docs: list[Exported], when: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str, str]]]:
    """(manifest files, public files, secrets): relative path → text, and (env, address, what)."""
    files: dict[str, str] = {}
    refs = _Refs()
    for path, items in layout(docs).items():
        folder = PurePosixPath(path).parent
        files[path] = yamlout.documents(
            [(manifest(d, folder, refs), f"imported from {d.origin} on {when}") for d in items]
        )
    secrets = sorted((env, address, what) for env, (address, what) in refs.secrets.items())
    return files, dict(sorted(refs.public.items())), secrets


def target_copy(data: Mapping[str, Any], source: str, when: str) -> str:
    return yamlout.document(
        data,
        f"copied from {source} on {when}: the Target this import read, so that "
        "`fleetctl plan` runs on this folder alone\n(keep one copy when merging it "
        "into the fleet)",
    )


def _table(report: ImportReport) -> list[str]:
    kinds = sorted(set(report.written) | set(report.declared) | set(report.skipped))
    rows = ["| kind | written | already declared | skipped |", "|---|---:|---:|---:|"]
    for k in kinds:
        rows.append(f"| {k} | {report.written.get(k, 0)} | {report.declared.get(k, 0)} | {report.skipped.get(k, 0)} |")
    total = (sum(report.written.values()), sum(report.declared.values()), sum(report.skipped.values()))
    rows.append(f"| **total** | **{total[0]}** | **{total[1]}** | **{total[2]}** |")
    return rows


def summary(
    report: ImportReport, request: ImportRequest, when: str, *, inside: bool, annotation: str, adoptable: Iterable[str]
) -> str:
    """IMPORT.md: deterministic (no timings, no absolute paths), so it belongs in the review too."""
    kinds = ", ".join(request.kinds) if request.kinds else "all"
    filters = ", ".join(f"`{f}`" for f in request.filters) if request.filters else "none"
    out = [
        f"# fleetctl import of target `{report.target}`",
        "",
        f"Read on {when} (kinds: {kinds}; filters: {filters}). The import only read the account: nothing "
        "was created, changed, rotated or deleted.",
        "",
    ]
    out += _table(report) + [
        "",
        "## Next steps",
        "",
        "1. Review the manifests"
        + (" and the attention list below." if any(n.topic == "attention" for n in report.notes) else "."),
        "2. `fleetctl plan "
        + ("<the fleet folder>" if inside else "<this folder>")
        + " --detailed-exitcode` must report no changes (exit 0)"
        + (": with `--adopt`, it shows the adoption updates instead (step 3)." if report.adopted else "."),
    ]
    adoptable_names = ", ".join(sorted(k.split(".")[1] for k in adoptable))
    if report.adopted:
        out.append(
            f'3. {report.adopted} resource(s) carry `{annotation}: "true"`: the plan shows one update per '
            "resource that adds the ownership marker `managed-by=fleetctl` (nothing else). Apply it after "
            "review; the plan after that is empty. Marked resources become candidates for pruning once no "
            "manifest declares them."
        )
    elif not adoptable_names:
        out.append(
            "3. The resources are declared but carry no ownership marker, and fleetctl cannot yet plan one for "
            "this provider: it applies their manifests' changes and never deletes them."
        )
    else:
        out.append(
            "3. The resources are declared but carry no ownership marker: fleetctl applies their manifests' "
            "changes, but never deletes them (pruning only touches marked resources). To mark them, import "
            f'again with `--adopt` or add `{annotation}: "true"` to their metadata.annotations '
            f"({adoptable_names})."
        )
    if not inside:
        out.append(
            f"4. This folder holds a copy of the Target (`{TARGET_COPY}`); drop it when moving the "
            "manifests into the fleet."
        )
    if report.secrets:
        out.append(f"- Fill in the secrets listed in `{SECRETS}` before planning.")
    titles = {
        "attention": "Attention",
        "skipped": "Skipped (not written)",
        "unmanaged field": "Fields left unmanaged (their references could not be written)",
        "endpoint": "What the endpoint could not tell",
    }
    for topic, title in titles.items():
        notes = sorted(n for n in report.notes if n.topic == topic)
        if notes:
            out += ["", f"## {title}", ""] + [
                f"- `{n.address}`: {n.text}" if n.address else f"- {n.text}" for n in notes
            ]
    return "\n".join(out) + "\n"


def secrets_summary(report: ImportReport) -> str:
    out = [
        f"# Secrets to fill in: target `{report.target}`",
        "",
        "The import never writes a secret. These manifests reference environment variables instead; set them "
        "(or change the reference to `{file: ...}` outside the repository, or `{secretRef: ...}`) before "
        "planning. To leave a key to the service instead (unmanaged, never read or compared), delete its line from the "
        "manifest.",
        "",
        "| variable | resource | what |",
        "|---|---|---|",
    ]
    out += [f"| `{env}` | `{address}` | {what} |" for env, address, what in report.secrets]
    return "\n".join(out) + "\n"


def kinds_count(docs: Iterable[Exported]) -> dict[str, int]:
    return dict(sorted(Counter(d.kind for d in docs).items()))

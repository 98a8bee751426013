"""fleetctl lint: security and hygiene rules over manifests, before anything reaches a cloud.

`validate` says whether a fleet *can* be applied; lint says whether it *should* be: an IoT policy that lets any
device do anything, one certificate shared by several devices, a certificate about to expire, an endpoint in
another region. Rules read the raw manifest documents (with their file:line positions), not validated specs,
so they also cover kinds another part of fleetctl registers later, and never call a cloud.

Each rule has an id (FL001…), a level, a summary and a fix hint, declared once with `@rule` in
engine/lint/rules.py. Selection and suppression come from `.fleetctl-lint.yaml` at the fleet root (select,
ignore, per-rule options) and from the annotation `fleetctl.io/lint-ignore: FL001, FL003` on a document;
suppressed findings are kept (SARIF reports them as suppressed) but do not fail the run.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from engine.audit import document_address
from engine.clock import clock_from_env
from engine.diagnostics import Diagnostic, FleetctlError, Source, error
from engine.manifest.confine import FilePolicy, FileRefError
from engine.manifest.loader import Document, load_path
from engine.pki import CertInfo, PemError, cert_info, looks_like_certificate

CONFIG_FILE = ".fleetctl-lint.yaml"
IGNORE_ANNOTATION = "fleetctl.io/lint-ignore"
PathT = tuple[Any, ...]


class Level(enum.Enum):
    """SARIF's result levels (GitHub code scanning maps them to error / warning / note)."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    message: str
    source: Source
    address: str | None
    hint: str
    suppressed: str | None = None  # why it does not count: "annotation ..." or "config ..."

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "level": self.level.value,
            "message": self.message,
            "file": self.source.file,
            "line": self.source.line,
            "col": self.source.col,
            "address": self.address,
            "hint": self.hint,
        }
        if self.suppressed:
            out["suppressed"] = self.suppressed
        return out


@dataclass(frozen=True)
class Hit:
    """What a rule yields: the document, the field concerned and the message (and a finer level, if any)."""

    doc: ManifestDoc
    path: PathT
    message: str
    level: Level | None = None  # e.g. an expired certificate is an error, an expiring one a warning
    source: Source | None = None  # where it is, when not at `path` of `doc` (a device's DeviceConfig)


Check = Callable[["LintContext", Mapping[str, Any]], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    level: Level
    summary: str
    hint: str
    check: Check
    options: Mapping[str, Any] = field(default_factory=dict)
    security_severity: float = 5.0  # GitHub code scanning's severity scale (0-10)
    default_on: bool = True  # False: runs only when selected (or configured under `rules:`)


RULES: dict[str, Rule] = {}


def rule(
    id: str,
    name: str,
    level: Level,
    *,
    summary: str,
    hint: str,
    security_severity: float = 5.0,
    default_on: bool = True,
    **options: Any,
) -> Callable[[Check], Check]:
    """Register a rule; `options` are its defaults, overridable per rule in the config file. A rule with
    `default_on=False` (an organisation's own policy, e.g. a maximum certificate age) runs only when selected."""

    def register(fn: Check) -> Check:
        RULES[id] = Rule(id, name, level, summary, hint, fn, dict(options), security_severity, default_on)
        return fn

    return register


def all_rules() -> dict[str, Rule]:
    importlib.import_module("engine.lint.rules")  # importing them registers the rules
    importlib.import_module("engine.lint.effective")
    importlib.import_module("engine.lint.access")  # FL021-FL022: role aliases
    importlib.import_module("engine.lint.account")  # FL025-FL027: logging, audit checks, authorizers
    return dict(sorted(RULES.items()))


# ------------------------------------------------------------------------------------------- documents
@dataclass(frozen=True)
class ManifestDoc:
    """A raw manifest document seen by the rules: kind, name, target and spec, with positions."""

    doc: Document
    group: str
    kind: str
    name: str
    target: str | None
    address: str

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.doc.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def annotations(self) -> dict[str, Any]:
        meta = self.doc.data.get("metadata") or {}
        ann = meta.get("annotations") if isinstance(meta, dict) else None
        return ann if isinstance(ann, dict) else {}

    def is_(self, group: str, *kinds: str) -> bool:
        return self.group == group and self.kind in kinds

    def source(self, path: PathT) -> Source:
        return self.doc.source(path)


def _manifest_docs(docs: Iterable[Document]) -> list[ManifestDoc]:
    out = []
    for doc in docs:
        address = document_address(doc.data)
        if address is None:
            continue
        meta = doc.data["metadata"]
        target = meta.get("target") if isinstance(meta.get("target"), str) else None
        out.append(
            ManifestDoc(
                doc, doc.data["apiVersion"].rsplit("/", 1)[0], doc.data["kind"], meta["name"], target, str(address)
            )
        )
    return out


@dataclass(frozen=True)
class PemAt:
    """A certificate a document refers to (`{file: x.pem}`, `{inline: ...}` or a PEM string) and where."""

    doc: ManifestDoc
    path: PathT
    info: CertInfo


class LintContext:
    """What rules may use: the documents, indexes over them, certificate reading and the injected clock."""

    def __init__(
        self,
        root: Path,
        docs: list[ManifestDoc],
        now: dt.datetime,
        env: Mapping[str, str] | None = None,
        path: Path | None = None,
    ) -> None:
        self.root = root
        self.path = path or root  # what was linted: the fleet folder or one file
        self.docs = docs
        self.now = now
        self.env = dict(env or {})
        self.cache: dict[str, Any] = {}  # what rules compute once and share (effective permissions' folds)
        self._index = {(d.group, d.kind, d.target, d.name): d for d in reversed(docs)}
        allow = [
            e
            for t in self.of("fleetctl.io", "Target")
            if isinstance(t.spec.get("files"), dict)
            for e in (t.spec["files"].get("allow") or [])
            if isinstance(e, str)
        ]
        self.files = FilePolicy.of(root, allow)  # lint reads only what the fleet may read (docs/security.md)

    @functools.cached_property
    def fleet(self) -> Any:
        """The validated, expanded fleet (ThingSet rows included), loaded once and only by the rules that need
        it (effective permissions, device cross-checks); secrets are not read."""
        from engine.manifest.fleet import load_fleet

        return load_fleet(
            self.path, env={k: v for k, v in self.env.items() if k.startswith("FLEETCTL_DUMPS")}, resolve_secrets=False
        )

    @functools.cached_property
    def authz(self) -> Any:
        from engine.authz import AuthzFleet

        return AuthzFleet.from_fleet(self.fleet)

    def manifest_doc(self, document: Document) -> ManifestDoc | None:
        """The lint view of a document the fleet loader made (a ThingSet's generated rows included)."""
        found = _manifest_docs([document])
        return found[0] if found else None

    def doc_for(self, group: str, kind: str, name: str, target: str | None) -> ManifestDoc | None:
        """A declared or generated document by kind and name."""
        doc = self.find(group, kind, name, target)
        if doc is not None:
            return doc
        for m in self.fleet.manifests:
            if m.decl.kind == kind and m.name == name and m.target == target and m.decl.api_version.startswith(group):
                return self.manifest_doc(m.doc)
        return None

    def of(self, group: str, *kinds: str) -> list[ManifestDoc]:
        return [d for d in self.docs if d.is_(group, *kinds)]

    def find(self, group: str, kind: str, name: str, target: str | None) -> ManifestDoc | None:
        return self._index.get((group, kind, target, name))

    def aws_region(self, target: str | None) -> str | None:
        t = self.find("fleetctl.io", "Target", target or "", None)
        aws = t.spec.get("aws") if t else None
        return aws.get("region") if isinstance(aws, dict) else None

    def aws_account(self, target: str | None) -> str | None:
        t = self.find("fleetctl.io", "Target", target or "", None)
        aws = t.spec.get("aws") if t else None
        return str(aws["accountId"]) if isinstance(aws, dict) and aws.get("accountId") else None

    def certificate(self, doc: ManifestDoc, value: Any) -> CertInfo | None:
        """The certificate a PEM reference points at (the manifest's folder first, then the fleet root)."""
        text: str | None = None
        if isinstance(value, str) and looks_like_certificate(value):  # a pre-check; _parse_cert parses
            text = value
        elif isinstance(value, dict) and isinstance(value.get("inline"), str):
            text = value["inline"]
        elif isinstance(value, dict) and isinstance(value.get("file"), str) and len(value) == 1:
            try:
                text = _read(str(self.files.locate(value["file"], (doc.doc.base_dir, self.root))))
            except FileRefError:  # outside the fence or missing: validate reports it at its line
                text = None
        if not text:
            return None
        return _parse_cert(text)

    def certificates(self, doc: ManifestDoc, skip: tuple[str, ...] = ("verificationCertificatePem",)) -> list[PemAt]:
        """Every certificate a document refers to, anywhere in its spec, except under the `skip` keys."""
        out: list[PemAt] = []
        for path, value in walk(doc.spec, ("spec",)):
            key = path[-1] if isinstance(path[-1], str) else ""
            if key in skip or key in ("inline", "file"):
                continue
            if "pem" in key.lower() or (isinstance(value, str) and looks_like_certificate(value)):
                info = self.certificate(doc, value)
                if info is not None:
                    out.append(PemAt(doc, path, info))
        return out


@functools.lru_cache(maxsize=4096)
def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


@functools.lru_cache(maxsize=4096)
def _parse_cert(text: str) -> CertInfo | None:
    try:
        return cert_info(text)
    except PemError:
        return None  # validate reports unreadable certificates; lint has nothing to add


def walk(value: Any, path: PathT = ()) -> Iterator[tuple[PathT, Any]]:
    """Every (path, value) below `value`, maps and lists included, in document order."""
    if path:
        yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, path + (i,))


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class LintConfig:
    select: tuple[str, ...] = ()  # rule ids or id prefixes; empty: every rule
    ignore: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    levels: Mapping[str, Level] = field(default_factory=dict)

    def enabled(self, rule_id: str, default_on: bool = True) -> bool:
        """A rule that is off by default runs only when named in full (select, or options under `rules:`);
        a prefix such as FL0 selects the rules that are on by default."""
        if not default_on:
            selected = rule_id in self.select or rule_id in self.options or rule_id in self.levels
        elif self.select:
            selected = any(rule_id.startswith(s) for s in self.select)
        else:
            selected = True
        return selected and not any(rule_id.startswith(s) for s in self.ignore)


def _check_ids(ids: Iterable[str], where: str, known: Iterable[str]) -> list[Diagnostic]:
    known = list(known)
    return [
        error(f"unknown lint rule '{i}' in {where}", f"known rules: {', '.join(known)}")
        for i in ids
        if not any(k.startswith(i) for k in known)
    ]


def load_config(root: Path) -> LintConfig:
    """`.fleetctl-lint.yaml` at the fleet root; a missing file is the default config. Raises FleetctlError."""
    path = (root if root.is_dir() else root.parent) / CONFIG_FILE
    if not path.is_file():
        return LintConfig()
    src = Source(str(path))
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    except (OSError, YAMLError) as exc:
        raise FleetctlError(error(f"cannot read the lint config: {exc}", source=src)) from None
    if not isinstance(data, dict) or set(data) - {"select", "ignore", "rules"}:
        raise FleetctlError(error("the lint config holds only: select, ignore, rules", source=src))
    rules = all_rules()
    diags: list[Diagnostic] = []
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("select", "ignore"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            diags.append(error(f"'{key}' must be a list of rule ids", source=src, field=key))
            value = []
        lists[key] = tuple(value)
        diags.extend(_check_ids(value, f"{CONFIG_FILE} {key}", rules))
    options: dict[str, dict[str, Any]] = {}
    levels: dict[str, Level] = {}
    per_rule = data.get("rules", {}) or {}
    if not isinstance(per_rule, dict):
        per_rule = {}
        diags.append(error("'rules' must map rule ids to options", source=src, field="rules"))
    for rule_id, opts in per_rule.items():
        if rule_id not in rules or not isinstance(opts, dict):
            diags.append(
                error(
                    f"rules.{rule_id}: expected a known rule id mapped to options",
                    f"known rules: {', '.join(rules)}",
                    source=src,
                    field=f"rules.{rule_id}",
                )
            )
            continue
        opts = dict(opts)
        if "level" in opts:
            try:
                levels[rule_id] = Level(opts.pop("level"))
            except ValueError:
                diags.append(error(f"rules.{rule_id}.level must be one of: error, warning, note", source=src))
        unknown = set(opts) - set(rules[rule_id].options)
        if unknown:
            diags.append(
                error(
                    f"rules.{rule_id}: unknown option(s) {', '.join(sorted(unknown))}",
                    f"options of {rule_id}: {', '.join(rules[rule_id].options) or 'none'} (and level)",
                    source=src,
                )
            )
        for key, value in opts.items():
            default = rules[rule_id].options.get(key)
            if default is not None and type(value) is not type(default):
                diags.append(error(f"rules.{rule_id}.{key} must be a {type(default).__name__}", source=src))
        options[rule_id] = opts
    if diags:
        raise FleetctlError(diags)
    return LintConfig(lists["select"], lists["ignore"], options, levels)


# ------------------------------------------------------------------------------------------------- run
@dataclass
class LintResult:
    root: Path
    findings: list[Finding]
    diagnostics: list[Diagnostic]  # documents lint could not read (YAML errors): exit 1
    rules: list[Rule]
    documents: int

    @property
    def active(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]

    @property
    def suppressed(self) -> list[Finding]:
        return [f for f in self.findings if f.suppressed]


def _annotation_ids(doc: ManifestDoc) -> set[str]:
    raw = doc.annotations.get(IGNORE_ANNOTATION)
    return {p.strip() for p in str(raw).replace(",", " ").split() if p.strip()} if raw else set()


def lint(path: str | Path, config: LintConfig | None = None, *, env: Mapping[str, str] | None = None) -> LintResult:
    """Run the enabled rules over the manifests under `path`. Raises FleetctlError for a missing path or a
    bad config; unreadable documents become diagnostics (the others are still linted)."""
    root = Path(path)
    if not root.exists():
        raise FleetctlError(error(f"fleet path not found: {root}"))
    config = config or load_config(root)
    docs, diags = load_path(root)
    manifests = _manifest_docs(docs)
    ctx = LintContext(root if root.is_dir() else root.parent, manifests, clock_from_env(env)(), env, root)
    rules = [r for r in all_rules().values() if config.enabled(r.id, r.default_on)]
    findings: list[Finding] = []
    seen: set[tuple] = set()
    for r in rules:
        options = {**r.options, **config.options.get(r.id, {})}
        for hit in r.check(ctx, options):
            source = hit.source or hit.doc.source(hit.path)
            key = (r.id, source, hit.message)
            if key in seen:
                continue
            seen.add(key)
            level = config.levels.get(r.id) or hit.level or r.level
            finding = Finding(r.id, level, hit.message, source, hit.doc.address, r.hint)
            if r.id in _annotation_ids(hit.doc):
                where = hit.doc.source(("metadata", "annotations", IGNORE_ANNOTATION))
                finding = replace(finding, suppressed=f"annotation {IGNORE_ANNOTATION} at {where}")
            findings.append(finding)
    findings.sort(key=lambda f: (f.source.file, f.source.line, f.source.col, f.rule, f.message))
    return LintResult(ctx.root, findings, list(diags), rules, len(manifests))

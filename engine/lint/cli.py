"""`fleetctl lint`: runs the rules and renders findings as text (people), JSON (scripts) or SARIF 2.1.0 (GitHub
code scanning, which annotates the pull request's files with the findings).

Exit codes (DESIGN §1.2): 0 clean, 2 findings (suppressed ones do not count), 1 error (a missing path, a bad
config or rule id, a manifest that is not readable YAML).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from engine import console, fsutil
from engine.diagnostics import FleetctlError, error
from engine.lint import Finding, Level, LintConfig, LintResult, Rule, all_rules, lint, load_config

EXIT_OK, EXIT_ERROR, EXIT_FINDINGS = 0, 1, 2
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/fleetctl/fleetctl/blob/main/docs/gitops.md#lint"


def _ids(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p.strip().upper() for v in values for p in v.split(",") if p.strip())


def _merge(config: LintConfig, select: tuple[str, ...], ignore: tuple[str, ...]) -> LintConfig:
    known = list(all_rules())
    bad = [i for i in select + ignore if not any(k.startswith(i) for k in known)]
    if bad:
        raise FleetctlError([error(f"unknown lint rule '{i}'", f"known rules: {', '.join(known)}") for i in bad])
    return LintConfig(select or config.select, config.ignore + ignore, config.options, config.levels)


def _version() -> str:
    try:
        return metadata.version("fleetctl")
    except metadata.PackageNotFoundError:
        return "0"


def render_text(result: LintResult) -> str:
    lines: list[str] = []
    for f in result.active:
        lines.append(f"{f.source}: {f.rule} {f.level.value}: {f.message}" + (f"  [{f.address}]" if f.address else ""))
        lines.append(f"    hint: {f.hint}")
    counts = {lv: sum(1 for f in result.active if f.level is lv) for lv in Level}
    suppressed = f", {len(result.suppressed)} suppressed" if result.suppressed else ""
    if result.diagnostics:  # unreadable manifests (printed on stderr): the run is not clean
        if lines:
            lines.append("")
        found = (f"{len(result.active)} finding(s)" if result.active else "no findings") + suppressed
        where = ", ".join(sorted({str(d.source.file) for d in result.diagnostics if d.source})) or "the fleet"
        lines.append(
            f"{len(result.diagnostics)} error(s) in {where}: what could not be read was not linted; "
            f"{found} in the {result.documents} document(s) read."
        )
    elif result.active:
        lines.append("")
        lines.append(
            f"{len(result.active)} finding(s) in {result.documents} document(s): "
            + ", ".join(f"{n} {lv.value}(s)" for lv, n in counts.items() if n)
            + suppressed
            + "."
        )
    else:
        lines.append(f"No findings: {result.documents} document(s), {len(result.rules)} rule(s){suppressed}.")
    return "\n".join(lines) + "\n"


def render_json(result: LintResult) -> str:
    return (
        json.dumps(
            {
                "findings": [f.to_json() for f in result.findings],
                "summary": {
                    "findings": len(result.active),
                    "suppressed": len(result.suppressed),
                    "documents": result.documents,
                },
                "rules": [r.id for r in result.rules],
                "errors": [d.to_json() for d in result.diagnostics],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


def _uri(result: LintResult, file: str) -> str:
    """The finding's file relative to the working directory (the repository root in CI), as SARIF wants."""
    base = result.root.parent if result.root.parent != result.root else result.root
    absolute = (base / file).resolve()
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return absolute.as_uri()


def _sarif_rule(r: Rule) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": f"{r.summary}. {r.hint}"},
        "help": {"text": r.hint, "markdown": f"**{r.id} {r.name}**: {r.summary}.\n\nFix: {r.hint}"},
        "defaultConfiguration": {"level": r.level.value},
        "properties": {
            "tags": ["security", "iot"],
            "security-severity": f"{r.security_severity:.1f}",
            **({"options": dict(r.options)} if r.options else {}),
        },
    }


def _sarif_result(result: LintResult, f: Finding, index: dict[str, int]) -> dict[str, Any]:
    uri = _uri(result, f.source.file)
    region = {"startLine": max(f.source.line, 1), "startColumn": max(f.source.col, 1)}
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}
    if f.address:
        location["logicalLocations"] = [{"fullyQualifiedName": f.address, "kind": "resource"}]
    stable = hashlib.sha256(f"{f.rule}\0{f.address}\0{f.message}".encode()).hexdigest()[:32]
    out: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index[f.rule],
        "level": f.level.value,
        "message": {"text": f"{f.message}. Fix: {f.hint}"},
        "locations": [location],
        "partialFingerprints": {"fleetctlFinding/v1": stable},
    }
    if f.suppressed:
        out["suppressions"] = [{"kind": "inSource", "justification": f.suppressed}]
    return out


def render_sarif(result: LintResult) -> str:
    """SARIF 2.1.0 with one run: the rules that ran, and every finding (suppressed ones marked as such)."""
    rules = [_sarif_rule(r) for r in result.rules]
    index = {r.id: i for i, r in enumerate(result.rules)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "fleetctl-lint",
                "version": _version(),
                "semanticVersion": _version(),
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(result, f, index) for f in result.findings],
    }
    if result.diagnostics:
        run["invocations"] = [
            {
                "executionSuccessful": False,
                "toolExecutionNotifications": [
                    {
                        "level": "error",
                        "message": {"text": d.summary},
                        **(
                            {
                                "locations": [
                                    {
                                        "physicalLocation": {
                                            "artifactLocation": {"uri": _uri(result, d.source.file)},
                                            "region": {"startLine": max(d.source.line, 1)},
                                        }
                                    }
                                ]
                            }
                            if d.source
                            else {}
                        ),
                    }
                    for d in result.diagnostics
                ],
            }
        ]
    else:
        run["invocations"] = [{"executionSuccessful": True}]
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "sarif": render_sarif}


def render_rules() -> str:
    lines = []
    for r in all_rules().values():
        opts = "  options: " + ", ".join(f"{k}={v}" for k, v in r.options.items()) if r.options else ""
        lines.append(f"{r.id}  {r.level.value:<7}  {r.name}: {r.summary}{opts}")
    return "\n".join(lines) + "\n"


@click.command("lint")
@click.argument("path", default="fleet", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True)
@click.option("--select", multiple=True, help="only these rule ids or prefixes, comma-separated (replaces the config)")
@click.option("--ignore", multiple=True, help="skip these rule ids or prefixes, comma-separated (adds to the config)")
@click.option("--output", "-o", type=click.Path(), help="write the report to this file instead of stdout")
@click.option("--list-rules", is_flag=True, help="print the rules and exit")
def command(
    path: str, fmt: str, select: tuple[str, ...], ignore: tuple[str, ...], output: str | None, list_rules: bool
) -> None:
    """Security rules over the manifests (no cloud calls): exit 0 clean, 2 findings, 1 error.

    Configure with .fleetctl-lint.yaml at the fleet root (select, ignore, rules: {FL005: {days: 60}}), or
    suppress on one document with the annotation fleetctl.io/lint-ignore: FL003.
    """
    if list_rules:
        console.echo(render_rules(), nl=False)
        return
    root = Path(path)
    if not root.exists():
        raise FleetctlError(error(f"fleet path not found: {root}"))
    config = _merge(load_config(root), _ids(select), _ids(ignore))
    result = lint(root, config, env=os.environ)
    report = RENDERERS[fmt](result)
    if output:
        fsutil.write_atomic(output, report, mode=fsutil.PUBLIC)
    else:
        console.echo(report, nl=False, style=fmt == "text")  # json and SARIF are never styled
    for d in result.diagnostics:
        console.echo(d.render(), err=True)
    if result.diagnostics:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if result.active else EXIT_OK)

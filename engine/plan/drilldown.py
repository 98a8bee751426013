"""Drill into one device (or a glob of them) of a large saved plan: `fleetctl show PLANFILE --address ADDR`.

A 100,000-device plan is read as a summary (changes per kind and action, the binding quota, the estimated
duration); a reviewer who wants to know what happens to one device asks for its address, or a glob such as
`aws/aws-eu/Thing/esp32-240AC4*`, and gets every detail of the matching changes: fields, steps, the
fingerprint it was planned against, its dependencies and the manifest line (for a generated device, the CSV
row and the template line). Field changes are shown to the leaf and in full, as in the plan.

The JSON view is a list of changes, deliberately not a plan file: a subset of a reviewed plan must never be
applied as if it were the plan.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable

from engine.model import Change
from engine.plan.model import Plan, change_to_json
from engine.plan.render import change_lines, fence, flag_suffix


def select(plan: Plan, patterns: Iterable[str]) -> list[Change]:
    """Changes whose address matches any pattern (exact, or a shell glob: `*`, `?`, `[...]`), in plan order."""
    pats = list(patterns)
    exact = {p for p in pats if not any(ch in p for ch in "*?[")}
    globs = [p for p in pats if p not in exact]
    return [
        c for c in plan.changes if str(c.address) in exact or any(fnmatch.fnmatchcase(str(c.address), g) for g in globs)
    ]


def _detail(c: Change, indent: str) -> list[str]:
    lines = [f"{indent}kind: {c.kind}"]
    if c.reason:
        lines.append(f"{indent}reason: {c.reason}")
    if c.source:
        lines.append(f"{indent}source: {c.source}")
    lines.append(f"{indent}planned against: {c.fingerprint}")
    if c.depends_on:
        lines.append(f"{indent}depends on: {', '.join(map(str, c.depends_on))}")
    return lines + change_lines(c, indent)


def render(plan: Plan, patterns: list[str], changes: list[Change], fmt: str = "text") -> str:
    head = f"{len(changes)} of {len(plan.changes)} change(s) of plan {plan.plan_id} match " + ", ".join(
        repr(p) for p in patterns
    )
    if fmt == "json":
        return (
            json.dumps(
                {
                    "planId": plan.plan_id,
                    "patterns": patterns,
                    "matched": len(changes),
                    "changes": [change_to_json(c) for c in changes],
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    body: list[str] = []
    for c in changes:
        body.append(f"  {c.action.symbol} {c.action.value} {c.address}{flag_suffix(c.attention)}")
        body += [f"      attention: {a.flag} ({a.severity}) {a.message}" for a in c.attention]
        body += _detail(c, "      ")
    if fmt == "markdown":
        fence_ = fence(body)
        return "\n".join([f"**{head}**", "", fence_ + "diff", *body, fence_]) + "\n"
    return "\n".join([head, "", *body]) + "\n"

"""docs/authz.md's console snippets run (exit codes as written) and its output snippets are what they print."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT, run_cli

DOC = ROOT / "docs" / "authz.md"
SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```(\w+)\n(.*?)\n```", re.S)


def snippets() -> dict[str, str]:
    return {m.group(1): m.group(3) for m in SNIPPET.finditer(DOC.read_text())}


def test_authz_doc_snippets(monkeypatch):
    monkeypatch.chdir(ROOT)
    text = DOC.read_text()
    assert text.count("```") == 2 * len(SNIPPET.findall(text)), "a fenced block without a snippet marker"
    outputs = []
    for line in snippets()["authz-commands"].splitlines():
        m = re.match(r"^\$ fleetctl (.*?)(?:\s+# exit (\d)\b.*)?$", line)
        assert m, line
        res = run_cli(*shlex.split(m.group(1)))
        assert res.exit_code == int(m.group(2) or 0), res.output
        outputs.append(res.stdout)
    assert outputs[0].rstrip("\n") == snippets()["authz-check-output"]
    assert outputs[2].rstrip("\n") == snippets()["authz-matrix-output"]

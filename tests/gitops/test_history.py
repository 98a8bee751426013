"""fleetctl history on a real git repository built here: a renamed file, a resource moved to another file, a
changed field and a deleted resource are all followed by address, with commit, author, date and field diff."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

TARGET = "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: aws-eu}\nspec:\n  aws: {region: eu-west-2}\n"


def thing(name: str, site: str, labels: str = "") -> str:
    meta = f"{{name: {name}, target: aws-eu{', labels: ' + labels if labels else ''}}}"
    return (
        f"apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {meta}\nspec:\n"
        f"  attributes: {{serial: {name}, site: {site}}}\n"
    )


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tick = 0
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        return subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True, env=env
        ).stdout

    def write(self, rel: str, text: str) -> None:
        (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.path / rel).write_text(text)

    def commit(self, message: str, author: str) -> str:
        self.tick += 1
        date = f"2026-01-0{self.tick}T10:00:00+00:00"
        self.git("add", "-A")
        self.git(
            "-c",
            f"user.name={author}",
            "-c",
            f"user.email={author.lower()}@example.com",
            "commit",
            "-q",
            "-m",
            message,
            "--date",
            date,
        )
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Repo, list[str]]:
    r = Repo(tmp_path / "fleet-repo")
    shas = []
    r.write("fleet/targets.yaml", TARGET)
    r.write("fleet/aws/things.yaml", thing("DA1", "paris") + "---\n" + thing("DA2", "paris"))
    shas.append(r.commit("Add the Paris readers", "Alice"))
    r.git("mv", "fleet/aws/things.yaml", "fleet/aws/readers.yaml")
    shas.append(r.commit("Rename things.yaml to readers.yaml", "Bob"))
    r.write("fleet/aws/readers.yaml", thing("DA1", "paris"))
    r.write("fleet/aws/lyon.yaml", "# readers moved to Lyon\n" + thing("DA2", "paris"))
    shas.append(r.commit("Move DA2 to its own file", "Carol"))
    r.write("README.md", "not a manifest\n")
    r.write("fleet/aws/readers.yaml", thing("DA1", "lyon", "{model: springpark}"))
    shas.append(r.commit("DA1 moves to Lyon", "Dave"))
    (r.path / "fleet/aws/lyon.yaml").unlink()
    shas.append(r.commit("Retire DA2 (#12)", "Erin"))
    return r, shas


def test_history_follows_renames_moves_changes_and_deletes(repo, monkeypatch: pytest.MonkeyPatch) -> None:
    r, shas = repo
    monkeypatch.chdir(r.path)
    res = run_cli("history", "aws/aws-eu/Thing/DA2", "--format", "json")
    assert res.exit_code == 0, res.output
    (resource,) = json.loads(res.stdout)["resources"]
    events = [(e["commit"], e["change"], e["file"], e.get("previousFile")) for e in resource["events"]]
    assert events == [
        (shas[0], "created", "fleet/aws/things.yaml", None),
        (shas[1], "moved", "fleet/aws/readers.yaml", "fleet/aws/things.yaml"),
        (shas[2], "moved", "fleet/aws/lyon.yaml", "fleet/aws/readers.yaml"),
        (shas[4], "deleted", "fleet/aws/lyon.yaml", None),
    ]
    first, *_, last = resource["events"]
    assert (first["author"], first["email"], first["date"], first["message"], first["line"]) == (
        "Alice",
        "alice@example.com",
        "2026-01-01T10:00:00+00:00",
        "Add the Paris readers",
        9,
    )
    assert resource["events"][2]["line"] == 4  # below the comment line in lyon.yaml
    assert last["message"] == "Retire DA2 (#12)"

    res = run_cli("history", "DA1", "--format", "json")
    (resource,) = json.loads(res.stdout)["resources"]
    change = resource["events"][-1]
    assert (change["commit"], change["change"], change["author"]) == (shas[3], "updated", "Dave")
    assert change["fields"] == [
        {"op": "add", "path": "metadata.labels", "after": {"model": "springpark"}},
        {"op": "change", "path": "spec.attributes.site", "before": "paris", "after": "lyon"},
    ]
    assert [e["change"] for e in resource["events"]] == ["created", "moved", "updated"]


def test_history_text_glob_and_since(repo, monkeypatch: pytest.MonkeyPatch) -> None:
    r, shas = repo
    monkeypatch.chdir(r.path)
    res = run_cli("history", "aws/*/Thing/*", "--since", shas[2])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "aws/aws-eu/Thing/DA1",
        f"  {shas[3][:12]}  2026-01-04T10:00:00+00:00  Dave <dave@example.com>  DA1 moves to Lyon",
        '      + metadata.labels: {"model": "springpark"}',
        '      ~ spec.attributes.site: "paris" → "lyon"',
        "",
        "aws/aws-eu/Thing/DA2",
        f"  {shas[4][:12]}  2026-01-05T10:00:00+00:00  Erin <erin@example.com>  Retire DA2 (#12)",
        "      deleted from fleet/aws/lyon.yaml:4",
    ]
    everything = json.loads(run_cli("history", "--format", "json").stdout)["resources"]
    assert [x["address"] for x in everything] == [
        "aws/aws-eu/Thing/DA1",
        "aws/aws-eu/Thing/DA2",
        "fleetctl/Target/aws-eu",
    ]


def test_history_of_a_fleet_in_a_subfolder_given_by_path(repo, tmp_path: Path) -> None:
    r, shas = repo
    res = run_cli("history", "fleetctl/Target/aws-eu", "--fleet", str(r.path / "fleet"))
    assert res.exit_code == 0
    assert f"{shas[0][:12]}" in res.stdout and "created in fleet/targets.yaml:3" in res.stdout


def test_history_errors(repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, _ = repo
    monkeypatch.chdir(r.path)
    res = run_cli("history", "--since", "no-such-rev")
    assert res.exit_code == 1 and "unknown revision 'no-such-rev'" in res.stderr
    outside = tmp_path / "not-git" / "fleet"
    outside.mkdir(parents=True)
    res = run_cli("history", "--fleet", str(outside))
    assert res.exit_code == 1 and "not inside a git repository" in res.stderr
    assert run_cli("history", "aws/aws-eu/Thing/NOPE").stdout == "No history: no commit changed a matching resource.\n"

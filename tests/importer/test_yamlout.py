"""The import's YAML emitter: whatever it writes reads back as exactly the same data, in YAML 1.2 (fleetctl's
ruamel loader) and in YAML 1.1 (PyYAML: yq, editors), however hostile the strings."""

from __future__ import annotations

import random

import pytest

from engine.importer import yamlout
from engine.manifest.loader import parse_text

TRICKY = [
    "",
    " ",
    "yes",
    "no",
    "on",
    "Off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "~",
    "NULL",
    "007",
    "0o17",
    "0x1F",
    "1e3",
    "12E4",
    "1_000",
    "12:30",
    "1.5",
    ".inf",
    "-.nan",
    "+1",
    "-",
    "--",
    "---",
    "...",
    "=",
    "<<",
    "a: b",
    "a #b",
    "#x",
    "&anchor",
    "*alias",
    "!tag",
    "%YAML",
    "@at",
    "`tick",
    "'single'",
    '"double"',
    "[x]",
    "{x}",
    "x,y",
    "k:x",
    "iot:*",
    "arn:aws:iot:eu-west-2:123456789012:client/${iot:Connection.Thing.ThingName}",
    "trailing ",
    " leading",
    "two  spaces",
    "line\nbreak",
    "tab\there",
    "Café",
    "\u2028",
    "\x85",
    "\ufeff",
    "emoji 😀",
    "back\\slash",
    "SELECT * FROM 'lora/#'",
    "?q",
    "|",
    ">",
    "a:",
    "246F28A1B2C3",
    "DA1275B0",
]


def _load(text: str):
    docs, diags = parse_text(text, "x.yaml")
    assert not diags, diags
    return [d.data for d in docs]


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_strings_read_back_unchanged_as_values_keys_and_list_items(value):
    data = {"spec": {"plain": value, "map": {value or "k": value}, "list": [value, "x"], "nested": [{"v": value}]}}
    text = yamlout.document(data)
    assert _load(text) == [data]
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(text) == data


def test_random_documents_round_trip():
    rng = random.Random(7)
    alphabet = "abcXYZ019 :#-_'\"{}[],&*!|>%@`?\\/.$=+\n\t\u2028é"

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))

    def value(depth: int):
        kind = rng.randint(0, 9 if depth < 3 else 5)
        if kind <= 2:
            return text()
        if kind == 3:
            return rng.choice([None, True, False, rng.randint(-5, 5000), 1.5])
        if kind in (4, 5):
            return [value(depth + 1) for _ in range(rng.randint(0, 3))] if depth < 3 else text()
        return {text() or "k": value(depth + 1) for _ in range(rng.randint(0, 3))}

    for _ in range(300):
        data = {"spec": {"a": value(0), "b": value(0)}}
        assert _load(yamlout.document(data)) == [data]


def test_layout_reads_like_the_example_fleet():
    text = yamlout.documents(
        [
            (
                {
                    "apiVersion": "aws.fleetctl.io/v1",
                    "kind": "Thing",
                    "metadata": {"name": "DA1275B0", "target": "aws-eu"},
                    "spec": {"attributes": {"serial": "DA1275B0"}, "groups": [], "principals": ["c"]},
                },
                "imported from aws/aws-eu/Thing/DA1275B0 on 2026-11-21T10:00:00Z",
            ),
            ({"kind": "Policy", "spec": {"document": {"Statement": [{"Effect": "Allow"}]}}}, None),
        ]
    )
    assert text == (
        "# imported from aws/aws-eu/Thing/DA1275B0 on 2026-11-21T10:00:00Z\n"
        "apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: DA1275B0, target: aws-eu}\n"
        "spec:\n  attributes: {serial: DA1275B0}\n  groups: []\n  principals: [c]\n---\n"
        "kind: Policy\nspec:\n  document:\n    Statement:\n      - {Effect: Allow}\n"
    )

"""schemas/ is generated from the pydantic models; this fails when they drift. Examples validate against them."""

from __future__ import annotations

import json

import jsonschema

from engine import schema_gen
from engine.manifest.loader import load_path
from tests.conftest import FLEET, ROOT


def test_committed_schemas_match_the_models():
    generated = schema_gen.render_all()
    committed = {str(p.relative_to(ROOT / "schemas")): p.read_text() for p in (ROOT / "schemas").rglob("*.json")}
    assert sorted(committed) == sorted(generated), "run: python -m engine.schema_gen schemas"
    for name, text in generated.items():
        assert committed[name] == text, f"schemas/{name} is stale; run: python -m engine.schema_gen schemas"


def test_every_example_manifest_validates_against_its_schema():
    docs, diags = load_path(FLEET)
    assert not diags
    checked = 0
    for doc in docs:
        group = doc.data["apiVersion"].rsplit("/", 1)[0]
        path = ROOT / "schemas" / group / f"{doc.data['kind']}.json"
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator(schema).validate(doc.data)
        checked += 1
    assert checked >= 10


def test_schema_rejects_unknown_field():
    schema = json.loads((ROOT / "schemas/aws.fleetctl.io/Thing.json").read_text())
    bad = {
        "apiVersion": "aws.fleetctl.io/v1",
        "kind": "Thing",
        "metadata": {"name": "x", "target": "t"},
        "spec": {"thingTyp": "y"},
    }
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    assert errors and "thingTyp" in str(errors[0].message)

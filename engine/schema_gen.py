"""Generate the JSON Schema of every kind into schemas/ (committed; a test fails when they drift).

Each file validates a whole document (apiVersion, kind, metadata, spec), so editors with a YAML language
server can check manifests as they are typed. Regenerate with `python -m engine.schema_gen`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine import kinds
from engine.manifest.schemacheck import SchemaSet
from engine.manifest.types import Metadata

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def document_schema(decl: kinds.KindDecl) -> dict[str, Any]:
    model = decl.spec_model
    spec = model.model_json_schema(ref_template="#/$defs/{model}")
    defs = spec.pop("$defs", {})
    meta = Metadata.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(meta.pop("$defs", {}))
    defs["Metadata"] = meta
    metadata: dict[str, Any] = {"allOf": [{"$ref": "#/$defs/Metadata"}], "required": ["name"]}
    if decl.targeted:  # the engine needs a Target's name: null or "" is no target (fleet.py's envelope check)
        metadata["required"] = ["name", "target"]
        metadata["properties"] = {"target": {"type": "string", "minLength": 1}}
    # a spec whose model requires nothing may be left out (the envelope's spec defaults to {})
    required = ["apiVersion", "kind", "metadata"] + (["spec"] if spec.get("required") else [])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://fleetctl.io/schemas/{decl.group}/{decl.kind}.json",
        "title": f"{decl.api_version} {decl.kind}",
        "description": decl.description or (model.__doc__ or "").strip(),
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            "apiVersion": {"const": decl.api_version},
            "kind": {"const": decl.kind},
            "metadata": metadata,
            "spec": spec,
        },
        "$defs": defs,
    }


def render_all() -> dict[str, str]:
    out: dict[str, str] = {}
    for decl in kinds.all_kinds():
        out[f"{decl.group}/{decl.kind}.json"] = json.dumps(document_schema(decl), indent=2, sort_keys=True) + "\n"
    return out


def published() -> SchemaSet:
    """The published schemas, compiled (`fleetctl validate --schema-only`): schemas/ of the source tree; where
    fleetctl is installed without that folder, this generator's output (identical: tests/test_schemas.py)."""
    if SCHEMA_DIR.is_dir() and any(SCHEMA_DIR.rglob("*.json")):
        return SchemaSet.from_directory(SCHEMA_DIR)
    return SchemaSet.from_texts(render_all())


def write(root: Path) -> list[str]:
    files = render_all()
    for stale in root.rglob("*.json"):
        if str(stale.relative_to(root)) not in files:
            stale.unlink()
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")
    for name in write(root):
        print(name)

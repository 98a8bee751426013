"""The model catalogue: which DeviceModel a DeviceConfig names, built in or declared in the fleet, and its digest.

Why: a DeviceConfig names its model; a model declared in the fleet wins over a built-in one of the same name (to
narrow a firmware match, say). A plan records where the model came from and its digest, so a saved plan is
refused once the model changed (`load_declared`). Checking a model document is engine/providers/device/model.py;
this module caches it per document text.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from engine.manifest.expand import ExpandContext
from engine.manifest.loader import parse_text
from engine.manifest.validation import Manifest
from engine.model import canonical_json

from .model import builtin_models, check_model
from .regmap import DeviceModel
from .tokens import sha256_of


@dataclass(frozen=True)
class ModelRef:
    """A model and where it came from; `digest` changes whenever the model does (a saved plan then is stale)."""

    model: DeviceModel
    digest: str
    file: str | None = None
    index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "index": self.index} if self.file is not None else {}


@functools.cache
def builtin_digest(source: str) -> str:
    """Digest of a built-in model's YAML (`models/<name>.yaml`)."""
    text = resources.files(__package__).joinpath(source).read_text(encoding="utf-8")
    return sha256_of(text.encode("utf-8"))


@functools.lru_cache(maxsize=256)
def _checked(text: str, source: str) -> tuple[DeviceModel | None, tuple[Any, ...]]:
    model, problems = check_model(json.loads(text), source)
    return model, tuple(problems)


def check_document(data: Mapping[str, Any], source: str) -> tuple[DeviceModel | None, str, tuple[Any, ...]]:
    """check_model with a cache: (model or None, digest, problems)."""
    text = canonical_json(data)
    model, problems = _checked(text, source)
    return model, sha256_of(text.encode("utf-8")), problems


def load_declared(path: str, index: int, digest: str) -> DeviceModel:
    """A fleet-declared model from its manifest file (what a plan recorded); raises ValueError when the file no
    longer holds that model."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the DeviceModel manifest {path}: {exc.strerror}") from None
    docs, _ = parse_text(text, path, Path(path).parent)
    doc = next((d for d in docs if d.index == index), None)
    if doc is None:
        raise ValueError(f"{path} no longer holds the DeviceModel the plan was made with")
    model, found, problems = check_document(doc.data, path)
    if model is None or found != digest:
        raise ValueError(f"the DeviceModel in {path} changed since the plan was made")
    return model


def model_for(ctx: ExpandContext, name: str, *path: Any) -> ModelRef | None:
    """The model a DeviceConfig names: declared in the fleet (wins), else built in; None with an error."""
    declared = ctx.index.get(("device.DeviceModel", None, name))
    if declared is not None:
        model, digest, _ = check_document(declared.doc.data, declared.doc.file)
        if model is None:  # its own expand reports why
            return None
        return ModelRef(model, digest, _manifest_path(ctx, declared), declared.doc.index)
    builtins = builtin_models()
    if name in builtins:
        return ModelRef(builtins[name], builtin_digest(builtins[name].source))
    choices = sorted(set(builtins) | {n for (k, _, n) in ctx.index if k == "device.DeviceModel"})
    hint = difflib.get_close_matches(name, choices, n=1)
    if path:
        ctx.error(
            f"unknown device model '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
            *path,
            detail=f"expected a built-in or declared DeviceModel: {', '.join(choices)}",
        )
    return None


def _manifest_path(ctx: ExpandContext, manifest: Manifest) -> str:
    """Absolute path of a manifest's file (Document.file is relative to the fleet's parent folder)."""
    for base in (ctx.root.parent, ctx.root, Path.cwd()):
        candidate = base / manifest.doc.file
        if candidate.is_file():
            return str(candidate.resolve())
    return str(Path(manifest.doc.file).resolve())

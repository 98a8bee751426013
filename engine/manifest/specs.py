"""A manifest's spec as its kind's own model, for the type checker and for the reader.

`Manifest.spec` holds the pydantic model the kind declares (`KindDecl.spec_model`), but one Manifest class
carries every kind, so its static type is `BaseModel`. A kind's expand function asks for its model by name:
`spec_as(m, ThingSpec)` narrows the type with an isinstance check (a manifest of another kind reaching the
function is a bug in the registry and fails loudly here, not as an AttributeError three calls later).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from engine.manifest.validation import Manifest

SpecT = TypeVar("SpecT", bound=BaseModel)


def spec_as(manifest: Manifest, model: type[SpecT]) -> SpecT:
    """`manifest.spec`, checked to be an instance of `model` (the kind's spec model)."""
    spec = manifest.spec
    if not isinstance(spec, model):
        raise TypeError(
            f"{manifest.decl.qualified} '{manifest.name}' has a {type(spec).__name__} spec, "
            f"not the {model.__name__} this code reads"
        )
    return spec

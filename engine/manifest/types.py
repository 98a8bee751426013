"""Field types shared by the kinds: secret references, file references, names, and the metadata envelope.

A secret is never a literal: `{env: NAME}`, `{file: path}` (outside the fleet repository, or an encrypted
file) or `{secretRef: name}`. A literal where a secret belongs is a validation error naming the field.
Certificates are public material, so `{file: certs/x.pem}` inside the repository is the normal case.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue

from engine.pki import PEM_MARKER, looks_like_pem

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
# an IAM role's ARN: path and name in IAM's own character set, so the pattern means the same to pydantic, Python's re
# and an editor's ECMA-262 engine (a `.+` would let a carriage return through in some of them and not in others)
IAM_ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"


class Strict(BaseModel):
    """Base of every spec model: unknown fields are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _reject_literal_secret(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        raise ValueError(
            "a literal value where a secret reference belongs: write {env: NAME}, "
            "{file: path} or {secretRef: name} instead, and keep the value out of the repository"
        )
    return value


# "exactly one of env, file, secretRef" (the model validator below), for the published schema: an editor flags
# `{}` and `{env: A, file: b}` as the engine does (a field written as null counts as absent in both)
_ONE_SOURCE: JsonDict = {
    "oneOf": [{"required": [k], "properties": {k: {"type": "string"}}} for k in ("env", "file", "secretRef")]
}


class SecretRefModel(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_ONE_SOURCE)

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable")
    file: str | None = Field(None, description="file outside the fleet repository, or an encrypted file")
    secretRef: str | None = Field(None, description="name of a secret in the secret store")

    @model_validator(mode="after")
    def _one(self) -> SecretRefModel:
        if sum(v is not None for v in (self.env, self.file, self.secretRef)) != 1:
            raise ValueError("a secret reference has exactly one of: env, file, secretRef")
        return self

    @property
    def source(self) -> str:
        return "env" if self.env else "file" if self.file else "secretRef"

    @property
    def ref(self) -> str:
        return self.env or self.file or self.secretRef or ""


Secret = Annotated[SecretRefModel, BeforeValidator(_reject_literal_secret)]


class FileRef(Strict):
    """Public material read from a file (certificates). Relative to the manifest's folder, then the fleet root."""

    file: str


def _pem_or_file(value: Any) -> Any:
    if isinstance(value, str):
        # inline PEM when it looks like PEM (a `-----BEGIN` line: a substring pre-check, the same as the published
        # schema's pattern, so model and schema agree); the real parse is the kind's, at expand time (engine/pki.py)
        if not looks_like_pem(value):
            raise ValueError("expected {file: path} or an inline PEM block")
        return {"inline": value}
    return value


class PemRef(Strict):
    file: str | None = None
    inline: str | None = None


class _PemJsonSchema:
    """The published schema of a Pem field says what the model takes: an inline PEM text or {file}/{inline}."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {
            "anyOf": [
                {"type": "string", "pattern": PEM_MARKER, "description": "an inline PEM block"},
                handler(core_schema),
            ]
        }


Pem = Annotated[PemRef, BeforeValidator(_pem_or_file), _PemJsonSchema()]

Name = Annotated[str, Field(pattern=NAME_RE)]


class Metadata(Strict):
    name: str = Field(pattern=NAME_RE, description="unique per (group, kind, target)")
    target: str | None = Field(None, description="the Target this resource lives in")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Envelope(Strict):
    apiVersion: str
    kind: str
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)


def looks_like_name(value: str) -> bool:
    return bool(re.match(NAME_RE, value))


Status = Literal["ACTIVE", "INACTIVE", "REVOKED"]

"""The device provider library: register maps of device models, desired values, dumps, diffs and artifacts.

Pure and self-contained (no cloud SDK, no I/O except reading dumps and writing artifacts when asked). The
engine plugs it into its plan under addresses ``device/<model>/<device-id>``:

    model = builtin_models()["springcard-springpark"]
    desired, problems = resolve_desired(model, group_values, device_values, device_id="DA1275B0")
    dump = parse_dump("fleet/dumps/DA1275B0.json", model, expected_id="DA1275B0")
    changes = diff_device(model, desired, dump, recorded)
    artifacts = render(model, "DA1275B0", changes, desired, "out/devices", dump=dump)
"""

from __future__ import annotations

from .artifacts import Artifact, ArtifactKind, render, write_artifacts
from .codecs import CodecError, apply_fields, encode_value
from .crosscheck import CloudContext, Finding, FindingCode, aws_region_of, crosscheck_device
from .diff import Action, ChangeKind, RegisterChange, commit_steps, diff_device, fingerprint_of, summary
from .dumps import DeviceDump, parse_dump, read_dump
from .model import builtin_models, check_model, load_model
from .problems import DumpError, ModelError, Problem, ProblemsError, RenderError
from .regmap import Adapter, DeviceModel, RegType
from .values import DesiredConfig, Resolved, resolve_desired

__all__ = [
    "Action",
    "Adapter",
    "Artifact",
    "ArtifactKind",
    "ChangeKind",
    "CloudContext",
    "CodecError",
    "DesiredConfig",
    "DeviceDump",
    "DeviceModel",
    "DumpError",
    "Finding",
    "FindingCode",
    "ModelError",
    "Problem",
    "ProblemsError",
    "RegType",
    "RegisterChange",
    "RenderError",
    "Resolved",
    "apply_fields",
    "aws_region_of",
    "builtin_models",
    "check_model",
    "commit_steps",
    "crosscheck_device",
    "diff_device",
    "encode_value",
    "fingerprint_of",
    "load_model",
    "parse_dump",
    "read_dump",
    "render",
    "resolve_desired",
    "summary",
    "write_artifacts",
]

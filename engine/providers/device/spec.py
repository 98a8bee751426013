"""device.fleetctl.io/v1 at the manifest boundary: the group, the kind names and the pydantic spec models.

Why a module of its own: the spec models are what `fleetctl validate`, the JSON Schemas and the inventory read;
the rest of the device kinds (tokens, catalogue, inventory, expand; registered in
engine/providers/device/kinds.py) builds on them. The kinds' rules (references, lists, hooks) are declared once,
in kinds.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from engine.manifest.types import Name, Strict

from .tokens import raw_ref

GROUP = "device.fleetctl.io"
KIND = "device.DeviceConfig"


def _reference_well_typed(value: Any) -> Any:
    """Every reference in a value (`{file: ...}`, `{env: ...}`, ...) names its target with a string: a wrongly
    typed one (`{file: {}}`) is a validation error at the value, not a failure when it is resolved."""

    def check(part: Any, where: str) -> None:
        if isinstance(part, Mapping):
            kind = raw_ref(part)
            if kind is not None:
                for key, item in part.items():
                    if not isinstance(item, str) or not item:
                        got = "an empty string" if item == "" else f"a {type(item).__name__}"
                        raise ValueError(f"{where}the {kind} reference's '{key}' must be a non-empty string, got {got}")
                return
            for key, item in part.items():
                check(item, f"{where}{key}: ")
        elif isinstance(part, list):
            for i, item in enumerate(part):
                check(item, f"{where}{i}: ")

    check(value, "")
    return value


Values = dict[str, Annotated[Any, AfterValidator(_reference_well_typed)]]


class Selector(Strict):
    matchLabels: dict[str, str] = Field(
        default_factory=dict,
        description="labels a device must carry (its Thing's metadata.labels, or its devices entry's labels)",
    )


class DeviceEntry(Strict):
    values: Values = Field(default_factory=dict, description="this device's values (override the group's)")
    labels: dict[str, str] = Field(default_factory=dict, description="labels of this device, for selectors")
    certificate: Name | None = Field(
        None,
        description="the AWS Certificate this device presents (cross-checks its "
        "CN; the device is planned after it); default: the only "
        "principal of the Thing named like the device",
    )


class DeviceConfigSpec(Strict):
    model: Name = Field(
        description="a DeviceModel: built in (springcard-springpark, ublox-nina-w13, st-spwf01, "
        "esp32-nvs) or declared in the fleet"
    )
    selector: Selector | None = Field(None, description="configure every known device whose labels match")
    devices: dict[str, DeviceEntry] = Field(
        default_factory=dict, description="devices by identity (serial number, MAC), with their own values"
    )
    values: Values = Field(
        default_factory=dict,
        description="values for every device: register (or field) name → value, raw hex, "
        "or a reference ({env}, {file}, {secretRef}, {certificatePem}, "
        "{awsIotEndpoint}, {azureHubHost})",
    )
    prune: bool = Field(False, description="manage every resettable register: unlisted ones go back to the default")
    allowSharedIndividual: bool = Field(False, description="allow per-device (individual) registers at group level")

    @model_validator(mode="after")
    def _devices_or_selector(self) -> DeviceConfigSpec:
        if self.selector is None and not self.devices:
            raise ValueError("a DeviceConfig needs a selector ({matchLabels: {...}}) or devices ({ID: {values}})")
        return self


class DeviceModelSpec(Strict):
    """The register map of a device model (the library's model format; see engine/providers/device/models)."""

    adapter: Literal["springcore", "ublox-at", "spwf-at", "esp-nvs"]
    match: dict[str, str] = Field(description="{firmware: glob} a dump's firmware must match")
    identity: str = Field(description="the dump field naming the device (SerialNumber, wifi_mac, mac, ...)")
    registers: list[dict[str, Any]] = Field(description="named registers: address, type, size, default, flags")
    slots: list[dict[str, Any]] = Field(default_factory=list, description="certificate and key slots")
    commit: list[dict[str, Any]] = Field(default_factory=list, description="commands appended after the writes")
    roles: dict[str, Any] = Field(default_factory=dict, description="registers the cloud cross-checks read")
    partition: dict[str, Any] = Field(default_factory=dict, description="esp-nvs: {name, size}")
    clean_before_load: bool = False
    byte_order: Literal["big"] = "big"
    apply: dict[str, Any] = Field(default_factory=dict)

"""Keyed lookups for moto's IoT backend at fleet scale (sandbox process only; nothing here runs against AWS).

moto finds IoT resources by scanning: `describe_thing` walks every thing, `describe_certificate` and
`_get_principal` (behind AttachPolicy, AttachThingPrincipal, DetachThingPrincipal, ...) every certificate, and
`list_thing_principals` / `list_principal_things` every principal-thing link. Each call is O(n), so seeding or
fully reading a sandbox of 100,000 linked things is O(n²): hours, where AWS answers each call in constant time.
The sandbox is meant to show fleetctl's cost at the quotas, not moto's.

These patches answer the same questions from keys moto already has — things are stored by ARN and certificates by
id, and both follow from the name or ARN asked for — and from an index of the principal-thing links kept by the
dict that holds them (`LinkIndex`). Anything the keyed path does not find goes to moto's own method, so the
responses and errors stay moto's (a missing thing is still ResourceNotFoundException with moto's message).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

_INSTALLED = False


class LinkIndex(OrderedDict):
    """moto's `principal_things` {(principal ARN, thing name): value}, also indexed by principal and by thing.

    Every way the mapping changes keeps the two indexes (insertion-ordered, as moto's scans return links)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.by_principal: dict[str, dict[tuple[str, str], None]] = {}
        self.by_thing: dict[str, dict[tuple[str, str], None]] = {}
        super().__init__()
        self.update(*args, **kwargs)

    def _add(self, key: tuple[str, str]) -> None:
        self.by_principal.setdefault(key[0], {})[key] = None
        self.by_thing.setdefault(key[1], {})[key] = None

    def _drop(self, key: tuple[str, str]) -> None:
        self.by_principal.get(key[0], {}).pop(key, None)
        self.by_thing.get(key[1], {}).pop(key, None)

    def __setitem__(self, key: tuple[str, str], value: Any) -> None:
        super().__setitem__(key, value)
        self._add(key)

    def __delitem__(self, key: tuple[str, str]) -> None:
        super().__delitem__(key)
        self._drop(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def pop(self, key: tuple[str, str], *default: Any) -> Any:
        if key in self:
            value = super().pop(key)
            self._drop(key)
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self, last: bool = True) -> tuple[Any, Any]:
        key, value = super().popitem(last)
        self._drop(key)
        return key, value

    def setdefault(self, key: tuple[str, str], default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        super().clear()
        self.by_principal.clear()
        self.by_thing.clear()

    def principals_of(self, thing_name: str) -> list[str]:
        return [key[0] for key in self.by_thing.get(thing_name, {})]

    def things_of(self, principal_arn: str) -> list[str]:
        return [key[1] for key in self.by_principal.get(principal_arn, {})]


def install() -> None:
    """Patch moto's IoTBackend (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.iot.models import IoTBackend
    from moto.utilities.utils import get_partition

    original_init = IoTBackend.__init__
    describe_thing, describe_certificate = IoTBackend.describe_thing, IoTBackend.describe_certificate
    get_principal = IoTBackend._get_principal
    list_thing_principals = IoTBackend.list_thing_principals

    def __init__(self: Any, region_name: str, account_id: str) -> None:
        original_init(self, region_name, account_id)
        self.principal_things = LinkIndex(self.principal_things)

    def links(self: Any) -> LinkIndex:
        if not isinstance(self.principal_things, LinkIndex):  # a backend made before install()
            self.principal_things = LinkIndex(self.principal_things)
        return self.principal_things

    def fast_describe_thing(self: Any, thing_name: str) -> Any:
        arn = f"arn:{get_partition(self.region_name)}:iot:{self.region_name}:{self.account_id}:thing/{thing_name}"
        thing = self.things.get(arn)
        if thing is not None and thing.thing_name == thing_name:
            return thing
        return describe_thing(self, thing_name)

    def fast_describe_certificate(self: Any, certificate_id: str) -> Any:
        cert = self.certificates.get(certificate_id)
        return cert if cert is not None else describe_certificate(self, certificate_id)

    def fast_get_principal(self: Any, principal_arn: str) -> Any:
        if ":cert/" in principal_arn:
            cert = self.certificates.get(principal_arn.rsplit("/", 1)[1])
            if cert is not None and cert.arn == principal_arn:
                return cert
        return get_principal(self, principal_arn)

    def fast_list_thing_principals(self: Any, thing_name: str) -> list[str]:
        try:
            fast_describe_thing(self, thing_name)
        except Exception:  # noqa: BLE001 - moto's own error for a missing thing, from its own method
            return list_thing_principals(self, thing_name)
        return links(self).principals_of(thing_name)

    def fast_list_principal_things(self: Any, principal_arn: str) -> list[str]:
        return links(self).things_of(principal_arn)

    for name, method in (
        ("__init__", __init__),
        ("describe_thing", fast_describe_thing),
        ("describe_certificate", fast_describe_certificate),
        ("_get_principal", fast_get_principal),
        ("list_thing_principals", fast_list_thing_principals),
        ("list_principal_things", fast_list_principal_things),
    ):
        setattr(IoTBackend, name, method)  # moto's methods, replaced at run time
    _INSTALLED = True

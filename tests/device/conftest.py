from __future__ import annotations

import pytest

from engine.providers.device import DeviceModel, builtin_models


@pytest.fixture(scope="session")
def models() -> dict[str, DeviceModel]:
    return builtin_models()

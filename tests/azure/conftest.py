"""Fixtures for the Azure tests: one emulator per session (HTTPS on 127.0.0.1), reset before every test, and
the real SDK clients pointed at it through ordinary settings only (connection strings, CA bundle, ARM base URL).

Certificates and keys used by tests are generated at run time (engine.sandbox.certs); none is committed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.iot.deviceprovisioning import DeviceProvisioningClient
from azure.iot.hub import IoTHubRegistryManager
from azure.mgmt.iothub import IotHubClient

from engine.providers.azure.client import ArmTarget, AzureClient
from engine.sandbox.azure import AzureEmulator
from engine.sandbox.certs import Issued, make_ca


@pytest.fixture(scope="session")
def emulator() -> Any:
    with AzureEmulator() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_emulator(emulator: AzureEmulator) -> None:
    emulator.configure(rates={}, page_size=1000, latency_ms=0, job_rate=0, shaping_ms=0)
    emulator.reset()


@pytest.fixture
def client(emulator: AzureEmulator) -> AzureClient:
    arm = ArmTarget(
        emulator.arm_base_url,
        emulator.subscription_id,
        emulator.resource_group,
        emulator.hub_name,
        emulator.credential(),
    )
    return AzureClient(emulator.hub_connection_string, emulator.dps_connection_string, arm, emulator.ca_bundle)


@pytest.fixture
def registry(emulator: AzureEmulator) -> IoTHubRegistryManager:
    """The hub SDK used directly, trusting the emulator's CA through the documented connection setting."""
    manager = IoTHubRegistryManager.from_connection_string(emulator.hub_connection_string)
    manager.protocol.config.connection.verify = emulator.ca_bundle
    return manager


@pytest.fixture
def dps_sdk(emulator: AzureEmulator) -> DeviceProvisioningClient:
    return DeviceProvisioningClient.from_connection_string(
        emulator.dps_connection_string, connection_verify=emulator.ca_pem_path
    )


class FakeCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("test-token", int(time.time()) + 600)


@pytest.fixture
def mgmt_sdk(emulator: AzureEmulator) -> IotHubClient:
    return IotHubClient(
        emulator.credential(),
        emulator.subscription_id,
        base_url=emulator.arm_base_url,
        connection_verify=emulator.ca_bundle,
    )


@pytest.fixture
def root_ca() -> Issued:
    """A CA made for this test only (key in memory); `engine.sandbox.certs` is the project's test PKI."""
    return make_ca("fleetctl test root CA")

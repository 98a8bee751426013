"""The sandbox's HTTP servers on werkzeug (engine/sandbox/wsgi.py): the Azure emulators' HTTPS front and the quota
proxy keep connections alive, answer with exactly the application's headers and bytes, print nothing, and stop fast
and clean however often the tests start them."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

import pytest

from engine.sandbox.azure import AzureEmulator
from engine.sandbox.azure.server import EmulatorServer
from engine.sandbox.quota_proxy import QuotaProxy
from engine.sandbox.wsgi import SandboxServer, wire_response


@pytest.fixture(scope="module")
def emulator():
    with AzureEmulator() as running:
        yield running


def _threads_settle(baseline: int, seconds: float = 3.0) -> int:
    deadline = time.monotonic() + seconds
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    return threading.active_count()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def _https(emulator: AzureEmulator) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=emulator.ca_pem_path)
    return http.client.HTTPSConnection("127.0.0.1", emulator.port, context=context, timeout=10)


def test_emulator_starts_and_stops_fast_without_leaving_threads_or_sockets(capfd: pytest.CaptureFixture[str]) -> None:
    baseline = threading.active_count()
    for _ in range(5):
        started = time.monotonic()
        emulator = AzureEmulator().start()
        port = emulator.port
        connection = _https(emulator)  # a client that keeps its connection open
        connection.request("GET", "/_emulator/stats")
        assert connection.getresponse().read()
        emulator.stop()
        assert time.monotonic() - started < 3
        assert _refused(port)
        assert _threads_settle(baseline) == baseline  # the kept-alive connection's thread ended too
        connection.close()
    assert capfd.readouterr() == ("", "")  # library code prints nothing


def test_emulator_keeps_the_connection_alive_and_sends_the_dispatchers_headers(emulator: AzureEmulator) -> None:
    connection = _https(emulator)
    connection.request("GET", "/_emulator/stats")
    first = connection.getresponse()
    body = first.read()
    sock = connection.sock
    assert first.status == 200 and json.loads(body)["total"] == 0
    assert first.getheader("Server").strip() == "fleetctl-azure-emulator" and first.getheader("Connection") is None
    assert first.getheader("Content-Type") == "application/json; charset=utf-8"
    assert first.getheader("Content-Length") == str(len(body)) and first.getheader("x-ms-request-id")
    connection.request("POST", "/_emulator/reset")
    reset = connection.getresponse()
    assert (reset.status, reset.read()) == (204, b"")
    connection.request("GET", "/twins/d1")  # no SAS: the hub's 401, on the same connection
    unauthorized = connection.getresponse()
    assert unauthorized.status in (400, 401) and json.loads(unauthorized.read())
    assert connection.sock is sock  # one TLS handshake for all three
    connection.request("OPTIONS", "/_emulator/stats")
    assert connection.getresponse().status == 501
    connection.close()


def test_a_chunked_request_body_reaches_the_api(emulator: AzureEmulator) -> None:
    connection = _https(emulator)
    connection.request(
        "POST",
        "/_emulator/config",
        body=iter([b'{"page_size":', b" 7}"]),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    assert emulator.hub_service.page_cap == 7
    response.read()
    connection.request("GET", "/_emulator/stats")  # the connection is still in step
    assert connection.getresponse().status == 200
    connection.close()


def test_head_states_the_blobs_length_without_a_body(emulator: AzureEmulator) -> None:
    url = urlsplit(emulator.container_sas_url())
    connection = _https(emulator)
    connection.request(
        "PUT",
        f"{url.path}/b.txt?{url.query}",
        body=b"0123456789",
        headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": "2024-08-04"},
    )
    assert connection.getresponse().read() == b""
    connection.request("HEAD", f"{url.path}/b.txt?{url.query}", headers={"x-ms-version": "2024-08-04"})
    head = connection.getresponse()
    assert head.status == 200 and head.getheader("Content-Length") == "10" and head.read() == b""
    connection.request("GET", f"{url.path}/b.txt?{url.query}", headers={"x-ms-version": "2024-08-04"})
    assert connection.getresponse().read() == b"0123456789"
    connection.close()


def test_a_failing_dispatcher_is_a_500_logged_not_printed(tmp_path, capfd, caplog) -> None:
    from engine.sandbox.azure.certs import write_tls_files

    tls = write_tls_files(tmp_path)

    def broken(request):
        raise RuntimeError("boom")

    server = EmulatorServer(("127.0.0.1", 0), broken, cert_file=str(tls.cert_pem), key_file=str(tls.key_pem))
    server.start("broken")
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_pem))
        connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
        with caplog.at_level("DEBUG", logger="engine.sandbox.wsgi"):
            connection.request("GET", "/anything?sig=secret-signature")
            response = connection.getresponse()
            assert response.status == 500 and response.read()
        connection.close()
    finally:
        server.stop()
    assert "boom" in caplog.text and "secret-signature" not in caplog.text and "sig=(sensitive)" in caplog.text
    assert capfd.readouterr() == ("", "")


def test_a_broken_tls_client_does_not_stall_the_server(emulator: AzureEmulator) -> None:
    """The handshake runs in the connection's thread: a client that connects and says nothing blocks no one."""
    silent = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
    garbage = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
    garbage.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP to the TLS port
    try:
        connection = _https(emulator)
        connection.request("GET", "/_emulator/stats")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        silent.close()
        garbage.close()


def test_a_taken_port_raises_and_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    app = lambda environ, start_response: wire_response(200, [], b"ok")(environ, start_response)  # noqa: E731
    first = SandboxServer("127.0.0.1", 0, app).start("first")
    try:
        with pytest.raises(OSError):
            SandboxServer("127.0.0.1", first.port, app)
    finally:
        first.stop()
    with pytest.raises(ValueError, match="loopback only"):
        SandboxServer("0.0.0.0", 0, app)
    assert capfd.readouterr() == ("", "")


def test_quota_proxy_starts_and_stops_fast_and_keeps_connections_alive(capfd: pytest.CaptureFixture[str]) -> None:
    baseline = threading.active_count()
    for _ in range(5):
        started = time.monotonic()
        proxy = QuotaProxy("http://127.0.0.1:9", latency_ms=(0, 0)).start()  # the control routes need no moto
        port = urlsplit(proxy.endpoint_url).port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_proxy/stats")
        stats = connection.getresponse()
        assert stats.status == 200 and json.loads(stats.read())["total"] == 0
        assert stats.getheader("Content-Type") == "application/json" and stats.getheader("Connection") is None
        sock = connection.sock
        connection.request("POST", "/_proxy/reset")
        assert connection.getresponse().read() == b"{}"
        connection.request("HEAD", "/things")
        assert connection.getresponse().status == 501  # AWS IoT's REST API has no HEAD, as before
        assert connection.sock is sock
        proxy.stop()
        assert time.monotonic() - started < 3
        assert _refused(port)
        assert _threads_settle(baseline) == baseline
        connection.close()
    assert capfd.readouterr() == ("", "")


def test_expect_100_continue_is_answered_once(emulator: AzureEmulator) -> None:
    context = ssl.create_default_context(cafile=emulator.ca_pem_path)
    raw = context.wrap_socket(
        socket.create_connection(("127.0.0.1", emulator.port), timeout=10), server_hostname="127.0.0.1"
    )
    body = b'{"page_size": 1000}'
    raw.sendall(
        b"POST /_emulator/config HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    interim = raw.recv(4096)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    raw.sendall(body)
    final = b""
    while b"\r\n\r\n" not in final:
        final += raw.recv(65536)
    assert final.startswith(b"HTTP/1.1 200 ")
    raw.close()

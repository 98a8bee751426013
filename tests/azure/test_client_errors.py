"""A service answer that is not JSON reaches the error whole (whitespace folded), never cut to a length."""

from __future__ import annotations

from types import SimpleNamespace

from azure.core.exceptions import HttpResponseError

from engine.providers.azure.client import translate


def test_a_long_non_json_body_is_kept_whole() -> None:
    body = "<html>\n  <body>" + "gateway said no; " * 60 + "end of page</body>\n</html>"
    response = SimpleNamespace(status_code=502, reason="Bad Gateway", headers={}, text=body)
    exc = HttpResponseError(message="bad gateway", response=response)
    exc.response = response
    err = translate(exc)
    assert "end of page" in str(err) and len(str(err)) > 500
    assert "\n" not in str(err)

"""Tests of the Prism harness itself, with hand-made requests instead of the bot.

Why: the contract test is only worth something if a spec-invalid request really shows up
in ``violations()`` and a valid one does not; these pin that down, including the
discriminator fix in ``strict_spec`` without which Prism lets a text message with no
``text`` through.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .prism import INSTALL_HINT, PrismMock, find_prism, load_spec, spec_path, strict_spec

TOKEN = {"Authorization": "Bearer test-channel-token"}
RETRY_KEY = "123e4567-e89b-12d3-a456-426614174000"


def _require_prism() -> None:
    """Skip loudly (stderr too, since -q hides skip reasons) when Prism is not installed."""
    if find_prism() is None:
        print(f"\n*** {INSTALL_HINT} ***", file=sys.stderr)
        pytest.skip(INSTALL_HINT)


@pytest.fixture(scope="module")
def prism() -> Iterator[PrismMock]:
    """One Prism for the module: starting it and compiling validators takes seconds."""
    _require_prism()
    with PrismMock() as mock:
        yield mock


@pytest.fixture
def mock(prism: PrismMock) -> PrismMock:
    """The shared Prism with its records cleared, so each test sees only its requests."""
    prism.reset()
    return prism


def call(
    mock: PrismMock,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send one request to the mock the way an HTTP client would; return (status, body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(mock.url + path, data=data, method=method)
    for name, value in {**TOKEN, **(headers or {})}.items():
        if value:
            req.add_header(name, value)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def reply(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", "messages": messages}


# -- pure Python: no Prism needed ---------------------------------------------------------


def test_spec_path_resolves_beside_repo_or_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LINE_OPENAPI_DIR", raising=False)
    assert spec_path().parts[-3:] == ("shared", "line-openapi", "messaging-api.yml")
    monkeypatch.setenv("LINE_OPENAPI_DIR", str(tmp_path))
    assert spec_path() == tmp_path / "messaging-api.yml"


def test_find_prism_honours_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_BIN", "/opt/prism/bin/prism")
    assert find_prism() == "/opt/prism/bin/prism"


def test_strict_spec_enforces_discriminator_mapping() -> None:
    spec = load_spec(spec_path())
    schemas = strict_spec(spec)["components"]["schemas"]
    message = schemas["Message"]
    assert "text" in message["properties"]["type"]["enum"]
    rules = {r["if"]["properties"]["type"]["const"]: r["then"]["$ref"] for r in message["allOf"][1:]}
    assert rules["text"] == "#/components/schemas/TextMessage"
    assert {"$ref": "#/components/schemas/Message__base"} in schemas["TextMessage"]["allOf"]
    assert "discriminator" not in schemas["Message__base"]
    assert "discriminator" in spec["components"]["schemas"]["Message"], "input left intact"


# -- against a running Prism ----------------------------------------------------------------

pytestmark = pytest.mark.contract


def test_valid_reply_has_no_violation(mock: PrismMock) -> None:
    status, body = call(mock, "POST", "/v2/bot/message/reply", reply([{"type": "text", "text": "hi"}]))
    assert status == 200, body
    assert "sentMessages" in json.loads(body)
    assert mock.violations() == []
    assert mock.requests() == ["POST /v2/bot/message/reply"]
    assert mock.requests_seen() == 1


def test_text_message_without_text_is_a_violation(mock: PrismMock) -> None:
    status, _ = call(mock, "POST", "/v2/bot/message/reply", reply([{"type": "text"}]))
    assert status == 400
    found = mock.violations()
    assert found == [
        "POST /v2/bot/message/reply: Request body property messages.0 must have required property 'text'"
    ], mock.log_tail()


def test_unknown_message_type_is_a_violation(mock: PrismMock) -> None:
    call(mock, "POST", "/v2/bot/message/reply", reply([{"type": "txt", "text": "hi"}]))
    (found,) = mock.violations()
    assert "messages.0.type must be equal to one of the allowed values" in found


def test_six_messages_is_a_violation(mock: PrismMock) -> None:
    six = [{"type": "text", "text": str(i)} for i in range(6)]
    status, _ = call(mock, "POST", "/v2/bot/message/reply", reply(six))
    assert status == 400
    assert any("must NOT have more than 5 items" in v for v in mock.violations())


def test_nested_flex_violation_is_reported(mock: PrismMock) -> None:
    flex = {
        "type": "flex",
        "altText": "menu",
        "contents": {
            "type": "bubble",
            "body": {"type": "box", "layout": "vertical", "contents": [{"type": "button"}]},
        },
    }
    call(mock, "POST", "/v2/bot/message/reply", reply([flex]))
    assert mock.violations() == [
        "POST /v2/bot/message/reply: Request body property "
        "messages.0.contents.body.contents.0 must have required property 'action'"
    ]


def test_push_with_retry_key(mock: PrismMock) -> None:
    push = {"to": "U4af4980629d6d3d1b1ab1f0b25f77c0d", "messages": [{"type": "text", "text": "x"}]}
    status, _ = call(mock, "POST", "/v2/bot/message/push", push, {"X-Line-Retry-Key": RETRY_KEY})
    assert status == 200
    assert mock.violations() == []
    call(mock, "POST", "/v2/bot/message/push", push, {"X-Line-Retry-Key": "retry-1"})
    (found,) = mock.violations()
    assert 'x-line-retry-key must match format "uuid"' in found


def test_missing_authorization_is_a_violation(mock: PrismMock) -> None:
    body = reply([{"type": "text", "text": "hi"}])
    status, _ = call(mock, "POST", "/v2/bot/message/reply", body, {"Authorization": ""})
    assert status == 401
    assert mock.violations() == ["POST /v2/bot/message/reply: Invalid security scheme used"]


def test_content_endpoint_is_served_on_the_same_base_url(mock: PrismMock) -> None:
    """The spec puts it on api-data.line.me; Prism serves it beside api.line.me paths."""
    status, _ = call(mock, "GET", "/v2/bot/message/325708/content")
    assert status == 200
    assert mock.violations() == []


def test_endpoint_missing_from_spec_is_a_violation(mock: PrismMock) -> None:
    status, _ = call(mock, "GET", "/v2/bot/no-such-endpoint")
    assert status == 404
    (found,) = mock.violations()
    assert found.startswith("GET /v2/bot/no-such-endpoint: ")
    assert "NO_PATH_MATCHED_ERROR" in found
    assert mock.requests_seen() == 1, "sync probes are not counted"

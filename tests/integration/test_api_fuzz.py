"""Fuzz the running product's API from its own /openapi.json: schemathesis (``--checks all``)
finds no 5xx, no undocumented answer, no schema-valid article refused and no invalid one taken;
the same generated payloads, signed, go through the webhook; and over real HTTP every answer says
nosniff, names no server, and a body that trickles in is cut off."""
from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from apps.web.auth import sign
from tests.support.product import Product
from tests.support.stack import SITE_TOML

pytestmark = pytest.mark.integration
TOKEN = "fuzz-api-token-0123456789abcdefghij"
SECRET = "fuzz-webhook-secret-0123456789abcdef"
BODY_TIMEOUT_S = 2
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# What the webhook may answer (its documented codes): never a 5xx.
WEBHOOK_ANSWERS = {202, 400, 401, 408, 409, 413, 422}


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "site.toml").write_text(SITE_TOML)
    running = Product(root, {"SYNDICATION_CONFIG": str(root / "site.toml"), "SYNDICATION_API_TOKENS": TOKEN,
                             "SYNDICATION_WEBHOOK_SECRET": SECRET,
                             "SYNDICATION_HTTP_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)}).start(timeout=180)
    try:
        yield running
    finally:
        running.terminate()


def schemathesis_run(product: Product, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCHEMATHESIS), "run", f"{product.base}/openapi.json", "--checks", "all", "--no-color",
         "--request-timeout", "30", "--output-sanitize", "false", *options],
        capture_output=True, text=True, timeout=240, cwd=product.root)


def test_schemathesis_finds_nothing_with_a_valid_token_or_without_one(product: Product) -> None:
    # When schemathesis runs every check on every operation, in every phase, with the API token
    # (its ignored_auth check also tries each secured operation without it and with a wrong one),
    # and then generates requests with no credentials at all. (Its coverage phase sends about a
    # thousand boundary cases whatever the example count: the count bounds the rest.)
    with_token = schemathesis_run(product, "--max-examples", "5", "-H", f"Authorization: Bearer {TOKEN}")
    without = schemathesis_run(product, "--max-examples", "5", "--phases", "fuzzing")
    # Then neither finds a failure
    for run in (with_token, without):
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "4 API operations" in run.stdout or "Selected: 4/4" in run.stdout, run.stdout[-3000:]


def webhook_cases(product: Product, mode: GenerationMode) -> object:
    schema = schemathesis.openapi.from_url(f"{product.base}/openapi.json")
    return schema["/api/v1/webhook"]["POST"].as_strategy(generation_mode=mode)


class Signer:
    """Signs bodies as a CMS does. Hypothesis sends some bodies more than once (the smallest
    example, shrinking): each is signed at another second of the 300 s window, counted back from
    when the test started, so that only the test's own deliberate replays are replays."""

    def __init__(self) -> None:
        self.started, self.count = int(time.time()), itertools.count()

    def post(self, product: Product, body: bytes) -> tuple[httpx.Response, dict[str, str]]:
        signed_at = self.started - next(self.count) % 200
        headers = {"X-Syndication-Signature": sign(SECRET, signed_at, body), "Content-Type": "application/json"}
        return httpx.post(f"{product.base}/api/v1/webhook", content=body, headers=headers, timeout=30), headers


def body_bytes(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode() if body is not None and type(body).__name__ != "NotSet" else b""


def follows(schema: jsonschema_rs.Validator, body: bytes) -> bool:
    """Whether ``body`` is JSON the published request schema allows."""
    try:
        return schema.is_valid(json.loads(body))
    except ValueError:
        return False


def test_the_generated_payloads_signed_through_the_webhook(product: Product) -> None:
    # Given the payloads schemathesis makes from the webhook's schema, valid and invalid, each signed
    signer = Signer()
    document = httpx.get(f"{product.base}/openapi.json", timeout=30).json()
    schema = jsonschema_rs.validator_for(
        document["paths"]["/api/v1/webhook"]["post"]["requestBody"]["content"]["application/json"]["schema"],
        validate_formats=True)
    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(case=webhook_cases(product, GenerationMode.POSITIVE))
    def valid(case: schemathesis.Case) -> None:
        body = json.dumps(case.body).encode()
        answer, headers = signer.post(product, body)
        # Then a schema-valid batch is taken, and the same signed request a second time is a replay
        assert answer.status_code == 202, (answer.status_code, answer.text[:500], body[:500])
        again = httpx.post(f"{product.base}/api/v1/webhook", content=body, headers=headers, timeout=30)
        assert again.status_code == 409 and "already accepted" in again.json()["detail"]

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(case=webhook_cases(product, GenerationMode.NEGATIVE))
    def invalid(case: schemathesis.Case) -> None:
        # (A negative case may break a header rather than the body: the document decides which.)
        body = body_bytes(case.body)
        answer, _ = signer.post(product, body)
        # Then a body outside the schema is refused with a 400 or 422 that says why, one inside taken
        if follows(schema, body):
            assert answer.status_code == 202, (answer.status_code, answer.text[:500], body[:500])
        else:
            assert answer.status_code in (400, 422), (answer.status_code, answer.text[:500], body[:500])
            assert answer.json()["detail"]

    valid()
    invalid()


def test_over_real_http_answers_say_nosniff_and_name_no_server(product: Product) -> None:
    answers = [httpx.get(f"{product.base}{path}", timeout=30) for path in ("/", "/healthz", "/openapi.json", "/nope")]
    answers.append(httpx.post(f"{product.base}/api/v1/articles", json={}, timeout=30))
    assert [a.headers.get("x-content-type-options") for a in answers] == ["nosniff"] * len(answers)
    assert [a.headers.get("server") for a in answers] == [None] * len(answers)


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(product: Product) -> None:
    # Given a client with a valid token that announces 1000 bytes and sends one every half second
    with socket.create_connection(("127.0.0.1", product.port), timeout=30) as conn:
        conn.sendall(f"POST /api/v1/articles HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode())
        conn.setblocking(False)
        answer = b""
        for _ in range(120):  # a minute at most: far longer than the body timeout
            try:
                conn.sendall(b" ")
            except OSError:
                break  # the server closed the connection
            time.sleep(0.5)
            try:
                answer += conn.recv(65536)
            except BlockingIOError:
                continue
            if answer:
                break
    # Then the server answers 408 long before the body could be complete, and says why
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert f"not received within {BODY_TIMEOUT_S} s".encode() in answer

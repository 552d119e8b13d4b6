"""Signed webhooks: a CMS's HMAC signature is checked against the body, within a replay window."""
from __future__ import annotations

import pytest
from fastapi import HTTPException

from apps.web.auth import sign, token_matches, verify_signature

SECRET = "whsec-0123456789"
BODY = b'{"id": "a1"}'
NOW = 1_780_000_000


def test_a_fresh_signature_of_the_exact_body_is_accepted() -> None:
    verify_signature(sign(SECRET, NOW, BODY), BODY, SECRET, tolerance_s=300, now=NOW + 10)


@pytest.mark.parametrize("header, body, now, reason", [
    (None, BODY, NOW, "missing"),
    (sign(SECRET, NOW, BODY), BODY + b" ", NOW, "does not match"),          # body changed in transit
    (sign("other-secret", NOW, BODY), BODY, NOW, "does not match"),         # signed with another key
    (sign(SECRET, NOW, BODY), BODY, NOW + 301, "replay window"),            # captured and replayed later
    (sign(SECRET, NOW + 301, BODY), BODY, NOW, "replay window"),            # from the future
    ("t=yesterday,v1=abc", BODY, NOW, "unix seconds"),
    ("v1=abc", BODY, NOW, "unix seconds"),
])
def test_anything_else_is_refused_401_with_the_reason(header, body, now, reason) -> None:
    with pytest.raises(HTTPException) as refused:
        verify_signature(header, body, SECRET, tolerance_s=300, now=now)
    assert refused.value.status_code == 401 and reason in refused.value.detail


def test_without_a_configured_secret_no_signature_is_good_enough() -> None:
    with pytest.raises(HTTPException) as refused:
        verify_signature(sign("", NOW, BODY), BODY, None, tolerance_s=300, now=NOW)
    assert refused.value.status_code == 401


def test_tokens_match_only_exactly() -> None:
    assert token_matches("tok-a", ["tok-b", "tok-a"])
    assert not token_matches("tok-", ["tok-a"])
    assert not token_matches("tok-a", [])

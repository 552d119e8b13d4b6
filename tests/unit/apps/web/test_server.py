"""Start-up refuses guessable tokens, and uvicorn is given limits and no banner."""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from apps.web.server import MIN_TOKEN_LENGTH, check_tokens, server_config
from config import Settings
from syndication.errors import ConfigError

GOOD = "k" * MIN_TOKEN_LENGTH


@pytest.mark.parametrize(("setting", "values"), [
    ("SYNDICATION_API_TOKENS", {"api_tokens": [SecretStr(GOOD), SecretStr("short-token-123")]}),
    ("SYNDICATION_OPS_TOKENS", {"ops_tokens": [SecretStr("k" * (MIN_TOKEN_LENGTH - 1))]}),
])
def test_a_token_under_32_characters_stops_the_start_naming_the_setting(setting: str, values: dict) -> None:
    with pytest.raises(ConfigError) as refused:
        check_tokens(Settings(**values))
    assert setting in str(refused.value) and "at least 32" in str(refused.value)
    assert "short-token-123" not in str(refused.value)  # the message never echoes the token


def test_tokens_of_32_characters_or_more_start() -> None:
    check_tokens(Settings(api_tokens=[SecretStr(GOOD)], ops_tokens=[SecretStr(GOOD + "x")]))


def test_uvicorn_gets_the_connection_cap_keep_alive_and_no_server_header() -> None:
    settings = Settings(http_max_connections=64, http_keep_alive_s=3)
    config = server_config(object(), settings, host="127.0.0.1", port=0)
    assert (config.limit_concurrency, config.timeout_keep_alive, config.server_header) == (64, 3, False)

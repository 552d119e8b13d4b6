"""How the HTTP service is served: the start-up checks and uvicorn's limits, from the settings.

>>> check_tokens(settings)  # ConfigError naming the setting when a token is too short
>>> uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=8000)).run()
"""
from __future__ import annotations

from typing import Any

import uvicorn

from config import Settings
from syndication.errors import ConfigError

# A token is a password nobody types: 32 characters of a random string (``secrets.token_urlsafe(24)``)
# hold 192 bits, beyond any guessing, throttled or not.
MIN_TOKEN_LENGTH = 32


def check_tokens(settings: Settings) -> None:
    """Raise ``ConfigError`` naming the setting when an API or ops token is shorter than 32 characters."""
    for name, tokens in (("SYNDICATION_API_TOKENS", settings.api_tokens),
                         ("SYNDICATION_OPS_TOKENS", settings.ops_tokens)):
        for n, token in enumerate(tokens, start=1):
            length = len(token.get_secret_value())
            if length < MIN_TOKEN_LENGTH:
                raise ConfigError(f"{name}: token {n} has {length} characters; at least {MIN_TOKEN_LENGTH} are "
                                  "required (make one with: python -c 'import secrets; "
                                  "print(secrets.token_urlsafe(32))')")


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's config for ``app``: no ``server`` banner, a cap on connections served at once,
    and a short keep-alive. (The body timeout is the app's own: ``apps.web.limits``.)
    ``log_config=None``: uvicorn's lines and tracebacks go through our redacting handler."""
    return uvicorn.Config(app, server_header=False, limit_concurrency=settings.http_max_connections,
                          timeout_keep_alive=settings.http_keep_alive_s, log_config=None, **options)

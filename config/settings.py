"""The one environment-settings model (prefix ``SYNDICATION_``, nested delimiter ``__``)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE_DIR / "syndication.toml"
X_API_BASE_URL = "https://api.x.com"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class XSettings(BaseModel):
    """Credentials for the X channel; the channel is on when all four are set."""

    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    staff_list_id: str | None = None
    api_base_url: str = X_API_BASE_URL

    @property
    def enabled(self) -> bool:
        return all((self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret))


class Settings(BaseSettings):
    """Everything that varies between deployments.

    >>> s = Settings(data_dir="/srv/syndication")
    >>> s.resolved_feeds_dir
    PosixPath('/srv/syndication/feeds')
    """

    model_config = SettingsConfigDict(env_prefix="SYNDICATION_", env_nested_delimiter="__", extra="ignore")

    config: Path = DEFAULT_CONFIG
    data_dir: Path = Path("var")
    database_url: str | None = None
    feeds_dir: Path | None = None
    broker_url: str | None = None
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    ops_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    webhook_secret: SecretStr | None = None
    webhook_tolerance_s: int = 300
    # Signs the /ops session cookie. Unset: a key generated once and kept in the database, which
    # every API process and every restart shares. Setting or changing it logs every operator out.
    ops_session_secret: SecretStr | None = None
    ops_session_ttl_s: int = Field(12 * 3600, gt=0)
    # After this many failed ops logins from one client within the window: 429 until it ends.
    ops_login_max_failures: int = Field(10, gt=0)
    ops_login_window_s: int = Field(600, gt=0)
    # ...and after this many from all clients together within the window, 429 for every login
    # and ops bearer request until it ends: a guesser spread over many addresses is stopped too.
    ops_login_max_failures_total: int = Field(100, gt=0)
    # An ops session ends after this long without a request (and at ops_session_ttl_s anyway).
    ops_session_idle_s: int = Field(1800, gt=0)
    # The address readers and operators use, e.g. https://news.example.org behind a TLS proxy.
    # When https: the ops cookie is always Secure and __Host- prefixed, and the Origin of every
    # ops form post must be this one. Unset: both follow the request (fine on plain local http).
    public_url: str | None = None
    # /docs and /redoc (a page of the API built from /openapi.json); off unless asked for.
    api_docs: bool = False
    max_body_bytes: int = 4 * 1024 * 1024
    # uvicorn: connections served at once (more get 503), idle keep-alive, and the longest a
    # client may take to send a request body (then 408: a slow body holds no connection).
    http_max_connections: int = Field(1000, ge=1)
    http_keep_alive_s: int = Field(5, ge=1)
    http_body_timeout_s: float = Field(30.0, gt=0)
    # HTTP processes `syndication run` starts on its one port (its --api-workers overrides it).
    api_workers: int = Field(1, ge=1)
    render_window_ms: int = 50
    sweep_interval_s: float = 2.0
    sweep_grace_s: float = 5.0
    # Back-off bases, here so that tests (and impatient deployments) need not wait on the defaults:
    # a failed delivery waits base * 2**(attempt-1), with jitter, at most the cap; an event handed
    # to the broker but not processed is sent again after redispatch_after_s, then twice as long...
    delivery_backoff_base_s: float = Field(default=1.0, gt=0)
    delivery_backoff_cap_s: float = Field(default=300.0, gt=0)
    redispatch_after_s: float = Field(default=60.0, gt=0)
    visibility_timeout_s: int = 3600
    log_json: bool = False
    log_level: str = "INFO"
    x: XSettings = Field(default_factory=XSettings)

    _split_tokens = field_validator("api_tokens", "ops_tokens", mode="before")(_split_csv)

    @field_validator("public_url")
    @classmethod
    def _public_origin(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment:
            raise ValueError("must be an origin such as https://news.example.org (no path)")
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.resolve()

    @property
    def resolved_feeds_dir(self) -> Path:
        return (self.feeds_dir or self.resolved_data_dir / "feeds").resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'syndication.db'}"

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        values = [t.get_secret_value() for t in (*self.api_tokens, *self.ops_tokens)]
        for secret in (self.webhook_secret, self.ops_session_secret, self.x.consumer_key, self.x.consumer_secret,
                       self.x.access_token, self.x.access_token_secret):
            if secret is not None:
                values.append(secret.get_secret_value())
        return [v for v in values if v]

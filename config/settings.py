"""The one environment-settings model (prefix ``SYNDICATION_``, nested delimiter ``__``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE_DIR / "syndication.toml"
ENV_PREFIX = "SYNDICATION_"
FILE_SUFFIX = "_FILE"


def _url_password(url: str | None) -> str | None:
    """The password of ``scheme://user:password@host/...``, or None."""
    try:
        return urlsplit(url).password if url else None
    except ValueError:  # not a URL we can read: the log redactor's URL pattern still applies
        return None


def _with_password(url: str, password: SecretStr | None) -> str:
    """``url`` with ``password`` put in, unless it is unset or the URL already has one."""
    parts = urlsplit(url)
    if password is None or not password.get_secret_value() or parts.password is not None or not parts.username:
        return url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}:{quote(password.get_secret_value(), safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _AccountsFromEnv(PydanticBaseSettingsSource):
    """``SYNDICATION_<ACCOUNT>__<FIELD>`` variables whose ``<ACCOUNT>`` is no field of ``Settings``:
    the settings of channel accounts (``SYNDICATION_X__ACCESS_TOKEN``, ``SYNDICATION_X_SPORT__...``),
    gathered as text into ``Settings.accounts``. The channel registry validates each against its
    kind's settings model; this layer does not know the kinds."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything happens in __call__

    def __call__(self) -> dict[str, Any]:
        accounts: dict[str, dict[str, str]] = {}
        for key, value in os.environ.items():
            name, sep, field = key.upper().removeprefix(ENV_PREFIX).partition("__")
            if not key.upper().startswith(ENV_PREFIX) or not sep or not name or not field:
                continue
            if name.lower() in self.settings_cls.model_fields or field.endswith(FILE_SUFFIX):
                continue  # a setting of Settings itself, or a secret file (``SecretFiles``)
            accounts.setdefault(name.lower(), {})[field.lower()] = value
        return {"accounts": accounts} if accounts else {}



class SecretFiles(PydanticBaseSettingsSource):
    """``SYNDICATION_<NAME>_FILE=/run/secrets/x`` sets ``<NAME>`` from that file (Docker secrets).

    Works for every setting, nested ones too (``SYNDICATION_X__CONSUMER_KEY_FILE``). The file's
    text is stripped of surrounding whitespace; an empty file leaves the setting unset. Setting
    both ``<NAME>`` and ``<NAME>_FILE`` is refused, since which one wins would be a guess.
    """

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        upper = {name.upper(): value for name, value in os.environ.items()}
        for name, path in sorted(upper.items()):
            if not (name.startswith(ENV_PREFIX) and name.endswith(FILE_SUFFIX)):
                continue
            target = name.removesuffix(FILE_SUFFIX)
            key = [part.lower() for part in target.removeprefix(ENV_PREFIX).split("__")]
            if key[0] not in self.settings_cls.model_fields:
                if len(key) != 2:
                    continue  # not ours (SYNDICATION_TEST_..., a typo is reported by no one else either)
                key = ["accounts", *key]  # a channel account's field (SYNDICATION_X__CONSUMER_KEY_FILE)
            if upper.get(target):
                raise ValueError(f"{target} and {name} are both set: set one of them")
            try:
                text = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
            if not text:
                continue
            node = values
            for part in key[:-1]:
                node = node.setdefault(part, {})
            node[key[-1]] = text
        return values


class Settings(BaseSettings):
    """Everything that varies between deployments.

    >>> s = Settings(data_dir="/srv/syndication")
    >>> s.resolved_feeds_dir
    PosixPath('/srv/syndication/feeds')
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    config: Path = DEFAULT_CONFIG
    data_dir: Path = Path("var")
    database_url: str | None = None
    # Put into database_url when it has none, so that the URL is not a secret and the password
    # can be the very file the database server reads (docker-compose: POSTGRES_PASSWORD_FILE).
    database_password: SecretStr | None = None
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
    # A feed's render lock: one render of a feed at a time. A worker killed mid-render (or a
    # broker restarted before the release reached it) holds that feed's renders back this long.
    render_lock_s: float = Field(default=15.0, gt=0)
    sweep_interval_s: float = 2.0
    sweep_grace_s: float = 5.0
    # Back-off bases, here so that tests (and impatient deployments) need not wait on the defaults:
    # a failed delivery waits base * 2**(attempt-1), with jitter, at most the cap; an event or a
    # delivery handed to the broker (by the API, a worker or the sweeper) but not processed is sent
    # again after redispatch_after_s, then twice as long...
    delivery_backoff_base_s: float = Field(default=1.0, gt=0)
    delivery_backoff_cap_s: float = Field(default=300.0, gt=0)
    redispatch_after_s: float = Field(default=60.0, gt=0)
    # WebSub pings (the hub ping outbox): a hub answering 5xx or timing out is tried again after
    # base * 2**(attempt-1) seconds (±20%), at most the cap, for at most hub_max_attempts attempts.
    hub_backoff_base_s: float = Field(default=2.0, gt=0)
    hub_backoff_cap_s: float = Field(default=600.0, gt=0)
    hub_max_attempts: int = Field(default=12, ge=1)
    hub_timeout_s: float = Field(default=5.0, gt=0)
    visibility_timeout_s: int = 3600
    log_json: bool = False
    log_level: str = "INFO"
    # Each channel account's settings, by account name (``x``, ``webhook``, ``x_sport``...), as
    # given: SYNDICATION_<ACCOUNT>__<FIELD>, or Settings(x={...}). The channel registry reads them.
    accounts: dict[str, dict[str, Any]] = Field(default_factory=dict)

    _split_tokens = field_validator("api_tokens", "ops_tokens", mode="before")(_split_csv)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _AccountsFromEnv(settings_cls), SecretFiles(settings_cls),
                dotenv_settings, file_secret_settings)

    @model_validator(mode="before")
    @classmethod
    def _accounts_by_name(cls, data: Any) -> Any:
        """``Settings(x={...})`` or ``Settings(x=XSettings(...))`` is the account ``x``."""
        if not isinstance(data, dict):
            return data
        named = {k: v for k, v in data.items() if k not in cls.model_fields and isinstance(v, (dict, BaseModel))}
        if not named:
            return data
        accounts = dict(data.get("accounts") or {})
        for name, value in named.items():
            given = value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value
            accounts[name] = {**accounts.get(name, {}), **given}
        return {**{k: v for k, v in data.items() if k not in named}, "accounts": accounts}
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
            return _with_password(self.database_url, self.database_password)
        return f"sqlite:///{self.resolved_data_dir / 'syndication.db'}"

    def secrets(self) -> list[str]:
        """Every secret value of these settings outside ``accounts``, for log redaction: tokens,
        keys, and the passwords in the database and broker URLs. The accounts' secrets are their
        kinds' to declare: ``syndication.channels.registry.secrets_of`` gives both."""
        values = [t.get_secret_value() for t in (*self.api_tokens, *self.ops_tokens)]
        for secret in (self.webhook_secret, self.ops_session_secret, self.database_password):
            if secret is not None:
                values.append(secret.get_secret_value())
        values += [_url_password(url) or "" for url in (self.database_url, self.broker_url)]
        return [v for v in values if v]

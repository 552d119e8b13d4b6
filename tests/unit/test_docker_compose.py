"""docker-compose.yml, checked against the package, since no Docker engine runs here.

Every service's command must name something this package really has (a registered
`syndication` command, the Celery app and its queues, the flower plugin), redis must keep
an append-only file, and every SYNDICATION_* variable must be a field of ``config.Settings``.

The file is read with PyYAML (a test extra). Where PyYAML is missing, it is read with
``_SubsetYaml`` below: block mappings and lists, flow lists of scalars, quoted and plain
scalars, anchors, aliases and ``<<`` merges, and an error on anything else, so the
compose file cannot quietly grow syntax the fallback would misread; a test checks that
the two agree on this file.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import celery
import pytest
from celery.bin.celery import celery as celery_cli
from pydantic import BaseModel
from typer.testing import CliRunner

from config import Settings, SiteConfig
from syndication.channels.registry import CHANNEL_KINDS, channel_names
from apps.cli.app import app as cli_app

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
SERVICES = ("redis", "postgres", "api", "feeds", "social", "beat", "flower")
# What an operator must export before `docker compose up` (the `${NAME:?...}` variables).
REQUIRED_VARIABLES = {"FLOWER_USER": "ops", "FLOWER_PASSWORD": "secret"}
# What the operator's secret files hold, in these tests (mounted at /run/secrets/<name>).
TOKENS = ["token-a-0123456789abcdef0123456789", "token-b-0123456789abcdef0123456789"]
# The channel kinds' declared secrets, each a Docker secret of the social worker's:
# SYNDICATION_<KIND>__<FIELD>_FILE, read from /run/secrets/<kind>_<field> (the outgoing webhook's
# secret is webhook_secret_out, beside the incoming webhooks' webhook_secret).
CHANNEL_SECRETS = {f"SYNDICATION_{k.upper()}__{f.upper()}": f"{k}_{f}" + ("_out" if (k, f) == ("webhook", "secret") else "")
                   for k, kind in CHANNEL_KINDS.items() for f in kind.secret_fields}
SECRET_FILES = {"postgres_password": "pw\n", "api_tokens": ",".join(TOKENS) + "\n", "ops_tokens": "",
                "webhook_secret": "", "ops_session_secret": "", **{name: "" for name in CHANNEL_SECRETS.values()}}
# Which secrets each service may read: what it uses, and nothing more.
NEEDS = {"redis": set(), "postgres": {"postgres_password"}, "migrate": {"postgres_password"},
         "api": {"postgres_password", "api_tokens", "ops_tokens", "webhook_secret", "ops_session_secret"},
         "feeds": {"postgres_password"},
         "social": {"postgres_password", *CHANNEL_SECRETS.values()},
         "beat": set(), "flower": set()}


# -- reading the file ---------------------------------------------------------------------
class _SubsetYaml:
    """Just enough YAML for a compose file; raises ValueError on anything outside the subset."""

    _UNSUPPORTED = re.compile(r"^(\||>|\{|!|---|\.\.\.)")

    def __init__(self, text: str) -> None:
        self.lines: list[tuple[int, str, int]] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = self._strip_comment(raw).rstrip()
            if line.strip():
                self.lines.append((len(line) - len(line.lstrip(" ")), line.strip(), number))
        self.pos = 0
        self.anchors: dict[str, Any] = {}

    @staticmethod
    def _strip_comment(line: str) -> str:
        quote = None
        for i, ch in enumerate(line):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
                return line[:i]
        return line

    def parse(self) -> Any:
        value = self._block(0)
        if self.pos != len(self.lines):
            raise ValueError(f"line {self.lines[self.pos][2]}: unexpected indentation")
        return value

    def _block(self, indent: int) -> Any:
        if self.lines[self.pos][1].startswith("- ") or self.lines[self.pos][1] == "-":
            return self._sequence(indent)
        return self._mapping(indent)

    def _sequence(self, indent: int) -> list[Any]:
        items = []
        while self.pos < len(self.lines):
            col, text, number = self.lines[self.pos]
            if col != indent or not text.startswith("- "):
                break
            self.pos += 1
            item = text[2:].strip()
            if re.match(r"^[^\"'\[]+:( |$)", item):
                raise ValueError(f"line {number}: mappings inside lists are outside the subset")
            items.append(self._scalar_or_flow(item, number))
        return items

    def _mapping(self, indent: int) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        while self.pos < len(self.lines):
            col, text, number = self.lines[self.pos]
            if col < indent:
                break
            if col > indent:
                raise ValueError(f"line {number}: unexpected indentation")
            key, sep, rest = text.partition(":")
            if not sep or (rest and not rest.startswith(" ")) or key.startswith("- "):
                raise ValueError(f"line {number}: expected `key: value`, got {text!r}")
            key, rest = key.strip().strip("\"'"), rest.strip()
            self.pos += 1
            anchor = None
            if rest.startswith("&"):
                anchor, _, rest = rest[1:].partition(" ")
                rest = rest.strip()
            if rest:
                value = self._scalar_or_flow(rest, number)
            elif self.pos < len(self.lines) and (self.lines[self.pos][0] > col or (
                    self.lines[self.pos][0] == col and self.lines[self.pos][1].startswith("- "))):
                value = self._block(self.lines[self.pos][0])
            else:
                value = None
            if anchor:
                self.anchors[anchor] = value
            if key == "<<":
                if not isinstance(value, dict):
                    raise ValueError(f"line {number}: `<<` must merge a mapping")
                merged.update(value)
            elif key in mapping:
                raise ValueError(f"line {number}: duplicate key {key!r}")
            else:
                mapping[key] = value
        # Spec: YAML merge key (yaml.org/type/merge.html) — keys given explicitly win.
        return {**merged, **mapping}

    def _scalar_or_flow(self, text: str, number: int) -> Any:
        if text.startswith("*"):
            try:
                return self.anchors[text[1:]]
            except KeyError:
                raise ValueError(f"line {number}: unknown alias {text}") from None
        if text.startswith("["):
            if not text.endswith("]"):
                raise ValueError(f"line {number}: a flow list must close on its line")
            return [self._scalar(part, number) for part in self._split_flow(text[1:-1], number)]
        return self._scalar(text, number)

    @staticmethod
    def _split_flow(body: str, number: int) -> list[str]:
        parts, current, quote = [], "", None
        for ch in body:
            if quote:
                quote = None if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch in "[]{}":
                raise ValueError(f"line {number}: nested flow collections are outside the subset")
            elif ch == ",":
                parts.append(current)
                current = ""
                continue
            current += ch
        if current.strip():
            parts.append(current)
        return [p.strip() for p in parts]

    def _scalar(self, text: str, number: int) -> Any:
        if self._UNSUPPORTED.match(text) or text.startswith(("&", "*")):
            raise ValueError(f"line {number}: {text!r} is outside the subset")
        if len(text) >= 2 and text[0] == text[-1] == '"':
            return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if len(text) >= 2 and text[0] == text[-1] == "'":
            return text[1:-1].replace("''", "'")
        if text[0] in "\"'":
            raise ValueError(f"line {number}: unterminated quote")
        # Spec: YAML 1.2 core schema — null, booleans and integers; everything else a string.
        if text in ("null", "~"):
            return None
        if text in ("true", "false"):
            return text == "true"
        if re.fullmatch(r"[-+]?[0-9]+", text):
            return int(text)
        return text


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    try:
        import yaml  # noqa: PLC0415 - optional: only the test extras install it
    except ImportError:
        return _SubsetYaml(path.read_text()).parse()
    return yaml.safe_load(path.read_text())


COMPOSE_FILE = load_compose()
SERVICE_DEFS: dict[str, dict[str, Any]] = COMPOSE_FILE["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``; a missing required one fails."""
    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":-":
            return arg
        if op == ":?":
            pytest.fail(f"${{{name}}} is required ({arg}); add it to REQUIRED_VARIABLES")
        return ""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", replace, value)


def command_of(service: str) -> list[str]:
    command = SERVICE_DEFS[service].get("command")
    assert isinstance(command, list), f"{service}: write the command as a list (exec form)"
    return [interpolate(str(part), REQUIRED_VARIABLES) for part in command]


def app_environment(service: str) -> dict[str, str]:
    env = SERVICE_DEFS[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment as a mapping"
    return {k: interpolate(str(v), REQUIRED_VARIABLES) for k, v in env.items()}


def _program(spec: dict[str, Any]) -> str | None:
    command = spec.get("command")
    return str(command[0]) if isinstance(command, list) and command else None


APP_SERVICES = [name for name, spec in SERVICE_DEFS.items()
                if any(str(p).startswith("SYNDICATION_") for p in (spec.get("environment") or {}))]
SYNDICATION_SERVICES = [name for name, spec in SERVICE_DEFS.items() if _program(spec) == "syndication"]
CELERY_SERVICES = [name for name, spec in SERVICE_DEFS.items() if _program(spec) == "celery"]


@pytest.fixture
def compose_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The api's environment as the containers see it, and nothing else from this shell; its
    Docker secrets are files under tmp_path instead of /run/secrets."""
    for name in list(os.environ):
        if name.startswith("SYNDICATION_") and not name.startswith("SYNDICATION_TEST_"):
            monkeypatch.delenv(name)
    for secret, text in SECRET_FILES.items():
        (tmp_path / secret).write_text(text)
    env = {k: v.replace("/run/secrets/", f"{tmp_path}/") for k, v in app_environment("api").items()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The CLI callback configures the root logger; give the next test the one it had.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield env
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def celery_app_module(compose_env: dict[str, str]) -> Iterator[Any]:
    """``workers.app`` as ``celery -A workers.app`` loads it; the lazily built ``app`` is dropped after."""
    module = importlib.import_module("workers.app")
    had_app = "app" in vars(module)
    previous_current = celery.current_app._get_current_object()
    yield module
    if not had_app:
        vars(module).pop("app", None)
    previous_current.set_current()


# -- the tests ----------------------------------------------------------------------------
def test_subset_reader_handles_anchors_merges_and_flow_lists() -> None:
    # Given YAML with an x- anchor merged into a service that overrides one key
    text = """
x-base: &base
  image: app   # a comment
  environment: &env
    A: "1 # not a comment"
  command: ["a", "b"]
services:
  one:
    <<: *base
    command: ["c", 'd e', "--flag=${X:?x}"]
    ports:
      - "80:80"
    healthcheck:
      retries: 10
      test: [CMD, ping]
"""
    # When it is read by the fallback reader
    parsed = _SubsetYaml(text).parse()
    # Then the merge gives the anchor's keys and the service's own keys win
    assert parsed["services"]["one"] == {
        "image": "app", "environment": {"A": "1 # not a comment"}, "command": ["c", "d e", "--flag=${X:?x}"],
        "ports": ["80:80"], "healthcheck": {"retries": 10, "test": ["CMD", "ping"]}}
    # And syntax outside the subset is refused rather than misread
    with pytest.raises(ValueError):
        _SubsetYaml("a: |\n  text\n").parse()
    with pytest.raises(ValueError):
        _SubsetYaml("a: {b: 1}\n").parse()


def test_subset_reader_agrees_with_pyyaml_on_the_compose_file() -> None:
    yaml = pytest.importorskip("yaml")
    assert _SubsetYaml(COMPOSE.read_text()).parse() == yaml.safe_load(COMPOSE.read_text())


def test_the_production_services_are_all_there() -> None:
    # Given the compose file, then every process of the production shape is a service
    assert set(SERVICES) <= set(SERVICE_DEFS)
    assert SERVICE_DEFS["redis"]["image"].startswith("redis:7")
    assert SERVICE_DEFS["postgres"]["image"].startswith("postgres:16")
    assert SERVICE_DEFS["postgres"].get("healthcheck"), "postgres needs a healthcheck for depends_on"
    for name in ("api", "feeds", "social", "beat", "flower"):
        assert SERVICE_DEFS[name].get("build"), f"{name} runs the image built from the Dockerfile"


def test_redis_keeps_an_append_only_file_synced_every_second() -> None:
    command = command_of("redis")
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert any(str(v).endswith(":/data") for v in SERVICE_DEFS["redis"].get("volumes", [])), "AOF needs a volume"


@pytest.mark.parametrize("service", SYNDICATION_SERVICES)
def test_syndication_commands_are_registered(service: str, compose_env: dict[str, str]) -> None:
    # Given a service that runs `syndication X ...`
    subcommand = command_of(service)[1]
    # When `syndication X --help` runs with the containers' environment
    result = CliRunner().invoke(cli_app, [subcommand, "--help"])
    # Then X is a command of the Typer app (and the environment is valid settings)
    assert result.exit_code == 0, result.output


def test_the_api_runs_syndication_serve_on_all_interfaces() -> None:
    assert command_of("api") == ["syndication", "serve", "--host", "0.0.0.0", "--port", "8000"]


@pytest.mark.parametrize("service", CELERY_SERVICES)
def test_celery_commands_load_the_app_and_its_queues(service: str, celery_app_module: Any) -> None:
    # Given `celery -A workers.app <subcommand> ...`
    command = command_of(service)
    assert command[1:3] == ["-A", "workers.app"]
    # When the app is loaded with the broker URL set, as the container has it
    celery_app = celery_app_module.app
    assert celery_app.conf.broker_url == "redis://redis:6379/0"
    # Then every queue the worker consumes is one the app routes to
    if "-Q" in command:
        wanted = set(command[command.index("-Q") + 1].split(","))
        known = {queue.name for queue in celery_app.conf.task_queues}
        assert wanted <= known, f"{service}: unknown queues {wanted - known}"
    # And the subcommand is one celery has (flower is a plugin: see the next test)
    assert command[3] in celery_cli.commands or command[3] == "flower"


def test_flower_is_installed_as_a_celery_command() -> None:
    importlib.import_module("flower")
    plugins = {ep.name for ep in importlib.metadata.entry_points(group="celery.commands")}
    assert "flower" in plugins
    # It asks for a login, which stays out of its command line (visible in `ps` and `docker inspect`)
    assert app_environment("flower")["FLOWER_BASIC_AUTH"] == "ops:secret"
    assert not any("secret" in part for part in command_of("flower"))


def _compose_variables() -> set[str]:
    return {str(name) for spec in SERVICE_DEFS.values() for name in (spec.get("environment") or {})
            if str(name).startswith("SYNDICATION_")}


def test_every_syndication_variable_is_a_setting() -> None:
    # Given every SYNDICATION_* variable any service sets
    names = _compose_variables()
    assert names
    unknown = []
    for name in sorted(names):
        name = name.removesuffix("_FILE")  # SYNDICATION_<NAME>_FILE: <NAME> read from a Docker secret
        field, _, nested = name.removeprefix("SYNDICATION_").lower().partition("__")
        if nested:
            # SYNDICATION_X__CONSUMER_KEY -> the channel kind x's settings model -> .consumer_key
            kind = CHANNEL_KINDS.get(field)
            if kind is None or nested not in kind.settings.model_fields:
                unknown.append(name)
        elif field not in Settings.model_fields:
            unknown.append(name)
    # Then each one names a field of config.Settings, or of a channel kind's settings
    assert not unknown, f"not fields of config.Settings nor of a channel kind's settings: {unknown}"


@pytest.mark.parametrize("kind", sorted(k for k, kind in CHANNEL_KINDS.items() if kind.settings.model_fields))
def test_every_channel_kind_s_settings_are_in_the_compose_file(kind: str) -> None:
    # Given a channel kind declared in the registry, then an operator can set each of its settings
    # through the compose file (the registry is the list; the compose file must follow it)
    # (a secret one as a Docker secret file of the social worker's, never as a plain variable)
    names = _compose_variables()
    wanted = [f"SYNDICATION_{kind.upper()}__{field.upper()}" for field in CHANNEL_KINDS[kind].settings.model_fields]
    missing = [v + ("_FILE" if v in CHANNEL_SECRETS else "") for v in wanted
               if v + ("_FILE" if v in CHANNEL_SECRETS else "") not in names]
    assert not missing, f"add to docker-compose.yml: {missing}"
    social = SERVICE_DEFS["social"]["environment"]
    assert all(social.get(v + "_FILE") == f"/run/secrets/{CHANNEL_SECRETS[v]}" for v in wanted if v in CHANNEL_SECRETS)


def test_app_services_share_one_environment_and_the_data_volume() -> None:
    # Given the services built from this repository
    assert {"api", "feeds", "social", "beat", "flower"} <= set(APP_SERVICES)
    envs = {name: {k: v for k, v in SERVICE_DEFS[name]["environment"].items()
                   if k.startswith("SYNDICATION_") and not k.endswith("_FILE")} for name in APP_SERVICES}
    # Then they all read the same settings (only which secrets they get differs)
    assert all(env == envs["api"] for env in envs.values())
    # And the api serves the folder the feeds worker writes
    for name in ("api", "feeds", "beat"):
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in SERVICE_DEFS[name]["volumes"]}
        assert mounts.get("/data") == "data", f"{name} must mount the shared data volume on /data"
    assert envs["api"]["SYNDICATION_FEEDS_DIR"].startswith("/data/")
    assert "/data/" in " ".join(command_of("beat")), "beat keeps its schedule on the volume"


def test_the_environment_makes_valid_production_settings(compose_env: dict[str, str]) -> None:
    # When the settings are read from the containers' environment
    settings = Settings()
    # Then they point at the compose services, not the embedded default
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.resolved_database_url.startswith("postgresql://syndication:pw@postgres:5432/")
    assert settings.resolved_feeds_dir == Path("/data/feeds")
    assert [t.get_secret_value() for t in settings.api_tokens] == TOKENS
    assert "x" not in channel_names(SiteConfig.model_validate({"site": {"title": "T", "base_url": "https://t.example/"}}),
                                    settings)  # no X credentials exported: the channel stays off


def test_only_the_api_is_published_and_on_loopback_by_default() -> None:
    # Given the ports each service publishes, with the operator's defaults
    published = {name: [interpolate(str(p), REQUIRED_VARIABLES) for p in spec.get("ports", [])]
                 for name, spec in SERVICE_DEFS.items()}
    # Then the api is on 127.0.0.1 (a TLS proxy goes in front), Flower on loopback for a tunnel,
    # and nothing else (redis, postgres, the workers) is published at all
    assert published.pop("api") == ["127.0.0.1:8000:8000"]
    assert published.pop("flower") == ["127.0.0.1:5555:5555"]
    assert all(ports == [] for ports in published.values()), published


def test_internal_services_sit_on_an_internal_network_only() -> None:
    networks = COMPOSE_FILE["networks"]
    # Given the network every service shares, it has no way out
    assert networks["backend"]["internal"] is True
    for name, spec in SERVICE_DEFS.items():
        assert "backend" in spec["networks"], name
    # And redis and postgres are on it alone
    assert SERVICE_DEFS["redis"]["networks"] == ["backend"] and SERVICE_DEFS["postgres"]["networks"] == ["backend"]
    # And only a service that publishes a port or calls out is on another one
    for name, spec in SERVICE_DEFS.items():
        if set(spec["networks"]) - {"backend"}:
            assert spec.get("ports") or name in ("feeds", "social"), name


def test_each_service_gets_only_the_secrets_it_needs_as_files() -> None:
    declared = COMPOSE_FILE["secrets"]
    assert set(declared) == set(SECRET_FILES)
    for name, spec in SERVICE_DEFS.items():
        # Given the Docker secrets a service mounts, then they are what it needs, no more
        mounted = set(spec.get("secrets", []))
        assert mounted == NEEDS[name], name
        env = {k: str(v) for k, v in (spec.get("environment") or {}).items()}
        # And every _FILE variable points at one of its own mounted secrets
        for variable, value in env.items():
            if variable.endswith("_FILE"):
                assert value.removeprefix("/run/secrets/") in mounted, f"{name}: {variable}"
        # And no secret setting is passed as a plain variable (it would show in `docker inspect`)
        secret_fields = {f"SYNDICATION_{f.upper()}" for f, info in Settings.model_fields.items()
                         if "Secret" in str(info.annotation)} | set(CHANNEL_SECRETS) | {"POSTGRES_PASSWORD"}
        assert not secret_fields & set(env), f"{name}: {secret_fields & set(env)}"
        # And the database URL they share holds no password
        assert urlsplit(env.get("SYNDICATION_DATABASE_URL", "")).password is None, name

"""Deployment settings come from SYNDICATION_* variables; the site comes from a TOML file."""
from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

from config import Settings
from config.settings import DEFAULT_CONFIG
from syndication.channels.registry import channel_names, secrets_of
from syndication.errors import ConfigError
from syndication.site import load_site

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SYNDICATION_* variable set, working in an empty folder."""
    for name in list(os.environ):
        if name.startswith("SYNDICATION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_with_nothing_set_everything_lives_under_var(clean_env: Path) -> None:
    # Given a fresh checkout with no variables set
    settings = Settings()
    # Then the data folder is ./var, the database a SQLite file in it, the feeds beside it
    assert settings.resolved_data_dir == clean_env.resolve() / "var"
    assert settings.resolved_database_url == f"sqlite:///{clean_env.resolve() / 'var' / 'syndication.db'}"
    assert settings.resolved_feeds_dir == clean_env.resolve() / "var" / "feeds"
    # And the bundled site configuration is used, with no tokens and X off
    assert Path(settings.config) == DEFAULT_CONFIG
    assert settings.api_tokens == [] and settings.accounts == {}


def test_the_data_folder_moves_the_database_and_the_feeds_with_it(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given SYNDICATION_DATA_DIR pointing elsewhere
    monkeypatch.setenv("SYNDICATION_DATA_DIR", str(clean_env / "srv"))
    settings = Settings()
    # Then the database and the feeds follow it
    assert settings.resolved_data_dir == (clean_env / "srv").resolve()
    assert settings.resolved_database_url == f"sqlite:///{(clean_env / 'srv').resolve() / 'syndication.db'}"
    assert settings.resolved_feeds_dir == (clean_env / "srv" / "feeds").resolve()


def test_database_feeds_and_config_can_each_be_set(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given each location set on its own
    monkeypatch.setenv("SYNDICATION_CONFIG", str(clean_env / "site.toml"))
    monkeypatch.setenv("SYNDICATION_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", "postgresql://feeds@db.internal/feeds")
    monkeypatch.setenv("SYNDICATION_FEEDS_DIR", str(clean_env / "public" / "feeds"))
    settings = Settings()
    # Then each one is honoured, and the data folder no longer decides them
    assert Path(settings.config) == clean_env / "site.toml"
    assert settings.resolved_database_url == "postgresql://feeds@db.internal/feeds"
    assert settings.resolved_feeds_dir == (clean_env / "public" / "feeds").resolve()


def test_a_relative_feeds_folder_is_made_absolute(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a relative SYNDICATION_FEEDS_DIR (as in a compose file)
    monkeypatch.setenv("SYNDICATION_FEEDS_DIR", "public/feeds")
    # Then it is resolved once, against the folder the process started in
    assert Settings().resolved_feeds_dir == clean_env.resolve() / "public" / "feeds"


def test_api_tokens_are_a_comma_separated_list(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two CMS tokens in one variable, with stray spaces and an empty slot
    monkeypatch.setenv("SYNDICATION_API_TOKENS", " cms-token-one, cms-token-two,, ")
    monkeypatch.setenv("SYNDICATION_OPS_TOKENS", "ops-token")
    settings = Settings()
    # Then both are accepted as tokens, and kept secret when printed
    assert [t.get_secret_value() for t in settings.api_tokens] == ["cms-token-one", "cms-token-two"]
    assert "cms-token-one" not in repr(settings)
    # And they are among the values redacted from logs
    assert {"cms-token-one", "cms-token-two", "ops-token"} <= set(settings.secrets())


def test_x_credentials_are_nested_with_a_double_underscore(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the X credentials as nested variables
    monkeypatch.setenv("SYNDICATION_X__CONSUMER_KEY", "ck-1234")
    settings = Settings()
    site = load_site(REPO / "config" / "syndication.toml")
    # Then the consumer key lands in the X account's settings, but X stays off until all four are set
    assert settings.accounts["x"] == {"consumer_key": "ck-1234"}
    assert "x" not in channel_names(site, settings)
    for name in ("CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"):
        monkeypatch.setenv(f"SYNDICATION_X__{name}", f"{name.lower()}-5678")
    settings = Settings()
    assert "x" in channel_names(site, settings)
    assert "ck-1234" in secrets_of(settings) and "access_token_secret-5678" in secrets_of(settings)


def test_a_malformed_number_is_refused_naming_the_variable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a typo in a numeric setting
    monkeypatch.setenv("SYNDICATION_WEBHOOK_TOLERANCE_S", "five minutes")
    # Then start-up stops with an error that names the setting, instead of running with a default
    with pytest.raises(pydantic.ValidationError, match="webhook_tolerance_s"):
        Settings()


# --- the site TOML -----------------------------------------------------------------------

def test_the_bundled_site_configuration_loads() -> None:
    # Given the TOML shipped in config/
    site = load_site(REPO / "config" / "syndication.toml")
    # Then it describes the example site and its X channel
    assert site.site.title == "The Example Gazette"
    assert site.site.timezone == "Europe/London"
    assert site.feeds.sections == "*"
    assert site.staff["Ada Reporter"].x == "adareporter"
    assert "x" in site.channels and "sport" in site.channels["x"].sections


MINIMAL = '[site]\ntitle = "T"\nbase_url = "https://t.example/"\n'


@pytest.mark.parametrize(("toml", "key"), [
    ('[site]\nbase_url = "https://t.example/"\n', "site.title"),
    ('[site]\ntitle = "T"\nbase_url = "not a url"\n', "site.base_url"),
    (MINIMAL.replace('"T"', '"T"\ntimezone = "Mars/Olympus"'), "site.timezone"),
    (MINIMAL + "[feeds]\nitems = 0\n", "feeds.items"),
    (MINIMAL + '[feeds]\nsections = "all of them"\n', "feeds.sections"),
    (MINIMAL + "[feeds]\ncolour = 1\n", "feeds.colour"),
    (MINIMAL + '[channels.x]\nposts_per_window = -1\n', "channels.x.posts_per_window"),
    (MINIMAL + '[staff."Ada"]\nfacebook = "ada"\n', "staff.Ada.facebook"),
])
def test_an_invalid_site_file_is_refused_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    # Given a site TOML with one mistake
    path = tmp_path / "site.toml"
    path.write_text(toml, encoding="utf-8")
    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    # Then the error names the file and the key to fix
    assert str(path) in str(caught.value)
    assert key in str(caught.value)


def test_a_site_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[site\ntitle = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_site(path)


def test_a_missing_site_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_site(tmp_path / "missing.toml")


# --- Docker secrets: SYNDICATION_<NAME>_FILE ---------------------------------------------

def test_any_setting_can_come_from_a_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Docker secrets mounted as files, with the trailing newline editors add
    one, two = "cms-token-one-0123456789abcdef0123", "cms-token-two-0123456789abcdef0123"
    secrets = {"api_tokens": f"{one},{two}\n", "x_consumer_key": "ck-from-file\n",
               "postgres_password": "p@ss/word\n", "ops_tokens": "\n"}
    for name, text in secrets.items():
        (clean_env / name).write_text(text)
    monkeypatch.setenv("SYNDICATION_API_TOKENS_FILE", str(clean_env / "api_tokens"))
    monkeypatch.setenv("SYNDICATION_X__CONSUMER_KEY_FILE", str(clean_env / "x_consumer_key"))
    monkeypatch.setenv("SYNDICATION_DATABASE_PASSWORD_FILE", str(clean_env / "postgres_password"))
    monkeypatch.setenv("SYNDICATION_OPS_TOKENS_FILE", str(clean_env / "ops_tokens"))
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", "postgresql://syndication@postgres:5432/syndication")
    # When the settings are read
    settings = Settings()
    # Then each file set its setting, nested ones too, and an empty file left one unset
    assert [t.get_secret_value() for t in settings.api_tokens] == [one, two]
    assert settings.accounts["x"]["consumer_key"] == "ck-from-file"  # a channel account's, validated by its kind
    assert settings.ops_tokens == []
    # And the database password went into the URL, percent-encoded, and is redacted from logs
    assert settings.resolved_database_url == "postgresql://syndication:p%40ss%2Fword@postgres:5432/syndication"
    assert "p@ss/word" in settings.secrets()


@pytest.mark.parametrize("story", ["both set", "missing file"])
def test_a_secret_file_that_cannot_be_used_is_refused_by_name(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch, story: str) -> None:
    (clean_env / "token").write_text("from-file")
    monkeypatch.setenv("SYNDICATION_WEBHOOK_SECRET_FILE", str(clean_env / ("token" if story == "both set" else "nope")))
    if story == "both set":
        monkeypatch.setenv("SYNDICATION_WEBHOOK_SECRET", "from-env")
    with pytest.raises(ValueError, match="SYNDICATION_WEBHOOK_SECRET"):
        Settings()

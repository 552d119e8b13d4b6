"""Loading the site TOML into ``config.SiteConfig``."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pydantic

from config import SiteConfig
from syndication.errors import ConfigError


def load_site(path: Path | str) -> SiteConfig:
    """Read and validate the site TOML.

    Raises ``ConfigError`` naming the file and each bad key.

    >>> load_site("config/syndication.toml").site.title
    'The Example Gazette'
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"site configuration not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return SiteConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc

"""Logging: one line per event with structured extras, secrets redacted, JSON optional."""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


# Ids of what the current task or request is about (article_id, event_id, feed, delivery_id),
# added to every line logged while they are bound.
_IDS: ContextVar[dict[str, object]] = ContextVar("syndication_log_ids", default={})
# oauthlib logs Authorization headers at DEBUG; Alembic announces every migration check at INFO.
NOISY_LOGGERS = ("oauthlib", "requests_oauthlib", "alembic.runtime.migration")


def bind_ids(**ids: object) -> Token[dict[str, object]]:
    """Add ids to every log line of this thread or task until ``unbind_ids(token)``."""
    return _IDS.set({**_IDS.get(), **{k: v for k, v in ids.items() if v is not None}})


def unbind_ids(token: Token[dict[str, object]]) -> None:
    _IDS.reset(token)


@contextmanager
def log_ids(**ids: object) -> Iterator[None]:
    """``with log_ids(feed="all"): ...`` — the lines logged inside carry ``feed=all``."""
    token = bind_ids(**ids)
    try:
        yield
    finally:
        unbind_ids(token)


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (an explicit ``extra`` of the same name wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _IDS.get().items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


class RedactingFilter(logging.Filter):
    """Replaces every configured secret with ``***`` in messages and extras."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.redact(record.getMessage())
            record.args = None
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, self.redact(value))
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                   "logger": record.name, "msg": record.getMessage(), **_extras(record)}
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return f"{line} {extras}" if extras else line


def configure_logging(level: str = "INFO", *, json_lines: bool = False, secrets: Iterable[str] = ()) -> None:
    """Set up the root logger once per process (CLI, worker, web)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else
                         KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter())  # before redaction, so bound values are redacted too
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

"""Logging: one line per event with structured extras, secrets redacted, JSON optional."""
from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import TracebackType
from urllib.parse import unquote

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


# Ids of what the current task or request is about (article_id, event_id, feed, delivery_id),
# added to every line logged while they are bound.
_IDS: ContextVar[dict[str, object]] = ContextVar("syndication_log_ids", default={})
# oauthlib logs Authorization headers at DEBUG; Alembic announces every migration check at INFO.
NOISY_LOGGERS = ("oauthlib", "requests_oauthlib", "alembic.runtime.migration")
# uvicorn's own logging config gives these their own stderr handlers; we take them back.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


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


# ``scheme://user:password@host``: the password part of any URL in a line (database, broker).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):(?P<password>[^@\s/]+)@")
# Escaped in key=value lines: a newline in a value would start a forged log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Every line of a traceback is indented: only the first line of a record starts in column one.
TRACEBACK_INDENT = "  | "


class Redactor:
    """Replaces every configured secret, and the password of any URL, with ``***``.

    Secrets of any length are replaced, the short ones too: a 3-character secret in a log is
    still a secret (the cost, a line with a few ``***`` too many, is the operator's hint).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s}
        values |= {unquote(s) for s in values}  # a URL password as written and as meant
        self.secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _URL_PASSWORD.sub(r"\g<head>:***@", text)


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``a\\nb`` for ``a\nb``: control characters made visible, so a value holds one line."""
    def one(match: re.Match[str]) -> str:
        ch = match.group()
        if keep_newlines and ch == "\n":
            return ch
        return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return _CONTROL.sub(one, text)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def _redact_all(value: object, redact: Redactor) -> object:
    """The value with every string in it redacted; what JSON cannot hold becomes its redacted str()."""
    if isinstance(value, dict):
        return {str(k): _redact_all(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_all(v, redact) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object a line; every string in it (the traceback too) redacted before encoding,
    since JSON escapes could otherwise split a secret."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                   "logger": record.name, "msg": record.getMessage(), **_extras(record)}
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(_redact_all(payload, self.redact), ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...``, then an indented traceback.

    Control characters in the message and the values are escaped, and the whole line,
    traceback included, is redacted after it is formatted.
    """

    def __init__(self, fmt: str | None = None, redact: Redactor | None = None) -> None:
        super().__init__(fmt)
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        extras = " ".join(f"{k}={escape_controls(str(v))}" for k, v in _extras(record).items())
        if extras:
            line = f"{line} {extras}"
        tails = []
        if record.exc_info:
            tails.append(self.formatException(record.exc_info))
        elif record.exc_text:
            tails.append(record.exc_text)
        if record.stack_info:
            tails.append(self.formatStack(record.stack_info))
        for tail in tails:
            lines = escape_controls(tail.rstrip("\n"), keep_newlines=True).split("\n")
            line += "".join(f"\n{TRACEBACK_INDENT}{text}" for text in lines)
        return self.redact(line)


def configure_logging(level: str = "INFO", *, json_lines: bool = False, secrets: Iterable[str] = ()) -> None:
    """Set up the root logger once per process (CLI, worker, web).

    Every line goes through one handler that redacts the formatted line: uvicorn's loggers
    (start it with ``log_config=None``) and uncaught exceptions of any thread are routed
    to it too, so no traceback reaches stderr unredacted.
    """
    redact = Redactor(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redact) if json_lines else
                         KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", redact))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("syndication").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    logging.getLogger("syndication").error("uncaught exception in a thread", exc_info=(
        args.exc_type, args.exc_value, args.exc_traceback), extra={"in_thread": getattr(args.thread, "name", None)})

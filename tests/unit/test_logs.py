"""Log lines: secrets redacted everywhere (tracebacks and uvicorn's lines too), one record a line."""
from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from config import Settings
from syndication.logs import TRACEBACK_INDENT, configure_logging
from tests.support.stack import free_port, wait_for

TOKEN, SHORT = "tok-Zq8vW2mK5pL1xR7nHc3Yb6Ts9Df2Gj4Lk", "k9"
DB_URL = "postgresql://syndication:Pw%2Fdb-4xQ@db.internal:5432/syndication"
BROKER_URL = "redis://:brokerPw-7Tg@redis.internal:6379/0"


def settings() -> Settings:
    return Settings(api_tokens=TOKEN, webhook_secret=SHORT, database_url=DB_URL, broker_url=BROKER_URL)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, hooks = root.handlers[:], root.level, (sys.excepthook, threading.excepthook)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks


def logged(capsys: pytest.CaptureFixture[str], *, json_lines: bool = False) -> logging.Logger:
    capsys.readouterr()
    configure_logging("INFO", json_lines=json_lines, secrets=settings().secrets())
    return logging.getLogger("syndication.test")


def _fail_with_secrets() -> None:
    raise RuntimeError(f"cannot connect to {DB_URL} as {TOKEN} (webhook key {SHORT})")


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_traceback_with_a_secret_and_a_url_password_is_redacted(capsys, json_lines: bool) -> None:
    log = logged(capsys, json_lines=json_lines)
    # Given an exception whose message carries a token, a database URL and a 2-character secret
    try:
        _fail_with_secrets()
    except RuntimeError:
        # When it is logged with its traceback
        log.exception("store unreachable", extra={"broker": BROKER_URL, "events": ["e1", TOKEN],
                                                   "error": RuntimeError(TOKEN)})
    err = capsys.readouterr().err
    # Then the traceback is there, and no secret is
    assert "Traceback (most recent call last)" in err and "_fail_with_secrets" in err
    for secret in (TOKEN, "Pw%2Fdb-4xQ", "Pw/db-4xQ", "brokerPw-7Tg", f"key {SHORT})"):
        assert secret not in err
    assert "postgresql://syndication:***@db.internal" in err and "redis://:***@redis.internal" in err
    if json_lines:
        record = json.loads(err)
        assert "RuntimeError: cannot connect" in record["exc"]
        assert record["events"] == ["e1", "***"] and record["error"] == "***"  # structure kept, values redacted


def test_a_url_password_nobody_configured_is_redacted_too(capsys) -> None:
    log = logged(capsys)
    log.warning("retrying %s", "amqp://guest:hunter2@mq.internal:5672//")
    err = capsys.readouterr().err
    assert "hunter2" not in err and "amqp://guest:***@mq.internal" in err


def test_control_characters_cannot_forge_a_log_line(capsys) -> None:
    log = logged(capsys)
    forged = "a1\n2026-11-30 12:00:00,000 ERROR syndication: forged\r"
    # Given a message, an extra and an exception that each carry a newline
    try:
        raise ValueError(forged)
    except ValueError:
        log.exception("refused %s", forged, extra={"article_id": forged})
    lines = capsys.readouterr().err.splitlines()
    # Then the record is one line, and every further line is an indented traceback line
    assert len([line for line in lines if not line.startswith(TRACEBACK_INDENT)]) == 1
    assert "a1\\n2026-11-30" in lines[0] and "article_id=a1\\n2026" in lines[0] and "\\r" in lines[0]
    assert not any(line.startswith("2026-11-30 12:00:00,000") for line in lines)


def test_uncaught_exceptions_in_a_thread_are_logged_redacted(capsys) -> None:
    logged(capsys)
    thread = threading.Thread(target=_fail_with_secrets)
    thread.start()
    thread.join()
    err = capsys.readouterr().err
    assert "uncaught exception in a thread" in err and TOKEN not in err and "RuntimeError" in err


async def _broken_app(scope, receive, send) -> None:  # a bare ASGI app that fails on every request
    if scope["type"] == "http":
        _fail_with_secrets()


def test_uvicorns_error_lines_and_tracebacks_go_through_the_redacting_handler(capsys) -> None:
    # Given uvicorn already configured its own loggers once in this process (its default)
    uvicorn.Config(_broken_app)
    logged(capsys)
    # And a real uvicorn server started as the product starts it (log_config=None)
    server = uvicorn.Server(uvicorn.Config(_broken_app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 10, what="uvicorn")
        # When a request makes the app raise
        r = httpx.get(f"http://127.0.0.1:{server.config.port}/", timeout=10)
    finally:
        server.should_exit = True
        thread.join(10)
    # Then uvicorn's "Exception in ASGI application" and its traceback are in our format, redacted
    err = capsys.readouterr().err
    assert r.status_code == 500
    assert "ERROR uvicorn.error: Exception in ASGI application" in err
    assert f"{TRACEBACK_INDENT}RuntimeError: cannot connect to postgresql://syndication:***@" in err
    assert TOKEN not in err and "Pw%2Fdb-4xQ" not in err

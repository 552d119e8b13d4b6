"""Per-task telemetry in the worker processes: durations, log ids, and redacted logging.

Imported by ``workers.tasks`` so the signal hooks are connected wherever tasks run.
Durations go to ``syndication.metrics`` (multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``,
set by ``syndication run``, makes them visible to the web process's ``/metrics``).
"""
from __future__ import annotations

import logging
import os
import time
from contextvars import Token
from pathlib import Path
from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun

from config import Settings
from syndication.channels.registry import secrets_of
from syndication.logs import bind_ids, configure_logging, unbind_ids
from syndication.metrics import observe_task

log = logging.getLogger(__name__)
# Which task argument names which id, for the log lines of that task.
_ID_ARGS = {"syndication.render_feed": "feed", "syndication.process_event": "event_id",
            "syndication.deliver": "delivery_id"}
_running: dict[str, tuple[float, Token[dict[str, object]]]] = {}

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client writes one file per process there; it must exist before the first one.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


@setup_logging.connect
def _setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, this replaces Celery's own logging set-up: worker and beat lines then go
    # through the same redacting handler as the CLI and the web service.
    settings = Settings()
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else (loglevel or settings.log_level)
    configure_logging(str(level), json_lines=settings.log_json, secrets=secrets_of(settings))


@task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    if task_id is None:
        return
    key = _ID_ARGS.get(getattr(task, "name", ""))
    ids = {"task_id": task_id}
    if key and args:
        ids[key] = args[0]
    _running[task_id] = (time.monotonic(), bind_ids(**ids))


@task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    started = _running.pop(task_id or "", None)
    if started is None:
        return
    began, token = started
    try:
        observe_task(getattr(task, "name", "unknown"), time.monotonic() - began, state or "UNKNOWN")
    except OSError as exc:  # the metrics folder was removed under us: never fail the task for it
        log.warning("task duration not recorded", extra={"error": repr(exc)})
    finally:
        try:
            unbind_ids(token)
        except ValueError:  # reset from another context (a pool that moved threads): drop it
            pass

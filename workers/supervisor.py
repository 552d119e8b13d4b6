"""Starting and stopping the product's processes: broker, workers, scheduler.

``syndication run`` uses it; Ctrl-C or SIGTERM stops everything, and children are told
by the kernel to stop if the supervisor itself dies, so no process is left behind.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from workers.processes import die_with_parent

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.app", *args]


def worker_commands(data_dir: Path, *, feed_workers: int, social_workers: int, loglevel: str = "INFO") -> list[Child]:
    """The worker and scheduler processes of the production shape (docker-compose runs the same)."""
    return [
        # --without-mingle/--without-gossip: no start-up chatter between workers (seconds on a
        # busy machine); state that matters lives in the database, not in worker memory.
        Child("feeds-worker", celery_argv("worker", "-Q", "urgent,feeds", "-c", str(feed_workers),
                                          "-n", f"feeds-{os.getpid()}@%h", "-E", "--without-mingle",
                                          "--without-gossip", f"--loglevel={loglevel}")),
        # The sweeper (control) runs beside the social posts, never in the way of renders.
        Child("social-worker", celery_argv("worker", "-Q", "control,social", "--pool", "threads", "-c",
                                           str(social_workers), "-n", f"social-{os.getpid()}@%h", "-E",
                                           "--without-mingle", "--without-gossip", f"--loglevel={loglevel}")),
        Child("beat", celery_argv("beat", "-s", str(data_dir / "celerybeat-schedule"), f"--loglevel={loglevel}")),
    ]


@dataclass
class Supervisor:
    env: dict[str, str]
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, child: Child) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - owned by the child
        child.process = subprocess.Popen(child.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=die_with_parent)
        out.close()
        self.children.append(child)
        log.info("started", extra={"proc": child.name, "pid": child.process.pid})
        return child

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every child (Celery finishes its current task), then SIGKILL stragglers."""
        for child in reversed(self.children):
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()

    def dead(self) -> list[str]:
        return [c.name for c in self.children if c.process and c.process.poll() is not None]

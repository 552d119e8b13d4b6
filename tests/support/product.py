"""`syndication run` as a real subprocess, the way an operator starts the product."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import feedparser
import httpx

from syndication.store import Store
from tests.support.stack import free_port, wait_for, wait_settled


@dataclass
class Product:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Product":
        self.port = self.port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "run.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apps.cli", "run", "--port", str(self.port), "--workers", "2"],
            env={**os.environ, "SYNDICATION_DATA_DIR": str(self.root / "var"), **self.env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        log.close()

        def up() -> bool:
            assert self.process and self.process.poll() is None, (self.root / "run.log").read_text()[-3000:]
            try:
                return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout, interval=0.2, what="syndication run to answer")
        return self

    def feed_links(self) -> set[str]:
        """The article links a reader of ``all.rss`` sees now (none while it is not served)."""
        r = httpx.get(f"{self.base}/feeds/all.rss", timeout=10)
        return {e.link for e in feedparser.parse(r.content).entries} if r.status_code == 200 else set()

    def wait_settled(self, timeout: float = 60) -> None:
        """Wait until the product's outbox and ledger settle (``tests.support.stack.wait_settled``).
        Reads the default database under the data folder, as `syndication run` uses it."""
        url = self.env.get("SYNDICATION_DATABASE_URL") or f"sqlite:///{(self.root / 'var' / 'syndication.db').resolve()}"
        store = Store.from_url(url, migrate_schema=False)
        try:
            wait_settled(store, timeout)
        finally:
            store.dispose()

    def kill(self) -> None:
        """SIGKILL the whole process group: runner, redis-server, workers, beat."""
        assert self.process
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout: float = 30) -> int:
        assert self.process
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def group_alive(self) -> list[int]:
        """Processes still in the product's process group."""
        assert self.process
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == self.process.pid and fields[0] != "Z":
                    pids.append(int(entry.name))
        return pids

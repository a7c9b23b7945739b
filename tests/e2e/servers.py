"""A Kafka broker and a PostgreSQL cluster of the fault tests' own, to stop and restart at will.

The shared servers on 9092 and 5432 serve every other test (and other developers' runs on the
same machine): a fault test that stopped them would fail tests it knows nothing about. These
run on free ports, keep their state in a temporary directory and are stopped on exit.

Kafka runs through deploy/local/kafka.sh (its jars are the repository's cache); PostgreSQL
through Debian's initdb/pg_ctl, as the postgres user when we are root (the server refuses to
run as root)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"


class ServerUnavailable(RuntimeError):
    """The machine lacks what a dedicated server needs (java, PostgreSQL's binaries)."""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A port p with p + 1 free too (Kafka's controller listens on the client port + 1)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65535 and _port_free(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports on loopback")


def _run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited with {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout + done.stderr


def _alive(pid: int) -> bool:
    """Running, not merely a zombie nobody has reaped yet (kafka.sh detaches the broker)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _require_java() -> None:
    if shutil.which("java") is None:
        raise ServerUnavailable("java not found: the dedicated Kafka broker cannot run")


class DedicatedKafka:
    """A KRaft node (broker and controller in one process) on ``127.0.0.1:<port>``, a cluster
    by itself unless ``env`` makes it one of several (``ReplicatedKafka``); ``stop()`` and
    ``start()`` keep its data."""

    def __init__(
        self, *, port: int | None = None, heap: str = "-Xms128m -Xmx384m", env: dict[str, str] | None = None
    ) -> None:
        self.port = port or free_port_pair()
        self.home = Path(tempfile.mkdtemp(prefix="vcredit-fault-kafka-"))
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.pid: int | None = None
        self._env = {
            **os.environ,
            "VCREDIT_KAFKA_HOME": str(self.home),
            "VCREDIT_KAFKA_PORT": str(self.port),
            # Two brokers share a two-core machine with the services under test.
            "VCREDIT_KAFKA_HEAP": heap,
            **(env or {}),
        }

    def start(self) -> None:
        _require_java()
        _run(["bash", str(KAFKA_SH), "start"], env=self._env, timeout=300)
        self.pid = int((self.home / "kafka.pid").read_text())

    def stop(self) -> None:
        _run(["bash", str(KAFKA_SH), "stop"], env=self._env)

    def kill(self) -> None:
        """SIGKILL the broker (no controlled shutdown: its logs are recovered on the next start)."""
        pid = int((self.home / "kafka.pid").read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def running(self) -> bool:
        return subprocess.run(["bash", str(KAFKA_SH), "status"], env=self._env, capture_output=True).returncode == 0

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


def distinct_port_pairs(n: int) -> list[int]:
    """``n`` ports p, each with p + 1 free too, no two pairs overlapping."""
    for _ in range(100):
        ports = [free_port_pair() for _ in range(n)]
        if len({q for p in ports for q in (p, p + 1)}) == 2 * n:
            return ports
    raise RuntimeError(f"no {n} distinct pairs of free ports on loopback")


class ReplicatedKafka:
    """Three KRaft nodes on loopback, each broker and controller (three voters): a cluster that
    can hold the production topics' three replicas and lose any one node.

    Small heaps: three JVMs share a two-core machine with five services. ``close()`` SIGKILLs
    every node (their data is thrown away) and waits until each process is gone."""

    def __init__(self, nodes: int = 3, heap: str = "-Xms64m -Xmx256m") -> None:
        ports = distinct_port_pairs(nodes)
        voters = ",".join(f"{i}@127.0.0.1:{port + 1}" for i, port in enumerate(ports, 1))
        # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.nodes: dict[int, DedicatedKafka] = {}
        try:
            for i, port in enumerate(ports, 1):
                env = {
                    "VCREDIT_KAFKA_NODE_ID": str(i),
                    "VCREDIT_KAFKA_VOTERS": voters,
                    "VCREDIT_KAFKA_CLUSTER_ID": cluster_id,
                    "VCREDIT_KAFKA_REPLICATION": str(nodes),
                    # A JVM start on a loaded two-core machine, while two others start.
                    "VCREDIT_KAFKA_START_TIMEOUT": "240",
                }
                self.nodes[i] = DedicatedKafka(port=port, heap=heap, env=env)
        except BaseException:
            self.close()
            raise
        self.bootstrap = ",".join(node.bootstrap for node in self.nodes.values())

    async def start(self, nodes: list[int] | None = None) -> None:
        """Start the nodes (all by default) at once: none finishes starting without a quorum."""
        _require_java()
        # A clean clone has no jars yet: fetch them once, not three times in parallel.
        await asyncio.to_thread(_run, ["bash", str(KAFKA_SH), "fetch"], timeout=900)
        chosen = [self.nodes[i] for i in nodes or self.nodes]
        await asyncio.gather(*(asyncio.to_thread(node.start) for node in chosen))

    def running(self) -> list[int]:
        return [i for i, node in self.nodes.items() if node.pid is not None and _alive(node.pid)]

    def close(self) -> None:
        for node in self.nodes.values():
            pid_file = node.home / "kafka.pid"
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text())
                # Only our own JVM: the pid file may be stale after the process died.
                if "kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    node.kill()
            shutil.rmtree(node.home, ignore_errors=True)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3].split(".")[0]))
    if not found:
        raise ServerUnavailable("no PostgreSQL server binaries under /usr/lib/postgresql (deploy/local/postgres.sh)")
    return found[-1].parent


class DedicatedPostgres:
    """A throw-away PostgreSQL cluster on ``127.0.0.1:<port>``, trusting local connections."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port_pair()
        self.dir = Path(tempfile.mkdtemp(prefix="vcredit-fault-pg-"))
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgres.log"
        self.admin_url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self._owner = "postgres" if os.geteuid() == 0 else None
        if self._owner is not None:
            shutil.chown(self.dir, self._owner)

    def _as_owner(self, *args: str) -> list[str]:
        return ["runuser", "-u", self._owner, "--", *args] if self._owner else list(args)

    def init(self) -> None:
        _run(
            self._as_owner(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        )
        # The socket directory is ours, so no other cluster's /var/run/postgresql is touched;
        # fsync off because the tests restart the server cleanly, never the machine.
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.dir}'",
            "max_connections": "300",
            "fsync": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def start(self) -> None:
        _run(self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-w", "start"))

    def stop(self, mode: str = "fast") -> None:
        _run(self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"))

    def running(self) -> bool:
        status = subprocess.run(self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "status"), cwd="/")
        return status.returncode == 0

    async def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database="postgres")
            except (OSError, asyncpg.PostgresError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
            else:
                await conn.close()
                return

    def close(self) -> None:
        try:
            if self.data.exists() and self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class DedicatedServers:
    """Both servers, started on entry (in parallel) and stopped on exit, also on failure."""

    def __init__(self) -> None:
        self.kafka: DedicatedKafka | None = None
        self.postgres: DedicatedPostgres | None = None

    async def __aenter__(self) -> DedicatedServers:
        try:
            self.kafka = DedicatedKafka()
            self.postgres = DedicatedPostgres()
            await asyncio.to_thread(self.postgres.init)
            await asyncio.gather(asyncio.to_thread(self.kafka.start), asyncio.to_thread(self.postgres.start))
            await self.postgres.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        for server in (self.kafka, self.postgres):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.close()

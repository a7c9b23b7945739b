"""The system as operators run it in distributed mode: `vcredit migrate`, `vcredit topics
create`, then one `vcredit serve <service>` process per service, against a real Kafka and
PostgreSQL, each service with a database of its own and the whole cluster with a topic
prefix of its own.

Used by the end-to-end tests (fixture in tests/e2e/conftest.py) and by plain asyncio
scripts such as benchmarks, so nothing here imports pytest::

    async with Cluster(kafka, pg_admin_url, tmp) as cluster:
        r = await cluster.client("registry").post("/v1/townships", json={...})
        print(cluster.rss())
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx

from shared.settings import SERVICE_NAMES
from vcredit.infra import Infra, new_topic_prefix

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

# uvicorn's access log: one line per request. Polling writes hundreds of them, which would
# push the lines that explain a failure out of a log tail; only server errors are kept.
_ACCESS_LINE = re.compile(r'"[A-Z]+ \S+ HTTP/[\d.]+" [1-4]\d\d\b')


class ClusterError(RuntimeError):
    """The cluster could not be set up, started or stopped cleanly; the message says why."""


class NotReached(AssertionError):
    """An awaited condition did not hold before its deadline (see ``eventually``)."""


def free_ports(n: int) -> list[int]:
    """Ports free on loopback right now. Bound all at once so the n ports are distinct."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (VmRSS in /proc/<pid>/status); None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", line
            return int(value) * 1024
    return None  # a zombie keeps its status file but no longer has memory


def describe(value: object) -> str:
    if isinstance(value, httpx.Response):
        return f"{value.request.method} {value.request.url} -> {value.status_code} {value.text[:1000]}"
    return repr(value)[:1000]


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    what: str,
    seconds: float = 30,
    interval: float = 0.1,
) -> T:
    """Call ``probe`` until ``accept`` takes its result, and return that result.

    Services learn of each other only through events, so every effect in another service is
    eventual: wait for it against a deadline, never for a fixed time. The timeout names
    what was awaited and the last thing seen."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise NotReached(f"timed out after {seconds:g}s waiting for {what}; last seen: {describe(value)}")
        await asyncio.sleep(interval)


class Cluster:
    """Async context manager: set up, start and (on exit) stop the services.

    On entry: a database per service (dropped on exit), `vcredit migrate` and `vcredit
    topics create`, one `serve` process per service on a free port, then every /readyz
    answers 200. On exit: SIGTERM, SIGKILL for what has not stopped after ``stop_seconds``;
    an exception leaving the block gets the services' log tails as a note, and with
    ``require_clean_stop`` a service that did not stop cleanly raises ``ClusterError``.

    ``topic_replication``: the topics' replicas, 1 for the single broker the tests share;
    None for what deploy/k8s/topics.toml says (three, on a cluster of three brokers).
    ``env`` adds or overrides settings of every process (e.g. VCREDIT_CREDENTIALS_FILE, a pinned
    VCREDIT_<SERVICE>_PORT, or a VCREDIT_<SERVICE>_DATABASE_URL to use instead of a new
    database). ``urls``, ``env`` and ``topic_prefix`` are known from construction on.
    """

    def __init__(
        self,
        kafka: str,
        pg_admin_url: str,
        tmp: Path,
        *,
        services: Sequence[str] = SERVICE_NAMES,
        token: str = "e2e-token",
        start_date: date | None = None,
        env: Mapping[str, str] | None = None,
        ready_seconds: float = 90,
        stop_seconds: float = 30,
        require_clean_stop: bool = True,
        topic_replication: int | None = 1,
    ) -> None:
        unknown = set(services) - set(SERVICE_NAMES)
        if unknown:
            raise ValueError(f"unknown services: {sorted(unknown)}")
        self.services = tuple(services)
        self.tmp = tmp
        self.token = token
        self.infra = Infra("kafka", tmp, new_topic_prefix(), kafka=kafka, pg_admin_url=pg_admin_url)
        self.topic_prefix = self.infra.topic_prefix
        self.ready_seconds = ready_seconds
        self.stop_seconds = stop_seconds
        self.require_clean_stop = require_clean_stop
        self.logs = {service: tmp / f"{service}.log" for service in self.services}
        # Inherited VCREDIT_* variables (a developer's shell, CI's test settings) would change
        # the services under test; the cluster sets every one it means to.
        self.env: dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith("VCREDIT_")}
        self.env.update(
            {
                "VCREDIT_KAFKA_BOOTSTRAP_SERVERS": kafka,
                "VCREDIT_TOPIC_PREFIX": self.topic_prefix,
                "VCREDIT_BOOTSTRAP_TOKEN": token,
                "VCREDIT_DATA_DIR": str(tmp),
            }
        )
        if topic_replication is not None:
            # One broker by default; `topics create` and the services would ask for three.
            self.env["VCREDIT_TOPIC_REPLICATION_FACTOR"] = str(topic_replication)
        if start_date is not None:
            self.env["VCREDIT_START_DATE"] = start_date.isoformat()
        for service, port in zip(self.services, free_ports(len(self.services)), strict=True):
            self.env[f"VCREDIT_{service.upper()}_PORT"] = str(port)
        self.env.update(env or {})
        # Read back: ``env`` may pin a port.
        self.ports = {service: int(self.env[f"VCREDIT_{service.upper()}_PORT"]) for service in self.services}
        self.urls = {service: f"http://127.0.0.1:{port}" for service, port in self.ports.items()}
        if "risk" in self.urls:
            self.env.setdefault("VCREDIT_NOTIFY_RISK_URL", self.urls["risk"])
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.exit_codes: dict[str, int] = {}
        self.killed: list[str] = []
        # Output of the setup commands, e.g. which topics `topics create` made.
        self.setup_output: dict[str, str] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}

    # --- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Cluster:
        try:
            for service in self.services:
                key = f"VCREDIT_{service.upper()}_DATABASE_URL"
                if key not in self.env:
                    self.env[key] = await self.infra.database_url(service)
            try:
                # A task group, so that when one command fails the other is stopped too.
                async with asyncio.TaskGroup() as group:
                    migrating = group.create_task(self.vcredit("migrate", *self.services))
                    creating = group.create_task(self.vcredit("topics", "create"))
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None
            self.setup_output = {"migrate": migrating.result(), "topics": creating.result()}
            for service in self.services:
                await self._spawn(service)
            await self._wait_ready()
        except BaseException as exc:
            # __aexit__ does not run when __aenter__ fails: stop what was started here.
            await self._stop()
            self._annotate(exc)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()
        if exc is not None:
            self._annotate(exc)
        elif self.require_clean_stop and (unclean := self.unclean_stops()):
            raise ClusterError(f"services did not stop cleanly: {unclean}\n{self.report()}")

    async def _spawn(self, service: str) -> None:
        # Appended to: a restarted service's log keeps what it wrote before it was killed.
        with self.logs[service].open("ab") as log:
            self.processes[service] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "vcredit",
                "serve",
                service,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def kill(self, service: str) -> int:
        """SIGKILL the service's process, as a crash or the OOM killer would; its exit status."""
        process = self.processes[service]
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return await process.wait()

    async def restart(self, service: str) -> None:
        """Start a stopped or killed service again and wait until it is ready."""
        if self.processes[service].returncode is None:
            raise ClusterError(f"{service} is still running")
        await self._spawn(service)
        await self._wait_ready([service])

    async def _wait_ready(self, services: Sequence[str] | None = None) -> None:
        pending = set(services or self.services)
        deadline = time.monotonic() + self.ready_seconds
        async with httpx.AsyncClient(timeout=2) as http:
            while pending:
                for service in sorted(pending):
                    code = self.processes[service].returncode
                    if code is not None:
                        raise ClusterError(f"{service} exited with {code} before it was ready")
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get(f"{self.urls[service]}/readyz")).status_code == 200:
                            pending.discard(service)
                if pending and time.monotonic() > deadline:
                    raise ClusterError(f"not ready within {self.ready_seconds:g}s: {sorted(pending)}")
                await asyncio.sleep(0.2)

    async def _stop(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        try:
            for process in self.processes.values():
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(signal.SIGTERM)
            await asyncio.gather(*(self._reap(s, p) for s, p in self.processes.items()))
        finally:
            # Also when the wait above was cancelled: no server may outlive the cluster.
            for process in self.processes.values():
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await self.infra.drop_databases()

    async def _reap(self, service: str, process: asyncio.subprocess.Process) -> None:
        try:
            self.exit_codes[service] = await asyncio.wait_for(process.wait(), self.stop_seconds)
        except TimeoutError:
            self.killed.append(service)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            self.exit_codes[service] = await process.wait()

    def _annotate(self, exc: BaseException) -> None:
        if not isinstance(exc, asyncio.CancelledError | KeyboardInterrupt) and self.processes:
            exc.add_note(self.report())

    # --- use -------------------------------------------------------------------------------

    async def vcredit(self, *args: str, seconds: float = 180) -> str:
        """Run a `vcredit` command against this cluster (its databases, topics and token)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vcredit",
            *args,
            env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), seconds)
        except BaseException as exc:  # also cancellation: the command must not outlive its caller
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(exc, TimeoutError):
                raise ClusterError(f"vcredit {' '.join(args)} did not finish within {seconds:g}s") from None
            raise
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise ClusterError(f"vcredit {' '.join(args)} exited with {proc.returncode}:\n{text[-3000:]}")
        return text

    def client(self, service: str) -> httpx.AsyncClient:
        """The service's HTTP client, with the bootstrap (all-roles) token. Owned by the
        cluster, which closes it on exit."""
        if service not in self._clients:
            self._clients[service] = httpx.AsyncClient(
                base_url=self.urls[service],
                headers={"Authorization": f"Bearer {self.token}", "X-Query-Purpose": "vcredit end-to-end test"},
                timeout=30,
            )
        return self._clients[service]

    @property
    def pids(self) -> dict[str, int]:
        return {service: process.pid for service, process in self.processes.items()}

    def rss(self) -> dict[str, int]:
        """Resident memory in bytes of each service process still running."""
        sizes = {service: rss_bytes(process.pid) for service, process in self.processes.items()}
        return {service: size for service, size in sizes.items() if size is not None}

    def log(self, service: str) -> str:
        path = self.logs[service]
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, service: str, lines: int = 40, width: int = 400) -> str:
        kept = [line for line in self.log(service).splitlines() if not _ACCESS_LINE.search(line)]
        # Some lines (aiokafka's partition assignments) run to thousands of characters.
        return "\n".join(line if len(line) <= width else line[:width] + " [...]" for line in kept[-lines:])

    def unclean_stops(self) -> dict[str, str]:
        """Services that needed SIGKILL or exited other than by SIGTERM's graceful path
        (uvicorn shuts down, then re-raises SIGTERM so the exit status shows it)."""
        unclean = {service: "killed after SIGTERM timed out" for service in self.killed}
        for service, code in self.exit_codes.items():
            if service not in unclean and code not in (0, -signal.SIGTERM):
                unclean[service] = f"exit status {code}"
        return unclean

    def report(self) -> str:
        parts = [f"cluster {self.topic_prefix} (logs in {self.tmp}):"]
        for service in self.services:
            process = self.processes.get(service)
            if process is None:
                state = "not started"
            elif service in self.exit_codes:
                state = f"exit status {self.exit_codes[service]}" + (" (killed)" if service in self.killed else "")
            else:
                state = "running" if process.returncode is None else f"exit status {process.returncode}"
            parts.append(f"--- {service} ({self.urls[service]}, {state}), last lines of its log:")
            parts.append(self.log_tail(service) or "(empty)")
        return "\n".join(parts)

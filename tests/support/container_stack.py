"""The whole system as containers: docker-compose.yml run by podman-compose on images built
from Debian's packages (deploy/podman/images.sh), as an operator without a registry would.

``ContainerStack`` answers what the end-to-end helpers ask of a running system (``client``,
``services``, ``env``, ``topic_prefix``, ``infra``, ``kill``, ``restart``), as
``vcredit.cluster.Cluster`` does for processes, so the same scenario and the same fault
invariants run against either. ``env`` holds the addresses of the containers' PostgreSQL
and Kafka as the host reaches them (compose publishes them on loopback).

The stack starts and stops with deploy/podman/stack.sh, the operators' command
(docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import yaml

from shared.settings import SERVICE_NAMES
from vcredit.infra import Infra

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
IMAGES_SCRIPT = ROOT / "deploy" / "podman" / "images.sh"
STACK_SCRIPT = ROOT / "deploy" / "podman" / "stack.sh"
OPERATIONS = ROOT / "docs" / "operations.md"
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
# What docker-compose.yml publishes on loopback.
POSTGRES = "postgresql+asyncpg://vcredit:vcredit@127.0.0.1:5433"
KAFKA = "127.0.0.1:29092"
PORTS = {"registry": 8001, "scoring": 8002, "loans": 8003, "risk": 8004, "notify": 8005}


class StackError(RuntimeError):
    pass


def documented_commands() -> list[str]:
    """The command lines of docs/operations.md's podman block, comments stripped."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("### podman") :]
    start = section.index("```bash\n") + len("```bash\n")
    block = section[start : section.index("\n```", start)]
    lines = [line.split("  #", 1)[0].rstrip() for line in block.splitlines()]
    return [line for line in lines if line]


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def build_images() -> tuple[dict[str, str], str]:
    """Build (or find in podman's cache) every image of the stack: name -> reference, and
    the build's report of sizes and seconds."""
    done = subprocess.run(
        [str(IMAGES_SCRIPT)], capture_output=True, text=True, env=podman_env(), timeout=1800, check=False
    )
    if done.returncode != 0:
        raise StackError(f"deploy/podman/images.sh exited with {done.returncode}:\n{done.stderr[-4000:]}")
    images = dict(line.split("=", 1) for line in done.stdout.split())
    report = "\n".join(line for line in done.stderr.splitlines() if line.startswith("images.sh:"))
    return images, report


async def run(*args: str, seconds: float = 300, check: bool = True) -> str:
    """A podman command's standard output; its standard error (podman's warnings) only in
    the error raised when it fails."""
    proc = await asyncio.create_subprocess_exec(
        *args, env=podman_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    if check and proc.returncode != 0:
        raise StackError(
            f"{' '.join(args)} exited with {proc.returncode}:\n{out.decode(errors='replace')[-2000:]}"
            f"{err.decode(errors='replace')[-2000:]}"
        )
    return out.decode(errors="replace")


class ContainerStack:
    """Async context manager: ``deploy/podman/stack.sh up`` on entry, ``down -v`` (volumes
    too) on exit."""

    def __init__(
        self,
        tmp: Path,
        *,
        project: str = "vcredit-e2e",
        start_date: date | None = None,
        ready_seconds: float = 240,
    ) -> None:
        self.tmp = tmp
        self.project = project
        self.services: tuple[str, ...] = SERVICE_NAMES
        self.token = secrets.token_urlsafe(24)
        self.topic_prefix = ""
        self.up_output = ""
        self.ready_seconds = ready_seconds
        self.urls = {service: f"http://127.0.0.1:{PORTS[service]}" for service in self.services}
        self.env: dict[str, str] = {
            f"VCREDIT_{service.upper()}_DATABASE_URL": f"{POSTGRES}/vcredit_{service}" for service in self.services
        }
        self.env["VCREDIT_KAFKA_BOOTSTRAP_SERVERS"] = KAFKA
        self.infra = Infra("kafka", tmp, self.topic_prefix, kafka=KAFKA, pg_admin_url=f"{POSTGRES}/vcredit")
        self.override = tmp / "compose.override.yml"
        # deploy/podman/stack.sh's settings (it finds the images itself, from podman's cache).
        self.compose_env = podman_env() | {
            "VCREDIT_BOOTSTRAP_TOKEN": self.token,
            "VCREDIT_COMPOSE_PROJECT": project,
            "VCREDIT_COMPOSE_OVERRIDE": str(self.override),
        }
        settings: dict[str, str] = {}
        if start_date is not None:
            settings["VCREDIT_START_DATE"] = start_date.isoformat()
            self.env["VCREDIT_START_DATE"] = start_date.isoformat()
        self.override.write_text(
            yaml.safe_dump(
                {"services": {name: {"environment": settings} for name in (*self.services, "migrate")}}
                if settings
                else {"services": {}}
            )
        )
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.restarts: dict[str, str] = {}

    # --- podman-compose ---------------------------------------------------------------------

    async def container(self, service: str) -> str:
        out = await run(
            "podman",
            "ps",
            "-a",
            "--filter",
            f"label=io.podman.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            "{{.Names}}",
        )
        names = out.split()
        if len(names) != 1:
            raise StackError(f"expected one container of {service}, found {names}")
        return names[0]

    async def inspect(self, service: str) -> dict[str, Any]:
        data = json.loads(await run("podman", "container", "inspect", await self.container(service)))
        return dict(data[0])

    async def state(self, service: str) -> dict[str, Any]:
        return dict((await self.inspect(service))["State"])

    async def exec(self, service: str, *command: str, check: bool = True) -> str:
        return await run("podman", "exec", await self.container(service), *command, check=check)

    async def health_check(self, service: str) -> tuple[bool, str]:
        """Runs the container's compose health check once, as podman's timer would: whether
        it passed, and what it printed."""
        proc = await asyncio.create_subprocess_exec(
            "podman",
            "healthcheck",
            "run",
            await self.container(service),
            env=podman_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode == 0, out.decode(errors="replace").strip()

    # --- life cycle -------------------------------------------------------------------------

    async def __aenter__(self) -> ContainerStack:
        try:
            await self.up()
        except BaseException:
            report = await self.report()
            await self.down()
            raise StackError(f"the stack did not start:\n{report}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()

    async def up(self) -> None:
        """The commands docs/operations.md gives operators, as written (but the installs),
        with this stack's project and override; the token is the one they made. Then every
        service's /readyz as the host sees it."""
        began = time.monotonic()
        token_file = self.tmp / "bootstrap-token"
        script = "\n".join(
            [
                *(line for line in documented_commands() if not line.startswith(("sudo ", "pip "))),
                f'printf %s "$VCREDIT_BOOTSTRAP_TOKEN" > {token_file}',
            ]
        )
        env = {k: v for k, v in self.compose_env.items() if k != "VCREDIT_BOOTSTRAP_TOKEN"}
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            script,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 1800)
        self.up_output = out.decode(errors="replace")
        if proc.returncode != 0:
            raise StackError(
                f"docs/operations.md's podman commands exited with {proc.returncode}:\n{self.up_output[-6000:]}"
            )
        self.token = token_file.read_text()
        await self._wait_ready(self.services, began)

    async def down(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        await self.stack_sh("down", "-v")

    async def stack_sh(self, *args: str, seconds: float = 1800) -> str:
        proc = await asyncio.create_subprocess_exec(
            str(STACK_SCRIPT),
            *args,
            env=self.compose_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), seconds)
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise StackError(f"deploy/podman/stack.sh {' '.join(args)} exited with {proc.returncode}:\n{text[-6000:]}")
        return text

    async def wait_healthy(self, services: Sequence[str], began: float | None = None) -> int:
        """Run the health checks until each has passed once, as compose's retries allow; the
        number of failed runs before that."""
        began = time.monotonic() if began is None else began
        pending, failed, last = set(services), 0, {}
        while pending:
            for service in sorted(pending):
                state = await self.state(service)
                if state["Status"] == "exited":
                    raise StackError(f"{service} exited with {state['ExitCode']} before it was healthy")
                passed, last[service] = await self.health_check(service)
                if passed:
                    pending.discard(service)
                else:
                    failed += 1
            if pending and time.monotonic() - began > self.ready_seconds:
                raise StackError(f"not healthy within {self.ready_seconds:g}s: {[(s, last[s]) for s in pending]}")
            if pending:
                await asyncio.sleep(1)
        return failed

    async def _wait_ready(self, services: Sequence[str], began: float) -> None:
        pending = set(services)
        async with httpx.AsyncClient(timeout=5) as http:
            while pending:
                for service in sorted(pending):
                    try:
                        if (await http.get(f"{self.urls[service]}/readyz")).status_code == 200:
                            pending.discard(service)
                    except httpx.TransportError:
                        pass
                if pending and time.monotonic() - began > self.ready_seconds:
                    raise StackError(f"/readyz not 200 within {self.ready_seconds:g}s: {sorted(pending)}")
                await asyncio.sleep(0.5)

    async def kill(self, service: str) -> int:
        """SIGKILL the service's container, as a crash or the OOM killer would; its exit code."""
        name = await self.container(service)
        await run("podman", "kill", "--signal", "KILL", name)
        return int((await run("podman", "wait", "--condition", "exited", name)).strip() or "0")

    async def restart(self, service: str) -> None:
        """Start a killed service's container again (unless its restart policy already did)
        and wait until it is healthy and ready."""
        began = time.monotonic()
        state = await self.state(service)
        if state["Running"]:
            self.restarts[service] = "restarted by its restart policy"
        else:
            await run("podman", "start", await self.container(service))
            self.restarts[service] = "started again"
        await self.wait_healthy([service], began)
        await self._wait_ready([service], began)

    # --- clients and reports ----------------------------------------------------------------

    def client(self, service: str) -> httpx.AsyncClient:
        """The service's HTTP client with the bootstrap (all-roles) token; closed on exit."""
        if service not in self._clients:
            self._clients[service] = httpx.AsyncClient(
                base_url=self.urls[service],
                headers={"Authorization": f"Bearer {self.token}", "X-Query-Purpose": "vcredit container test"},
                timeout=30,
            )
        return self._clients[service]

    async def report(self) -> str:
        parts = [f"stack {self.project}:", await run("podman", "ps", "-a", "--format", "{{.Names}} {{.Status}}")]
        for service in ("kafka", "postgres", "migrate", *self.services):
            try:
                name = await self.container(service)
            except StackError as exc:
                parts.append(f"--- {service}: {exc}")
                continue
            logs = await run("podman", "logs", "--tail", "30", name, check=False)
            parts.append(f"--- {service} ({name}), last lines of its log:\n{logs}")
        return "\n".join(parts)

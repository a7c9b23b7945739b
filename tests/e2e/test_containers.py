"""The system as containers (issue 23): the images built with podman from Debian's packages
(deploy/podman/images.sh), docker-compose.yml run by podman-compose (Kafka, PostgreSQL, the
migrate job, the five services), and against it the circuit-breaker scenario and a service
container killed and restarted under a repayment stream with nothing lost.

Image sizes and build times, the image's audit and each scenario's result are printed
whatever pytest's -r flags. One stack for the module, in file order; it is removed with its
volumes at the end."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio

from shared.settings import SERVICE_NAMES
from tests.conftest import missing
from tests.e2e import breaker_scenario
from tests.e2e.bank_core import BankCore
from tests.e2e.invariants import Books
from tests.e2e.lending import lend
from tests.support.container_stack import ContainerStack, StackError, build_images, podman_env

# Building the images on a machine that has none (about three minutes on two cores), then the
# stack's start, the scenario's closes of business and two kills: each wait keeps its bound.
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1800)]
# The stack is the module's: its tests share its event loop.
on_the_stack = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 90  # cross-service effects, containers on a loaded two-core machine
# tests/e2e/test_faults.py's village and households would do; its own keep the stack's
# figures apart from the scenario's.
TOWNSHIP, VILLAGE = "410102009", "410102009001"


def _print(capsys: pytest.CaptureFixture[str], title: str, lines: list[str]) -> None:
    text = "\n".join([f"--- containers: {title}", *(f"    {line}" for line in lines)])
    with capsys.disabled():
        print("\n" + text, flush=True)


@pytest.fixture(scope="module")
def images() -> Iterator[tuple[dict[str, str], str]]:
    for tool in ("podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (scripts/test.sh installs Debian's podman, runc and mmdebstrap)")
    try:
        yield build_images()
    except StackError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    images: tuple[dict[str, str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ContainerStack]:
    # The images are built (and tested) first; stack.sh finds them in podman's cache.
    del images
    tmp = tmp_path_factory.mktemp("containers")
    async with ContainerStack(tmp, start_date=breaker_scenario.START) as running:
        yield running


async def _accepted_at_least(bank: BankCore, n: int, what: str) -> None:
    deadline = time.monotonic() + SECONDS
    while len(bank.tally.accepted) < n:
        assert time.monotonic() < deadline, f"fewer than {n} repayments accepted after {SECONDS}s: {what}"
        await asyncio.sleep(0.1)


def _in_image(image: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "--entrypoint", command[0], image, *command[1:]],
        capture_output=True,
        text=True,
        env=podman_env(),
        check=False,
    )


def test_the_images_build_from_debian_packages_and_carry_no_installer(
    images: tuple[dict[str, str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    refs, report = images
    assert set(refs) == {"vcredit", "kafka", "postgres"}, refs
    image = refs["vcredit"]
    # The Dockerfile's promise: nothing installs at run time.
    found = _in_image(
        image,
        "python",
        "-c",
        "import importlib.util as u; print([m for m in ('pip', 'setuptools', 'wheel', 'ensurepip') if u.find_spec(m)])",
    )
    assert (found.returncode, found.stdout.strip()) == (0, "[]"), found
    tools = _in_image(image, "sh", "-c", "for t in pip pip3 gcc cc c++ make ld; do command -v $t; done; true")
    assert (tools.returncode, tools.stdout.strip()) == (0, ""), tools
    config = json.loads(
        subprocess.run(
            ["podman", "image", "inspect", image], capture_output=True, text=True, env=podman_env(), check=True
        ).stdout
    )[0]
    assert config["Config"]["User"] == "vcredit"
    # Kept in the Docker format, which has a field for it (OCI images drop it).
    assert config["Healthcheck"]["Test"][-1] == "/healthz", config.get("Healthcheck")
    uid = _in_image(image, "id", "-u")
    assert uid.stdout.strip() == "10001", uid
    _print(capsys, "images (podman, bases from Debian's packages)", report.splitlines())


def test_the_image_has_no_dependency_with_a_known_vulnerability(
    images: tuple[dict[str, str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    refs, _ = images
    output = ROOT / "artifacts" / "pip-audit-image.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit.py"), "--image", refs["vcredit"], "--output", str(output)],
        capture_output=True,
        text=True,
        env=podman_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    _print(capsys, "pip-audit of the image's environment", done.stdout.splitlines())


@on_the_stack
async def test_every_service_runs_as_uid_10001_read_only_and_answers_its_health_checks(
    stack: ContainerStack, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = []
    for service in SERVICE_NAMES:
        container = await stack.inspect(service)
        assert container["Config"]["User"] == "10001:10001", container["Config"]["User"]
        assert container["HostConfig"]["ReadonlyRootfs"] is True
        assert (await stack.exec(service, "id", "-u")).strip() == "10001"
        written = await stack.exec(service, "sh", "-c", "touch /app/probe 2>&1; echo $?", check=False)
        assert "Read-only file system" in written, written
        failed = await stack.wait_healthy([service])
        ready = await stack.client(service).get("/readyz")
        assert ready.status_code == 200, ready.text
        lines.append(f"{service}: uid 10001, read-only root, health check passed ({failed} failed runs), /readyz 200")
    migrate = await stack.state("migrate")
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0)
    for service in ("kafka", "postgres"):
        failed = await stack.wait_healthy([service])
        state = await stack.state(service)
        lines.append(f"{service}: {state['Status']}, health check passed ({failed} failed runs)")
    _print(capsys, "the stack", [*lines, "migrate: exited 0"])


@on_the_stack
async def test_the_circuit_breaker_scenario_passes_against_the_containers(
    stack: ContainerStack, capsys: pytest.CaptureFixture[str]
) -> None:
    await breaker_scenario.run(stack)
    _print(
        capsys,
        "circuit-breaker scenario",
        [
            "village over 3% frozen, its township halted, the write-off split 30/20/50 "
            "(government 3776.95, bank 2517.97, insurer 6294.91), freeze and halt lifted, lending resumed: passed"
        ],
    )


@on_the_stack
async def test_a_service_container_killed_and_restarted_loses_nothing(
    stack: ContainerStack, capsys: pytest.CaptureFixture[str]
) -> None:
    loans_client = stack.client("loans")
    today = date.fromisoformat((await loans_client.get("/v1/business-date")).json()["business_date"])
    loan_ids = await lend(stack, today, township=TOWNSHIP, village=VILLAGE, households=4, seconds=SECONDS, first=101)
    bank = BankCore(stack.urls["loans"], stack.token)
    books = Books(stack)
    lines = []
    try:
        for service in ("loans", "risk"):
            before = len(bank.tally.accepted)
            stop = asyncio.Event()
            stream = asyncio.create_task(bank.stream(loan_ids, stop))
            try:
                await _accepted_at_least(bank, before + 10, "the stream under way")
                status = await stack.kill(service)
                await stack.restart(service)
                await _accepted_at_least(bank, len(bank.tally.accepted) + 10, f"after {service}'s restart")
            finally:
                stop.set()
                await stream
            lines.append(f"{service}: SIGKILL (exit {status}) under the repayment stream; {stack.restarts[service]}")
        settled = await books.settle(180)
        ledger = await books.check_ledger(bank.tally)
        diffs = await books.replay_diff()
        assert not any(diffs.values()), diffs
        lines += [
            bank.tally.summary(),
            f"ledger total {ledger['ledger total']} = accepted total {bank.tally.accepted_total}"
            f" ({ledger['repayments booked']} repayments booked, each once)",
            f"settled in {settled.seconds:.1f}s: events per service {settled.events}, none missing from any inbox",
            f"replay diff = {sum(diffs.values())}",
        ]
    finally:
        await bank.aclose()
        await books.close()
    _print(capsys, "a service container killed and restarted", lines)

"""The Kubernetes manifests run by `podman kube play` (issue 23): deploy/podman/kube.sh up
renders deploy/k8s, plays the migrate Job's pod and the five Deployments on a podman network
next to Kafka and PostgreSQL containers, and here every service is checked from a container on
that network, by its Service name, as a pod in the cluster would reach it: ready, running as
uid 10001 on a read-only root, and one registration carried from registry to scoring by Kafka.

Nothing is published on the host. The stack is the module's, under its own prefix (so a
`kube.sh up` of an operator's, prefix vckube, is left alone), and removed at the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.support.container_stack import podman_env
from tests.support.system import resident_id

# Building the images on a machine that has none takes about three minutes on two cores; the
# stack's start about two more; stopping it up to 45 s (the manifests' grace period).
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "podman" / "kube.sh"
IMAGE = "localhost/vcredit:local"
# Not vckube-...: `kube.sh down` with the default prefix removes names matching ^vckube-.
PREFIX = "vckubetest"
PORTS = {"registry": 8001, "scoring": 8002, "loans": 8003, "risk": 8004, "notify": 8005}
REPLICAS = {"registry": 2}  # registry.yaml; the others have no replicas (their HPA owns it)
SECONDS = 90  # an event from registry through Kafka to scoring, on a loaded two-core machine
TOWNSHIP, VILLAGE = "410102011", "410102011001"


@dataclass
class KubeStack:
    token: str
    up_seconds: float
    report: str

    def containers(self, service: str) -> list[str]:
        return [f"{PREFIX}-{service}-pod-{i}-{service}" for i in range(REPLICAS.get(service, 1))]


def _podman(*args: str, check: bool = True, stdin: str | None = None, seconds: float = 120) -> str:
    done = subprocess.run(
        ["podman", *args], input=stdin, capture_output=True, text=True, env=podman_env(), timeout=seconds
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def _kube(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUBE), command], capture_output=True, text=True, env=env, timeout=900)


def _on_network(script: str, **env: str) -> str:
    """A Python script's output, run in a container of the image on the stack's network."""
    settings = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    return _podman(
        "run", "-i", "--rm", "--network", PREFIX, *settings, "--entrypoint", "python", IMAGE, "-",
        stdin=script, seconds=SECONDS + 60,
    )  # fmt: skip


def _print(capsys: pytest.CaptureFixture[str], title: str, lines: list[str]) -> None:
    text = "\n".join([f"--- kube play: {title}", *(f"    {line}" for line in lines)])
    with capsys.disabled():
        print("\n" + text, flush=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[KubeStack]:
    for tool in ("podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (scripts/test.sh installs Debian's podman, runc and mmdebstrap)")
    token = os.urandom(24).hex()
    env = podman_env() | {"VCREDIT_KUBE_PREFIX": PREFIX, "VCREDIT_BOOTSTRAP_TOKEN": token}
    _kube("down", env)  # what an interrupted run left
    started = time.monotonic()
    up = _kube("up", env)
    seconds = time.monotonic() - started
    try:
        if up.returncode != 0:
            pytest.fail(f"kube.sh up exited with {up.returncode}:\n{up.stderr[-6000:]}", pytrace=False)
        assert f"token={token}" in up.stdout.split()
        report = "\n".join(line for line in up.stderr.splitlines() if line.startswith(("kube", "images.sh")))
        yield KubeStack(token=token, up_seconds=seconds, report=report)
    finally:
        down = _kube("down", env)
        assert down.returncode == 0, down.stderr
        left = _podman("ps", "-a", "--filter", f"name=^{PREFIX}-", "--format", "{{.Names}}")
        left += _podman("volume", "ls", "--filter", f"name=^{PREFIX}-", "--format", "{{.Name}}")
        left += _podman("pod", "ps", "--filter", f"name=^{PREFIX}-", "--format", "{{.Name}}")
        assert not left.split(), f"kube.sh down left {left.split()}"
        network = subprocess.run(["podman", "network", "exists", PREFIX], env=podman_env(), check=False)
        assert network.returncode == 1, f"kube.sh down left the network {PREFIX}"


READY = """
import json, urllib.request
for service, port in json.loads(input()).items():
    with urllib.request.urlopen(f"http://{service}:{port}/readyz", timeout=15) as r:
        print(service, r.status, r.read().decode())
"""


def test_every_service_is_ready_by_its_service_name(stack: KubeStack, capsys: pytest.CaptureFixture[str]) -> None:
    _print(capsys, f"up in {stack.up_seconds:.0f} s", stack.report.splitlines())
    out = _on_network(READY.replace("input()", repr(json.dumps(PORTS))))
    answers = {line.split()[0]: line.split(maxsplit=2)[1:] for line in out.splitlines()}
    assert set(answers) == set(PORTS), out
    for service, (status, body) in answers.items():
        assert status == "200", (service, body)
        assert json.loads(body)["checks"] == {"database": "ok", "bus": "ok"}, (service, body)
    # registry's two replicas are two pods, both behind the name `registry`.
    addresses = _on_network("import socket; print(sorted(socket.gethostbyname_ex('registry')[2]))")
    assert len(json.loads(addresses.replace("'", '"'))) == REPLICAS["registry"], addresses


def test_the_manifests_security_context_holds(stack: KubeStack, capsys: pytest.CaptureFixture[str]) -> None:
    lines = []
    for service in PORTS:
        for container in stack.containers(service):
            config = json.loads(_podman("inspect", container))[0]
            assert config["HostConfig"]["ReadonlyRootfs"] is True, container
            assert config["Config"]["User"] == "10001:10001", container
            assert "no-new-privileges" in config["HostConfig"]["SecurityOpt"], container
            # runAsUser / runAsGroup, and readOnlyRootFilesystem as the process sees it; the
            # emptyDir on /tmp is the one writable place.
            out = _podman(
                "exec", container, "sh", "-c",
                "id -u; id -g; grep CapEff /proc/self/status; touch /probe 2>&1 || true; "
                "touch /tmp/probe && rm /tmp/probe && echo tmp-writable",
            )  # fmt: skip
            uid, gid, caps, touch, tmp = out.strip().splitlines()
            assert (uid, gid) == ("10001", "10001"), (container, out)
            assert caps.split()[1] == "0000000000000000", (container, caps)  # capabilities: drop ALL
            assert "Read-only file system" in touch, (container, touch)
            assert tmp == "tmp-writable", (container, out)
        # (The init container, wait-for-migrations, is gone: podman removes a one-shot init
        # container once it has exited 0, and starts the pod's containers only then.)
        lines.append(f"{service}: uid/gid 10001, read-only root, no capabilities, /tmp writable")
    _print(capsys, "security context", lines)


FLOW = """
import json, os, time, urllib.error, urllib.request, uuid

deadline = time.monotonic() + float(os.environ["SECONDS"])
failures = []

def call(method, url, body=None, **headers):
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": "Bearer " + os.environ["TOKEN"], "Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")

def created(url, body):
    # As tests/e2e/lending.py's until_answered: one Idempotency-Key, retried while the
    # service answers 5xx; each such answer is reported.
    key = str(uuid.uuid4())
    while True:
        status, answer = call("POST", url, body, **{"Idempotency-Key": key})
        if status < 500 or time.monotonic() > deadline:
            break
        failures.append([url, status, answer])
        time.sleep(0.5)
    assert status == 201, (status, answer, failures)
    return answer

township, village = os.environ["TOWNSHIP"], os.environ["VILLAGE"]
created("http://registry:8001/v1/townships", {"code": township, "name": "河口镇"})
body = {"code": village, "name": "上河村", "township_code": township}
created("http://registry:8001/v1/villages", body)
household = created("http://registry:8001/v1/households", {
    "id_number": os.environ["ID_NUMBER"], "name": "农户", "village_code": village,
    "poor_household": False, "profile": {"head_healthy": True, "income_project": True},
})["household_id"]
started = time.monotonic()
while True:
    status, rating = call("GET", f"http://scoring:8002/v1/households/{household}/rating", **{"X-Query-Purpose": "test"})
    if status == 200 or time.monotonic() > deadline:
        break
    time.sleep(0.5)
seconds = time.monotonic() - started
print(
    json.dumps({"household": household, "status": status, "rating": rating, "seconds": seconds, "failures": failures})
)
"""


def test_a_registration_is_rated_by_scoring(stack: KubeStack, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        out = _on_network(
            FLOW,
            TOKEN=stack.token,
            TOWNSHIP=TOWNSHIP,
            VILLAGE=VILLAGE,
            ID_NUMBER=resident_id(11, region=TOWNSHIP[:6]),
            SECONDS=str(SECONDS),
        )
    except AssertionError as exc:
        logs = [
            subprocess.run(
                ["podman", "logs", "--tail", "40", c], capture_output=True, text=True, env=podman_env()
            ).stderr
            for c in stack.containers("registry")
        ]
        raise AssertionError(f"{exc}\n--- registry's logs:\n" + "\n".join(logs)) from None
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == 200, f"no rating within {SECONDS}s: {result}"
    rating = result["rating"]
    assert rating["subject_id"] == result["household"] and rating["village_code"] == VILLAGE, rating
    assert rating["status"] == "pending_notice" and rating["grade"], rating
    seconds = result["seconds"]
    line = f"household {result['household']} rated {rating['grade']} ({rating['score']}) {seconds:.1f} s after its POST"
    failures = [f"retried after {status} from {url}: {answer}" for url, status, answer in result["failures"]]
    _print(capsys, "registry -> Kafka -> scoring", [line, *failures])

"""What a schema cannot check in deploy/ and docker-compose.yml: that the manifests fit the
code they run (ports, probes, settings, topics, the migration order) and hold no secrets.
The schemas themselves: scripts/validate_deploy.py (CI)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from shared.messaging import topics_of
from shared.runtime import STOP_SECONDS
from shared.settings import SERVICE_NAMES, CommonSettings
from tests.conftest import missing
from vcredit.cli import TOPICS_FILE
from vcredit.services import SETTINGS_CLASSES, load_spec

ROOT = Path(__file__).resolve().parents[3]
Doc = dict[str, Any]


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate_deploy = _module(ROOT / "scripts" / "validate_deploy.py")
healthcheck = _module(ROOT / "deploy" / "healthcheck.py")


@pytest.fixture(scope="module")
def manifests() -> list[Doc]:
    docs: list[Doc] = validate_deploy.render()[0]
    return docs


@pytest.fixture(scope="module")
def compose() -> Doc:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _containers(doc: Doc) -> list[Doc]:
    return list(validate_deploy.containers(doc))


def _topics() -> dict[str, Doc]:
    return {t["name"]: t for t in tomllib.loads((ROOT / TOPICS_FILE).read_text())["topic"]}


def _quantity(value: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "M": 10**6, "G": 10**9}
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]*)", value).groups()  # type: ignore[union-attr]
    return float(number) * units.get(unit, 1)


def setting_names() -> set[str]:
    """Every environment variable shared/settings.py and the services' settings.py read."""
    prefix = CommonSettings.model_config.get("env_prefix", "")
    names = {f"{prefix}{f}".upper() for f in CommonSettings.model_fields}
    for cls in SETTINGS_CLASSES.values():
        names |= {f"{cls.model_config.get('env_prefix', '')}{f}".upper() for f in cls.model_fields}
    return names


# --- services ---------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_has_a_deployment_and_a_service_on_its_port(manifests: list[Doc], service: str) -> None:
    port = SETTINGS_CLASSES[service]().port
    deployment = _one(manifests, "Deployment", service)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["serve", service, "--host", "0.0.0.0", "--port", str(port)]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    svc = _one(manifests, "Service", service)
    assert svc["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_probes_hit_readyz_and_healthz_on_the_container_port(manifests: list[Doc], service: str) -> None:
    (container,) = _one(manifests, "Deployment", service)["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == SETTINGS_CLASSES[service]().port, probe
    # /readyz gives the database and then the bus 5 s each (shared/runtime.py).
    assert container["readinessProbe"]["timeoutSeconds"] > 2 * 5


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_pods_run_as_the_image_user_read_only_and_stop_in_time(manifests: list[Doc], service: str) -> None:
    uid = int(re.search(r"--uid (\d+)", (ROOT / "deploy" / "Dockerfile").read_text()).group(1))  # type: ignore[union-attr]
    spec = _one(manifests, "Deployment", service)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == uid
    assert spec["automountServiceAccountToken"] is False
    for container in spec["initContainers"] + spec["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    (main,) = spec["containers"]
    assert "/tmp" in {m["mountPath"] for m in main["volumeMounts"]}
    # The runtime waits up to STOP_SECONDS for its tasks, then for the bus, then the database.
    pre_stop = int(main["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + 3 * STOP_SECONDS
    # Each service stayed under 300 MB RSS in our measurements.
    assert _quantity(main["resources"]["requests"]["memory"]) >= 300e6
    assert _quantity(main["resources"]["limits"]["memory"]) > _quantity(main["resources"]["requests"]["memory"])


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_pods_wait_for_their_schema_and_see_credential_updates(manifests: list[Doc], service: str) -> None:
    spec = _one(manifests, "Deployment", service)["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert f"vcredit migrate --check {service}" in " ".join(init["command"])
    assert {e["name"] for e in init["env"]} == {f"VCREDIT_{service.upper()}_DATABASE_URL"}
    (main,) = spec["containers"]
    config = _one(manifests, "ConfigMap", main["envFrom"][0]["configMapRef"]["name"])
    credentials = Path(config["data"]["VCREDIT_CREDENTIALS_FILE"])
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == str(credentials.parent))
    # A subPath mount would never see the Secret change.
    assert "subPath" not in mount
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "vcredit-credentials"


def test_consumers_scale_within_their_partitions(manifests: list[Doc]) -> None:
    topics = _topics()
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in manifests if d["kind"] == "HorizontalPodAutoscaler"}
    consumers = {s: topics_of(load_spec(s).handlers) for s in SERVICE_NAMES}
    assert set(hpas) == {s for s, consumed in consumers.items() if consumed}
    for service, hpa in hpas.items():
        # A group gives each partition to one member: more pods than partitions idle.
        bound = min(topics[t]["partitions"] for t in consumers[service])
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= bound, service
        assert "replicas" not in _one(manifests, "Deployment", service)["spec"], "the HPA owns the count"


def test_topics_cover_every_service_and_keep_events_forever(manifests: list[Doc]) -> None:
    topics = _topics()
    config = next(d for d in manifests if d["kind"] == "ConfigMap" and "VCREDIT_TOPIC_PARTITIONS" in d["data"])
    for service in SERVICE_NAMES:
        events = topics[f"{service}.events"]
        assert events["retention_ms"] == -1, "events are the system of record"
        assert events["partitions"] == int(config["data"]["VCREDIT_TOPIC_PARTITIONS"])
        assert events["replication_factor"] == int(config["data"]["VCREDIT_TOPIC_REPLICATION_FACTOR"])
        # With acks=all, two replicas hold every acknowledged event (tests/e2e/test_replication.py).
        assert events["min_insync_replicas"] == int(config["data"]["VCREDIT_TOPIC_MIN_INSYNC_REPLICAS"]) == 2
        assert f"{service}.events.dlq" in topics
    generated = next(d for d in manifests if d["kind"] == "ConfigMap" and "topics.toml" in d["data"])
    assert generated["data"]["topics.toml"] == (ROOT / TOPICS_FILE).read_text()


def test_the_job_creates_topics_then_migrates_every_database(manifests: list[Doc]) -> None:
    job = _one(manifests, "Job", "vcredit-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = " ".join(container["command"] + container["args"])
    # Topics first: a pod whose schema is ready starts, and would create a missing topic
    # with the broker's default retention.
    assert re.search(r"vcredit topics create --file (\S+) && vcredit migrate$", script), script
    topics_path = Path(re.search(r"--file (\S+)", script).group(1))  # type: ignore[union-attr]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(topics_path.parent))
    volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert "topics.toml" in _one(manifests, "ConfigMap", volume["configMap"]["name"])["data"]
    urls = {f"VCREDIT_{s.upper()}_DATABASE_URL" for s in SERVICE_NAMES}
    assert urls <= {e["name"] for e in container["env"]}


def test_the_templates_run_by_hand_never_fire_alone(manifests: list[Doc]) -> None:
    rebuild = _one(manifests, "CronJob", "vcredit-rebuild-risk")
    (container,) = _containers(rebuild)
    assert container["args"] == ["rebuild", "risk", "--mode", "distributed"]
    assert {e["name"] for e in container["env"]} == {"VCREDIT_RISK_DATABASE_URL"}
    # A rebuild next to a live risk consumer would fight it over the same rows.
    assert rebuild["spec"]["suspend"] is True and rebuild["spec"]["schedule"] == "0 0 31 2 *"
    cob = _one(manifests, "CronJob", "vcredit-cob")
    assert cob["spec"]["suspend"] is True
    assert "http://loans:8003/v1/cob" in " ".join(_containers(cob)[0]["args"])


# --- settings and secrets -----------------------------------------------------------------------


def _env_names(docs: list[Doc]) -> dict[str, str]:
    """Each VCREDIT_* name the manifests set, with where."""
    names = {}
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("ConfigMap", "Secret"):
            names |= {k: where for k in {**doc.get("data", {}), **doc.get("stringData", {})}}
        for container in _containers(doc):
            for env in container.get("env", []):
                names[env["name"]] = where
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names[ref["key"]] = where
    return {n: w for n, w in names.items() if n.startswith("VCREDIT_")}


def test_every_variable_the_deployments_set_is_a_setting(manifests: list[Doc], compose: Doc) -> None:
    examples = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())
    used = _env_names(manifests) | _env_names(list(examples))
    used |= {n: "docker-compose.yml" for n in compose["x-vcredit-env"]}
    unknown = {n: w for n, w in used.items() if n not in setting_names()}
    assert not unknown, f"not in any settings.py: {unknown}"


def test_compose_and_kubernetes_wire_the_peers_alike(manifests: list[Doc], compose: Doc) -> None:
    config = next(d for d in manifests if d["kind"] == "ConfigMap" and "VCREDIT_NOTIFY_RISK_URL" in d["data"])
    peers = {k: v for k, v in config["data"].items() if k.endswith("_URL")}
    assert peers == {k: v for k, v in compose["x-vcredit-env"].items() if k in peers}
    for url in peers.values():  # Service names and ports of the services they name
        host, port = re.fullmatch(r"http://(\w+):(\d+)", url).groups()  # type: ignore[union-attr]
        assert SETTINGS_CLASSES[host]().port == int(port)
    assert "VCREDIT_KAFKA_BOOTSTRAP_SERVERS" in config["data"]


SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|DATABASE_URL", re.IGNORECASE)


def test_no_secret_value_is_committed(manifests: list[Doc]) -> None:
    assert not [d for d in manifests if d["kind"] == "Secret"], "Secrets are created outside the repository"
    for doc in manifests:
        for container in _containers(doc):
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env["name"]
        if doc["kind"] == "ConfigMap":
            assert not [k for k in doc["data"] if SECRET_NAME.search(k)], doc["metadata"]["name"]
    referenced = {
        (env["valueFrom"]["secretKeyRef"]["name"], env["valueFrom"]["secretKeyRef"]["key"])
        for doc in manifests
        for container in _containers(doc)
        for env in container.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }
    example = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text()))
    shown = {(s["metadata"]["name"], k) for s in example for k in s["stringData"]}
    assert referenced <= shown, "secret.example.yaml lists every key the manifests read"
    for secret in example:
        for key, value in secret["stringData"].items():
            # Placeholders only: "<...>", or an empty list / credentials file.
            assert re.search(r"<[^>]+>", value) or value == "[]", f"{secret['metadata']['name']}.{key}"


# --- docker compose and the image ----------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_compose_runs_each_service_after_the_migrations(compose: Doc, service: str) -> None:
    port = SETTINGS_CLASSES[service]().port
    definition = compose["services"][service]
    assert definition["command"] == ["serve", service, "--host", "0.0.0.0", "--port", str(port)]
    assert definition["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in definition["healthcheck"]["test"]
    assert f"VCREDIT_{service.upper()}_DATABASE_URL" in definition["environment"]


def test_compose_migrates_and_creates_topics(compose: Doc) -> None:
    script = " ".join(compose["services"]["migrate"]["command"])
    assert "vcredit migrate" in script and "vcredit topics create" in script


def test_the_image_holds_the_topics_where_the_cli_looks_and_no_installer() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.search(rf"^COPY {TOPICS_FILE} /app/{TOPICS_FILE}$", runtime, re.MULTILINE)
    assert re.search(r"^WORKDIR /app$", runtime, re.MULTILINE)
    assert "pip install" not in runtime
    # config.env names redis:// as the way replicas share rate limits: the image must carry it.
    assert "install '.[redis]'" in dockerfile


@pytest.mark.parametrize(
    ("argv", "port"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/vcredit", "serve", "loans", "--host", "0.0.0.0"], 8003),
        (["vcredit", "serve", "notify", "--port", "9005"], 9005),
        (["/sbin/docker-init", "--", "vcredit", "serve", "risk", "--port=9004"], 9004),
        (["vcredit", "up", "--host", "0.0.0.0"], 8001),
    ],
)
def test_the_image_healthcheck_finds_the_service_port(argv: list[str], port: int) -> None:
    assert healthcheck.port(argv) == port


def test_the_python_rendering_matches_kubectl() -> None:
    if shutil.which("kubectl") is None:
        missing("no kubectl to compare the Python rendering with")
    rendered = validate_deploy.render()[0]
    # kustomize suffixes generated names with a content hash; the fallback does not.
    text = re.sub(r"(vcredit-(config|topics))-[a-z0-9]{10}\b", r"\1", yaml.safe_dump_all(rendered))
    hashless = list(yaml.safe_load_all(text))

    def key(d: Doc) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    assert sorted(hashless, key=key) == sorted(validate_deploy.render_fallback(), key=key)


# --- docs/operations.md -------------------------------------------------------------------------

OPERATIONS = ROOT / "docs" / "operations.md"


def test_every_vcredit_command_in_the_operations_guide_parses() -> None:
    import shlex

    from vcredit.cli import build_parser

    parser = build_parser()
    subcommands = "|".join(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    commands = re.findall(rf"\bvcredit ((?:{subcommands})\b[^`\n#|;&)\"]*)", OPERATIONS.read_text())
    assert len(commands) > 20
    for command in commands:
        argv = shlex.split(command.replace("<service>", "loans"))
        if len(argv) == 1 or argv[-1] == "...":  # "`vcredit keys`" in prose: the family, not a command
            continue
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"docs/operations.md: vcredit {command.strip()} is not a command of vcredit/cli.py")


def deploy_variables() -> set[str]:
    """The variables the deploy scripts and docker-compose.yml read (not settings of vcredit)."""
    sources = [*ROOT.glob("deploy/**/*.sh"), ROOT / "docker-compose.yml"]
    found: set[str] = set()
    for path in sources:
        text = path.read_text()
        found |= set(re.findall(r"\$\{(VCREDIT_[A-Z_]+[A-Z])\b", text))
    return found


def test_every_setting_the_operations_guide_names_exists() -> None:
    named = set(re.findall(r"\bVCREDIT_[A-Z_]+[A-Z]\b", OPERATIONS.read_text()))
    unknown = named - setting_names() - deploy_variables()
    assert not unknown, f"docs/operations.md names settings no settings.py has: {sorted(unknown)}"


def test_a_topic_a_service_creates_is_configured_as_topics_toml_says() -> None:
    """Services create topics they find missing (shared/bus/kafka.py); one made with the
    broker's defaults would delete events after 7 days."""
    from shared.bus.kafka import DLQ_TOPIC_CONFIG, EVENT_TOPIC_CONFIG

    for name, topic in _topics().items():
        expected = DLQ_TOPIC_CONFIG if name.endswith(".dlq") else EVENT_TOPIC_CONFIG
        assert expected == {"retention.ms": str(topic["retention_ms"]), "cleanup.policy": topic["cleanup_policy"]}, name
        assert (topic["partitions"] == 1) is name.endswith(".dlq"), name

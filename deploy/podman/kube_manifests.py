"""deploy/k8s as `podman kube play` (Debian 12's podman 4.3) can run it: used by kube.sh.

    python3 deploy/podman/kube_manifests.py manifests OUT_DIR   # the workloads to play
    python3 deploy/podman/kube_manifests.py secrets OUT_DIR     # the Secrets, from the environment

`manifests` renders the kustomize base (`kubectl kustomize`, or scripts/validate_deploy.py's
render_fallback without kubectl) and writes to OUT_DIR:

    configmap-<name>.yaml   one file per ConfigMap, for `podman kube play --configmap`
    migrate.yaml            the vcredit-migrate Job's pod template as a Pod
    deployment-<name>.yaml  each Deployment, with the Service whose selector picks it
    workloads               "<pod name> <alias> <container> <replicas>" lines: what to play and wait for

and prints on stderr the rendered resources podman cannot run (Service, CronJob,
HorizontalPodAutoscaler, PodDisruptionBudget): kube.sh stands in for the Services with
network aliases; the others have no podman equivalent.

Everything else is played as rendered, except for these changes (each a podman 4.3 limit
or a single-broker, single-host setting; the comments at each say why):

  - image `vcredit` -> VCREDIT_IMAGE (default localhost/vcredit:local), as an overlay's `images:` would;
  - VCREDIT_TOPIC_REPLICATION_FACTOR and VCREDIT_TOPIC_MIN_INSYNC_REPLICAS 1 (one broker);
  - names prefixed with VCREDIT_KUBE_PREFIX (default vckube): workloads, ConfigMaps, Secrets;
  - `ports` dropped from the containers;
  - `optional: false` written out on secret volumes;
  - restartPolicy OnFailure in the Deployments (init containers would be restarted forever);
  - emptyDir volumes named per workload.

`secrets` writes the two Secrets the services read, as podman 4.3 wants them stored
(`podman secret create NAME FILE`):

    secrets.json       vcredit-secrets (environment variables): {"KEY": "<base64 value>", ...}
    credentials.yaml   vcredit-credentials (the mounted directory): a Secret whose `data`
                       holds each file's content as it is, not base64

from VCREDIT_KUBE_POSTGRES_PASSWORD, VCREDIT_BOOTSTRAP_TOKEN, VCREDIT_KUBE_SIGNING_KEY and
VCREDIT_KUBE_PII_KEY (kube.sh generates them for each run).
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
Doc = dict[str, Any]

PREFIX = os.environ.get("VCREDIT_KUBE_PREFIX", "vckube")
IMAGE = os.environ.get("VCREDIT_IMAGE", "localhost/vcredit:local")
# secret.example.yaml's Secrets the workloads mount or read, by their names in the manifests.
SECRETS = ("vcredit-secrets", "vcredit-credentials")
# Kinds `podman kube play` 4.3 does not create (it supports Pod, Deployment, PersistentVolumeClaim
# and reads ConfigMaps), with what stands in for each here.
UNPLAYABLE = {
    "Service": "stands in: a network alias of the same name on each of its pods",
    "Job": "stands in: its pod template played as a Pod, waited for once (no backoffLimit retries)",
    "CronJob": "none (suspended in the manifests; nothing schedules them here)",
    "HorizontalPodAutoscaler": "none (a Deployment without replicas runs one pod)",
    "PodDisruptionBudget": "none (no evictions on one host)",
}


def _validate_deploy() -> Any:
    path = ROOT / "scripts" / "validate_deploy.py"
    spec = importlib.util.spec_from_file_location("validate_deploy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render() -> tuple[list[Doc], str]:
    docs, how = _validate_deploy().render()
    return list(docs), str(how)


def prefixed(name: str) -> str:
    # podman's pods, secrets and volumes share one namespace per machine, where Kubernetes
    # gives each namespace its own: the prefix keeps this run's apart from anyone else's
    # (and `kube.sh down` removes exactly what carries it).
    return f"{PREFIX}-{name}"


def pod_containers(spec: Doc) -> Iterator[Doc]:
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def adapt_pod_spec(spec: Doc, workload: str, renames: dict[str, str]) -> None:
    for container in pod_containers(spec):
        if container["image"].split(":")[0] == "vcredit":
            container["image"] = IMAGE
        # podman 4.3 publishes every containerPort on the host (hostPort defaults to
        # containerPort: getPodPorts in pkg/specgen/generate/kube/kube.go), so each pod would
        # take 8001-8005 on the host and a second replica would fail to bind. On Kubernetes
        # containerPort is informational; containers on the network reach every port anyway.
        container.pop("ports", None)
        for source in [*container.get("envFrom", []), *container.get("env", [])]:
            ref = source.get("configMapRef") or source.get("secretRef")
            if ref is None:
                value_from = source.get("valueFrom", {})
                ref = value_from.get("configMapKeyRef") or value_from.get("secretKeyRef")
            if ref is not None and ref["name"] in renames:
                ref["name"] = renames[ref["name"]]
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            volume["configMap"]["name"] = renames[volume["configMap"]["name"]]
        if "secret" in volume:
            secret = volume["secret"]
            secret["secretName"] = renames[secret["secretName"]]
            # Kubernetes' default, written out: podman 4.3 dereferences the unset field and
            # crashes (containers/podman#16636, fixed in 4.4).
            secret.setdefault("optional", False)
        if "emptyDir" in volume:
            # podman 4.3 makes an emptyDir a volume named after the pod's volume, shared by
            # every pod with a volume of that name (all five services' `tmp`): one per
            # workload instead (its replicas still share it).
            old, new = volume["name"], prefixed(f"{workload}-{volume['name']}")
            volume["name"] = new
            for container in pod_containers(spec):
                for mount in container.get("volumeMounts", []):
                    if mount["name"] == old:
                        mount["name"] = new


def manifests(out: Path) -> None:
    docs, how = render()
    out.mkdir(parents=True, exist_ok=True)
    renames = {name: prefixed(name) for name in SECRETS}
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            renames[doc["metadata"]["name"]] = prefixed(doc["metadata"]["name"])
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    workloads: list[str] = []
    skipped: dict[str, list[str]] = {}
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "ConfigMap":
            cm = copy.deepcopy(doc)
            cm["metadata"]["name"] = renames[name]
            if name.startswith("vcredit-config"):
                # One broker: topics.toml's replication (3, min ISR 2) cannot be met. The
                # change config.env describes for a smaller cluster.
                cm["data"]["VCREDIT_TOPIC_REPLICATION_FACTOR"] = "1"
                cm["data"]["VCREDIT_TOPIC_MIN_INSYNC_REPLICAS"] = "1"
            (out / f"configmap-{name}.yaml").write_text(yaml.safe_dump(cm, sort_keys=False))
        elif kind == "Job":
            template = copy.deepcopy(doc["spec"]["template"])
            adapt_pod_spec(template["spec"], name, renames)
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {**template.get("metadata", {}), "name": prefixed(name)},
                "spec": template["spec"],
            }
            (out / "migrate.yaml").write_text(yaml.safe_dump(pod, sort_keys=False))
            skipped.setdefault(kind, []).append(name)
        elif kind == "Deployment":
            deployment = copy.deepcopy(doc)
            deployment["metadata"]["name"] = prefixed(name)
            spec = deployment["spec"]["template"]["spec"]
            adapt_pod_spec(spec, name, renames)
            if spec.get("initContainers"):
                # podman 4.3 gives init containers the pod's restart policy: with a
                # Deployment's Always, wait-for-migrations is started again each time it
                # succeeds and the service never starts (containers/podman commit 10e020c,
                # "Init containers should not be restarted", in 4.4). OnFailure runs it once,
                # and still restarts a service that crashes; one that exits 0 (a clean stop)
                # stays down, where Kubernetes would start it again.
                spec["restartPolicy"] = "OnFailure"
            (out / f"deployment-{name}.yaml").write_text(yaml.safe_dump(deployment, sort_keys=False))
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            aliases = [
                s
                for s, service in services.items()
                if all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
            ]
            if len(aliases) != 1:
                raise SystemExit(f"Deployment {name}: expected one Service selecting it, found {aliases}")
            container = deployment["spec"]["template"]["spec"]["containers"][0]["name"]
            replicas = deployment["spec"].get("replicas", 1)
            workloads.append(f"{prefixed(name)} {aliases[0]} {container} {replicas}")
        else:
            skipped.setdefault(kind, []).append(name)
    (out / "workloads").write_text("".join(f"{line}\n" for line in workloads))
    print(f"kube_manifests: {len(docs)} resources rendered [{how}]", file=sys.stderr)
    for kind, names in sorted(skipped.items()):
        print(f"kube_manifests: podman cannot play {kind} {', '.join(names)}: {UNPLAYABLE[kind]}", file=sys.stderr)


def secrets(out: Path) -> None:
    env = os.environ
    password = env["VCREDIT_KUBE_POSTGRES_PASSWORD"]
    values = {
        f"VCREDIT_{service.upper()}_DATABASE_URL": (
            f"postgresql+asyncpg://vcredit:{password}@postgres:5432/vcredit_{service}"
        )
        for service in ("registry", "scoring", "loans", "risk", "notify")
    }
    values |= {
        "VCREDIT_BOOTSTRAP_TOKEN": env["VCREDIT_BOOTSTRAP_TOKEN"],
        "VCREDIT_JWT_SIGNING_KEYS": json.dumps([env["VCREDIT_KUBE_SIGNING_KEY"]]),
        "VCREDIT_JWT_VERIFICATION_KEYS": "[]",
        "VCREDIT_PII_KEY": env["VCREDIT_KUBE_PII_KEY"],
        "VCREDIT_PII_RETIRED_KEYS": "[]",
    }
    # podman 4.3 reads a secretKeyRef's secret as a JSON object of base64 values
    # (k8sSecretFromSecretManager), not as a Secret manifest (4.4 reads both).
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "secrets.json").write_text(json.dumps(encoded))
    # A secret volume, though, wants a Secret manifest, and 4.3 mounts only its `data`
    # (stringData is dropped), each value written as it is without base64-decoding it.
    credentials = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": prefixed("vcredit-credentials")},
        "type": "Opaque",
        "data": {"credentials.json": "[]"},
    }
    (out / "credentials.yaml").write_text(yaml.safe_dump(credentials, sort_keys=False))


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("manifests", "secrets"):
        raise SystemExit(f"usage: {sys.argv[0]} manifests|secrets OUT_DIR")
    out = Path(sys.argv[2])
    manifests(out) if sys.argv[1] == "manifests" else secrets(out)


if __name__ == "__main__":
    main()

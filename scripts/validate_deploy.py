"""Validate the deployment files (CI, .ci/run): the Kubernetes manifests against the
Kubernetes API schemas, and docker-compose.yml with the real `docker compose config`.

    python scripts/validate_deploy.py [--only k8s|compose]

Kubernetes: `kubectl kustomize deploy/k8s` renders the base (kubectl's built-in kustomize,
offline), or, without kubectl, `render_fallback` does what this kustomization uses of
kustomize (tests/unit/project/test_deploy.py holds it to kubectl's output). Every resource, and
secret.example.yaml's, must pass kubernetes-validate in strict mode (unknown fields are
errors) for K8S_VERSION; a kind without a schema is an error too, not a warning.

Compose: the real `docker compose config`, so CI accepts exactly what compose will. Unless
a `docker compose` is installed, the plugin is built once from the Go module proxy
(COMPOSE_VERSION) into .cache/ (git-ignored, like the Kafka jars of deploy/local/kafka.sh).
On the 2-core reference machine the build took 279 s with empty Go caches, 209 s with the
modules already downloaded, 3 s with a warm build cache; later runs use the binary (0.3 s).
Without Go, the file is checked against compose-spec.json of the compose-go release that
compose version builds with: unknown keys and wrong types, but not what compose checks
beyond the schema (e.g. depends_on naming a missing service). The output says which ran.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S_DIR = ROOT / "deploy" / "k8s"
COMPOSE_FILE = ROOT / "docker-compose.yml"
CACHE = ROOT / ".cache"

# The oldest Kubernetes still supported upstream when this was written; the manifests use
# nothing newer (CronJob.timeZone is GA since 1.27).
K8S_VERSION = "1.32"
COMPOSE_VERSION = "v2.39.4"
# compose-go version in docker/compose@COMPOSE_VERSION's go.mod: the schema compose uses.
COMPOSE_GO_VERSION = "v2.9.0"

Doc = dict[str, Any]


# --- Kubernetes ---------------------------------------------------------------------------


def load_yaml(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def render() -> tuple[list[Doc], str]:
    """The kustomize base as applied, and what rendered it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return render_fallback(), "python fallback (no kubectl on PATH)"
    out = subprocess.run([kubectl, "kustomize", str(K8S_DIR)], check=True, capture_output=True, text=True)
    return load_yaml(out.stdout), "kubectl kustomize"


def render_fallback(root: Path = K8S_DIR) -> list[Doc]:
    """What kustomization.yaml uses of kustomize: resources, configMapGenerator (envs,
    files), images and labels. Generated names get no hash suffix."""
    k = yaml.safe_load((root / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "labels", "resources", "images", "configMapGenerator"}
    if set(k) - known:
        raise SystemExit(f"render_fallback does not implement {sorted(set(k) - known)}: use kubectl")
    docs: list[Doc] = []
    for generator in k.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env in generator.get("envs", []):
            for line in (root / env).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    key, _, value = line.partition("=")
                    data[key.strip()] = value
        for file in generator.get("files", []):
            data[Path(file).name] = (root / file).read_text()
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    for resource in k.get("resources", []):
        docs.extend(load_yaml((root / resource).read_text()))
    images = {i["name"]: i for i in k.get("images", [])}
    for doc in docs:
        for label in k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        for container in containers(doc):
            image = images.get(container["image"])
            if image:
                name = image.get("newName", container["image"])
                container["image"] = f"{name}:{image['newTag']}" if "newTag" in image else name
    return docs


def pod_spec(doc: Doc) -> Doc | None:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec.get("template")
    return template["spec"] if template else None


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    if spec is not None:
        yield from spec.get("initContainers", [])
        yield from spec.get("containers", [])


def validate_k8s(docs: list[Doc], source: str) -> list[str]:
    import kubernetes_validate

    errors = []
    for doc in docs:
        where = f"{source}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{where}: {path}: {exc.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
            errors.append(f"{where}: {exc.message}")
    return errors


def check_k8s() -> bool:
    started = time.monotonic()
    docs, how = render()
    examples = load_yaml((K8S_DIR / "secret.example.yaml").read_text())
    errors = validate_k8s(docs, "deploy/k8s") + validate_k8s(examples, "secret.example.yaml")
    for error in errors:
        print(f"  ERROR {error}")
    kinds = ", ".join(sorted({d["kind"] for d in docs}))
    verdict = "FAILED" if errors else "valid"
    print(
        f"k8s: {len(docs)} rendered resources ({kinds}) and {len(examples)} example Secrets {verdict} "
        f"against Kubernetes {K8S_VERSION}, strict [{how}] in {time.monotonic() - started:.1f}s"
    )
    return not errors


# --- docker compose -----------------------------------------------------------------------


def compose_command() -> list[str] | None:
    """A `docker compose` to run: an installed one, or the plugin built into .cache/."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    plugin = CACHE / "docker" / "cli-plugins" / "docker-compose"
    if not plugin.exists() and not build_compose(plugin):
        return None
    # The plugin also runs on its own, so the docker CLI is optional.
    return [docker, "--config", str(plugin.parents[1]), "compose"] if docker else [str(plugin)]


def build_compose(plugin: Path) -> bool:
    go = shutil.which("go")
    if go is None:
        return False
    print(f"compose: building docker compose {COMPOSE_VERSION} into {plugin.relative_to(ROOT)} (once; minutes)")
    started = time.monotonic()
    module = f"github.com/docker/compose/v2@{COMPOSE_VERSION}"
    info = subprocess.run([go, "mod", "download", "-json", module], check=True, capture_output=True, text=True)
    source = json.loads(info.stdout)["Dir"]
    plugin.parent.mkdir(parents=True, exist_ok=True)
    tmp = plugin.with_suffix(".tmp")
    ldflags = f"-s -w -X github.com/docker/compose/v2/internal.Version={COMPOSE_VERSION}"
    # Static, as compose's own release builds are; the module cache holds no VCS metadata.
    env = os.environ | {"CGO_ENABLED": "0"}
    build = [go, "build", "-buildvcs=false", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), "./cmd"]
    subprocess.run(build, check=True, cwd=source, env=env)
    tmp.rename(plugin)  # only a complete binary counts as cached
    print(f"compose: built in {time.monotonic() - started:.0f}s")
    return True


def compose_schema() -> Doc:
    cached = CACHE / "compose-spec" / f"compose-spec-{COMPOSE_GO_VERSION}.json"
    if not cached.exists():
        url = f"https://proxy.golang.org/github.com/compose-spec/compose-go/v2/@v/{COMPOSE_GO_VERSION}.zip"
        with urllib.request.urlopen(url, timeout=60) as response:
            archive = zipfile.ZipFile(io.BytesIO(response.read()))
        member = f"github.com/compose-spec/compose-go/v2@{COMPOSE_GO_VERSION}/schema/compose-spec.json"
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(archive.read(member))
    schema: Doc = json.loads(cached.read_text())
    return schema


def check_compose_schema() -> list[str]:
    import jsonschema

    document = yaml.safe_load(COMPOSE_FILE.read_text())
    validator = jsonschema.Draft7Validator(compose_schema())
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def check_compose() -> bool:
    started = time.monotonic()
    command = compose_command()
    # Compose reads .env and the environment; neither may decide whether CI passes.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCREDIT_", "COMPOSE_"))}
    if command is not None:
        args = [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "--quiet"]
        result = subprocess.run(args, capture_output=True, text=True, env=env)
        ok = result.returncode == 0
        for line in (result.stdout + result.stderr).strip().splitlines():
            print(f"  {line}")
        version = subprocess.run([*command, "version", "--short"], capture_output=True, text=True).stdout.strip()
        how = f"docker compose {version} config --quiet"
    else:
        errors = check_compose_schema()
        for error in errors:
            print(f"  ERROR {error}")
        ok = not errors
        how = f"no Go to build docker compose: compose-spec.json schema of compose-go {COMPOSE_GO_VERSION} only"
    print(f"compose: docker-compose.yml {'valid' if ok else 'FAILED'} [{how}] in {time.monotonic() - started:.1f}s")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["k8s", "compose"])
    args = parser.parse_args()
    ok = True
    if args.only in (None, "k8s"):
        ok &= check_k8s()
    if args.only in (None, "compose"):
        ok &= check_compose()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The README's test command: every test, with real PostgreSQL and Kafka on loopback.
#
# Starts Debian's PostgreSQL (installing it if missing) and a single-node Kafka from Maven
# Central jars unless VCREDIT_TEST_DATABASE_URL / VCREDIT_TEST_KAFKA already point at
# servers, then runs pytest. The run fails if any integration test was skipped or none ran
# (VCREDIT_REQUIRE_INTEGRATION, see tests/conftest.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python -m pip install -q --disable-pip-version-check -e '.[test]'

# The dashboard's browser test drives Debian's chromium (Playwright's own browsers are
# never downloaded); a CJK font makes its Chinese labels legible in the screenshot.
if [[ ! -x /usr/bin/chromium || ! -d /usr/share/fonts/truetype/wqy ]]; then
    sudo_cmd=$([[ $(id -u) -eq 0 ]] && echo "" || echo "sudo")
    $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q chromium fonts-wqy-microhei
fi
# The monthly programme report's tests read its PDF back: pdftoppm renders it to PNG,
# pdftotext extracts its text (tests/unit/notify/test_report.py, tests/integration/
# test_monthly_report.py).
if ! command -v pdftoppm >/dev/null || ! command -v pdftotext >/dev/null; then
    sudo_cmd=$([[ $(id -u) -eq 0 ]] && echo "" || echo "sudo")
    $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q poppler-utils
fi
# The official AsyncAPI parser checks docs/asyncapi.json (tests/unit/project/
# test_asyncapi_document.py; npm installs it into .cache/). CI machines have Node 20 and npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    sudo_cmd=$([[ $(id -u) -eq 0 ]] && echo "" || echo "sudo")
    $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q nodejs npm
fi

# The Java openapi-generator validates docs/openapi/ and generates a Java client from it
# (tests/unit/project/test_openapi_java_generator.py; its jar is cached in .cache/).
if ! command -v java >/dev/null; then
    sudo_cmd=$([[ $(id -u) -eq 0 ]] && echo "" || echo "sudo")
    $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q default-jre-headless
fi

# tests/e2e/test_containers.py builds the images with Debian's podman (runc: crun fails on
# hybrid cgroups) from bases mmdebstrap makes, and runs docker-compose.yml with podman-compose.
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null; then
    sudo_cmd=$([[ $(id -u) -eq 0 ]] && echo "" || echo "sudo")
    $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q podman runc mmdebstrap
fi

if [[ -z "${VCREDIT_TEST_DATABASE_URL:-}" ]]; then
    deploy/local/postgres.sh start >/dev/null
    export VCREDIT_TEST_DATABASE_URL="postgresql+asyncpg://vcredit:vcredit@127.0.0.1:5432/vcredit"
fi
if [[ -z "${VCREDIT_TEST_KAFKA:-}" ]]; then
    deploy/local/kafka.sh start
    export VCREDIT_TEST_KAFKA="127.0.0.1:${VCREDIT_KAFKA_PORT:-9092}"
fi
export VCREDIT_REQUIRE_INTEGRATION=1

mkdir -p artifacts
exec python -m pytest -ra --junitxml=artifacts/junit.xml "$@"

"""The image's HEALTHCHECK: GET /healthz (or the path given, e.g. /readyz) of the service
this container runs.

One image serves all five services on different ports, so a fixed URL would mark every
service but one unhealthy. The port comes from PID 1's command line (``serve loans``,
``--port``), as the service itself resolves it; ``vcredit up`` is checked on registry's.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path


def port(argv: list[str]) -> int:
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--port="):
            return int(arg.removeprefix("--port="))
    from shared.settings import service_port

    # Honours VCREDIT_<SERVICE>_PORT, like `vcredit serve` without --port.
    service = argv[argv.index("serve") + 1] if "serve" in argv[:-1] else "registry"
    return service_port(service)


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    # A non-2xx answer raises, so the exit status is 1. /readyz may take 2 x 5 s (shared/runtime.py).
    urllib.request.urlopen(f"http://127.0.0.1:{port(argv)}{path}", timeout=11).close()


if __name__ == "__main__":
    main()

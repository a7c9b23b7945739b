"""The ``vcredit`` command.

vcredit up                       all five services, embedded mode (SQLite + in-process bus)
vcredit serve <service>          one service, distributed mode (Kafka + its database URL)
vcredit migrate [service ...]    apply Alembic migrations (--check: only report whether any are due)
vcredit topics create            create the Kafka topics of deploy/k8s/topics.toml
vcredit dlq list|replay <service> [--mode distributed]
vcredit simulate [--households N --months N ...]   drive a running system through a synthetic district
vcredit bench [--quick] [--only name,...]   every benchmark in one table (python -m bench)
vcredit pii new-key|rotate|status   rotate the key encrypting ID numbers (shared/settings.py, vcredit/pii_rotation.py)

Over 400 lines on purpose: one argparse parser and the command functions it dispatches to,
which only wire settings, buses and databases to the modules that do the work (services,
vcredit/cluster.py, vcredit/pii_rotation.py, bench, simulator).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import uvicorn
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.auth import ROLE_SUMMARIES, ROLES, read_credentials, retires_bootstrap
from shared.bus.base import Bus
from shared.bus.embedded import EmbeddedBus
from shared.bus.kafka import KafkaBus, TopicCreationError, capped_min_insync
from shared.bus.kafka import create_topics as create_kafka_topics
from shared.db import DbTimeouts
from shared.logs import configure_logging
from shared.migrations import at_head, upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings, generated_secret, private_dir
from vcredit.services import SERVICE_NAMES, SETTINGS_CLASSES, load_spec, run_loop

log = logging.getLogger("vcredit")

# Relative to the working directory or the checkout; the image has it at /app/deploy/k8s/.
TOPICS_FILE = "deploy/k8s/topics.toml"


def database_url(service: str, common: CommonSettings) -> str:
    return SETTINGS_CLASSES[service]().resolved_database_url(common)


def port_of(service: str) -> int:
    return SETTINGS_CLASSES[service]().port


BOOTSTRAP_TOKEN_FILE = "bootstrap-token"


def bootstrap_token(common: CommonSettings, *, keep: bool = False) -> tuple[str, str | None]:
    """The bootstrap token, and the line that tells the operator about it (None when
    VCREDIT_BOOTSTRAP_TOKEN is set: they know it). With ``keep`` (``vcredit up``) a generated
    token is kept in the data directory (0600), so a restart does not change the token the
    operator has copied; ``vcredit serve`` makes one per process, as each replica may have
    its own data directory (set VCREDIT_BOOTSTRAP_TOKEN there)."""
    if common.bootstrap_token:
        return common.bootstrap_token, None
    credentials = common.credentials_path
    try:
        retired = retires_bootstrap(read_credentials(credentials))
    except (OSError, ValueError) as exc:
        # The services refuse the bootstrap token while the file is unreadable (fail closed).
        return secrets.token_urlsafe(
            32
        ), f"credentials file {credentials} unreadable ({exc}); the bootstrap token is refused"
    if retired:
        # Printing a token every service refuses would only mislead (and leak nothing useful);
        # nor is one kept for it.
        return secrets.token_urlsafe(32), (
            f"the bootstrap token is retired: an operator credential was created ({credentials}); "
            "use an operator's key, or make one with `vcredit keys new --name NAME --role operator`"
        )
    if keep:
        path = common.data_dir / BOOTSTRAP_TOKEN_FILE
        token, kept = generated_secret(path, lambda: secrets.token_urlsafe(32)), f"kept in {path.resolve()}"
    else:
        token, kept = secrets.token_urlsafe(32), "for this process"
    # To the operator's terminal only (API.md): it is every role's key. The token is the
    # line's last word, so `tail -1 | awk '{print $NF}'` picks it.
    return token, f"VCREDIT_BOOTSTRAP_TOKEN was not set; bootstrap token (first setup only, {kept}): {token}"


def kafka_bus(common: CommonSettings, client_id: str) -> KafkaBus:
    return KafkaBus(
        common.kafka_bootstrap_servers,
        client_id=client_id,
        partitions=common.topic_partitions,
        replication_factor=common.topic_replication_factor,
        min_insync_replicas=common.topic_min_insync_replicas,
        request_timeout_ms=common.kafka_request_timeout_ms,
        session_timeout_ms=common.kafka_session_timeout_ms,
    )


def embedded_bus(common: CommonSettings) -> EmbeddedBus:
    return EmbeddedBus(common.data_dir / "bus.db", timeouts=DbTimeouts.of(common))


def migrate(services: Sequence[str], common: CommonSettings) -> None:
    for service in services:
        upgrade(load_spec(service).migrations_dir, database_url(service, common))
        log.info("migrated %s", service)


def prepare_embedded(common: CommonSettings) -> None:
    """The data directory of ``vcredit up``, private (credit data and secrets: the owner's
    alone), with every service's SQLite database migrated in it."""
    private_dir(common.data_dir)
    migrate(SERVICE_NAMES, common)


class _Server(uvicorn.Server):
    """uvicorn server that leaves signals to ``vcredit up``, which stops all five at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _ServeServer(uvicorn.Server):
    """``vcredit serve``'s uvicorn server: on SIGTERM/SIGINT it tells the runtime first, so a
    long request (a close of business) ends at its next safe point; uvicorn then waits for
    the requests in flight and stops the runtime."""

    def __init__(self, config: uvicorn.Config, runtime: ServiceRuntime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.runtime.begin_stop()
        super().handle_exit(sig, frame)


async def run_embedded(common: CommonSettings, host: str, token: str, token_line: str | None) -> None:
    bus = embedded_bus(common)
    servers = []
    runtimes = []
    for service in SERVICE_NAMES:
        runtime = ServiceRuntime(load_spec(service), database_url(service, common), bus, common)
        runtimes.append(runtime)
        config = uvicorn.Config(
            create_app(runtime, token),
            host=host,
            port=port_of(service),
            log_level="warning",
            lifespan="on",
            log_config=None,  # keep shared.logs' handler: JSON lines, redacted
        )
        servers.append(_Server(config))

    loop = asyncio.get_running_loop()

    def shutdown() -> None:
        for runtime in runtimes:
            runtime.begin_stop()
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            shutdown()
            break
        await asyncio.sleep(0.05)
    else:
        urls = "  ".join(f"{n} http://{host}:{port_of(n)}" for n in SERVICE_NAMES)
        print(f"vcredit is up (embedded, data in {common.data_dir.resolve()}): {urls}", flush=True)
        if token_line:
            # Last, where the README's quick start says to look for it.
            print(token_line, file=sys.stderr, flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    if not all(s.started for s in servers):
        raise SystemExit("vcredit could not start every service (is a port in use?)")


def cmd_up(args: argparse.Namespace) -> None:
    common = CommonSettings()
    if args.data_dir:
        common = common.model_copy(update={"data_dir": Path(args.data_dir)})
    prepare_embedded(common)
    token, token_line = bootstrap_token(common, keep=True)
    run_loop(run_embedded(common, args.host, token, token_line))
    print("vcredit stopped", flush=True)


def cmd_serve(args: argparse.Namespace) -> None:
    common = CommonSettings()
    spec = load_spec(args.service)
    runtime = ServiceRuntime(
        spec, database_url(args.service, common), kafka_bus(common, f"vcredit-{args.service}"), common
    )
    token, token_line = bootstrap_token(common)
    if token_line:
        print(token_line, file=sys.stderr, flush=True)
    app = create_app(runtime, token)
    config = uvicorn.Config(
        app, host=args.host, port=args.port or port_of(args.service), log_level="info", log_config=None
    )
    _ServeServer(config, runtime).run()


def check_migrated(services: Sequence[str], common: CommonSettings) -> None:
    """Exit 1 unless every database is at this build's heads (its service's chain and the
    platform branch: shared/migrations.py). Kubernetes init containers loop on it, so a pod
    starts only after the migrate Job has migrated for its image."""
    behind = []
    for service in services:
        try:
            if at_head(load_spec(service).migrations_dir, database_url(service, common)):
                continue
            behind.append(f"{service} (migrations due)")
        except Exception as exc:  # an unreachable database is "not yet", not a crash
            behind.append(f"{service} ({type(exc).__name__}: {exc})")
    if behind:
        raise SystemExit(f"not at head: {'; '.join(behind)}")
    print(f"at head: {', '.join(services)}")


def cmd_migrate(args: argparse.Namespace) -> None:
    unknown = set(args.services) - set(SERVICE_NAMES)
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(sorted(unknown))}; choose from {', '.join(SERVICE_NAMES)}")
    (check_migrated if args.check else migrate)(args.services or SERVICE_NAMES, CommonSettings())


def _topics_file(path: str | None) -> Path:
    if path:
        return Path(path)
    for candidate in (Path.cwd() / TOPICS_FILE, Path(__file__).parents[1] / TOPICS_FILE):
        if candidate.exists():
            return candidate
    raise SystemExit(f"{TOPICS_FILE} not found; pass --file")


def new_topics(common: CommonSettings, definitions: list[dict[str, object]]) -> list[NewTopic]:
    """topics.toml's topics as the cluster is asked to create them.

    VCREDIT_TOPIC_REPLICATION_FACTOR and VCREDIT_TOPIC_MIN_INSYNC_REPLICAS, when set, win
    over the file: single-broker environments (compose, CI) cannot hold three replicas. The
    in-sync minimum never exceeds the replicas (``capped_min_insync``)."""
    topics = []
    for d in definitions:
        if "topic_replication_factor" in common.model_fields_set:
            replication = common.topic_replication_factor
        else:
            replication = int(str(d["replication_factor"]))
        if "topic_min_insync_replicas" in common.model_fields_set:
            wanted = common.topic_min_insync_replicas
        else:
            wanted = int(str(d.get("min_insync_replicas", common.topic_min_insync_replicas)))
        config = {
            "retention.ms": str(d.get("retention_ms", -1)),
            "cleanup.policy": str(d.get("cleanup_policy", "delete")),
            "min.insync.replicas": str(capped_min_insync(replication, wanted)),
        }
        name = common.topic_prefix + str(d["name"])
        topics.append(NewTopic(name, int(str(d["partitions"])), replication, topic_configs=config))
    return topics


async def create_topics(common: CommonSettings, definitions: list[dict[str, object]]) -> list[str]:
    """Create the topics that do not exist yet; their names. A topic the cluster refuses (more
    replicas than brokers) raises ``TopicCreationError`` with the broker's reason."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=common.kafka_bootstrap_servers,
        client_id="vcredit-topics",
        request_timeout_ms=common.kafka_request_timeout_ms,
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        return await create_kafka_topics(admin, [t for t in new_topics(common, definitions) if t.name not in existing])
    finally:
        await admin.close()


def cmd_topics(args: argparse.Namespace) -> None:
    definitions = tomllib.loads(_topics_file(args.file).read_text())["topic"]
    try:
        created = asyncio.run(create_topics(CommonSettings(), definitions))
    except TopicCreationError as exc:
        raise SystemExit(f"{exc}\n(a cluster of fewer brokers: set VCREDIT_TOPIC_REPLICATION_FACTOR)") from None
    print(f"created {len(created)} topics: {', '.join(created) or 'none (all exist)'}")


def _bus_for(mode: str, common: CommonSettings, client_id: str) -> Bus:
    return embedded_bus(common) if mode == "embedded" else kafka_bus(common, client_id)


def cmd_dlq(args: argparse.Namespace) -> None:
    from shared.messaging import list_dead_letters, replay_dead_letters, topics_of

    common = CommonSettings()
    spec = load_spec(args.service)
    topics = topics_of(spec.handlers)
    if not topics:
        print(f"{args.service} consumes no topics")
        return

    async def run() -> None:
        bus = _bus_for(args.mode, common, f"vcredit-{args.service}-dlq")
        await bus.start()
        try:
            if args.action == "list":
                letters = await list_dead_letters(bus, args.service, topics, topic_prefix=common.topic_prefix)
            else:
                letters = await replay_dead_letters(bus, args.service, topics, topic_prefix=common.topic_prefix)
        finally:
            await bus.stop()
        verb = "parked" if args.action == "list" else "replayed"
        print(f"{len(letters)} dead letters {verb} for {args.service}")
        for d in letters:
            print(
                f"  {d.topic}[{d.partition}]@{d.offset} {d.event_type} {d.event_id} "
                f"after {d.attempts} tries: {d.error.splitlines()[-1] if d.error else ''}"
            )

    asyncio.run(run())


def cmd_rebuild(args: argparse.Namespace) -> None:
    from services.risk.rebuild import rebuild
    from shared.db import DbTimeouts, create_engine, create_sessionmaker

    common = CommonSettings()

    async def run() -> None:
        bus = _bus_for(args.mode, common, "vcredit-risk-rebuild")
        engine = create_engine(database_url("risk", common), timeouts=DbTimeouts.of(common))
        await bus.start()
        try:
            sessions = create_sessionmaker(engine, info={"settings": common})
            applied = await rebuild(sessions, bus, topic_prefix=common.topic_prefix)
        finally:
            await bus.stop()
            await engine.dispose()
        print(f"risk projections rebuilt from {applied} events")

    asyncio.run(run())


def cmd_keys(args: argparse.Namespace) -> None:
    from shared.auth import ROLES, add_credential, read_credentials, revoke_credential
    from shared.tokens import new_signing_key

    path = CommonSettings().credentials_path
    if args.action == "signing-key":
        private, public, kid = new_signing_key()
        print(f"kid {kid}")
        print(f"private (VCREDIT_JWT_SIGNING_KEYS, first to sign with it; keep secret): {private}")
        print(f"public (VCREDIT_JWT_VERIFICATION_KEYS, on every service before signing with it): {public}")
        return
    if args.action == "list":
        for c in read_credentials(path):
            state = f"revoked {c.revoked_at:%Y-%m-%d %H:%M}" if c.revoked_at else "active"
            bound = f" village={c.village}" if c.village else f" household={c.household}" if c.household else ""
            print(f"{c.name}\t{c.kind}\t{','.join(c.roles)}{bound}\t{state}")
        return
    if not args.name:
        raise SystemExit("pass --name")
    try:
        if args.action == "revoke":
            revoke_credential(path, args.name)
            print(f"revoked {args.name} in {path}; every service refuses it within a second")
            return
        roles = tuple(args.role or ())
        unknown = set(roles) - set(ROLES)
        if not roles or unknown:
            raise SystemExit(f"pass --role, one of {', '.join(ROLES)} (unknown: {', '.join(sorted(unknown)) or '-'})")
        kind = "client" if args.action == "client" else "api_key"
        secret, _ = add_credential(path, args.name, kind, roles, args.village, args.household)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    print(f"added {args.name} to {path} (only its hash is stored)")
    if kind == "client":
        print(f"client_id: {args.name}")
        print(f"client_secret (shown once): {secret}")
        print("exchange them at POST /v1/oauth/token (grant_type=client_credentials) on any service")
    else:
        print(f"API key (shown once; send as Authorization: Bearer): {secret}")


def cmd_rerate(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from services.scoring.domain.engine import RuleSet
    from services.scoring.rerate import rerate_all
    from services.scoring.settings import ScoringSettings
    from shared.db import DbTimeouts, create_engine, create_sessionmaker

    common = CommonSettings()
    rules = RuleSet.load(args.rule_set or ScoringSettings().rule_set)

    async def run() -> None:
        engine = create_engine(database_url("scoring", common), timeouts=DbTimeouts.of(common))
        bar = tqdm(unit="subjects", desc=f"re-rating with {rules.version}")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            job = await rerate_all(create_sessionmaker(engine, info={"settings": common}), rules, progress)
        finally:
            bar.close()
            await engine.dispose()
        print(
            f"re-rated {job.done} subjects with {rules.version} (job {job.id}); changed ratings are "
            "published by the scoring service's outbox relay"
        )

    asyncio.run(run())


def cmd_pii(args: argparse.Namespace) -> None:
    from shared.pii import load_cipher, new_master_key
    from vcredit.pii_rotation import Rotation, rotate

    if args.action == "new-key":
        print(new_master_key())
        return
    common = CommonSettings()
    cipher = load_cipher(common)
    urls = {service: database_url(service, common) for service in args.service or ("registry", "notify")}

    def progress(r: Rotation) -> None:
        print(f"{r.column.name}: {r.rewritten} rewritten so far", flush=True)

    outcomes = asyncio.run(
        rotate(
            cipher,
            urls,
            batch_size=args.batch_size,
            dry_run=args.action == "status",
            on_batch=progress,
            timeouts=DbTimeouts.of(common),
        )
    )
    left = 0
    for r in outcomes:
        keys = ", ".join(f"{k} {n}" + (" (current)" if k == cipher.key_id else "") for k, n in r.by_key.items())
        print(f"{r.column.name}: {r.rewritten} rewritten, {r.unreadable} unreadable; rows by key: {keys or 'none'}")
        left += sum(n for k, n in r.by_key.items() if k != cipher.key_id)
    if left:
        configured = set(cipher.key_ids)
        missing = sorted({k for r in outcomes for k in r.by_key} - configured)
        hint = f"keys {', '.join(missing)} are not configured" if missing else "run `vcredit pii rotate`"
        raise SystemExit(f"{left} rows are not under the current key {cipher.key_id}: {hint}")
    print(f"every row is under the current key {cipher.key_id}; retired keys may be removed")


def cmd_registry(args: argparse.Namespace) -> None:
    from services.registry.identifier_audit import audit_identifiers
    from shared.db import create_engine, create_sessionmaker
    from shared.pii import load_cipher

    common = CommonSettings()
    cipher = load_cipher(common)

    async def run() -> list[Any]:
        engine = create_engine(database_url("registry", common), timeouts=DbTimeouts.of(common))
        try:
            return await audit_identifiers(create_sessionmaker(engine), cipher)
        finally:
            await engine.dispose()

    findings = asyncio.run(run())
    for finding in findings:
        print(finding)
    if findings:
        raise SystemExit(
            f"{len(findings)} finding(s): stored identifiers not in the normal form of "
            "services/registry/domain/identifiers.py (README: Identifiers); nothing was changed"
        )
    print("every stored ID number and credit code is in normal form, and each is stored once")


def add_registry_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    registry = sub.add_parser("registry", help="registry checks: check-identifiers (reports, changes nothing)")
    registry.add_argument(
        "action",
        choices=["check-identifiers"],
        help="decrypt every stored ID number and list those not in normal form or stored twice under two spellings",
    )
    registry.set_defaults(func=cmd_registry)


def add_pii_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pii = sub.add_parser("pii", help="the key encrypting ID numbers: new-key, rotate, status (shared/settings.py)")
    pii.add_argument("action", choices=["new-key", "rotate", "status"])
    pii.add_argument("--service", action="append", choices=["registry", "notify"], help="default both")
    pii.add_argument("--batch-size", type=int, default=500)
    pii.set_defaults(func=cmd_pii)


def cmd_openapi(args: argparse.Namespace) -> None:
    from vcredit.openapi_documents import write

    for path in write(Path(args.write)):
        print(path)


def run_bench(argv: Sequence[str]) -> NoReturn:
    # bench/ is the repository's, not the services': imported only when asked for. Some
    # benchmarks drive the system through tests/ harnesses, which live beside it in the
    # checkout (as `python -m bench` from its root would see them), not in the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.__main__ import main as bench

    raise SystemExit(bench(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vcredit", description="Rural credit programme services.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run all five services in embedded mode")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--data-dir", help="overrides VCREDIT_DATA_DIR")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run one service in distributed mode (Kafka)")
    serve.add_argument("service", choices=SERVICE_NAMES)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("services", nargs="*", metavar="service", help=f"any of {', '.join(SERVICE_NAMES)}; default all")
    mig.add_argument(
        "--check", action="store_true", help="migrate nothing; exit 1 unless every database is at this build's head"
    )
    mig.set_defaults(func=cmd_migrate)

    topics = sub.add_parser("topics", help="Kafka topics")
    topics.add_argument("action", choices=["create"])
    topics.add_argument("--file", help=f"default {TOPICS_FILE}")
    topics.set_defaults(func=cmd_topics)

    dlq = sub.add_parser("dlq", help="dead-lettered events of a service")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("service", choices=SERVICE_NAMES)
    dlq.add_argument("--mode", choices=["embedded", "distributed"], default="embedded")
    dlq.set_defaults(func=cmd_dlq)
    rerate = sub.add_parser("rerate", help="re-rate every subject (after a rule-set change); resumable")
    rerate.add_argument("--rule-set", help="rulesets/<name>.json; default VCREDIT_SCORING_RULE_SET")
    rerate.set_defaults(func=cmd_rerate)

    rebuild = sub.add_parser(
        "rebuild", help="recompute a service's projections by replaying its topics (stop the service first)"
    )
    rebuild.add_argument("service", choices=["risk"])
    rebuild.add_argument("--mode", choices=["embedded", "distributed"], default="embedded")
    rebuild.set_defaults(func=cmd_rebuild)

    keys = sub.add_parser(
        "keys",
        help="API keys, OAuth2 clients and token signing keys",
        description="API keys, OAuth2 clients and token signing keys, in the credentials file "
        "(VCREDIT_CREDENTIALS_FILE, default <data dir>/credentials.json): only hashes are stored.",
        epilog="roles (--role; shared/auth.py ROLE_SCOPES is the full table):\n"
        + "\n".join(f"  {role:<11} {ROLE_SUMMARIES[role]}" for role in ROLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys.add_argument(
        "action",
        choices=["new", "client", "list", "revoke", "signing-key"],
        help="new: an API key; client: an OAuth2 client; revoke --name; signing-key: an Ed25519 pair",
    )
    keys.add_argument("--name", help="who holds it (also the client_id), e.g. hubin-bank-core")
    keys.add_argument("--role", action="append", help="one of the roles below; repeat for several")
    keys.add_argument("--village", help="the collector's village code")
    keys.add_argument("--household", help="the subject's household id")
    keys.set_defaults(func=cmd_keys)

    add_pii_parser(sub)
    add_registry_parser(sub)

    openapi = sub.add_parser("openapi", help="write each service's OpenAPI document (docs/openapi/<service>.json)")
    openapi.add_argument("--write", metavar="DIR", default="docs/openapi", help="directory (default docs/openapi)")
    openapi.set_defaults(func=cmd_openapi)

    from simulator.cli import add_parser as add_simulate

    add_simulate(sub)

    # Its options are python -m bench's own (main() hands them over untouched); listed here for --help.
    sub.add_parser("bench", help="every benchmark in one table: vcredit bench --help", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        # argparse would claim --help and reject --quick; bench parses its own arguments.
        run_bench(argv[1:])
    common = CommonSettings()
    configure_logging(common.log_format, common.log_level)
    args = build_parser().parse_args(argv)
    args.func(args)

"""Configuration from the environment (pydantic-settings).

Common settings use the ``VCREDIT_`` prefix; each service has its own class with the
``VCREDIT_<SERVICE>_`` prefix for what differs per service (database, port), in
``services/<service>/settings.py`` with the table of its own variables.

| variable | default | meaning |
|---|---|---|
| VCREDIT_DATA_DIR | ./var | embedded mode: where the SQLite files live (mode 0700, files 0600) |
| VCREDIT_BOOTSTRAP_TOKEN | generated at start | all-roles bearer token (API.md) |
| VCREDIT_CREDENTIALS_FILE | <data dir>/credentials.json | API keys and OAuth2 clients, hashes only (`vcredit keys`) |
| VCREDIT_JWT_SIGNING_KEYS | generated into the data dir | base64 Ed25519 private keys; the first signs tokens |
| VCREDIT_JWT_VERIFICATION_KEYS | [] | base64 Ed25519 public keys also accepted (rotation) |
| VCREDIT_JWT_TTL_SECONDS | 900 | lifetime of an access token from POST /v1/oauth/token |
| VCREDIT_PII_KEY | generated into the data dir | base64 32-byte key encrypting ID numbers at rest (current key) |
| VCREDIT_PII_RETIRED_KEYS | [] | JSON list of former PII keys (base64): they still decrypt and find old rows |
| VCREDIT_START_DATE | today | first business date |
| VCREDIT_KAFKA_BOOTSTRAP_SERVERS | localhost:9092 | distributed mode: Kafka brokers |
| VCREDIT_TOPIC_PREFIX | "" | namespaces topics and consumer groups (tests, tenants) |
| VCREDIT_TOPIC_PARTITIONS | 12 | partitions when a service creates a missing topic |
| VCREDIT_TOPIC_REPLICATION_FACTOR | 3 | replicas of a topic a service creates; if set, wins over topics.toml |
| VCREDIT_TOPIC_MIN_INSYNC_REPLICAS | 2 | min.insync.replicas, capped at the replicas; if set, wins over topics.toml |
| VCREDIT_CONSUMER_MAX_ATTEMPTS | 5 | handler tries before an event is dead-lettered |
| VCREDIT_CONSUMER_BACKOFF_SECONDS | 0.2 | first retry delay, doubled each try (with jitter) |
| VCREDIT_CONSUMER_BACKOFF_MAX_SECONDS | 10 | cap on one retry delay |
| VCREDIT_CONSUMER_STALL_SECONDS | 120 | a group member stuck this long is replaced (shared/messaging/watchdog.py) |
| VCREDIT_CONSUMER_STALL_RESTARTS | 3 | stuck members replaced in a row before /healthz answers 503 |
| VCREDIT_RELAY_BATCH_SIZE | 500 | outbox rows read and handed to the bus at a time by the relay |
| VCREDIT_RELAY_PIPELINE_BATCHES | 4 | relay batches handed to the bus and not yet marked sent, at most |
| VCREDIT_RELAY_LINGER_SECONDS | 0.01 | once caught up, the relay's next read waits at least this long |
| VCREDIT_RELAY_IDLE_SECONDS | 0.5 | relay poll interval when nothing woke it |
| VCREDIT_OUTBOX_RETENTION_HOURS | 168 | sent outbox rows are deleted after this |
| VCREDIT_MAX_BODY_BYTES | 1048576 | largest request body (413 PAYLOAD_TOO_LARGE above it), chunked bodies included |
| VCREDIT_MAX_UPLOAD_BYTES | 20971520 | the same for routes that take files (registry's sheet import) |
| VCREDIT_RATE_LIMIT | 1000/second | requests per client per service (`;` separates several); then 429 |
| VCREDIT_RATE_LIMIT_STORAGE | memory:// | per process (each replica limits alone); redis://host:6379 shares counts |
| VCREDIT_RATE_LIMIT_STORAGE_TIMEOUT_SECONDS | 1 | one call to a shared rate-limit storage (redis) |
| VCREDIT_DB_CONNECT_TIMEOUT_SECONDS | 10 | opening a PostgreSQL connection |
| VCREDIT_DB_STATEMENT_TIMEOUT_SECONDS | 300 | one SQL statement (PostgreSQL statement_timeout, driver timeout) |
| VCREDIT_DB_POOL_TIMEOUT_SECONDS | 30 | waiting for a free pooled connection |
| VCREDIT_SQLITE_BUSY_TIMEOUT_SECONDS | 30 | embedded mode: waiting for SQLite's write lock |
| VCREDIT_KAFKA_REQUEST_TIMEOUT_MS | 30000 | one request to a Kafka broker (producer, consumer, admin) |
| VCREDIT_KAFKA_SESSION_TIMEOUT_MS | 10000 | a consumer silent this long leaves its group |
| VCREDIT_LOG_FORMAT | json | `json`: an object per line with service, request_id, event_id, trace_id; or `text` |
| VCREDIT_LOG_LEVEL | INFO | the root logger's level |
| VCREDIT_TRACING | off | OpenTelemetry spans: off, console (stdout), otlp (HTTP to OTEL_EXPORTER_OTLP_ENDPOINT) |
| VCREDIT_TRACING_SAMPLE_RATIO | 1.0 | share of new traces kept (0..1); a caller's sampled flag is followed |
| VCREDIT_<SERVICE>_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_loans |
| VCREDIT_<SERVICE>_PORT | 8001..8005 | HTTP port (DEFAULT_PORTS) |

Rotating the PII key: `vcredit pii new-key` prints a key; set it as VCREDIT_PII_KEY and
move the old one (in embedded mode, the data dir's pii.key) into VCREDIT_PII_RETIRED_KEYS on
every service, restart them, run `vcredit pii rotate` until it reports no rows left under a
retired key, then drop the retired key and restart again (shared/pii.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import ClassVar, Literal

import limits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES = ("registry", "scoring", "loans", "risk", "notify")
# Each service's HTTP port unless VCREDIT_<SERVICE>_PORT says otherwise: the port plan that
# `vcredit up`, the deploy manifests and a service looking for a peer on its host all follow.
DEFAULT_PORTS = {"registry": 8001, "scoring": 8002, "loans": 8003, "risk": 8004, "notify": 8005}


# The data directory holds credit data (the SQLite files) and secrets (generated keys, the
# credentials file): the owner's alone, whatever the umask. A file readable by every local
# user would hand out ID-number hashes, loans and the key that decrypts ID numbers.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing, and make it the owner's alone, also if
    an earlier version left it readable by others."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    path.chmod(PRIVATE_DIR_MODE)
    return path


def generated_secret(path: Path, make: Callable[[], str]) -> str:
    """Embedded mode's stand-in for a configured secret: the file's content, made once,
    readable by the owner only, in a directory only the owner can list.

    Several services start at once on one data directory: each writes its candidate aside
    and links it into place, so the first one wins and nobody reads a half-written file."""
    private_dir(path.parent)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(make())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    path.chmod(PRIVATE_FILE_MODE)  # one an earlier version (or a hand) made wider
    return path.read_text().strip()


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VCREDIT_", extra="ignore")

    data_dir: Path = Path("./var")
    bootstrap_token: str | None = None
    credentials_file: Path | None = None
    jwt_signing_keys: list[str] = Field(default_factory=list)
    jwt_verification_keys: list[str] = Field(default_factory=list)
    jwt_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    pii_key: str | None = None
    pii_retired_keys: list[str] = Field(default_factory=list)
    start_date: date | None = None
    kafka_bootstrap_servers: str = "localhost:9092"
    topic_prefix: str = ""
    topic_partitions: int = Field(default=12, ge=1)
    topic_replication_factor: int = Field(default=3, ge=1)
    # With the producer's acks=all, an event is acknowledged once this many replicas hold it:
    # 2 of 3 loses no acknowledged event when any one broker dies and still takes writes
    # while one is away (Kafka's documented durable setting). Capped at the replication
    # factor, or a single-broker setup's topics could never be written.
    topic_min_insync_replicas: int = Field(default=2, ge=1)
    consumer_max_attempts: int = Field(default=5, ge=1)
    # Events applied per transaction: larger batches amortise the commit and the row reads.
    consumer_max_batch: int = Field(default=500, ge=1)
    consumer_backoff_seconds: float = Field(default=0.2, ge=0)
    consumer_backoff_max_seconds: float = Field(default=10.0, ge=0)
    # Longer than anything a healthy member waits for on the bus: a (re)join of the group
    # (aiokafka's rebalance timeout, 30 s, after the session timeout, 10 s), one broker request
    # (VCREDIT_KAFKA_REQUEST_TIMEOUT_MS, 30 s), the fetch position reset after a rebalance (one
    # request). Time in the handlers does not count (the database's timeouts bound it). Short
    # enough that a projection stuck for good is noticed within minutes, not days (issue 21).
    consumer_stall_seconds: float = Field(default=120.0, gt=0)
    # One replaced member that stalls again can be bad luck (the broker still settling); three
    # in a row, six minutes with the default above, say the process itself is wrong.
    consumer_stall_restarts: int = Field(default=3, ge=0)
    relay_batch_size: int = Field(default=500, ge=1)
    # While one batch is acknowledged and marked sent, the next ones are read and handed to
    # the bus (shared/messaging/relay.py); 1 publishes a batch at a time.
    relay_pipeline_batches: int = Field(default=4, ge=1)
    # Caught up, the relay reads again after this (and the last batch's acknowledgement):
    # rows committed meanwhile go as one batch rather than a read, publish and commit each.
    relay_linger_seconds: float = Field(default=0.01, ge=0)
    relay_idle_seconds: float = Field(default=0.5, gt=0)
    outbox_retention_hours: float = Field(default=168, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    # Generous on purpose: above what one service process answers on the reference 2-core
    # machine (bench/RESULTS.md), so tests, the simulator and the benchmarks never meet it;
    # a deployment sets its clients' budget (e.g. "600/minute").
    rate_limit: str = "1000/second"
    rate_limit_storage: str = "memory://"
    rate_limit_storage_timeout_seconds: float = Field(default=1.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    # Longer than any legitimate statement (close of business over 1M loans runs chunks of
    # seconds), short enough that a runaway query does not hold its locks for good.
    db_statement_timeout_seconds: float = Field(default=300.0, gt=0)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0)
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1000)
    # Kafka brokers refuse sessions under group.min.session.timeout.ms (6 s by default).
    kafka_session_timeout_ms: int = Field(default=10_000, ge=6000)
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # shared/tracing.py. otlp: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT itself.
    tracing: Literal["off", "console", "otlp"] = "off"
    tracing_sample_ratio: float = Field(default=1.0, ge=0, le=1)

    @field_validator("rate_limit")
    @classmethod
    def _parse_rate_limit(cls, value: str) -> str:
        limits.parse_many(value)
        return value

    @property
    def credentials_path(self) -> Path:
        return self.credentials_file or self.data_dir / "credentials.json"


class ServiceSettings(BaseSettings):
    """What differs per service. Each service subclasses it in services/<service>/settings.py,
    with its env prefix, its default port and its own settings."""

    service: ClassVar[str]
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str | None = None
    port: int = 0

    def resolved_database_url(self, common: CommonSettings) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(common.data_dir / f'{self.service}.db').resolve()}"


class _Port(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")
    port: int | None = None


def service_port(service: str) -> int:
    """A service's HTTP port as the service resolves it (VCREDIT_<SERVICE>_PORT, else its
    default), for what needs no more of its settings: a peer on the same host, the image's
    healthcheck. Common code cannot import a service's settings class (issue 20)."""
    port = _Port(_env_prefix=f"VCREDIT_{service.upper()}_").port
    return DEFAULT_PORTS[service] if port is None else port

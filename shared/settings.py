"""Configuration from the environment (pydantic-settings).

Common settings use the ``VCREDIT_`` prefix; each service has its own class with the
``VCREDIT_<SERVICE>_`` prefix for what differs per service (database, port).

| variable | default | meaning |
|---|---|---|
| VCREDIT_DATA_DIR | ./var | embedded mode: where the SQLite files live |
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
| VCREDIT_TOPIC_REPLICATION_FACTOR | 3 | replication when a service creates a missing topic |
| VCREDIT_CONSUMER_MAX_ATTEMPTS | 5 | handler tries before an event is dead-lettered |
| VCREDIT_CONSUMER_BACKOFF_SECONDS | 0.2 | first retry delay, doubled each try (with jitter) |
| VCREDIT_CONSUMER_BACKOFF_MAX_SECONDS | 10 | cap on one retry delay |
| VCREDIT_RELAY_BATCH_SIZE | 500 | outbox rows published per relay round |
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
| VCREDIT_<SERVICE>_PORT | 8001..8005 | HTTP port |
| VCREDIT_LOANS_RED_LIST_RATE_DISCOUNT | 0.0025 | off a red-listed subject's new loans' rate (0.25 points), floor 0 |
| VCREDIT_LOANS_COB_MAX_DAYS | 366 | most business days one `POST /v1/cob` closes; more: 422 |
| VCREDIT_LOANS_COB_LEASE_SECONDS | 30 | a crashed close of business blocks the next one this long |
| VCREDIT_SCORING_RULE_SET | hubin-2017-r2 | scorecard in force (services/scoring/rulesets/) |
| VCREDIT_RISK_RED_LIST_MIN_GRADE | AA | 守信红名单: this certified grade or better |
| VCREDIT_RISK_RED_LIST_CLEAN_YEARS | 2 | 守信红名单: no overdue in this many calendar years, this one included |
| VCREDIT_RISK_LOSS_SHARES | unset: 30/20/50 | JSON government, bank, insurer -> positive weight (004 §6(1)) |
| VCREDIT_RISK_LIST_TIERS | both serious | JSON cause -> minor/general/serious: publication period, earliest repair |
| VCREDIT_NOTIFY_WEBHOOK_TIMEOUT_SECONDS | 10 | one webhook call, connect to last byte |
| VCREDIT_NOTIFY_RETRY_BASE_SECONDS | 2 | first webhook retry delay cap, doubled each try (full jitter) |
| VCREDIT_NOTIFY_RETRY_MAX_SECONDS | 600 | cap on one webhook retry delay |
| VCREDIT_NOTIFY_MAX_ATTEMPTS | 6 | webhook tries before a delivery is dead |
| VCREDIT_NOTIFY_MAX_CONCURRENCY | 64 | webhook calls in flight, all subscribers together |
| VCREDIT_NOTIFY_PER_SUBSCRIBER_CONCURRENCY | 4 | webhook calls in flight to one subscriber |
| VCREDIT_NOTIFY_POLL_SECONDS | 0.25 | how often the dispatcher and the SSE stream look for new rows |
| VCREDIT_NOTIFY_KEEPALIVE_SECONDS | 15 | SSE keep-alive comment interval |
| VCREDIT_NOTIFY_RISK_URL | http://127.0.0.1:8004 | risk's API, for the dashboard page |
| VCREDIT_NOTIFY_RISK_TIMEOUT_SECONDS | 5 | one call to risk's API, connect to last byte |
| VCREDIT_REGISTRY_SCORING_URL | http://127.0.0.1:$VCREDIT_SCORING_PORT | scoring's API, for a subject's query log |
| VCREDIT_REGISTRY_LOANS_URL | http://127.0.0.1:$VCREDIT_LOANS_PORT | loans' API, for a subject's query log |
| VCREDIT_REGISTRY_PEER_TIMEOUT_SECONDS | 3 | one call to scoring or loans for the query log, connect to last byte |

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
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Literal

import limits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES = ("registry", "scoring", "loans", "risk", "notify")


def generated_secret(path: Path, make: Callable[[], str]) -> str:
    """Embedded mode's stand-in for a configured secret: the file's content, made once.

    Several services start at once on one data directory: each writes its candidate aside
    and links it into place, so the first one wins and nobody reads a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
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
    consumer_max_attempts: int = Field(default=5, ge=1)
    # Events applied per transaction: larger batches amortise the commit and the row reads.
    consumer_max_batch: int = Field(default=500, ge=1)
    consumer_backoff_seconds: float = Field(default=0.2, ge=0)
    consumer_backoff_max_seconds: float = Field(default=10.0, ge=0)
    relay_batch_size: int = Field(default=500, ge=1)
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
    """What differs per service. Subclasses set the env prefix and default port."""

    service: ClassVar[str]
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str | None = None
    port: int = 0

    def resolved_database_url(self, common: CommonSettings) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(common.data_dir / f'{self.service}.db').resolve()}"


class RegistrySettings(ServiceSettings):
    service = "registry"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_REGISTRY_", extra="ignore")
    port: int = 8001
    # A subject's query log (征信业管理条例 §17) gathers scoring's and loans' rows from these;
    # unset: on this host at their configured ports (what `vcredit up` runs).
    scoring_url: str | None = None
    loans_url: str | None = None
    peer_timeout_seconds: float = Field(default=3.0, gt=0)

    def peer_url(self, service: Literal["scoring", "loans"]) -> str:
        url = self.scoring_url if service == "scoring" else self.loans_url
        if url:
            return url
        peer = ScoringSettings() if service == "scoring" else LoansSettings()
        return f"http://127.0.0.1:{peer.port}"


class ScoringSettings(ServiceSettings):
    service = "scoring"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_SCORING_", extra="ignore")
    port: int = 8002
    # services/scoring/rulesets/<rule_set>.json; a new district or revision is a new file.
    rule_set: str = "hubin-2017-r2"


class LoansSettings(ServiceSettings):
    service = "loans"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_LOANS_", extra="ignore")
    port: int = 8003
    # Longest term (months) -> annual benchmark rate. PBoC benchmark lending rates in force
    # since 2015-10-24: up to 1 year 4.35%, 1 to 5 years 4.75%.
    benchmark_rates: dict[int, Decimal] = Field(default_factory=lambda: {12: Decimal("0.0435"), 60: Decimal("0.0475")})
    day_count: Literal["30/360", "ACT/360", "ACT/365"] = "30/360"
    # 004 §3(2): businesses at benchmark plus at most 10% of it, subsidised 3% a year.
    business_markup: Decimal = Field(default=Decimal("0.10"), ge=0, le=Decimal("0.10"))
    business_subsidy_rate: Decimal = Field(default=Decimal("0.03"), ge=0)
    # 004 §6(2): businesses pay 10% of each loan into the mutual guarantee fund.
    mutual_guarantee_share: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)
    # 004 §6(2), 004 §3(2): 10,000,000 fund x 10 leverage, until risk publishes the fund's capacity.
    initial_fund_capacity: Decimal = Decimal("100000000.00")
    # Seed 001's joint rewards: red-listed subjects borrow cheaper; the points are the
    # district's policy choice, 0.25 until it sets its own.
    red_list_rate_discount: Decimal = Field(default=Decimal("0.0025"), ge=0)
    # Issue 19, product choice: one call closes at most a year (366 days, a leap year's worth),
    # what an operator catching up after a long outage or a year-end migration needs; beyond
    # it a typo ("9999-12-31") would age every loan to loss. Larger catch-ups are several calls.
    cob_max_days: int = Field(default=366, ge=1)
    # The close-of-business lease (services/loans/cob.py) is renewed with every chunk of loans
    # (about 0.1 s each, bench/RESULTS.md) and every day, so 30 s is 300 chunks' slack under
    # load; it is the longest a crashed holder (SIGKILL, lost node) blocks the next run. Too
    # short costs no correctness: a holder that overran it fails its next renewal and writes
    # nothing more (the lease is checked in each chunk's transaction), only its run is lost.
    cob_lease_seconds: float = Field(default=30.0, gt=0)

    def benchmark_rate(self, term_months: int) -> Decimal:
        for longest, rate in sorted(self.benchmark_rates.items()):
            if term_months <= longest:
                return rate
        raise ValueError(f"no benchmark rate for {term_months} months")


ListTier = Literal["minor", "general", "serious"]
_DEFAULT_TIERS: dict[str, ListTier] = {"court_dishonest_debtor": "serious", "malicious_debt_evasion": "serious"}


class RiskSettings(ServiceSettings):
    service = "risk"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_RISK_", extra="ignore")
    port: int = 8004
    # 004 §6(3): a village whose NPL ratio exceeds 3% is frozen; a township with 30% or more
    # of its villages over is halted. One deployment serves one district, so these are the
    # district's thresholds.
    village_npl_threshold: Decimal = Field(default=Decimal("0.03"), gt=0, lt=1)
    township_share_threshold: Decimal = Field(default=Decimal("0.30"), gt=0, le=1)
    # 004 §6(2), 004 §3(2): the district's 10,000,000 fund, leveraged 10x (资金放大10倍).
    fund_opening_balance: Decimal = Field(default=Decimal("10000000.00"), ge=0)
    fund_leverage: int = Field(default=10, gt=0)
    # 004 §6(1): government / bank / insurer, as integer weights. Unset (None) means the rule's
    # own default, stated once: DEFAULT_SHARES in services/risk/domain/loss.py (30/20/50).
    loss_shares: dict[str, int] | None = None
    # Issue 11, product choices. 守信红名单: this grade or better, and no overdue in this many
    # years (this one included); the tier of each black-list cause sets its publication
    # period and the earliest credit repair (services/risk/domain/credit_lists.py).
    red_list_min_grade: Literal["AAA+", "AAA", "AA", "A"] = "AA"
    red_list_clean_years: int = Field(default=2, ge=1, le=10)
    list_tiers: dict[str, ListTier] = Field(default_factory=lambda: dict(_DEFAULT_TIERS))

    @field_validator("loss_shares")
    @classmethod
    def _three_parties(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        # Risk books the three parts by name (services/risk/losses.py): refuse at start, not at
        # the first write-off.
        if value is not None:
            if set(value) != {"government", "bank", "insurer"}:
                raise ValueError("loss_shares names exactly government, bank and insurer")
            if any(share <= 0 for share in value.values()):
                raise ValueError("each loss share is a positive integer weight")
        return value


class NotifySettings(ServiceSettings):
    service = "notify"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_NOTIFY_", extra="ignore")
    port: int = 8005
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=600.0, ge=0)
    max_attempts: int = Field(default=6, ge=1)
    max_concurrency: int = Field(default=64, ge=1)
    per_subscriber_concurrency: int = Field(default=4, ge=1)
    poll_seconds: float = Field(default=0.25, gt=0)
    keepalive_seconds: float = Field(default=15.0, gt=0)
    risk_url: str = "http://127.0.0.1:8004"
    risk_timeout_seconds: float = Field(default=5.0, gt=0)


SETTINGS_CLASSES: dict[str, type[ServiceSettings]] = {
    cls.service: cls for cls in (RegistrySettings, ScoringSettings, LoansSettings, RiskSettings, NotifySettings)
}

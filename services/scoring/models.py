"""scoring tables. So far only the outbox, inbox and idempotency keys every service has."""

from __future__ import annotations

from shared.db import include_shared_tables, new_metadata

metadata = new_metadata()
include_shared_tables(metadata)

"""``vcredit pii rotate``: rewrite every encrypted value (and the lookup hash kept beside it)
under the current PII key, so that retired keys can be dropped (shared/pii.py).

Rows are taken in primary-key order among those not yet under the current key, a batch per
transaction: a crash loses at most the batch in flight, and a rerun carries on where the
last one stopped, since rewritten rows no longer match. Rows sealed with a key that is not
configured any more cannot be rewritten; they are counted, left alone, and make the
command fail, so that the operator does not drop a key that is still needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import DbTimeouts, create_engine, create_sessionmaker
from shared.pii import KEY_ID_LENGTH, PiiCipher


@dataclass(frozen=True)
class EncryptedColumn:
    service: str
    table: Table
    key: str  # primary key column
    encrypted: str
    # Column holding the keyed hash of the same plaintext, rewritten with it (may be the key).
    lookup_hash: str | None = None

    @property
    def name(self) -> str:
        return f"{self.service}.{self.table.name}.{self.encrypted}"


def encrypted_columns() -> list[EncryptedColumn]:
    """Where the services keep values sealed with the PII key."""
    from services.notify.models import metadata as notify
    from services.registry.models import metadata as registry

    return [
        # Heads and members of households: the ID number, and its hash as the primary key.
        EncryptedColumn("registry", registry.tables["persons"], "id_hash", "id_encrypted", lookup_hash="id_hash"),
        # Webhook signing secrets (services/notify/models.py).
        EncryptedColumn("notify", notify.tables["subscriptions"], "id", "secret_encrypted"),
    ]


@dataclass
class Rotation:
    column: EncryptedColumn
    rewritten: int = 0
    unreadable: int = 0
    # Rows per key id after the run: a retired key can go once it has none.
    by_key: dict[str, int] = field(default_factory=dict)


async def rows_by_key(session: AsyncSession, column: EncryptedColumn) -> dict[str, int]:
    key_id = func.substr(column.table.c[column.encrypted], 1, KEY_ID_LENGTH)
    rows = await session.execute(select(key_id, func.count()).group_by(key_id).order_by(key_id))
    return {str(k): int(n) for k, n in rows}


async def rotate_column(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    column: EncryptedColumn,
    *,
    batch_size: int = 500,
    on_batch: Callable[[Rotation], None] | None = None,
) -> Rotation:
    t = column.table
    key, encrypted = t.c[column.key], t.c[column.encrypted]
    outcome = Rotation(column)
    values: dict[str, Any] = {column.encrypted: bindparam("b_encrypted")}
    if column.lookup_hash is not None:
        values[column.lookup_hash] = bindparam("b_hash")
    rewrite = t.update().where(key == bindparam("b_key")).values(values)
    after: str | None = None
    while True:
        async with sessions() as session, session.begin():
            query = select(key, encrypted).where(~encrypted.startswith(cipher.key_id + ":"))
            if after is not None:
                query = query.where(key > after)
            # FOR UPDATE: a second rotate running at once waits, then skips what this one rewrote.
            batch = (await session.execute(query.order_by(key).limit(batch_size).with_for_update())).all()
            if not batch:
                break
            after = str(batch[-1][0])
            params = []
            for row_key, sealed in batch:
                try:
                    plain = cipher.decrypt(sealed)
                except (ValueError, InvalidTag):
                    outcome.unreadable += 1
                    continue
                row = {"b_key": row_key, "b_encrypted": cipher.encrypt(plain)}
                if column.lookup_hash is not None:
                    row["b_hash"] = cipher.lookup_hash(plain)
                params.append(row)
            if params:
                await session.execute(rewrite, params)
            outcome.rewritten += len(params)
        if on_batch is not None:
            on_batch(outcome)
    async with sessions() as session:
        outcome.by_key = await rows_by_key(session, column)
    return outcome


async def rotate(
    cipher: PiiCipher,
    database_urls: Mapping[str, str],
    *,
    batch_size: int = 500,
    dry_run: bool = False,
    on_batch: Callable[[Rotation], None] | None = None,
    timeouts: DbTimeouts | None = None,
) -> list[Rotation]:
    """Rotate the columns of the services in ``database_urls`` (service -> URL); with
    ``dry_run`` only count their rows per key."""
    outcomes = []
    for column in encrypted_columns():
        if column.service not in database_urls:
            continue
        engine = create_engine(database_urls[column.service], timeouts=timeouts)
        try:
            sessions = create_sessionmaker(engine)
            if dry_run:
                async with sessions() as session:
                    outcomes.append(Rotation(column, by_key=await rows_by_key(session, column)))
            else:
                outcomes.append(await rotate_column(sessions, cipher, column, batch_size=batch_size, on_batch=on_batch))
        finally:
            await engine.dispose()
    return outcomes

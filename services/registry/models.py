"""Registry tables: the district hierarchy (townships, villages)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, include_shared_tables, new_metadata

metadata = new_metadata()
include_shared_tables(metadata)


class RegistryBase(Base):
    __abstract__ = True
    metadata = metadata


class Township(RegistryBase):
    __tablename__ = "townships"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Village(RegistryBase):
    __tablename__ = "villages"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    township_code: Mapped[str] = mapped_column(ForeignKey("townships.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

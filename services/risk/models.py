"""Risk tables. The hierarchy is a projection of registry events: risk never asks the
registry synchronously, so a registry outage cannot stop the circuit breaker."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, include_shared_tables, new_metadata

metadata = new_metadata()
include_shared_tables(metadata)


class RiskBase(Base):
    __abstract__ = True
    metadata = metadata


class Township(RiskBase):
    __tablename__ = "townships"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Village(RiskBase):
    __tablename__ = "villages"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    township_code: Mapped[str] = mapped_column(String(32), index=True)

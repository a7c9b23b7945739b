"""Risk's HTTP API, one router module per capability; ``routers()`` is what ``app.SPEC`` serves,
in this order (the order of the OpenAPI document)."""

from __future__ import annotations

from fastapi import APIRouter

from services.risk.routers import (
    breaker,
    claim_batches,
    credit_lists,
    fund,
    indicators,
    losses,
    public,
    repairs,
    titles,
)


def routers() -> list[APIRouter]:
    return [
        breaker.router,
        losses.router,
        claim_batches.router,
        fund.router,
        titles.router,
        indicators.router,
        credit_lists.router,
        repairs.router,
        public.router,
    ]

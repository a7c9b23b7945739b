"""registry's HTTP routes, one module per capability, served in this order (the OpenAPI
document lists the paths in it)."""

from __future__ import annotations

from fastapi import APIRouter

from services.registry.routers import businesses, hierarchy, households, objections, query_log, sheets, statistics

IMPORT_ROUTE = sheets.IMPORT_ROUTE


def registry_routers() -> list[APIRouter]:
    return [
        hierarchy.router,
        households.router,
        sheets.router,
        businesses.router,
        query_log.router,
        objections.router,
        statistics.router,
    ]

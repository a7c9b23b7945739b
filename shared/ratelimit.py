"""Rate limits per client: each principal gets ``VCREDIT_RATE_LIMIT`` requests per service
(moving window, the ``limits`` library); past it, 429 ``RATE_LIMITED`` with ``Retry-After``.

Counts live in ``VCREDIT_RATE_LIMIT_STORAGE``. The default, ``memory://``, is the process's
own memory: in distributed mode each replica of a service limits on its own, so a client
may get the limit once per replica. ``redis://host:6379`` (needs the ``redis`` package,
``pip install 'vcredit[redis]'``) shares the counts between replicas. When that storage
cannot be reached the request is let through and a warning logged: an outage of the
limiter's storage should not become an outage of the credit system.

Only authenticated requests are counted (``shared.web.authorize`` calls
``enforce_rate_limit`` last), so health and readiness probes are never limited.
"""

from __future__ import annotations

import logging
import math
import time

import limits
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string
from starlette.exceptions import HTTPException
from starlette.requests import Request

from shared.auth import Principal
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


def open_storage(uri: str, timeout_seconds: float) -> Storage:
    """The async variant of the storage ``uri`` names, with every call to it bounded."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ConfigurationError(f"rate limit storage {uri!r} is not a URI such as memory:// or redis://host:6379")
    if not scheme.startswith("async+"):
        scheme = "async+" + scheme
    options: dict[str, float | str | bool] = {}
    if "redis" in scheme:
        options = {
            "implementation": "redispy",
            "socket_connect_timeout": timeout_seconds,
            "socket_timeout": timeout_seconds,
        }
    storage = storage_from_string(f"{scheme}://{rest}", wrap_exceptions=True, **options)
    if not isinstance(storage, Storage) or not isinstance(storage, MovingWindowSupport):
        raise ConfigurationError(f"rate limit storage {uri!r} cannot keep a moving window")
    return storage


class RateLimiter:
    def __init__(self, service: str, rate: str, storage: Storage) -> None:
        self.service = service
        self.items = limits.parse_many(rate)
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, service: str, common: CommonSettings) -> RateLimiter:
        storage = open_storage(common.rate_limit_storage, common.rate_limit_storage_timeout_seconds)
        return cls(service, common.rate_limit, storage)

    async def refusal(self, client: str) -> tuple[limits.RateLimitItem, int] | None:
        """Counts one request of ``client``: None when it is allowed, else the limit it
        passed and the whole seconds until the window lets one more through."""
        # The service is part of the key: with a shared storage each service keeps its own
        # budget per client, as it does with per-process memory.
        keys = (self.service, client)
        try:
            for item in self.items:
                if not await self.strategy.hit(item, *keys):
                    stats = await self.strategy.get_window_stats(item, *keys)
                    return item, max(1, math.ceil(stats.reset_time - time.time()))
        except StorageError:
            log.warning("rate limit storage unreachable; request of %s let through", client, exc_info=True)
        return None


async def enforce_rate_limit(request: Request, principal: Principal) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    refused = await limiter.refusal(principal.name)
    if refused is not None:
        item, wait = refused
        raise HTTPException(
            429,
            f"{principal.name} sent more than {item} requests to {limiter.service}; retry in {wait} s.",
            headers={"Retry-After": str(wait)},
        )

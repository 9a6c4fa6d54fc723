"""The transport pieces PoliteSession mounts: a urllib3 ``Retry`` that counts and knows when to
give up, and the adapter that routes every real send through the session's rules.

Why an adapter: answers served from the HTTP cache never reach it, so they cost no wait and
no request; everything that does reach the network passes robots, rate limit and quota.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from astro_exp.net.session import PoliteSession


class _Retry(Retry):
    """urllib3 Retry that counts retries and gives up (instead of sleeping) on a huge Retry-After."""

    def __init__(
        self,
        *args: Any,
        max_retry_after: float = 120.0,
        on_retry: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self.on_retry = on_retry

    def new(self, **kw: Any) -> _Retry:
        new = super().new(**kw)
        new.max_retry_after = self.max_retry_after
        new.on_retry = self.on_retry
        return new

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ):  # type: ignore[no-untyped-def,override]
        if response is not None and self.respect_retry_after_header:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.max_retry_after:
                raise MaxRetryError(
                    _pool, url, ResponseError(f"Retry-After {wait:.0f} s is too long")
                )
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.on_retry is not None:
            self.on_retry()
        return new


class _PoliteAdapter(HTTPAdapter):
    """Transport adapter: the network-level rules of PoliteSession wrap every real send."""

    def __init__(self, owner: PoliteSession, **kwargs: Any) -> None:
        self._owner = owner
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def,override]
        return self._owner._send(super().send, request, **kwargs)

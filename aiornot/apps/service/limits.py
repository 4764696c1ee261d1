"""What keeps one client, or a flood, from taking the server: memory for bodies in flight, a
per-client token bucket, the optional API key, decoded pixels in the model and its concurrency."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from aiornot.apps.service.errors import ApiError, busy
from aiornot.apps.service.settings import MEGAPIXEL, Settings

if TYPE_CHECKING:
    from aiornot.io.decode import ImageHeader


class BufferBudget:
    """How many bytes of request bodies the whole server may hold at once, and one client of it.

    ``per_client`` (default: all of it) keeps one address with many stalled uploads from taking
    the whole budget: its next upload gets 503 while everyone else's still fits.
    All charges happen on the event loop, but the lock keeps the counters right if that changes.
    """

    def __init__(self, limit: int, per_client: int | None = None) -> None:
        self.limit, self.used = limit, 0
        self.per_client = per_client or limit
        self.by_client: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, client: str = "") -> Iterator[Holding]:
        """Charges made inside the block are released when it ends."""
        holding = Holding(self, client)
        try:
            yield holding
        finally:
            with self._lock:
                self.used -= holding.total
                left = self.by_client.get(client, 0) - holding.total
                if left > 0:
                    self.by_client[client] = left
                else:
                    self.by_client.pop(client, None)  # bounded: only clients with bytes in flight are kept

    def _charge(self, holding: Holding, size: int) -> None:
        with self._lock:
            mine = self.by_client.get(holding.client, 0)
            if self.used + size > self.limit or mine + size > self.per_client:
                raise busy(5)
            self.used += size
            self.by_client[holding.client] = mine + size
            holding.total += size


class Holding:
    """One request's share of a :class:`BufferBudget`."""

    def __init__(self, budget: BufferBudget, client: str = "") -> None:
        self.budget, self.client, self.total = budget, client, 0

    def charge(self, size: int) -> None:
        self.budget._charge(self, size)


# ============================================================================================
# Rate limit, API key, concurrency
# ============================================================================================


class RateLimiter:
    """A token bucket per client, in memory: ``burst`` requests at once, refilled at ``per_minute``."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str, cost: int = 1, now: float | None = None) -> float:
        """Take ``cost`` tokens; returns 0 when allowed, else the seconds until they would be there."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        cost = min(cost, self.burst)  # a request bigger than the bucket could otherwise never pass
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= cost else (cost - tokens) / self.rate
            self._buckets[client] = (tokens - cost if not wait else tokens, now)  # re-inserted: newest last
            self._forget_oldest()
        return wait

    def _forget_oldest(self) -> None:
        # Bounded memory: the least recently seen clients go first (their buckets are refilled anyway).
        while len(self._buckets) > self.max_clients:
            self._buckets.pop(next(iter(self._buckets)))


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Needed only when the server sets AIORNOT_API_KEY.")
#: Tells a client which credentials a 401 wants (RFC 9110 requires the header on every 401).
WWW_AUTHENTICATE = 'ApiKey realm="aiornot", header="X-API-Key"'


def require_api_key(request: Request, key: str | None = Depends(_api_key_header)) -> None:
    """401 unless the request's ``X-API-Key`` matches the server's key (used only when one is set).

    A wrong or missing key spends a token of its *address's* bucket, so guessing ends in 429 like
    any other flood. A right key is marked on the request, and :func:`check_rate` then charges the
    key's own bucket: someone else's wrong keys from the same address (or from behind the same
    proxy) cannot spend the budget of a client that holds the key.
    """
    expected = request.app.state.settings.api_key
    # compare_digest: the time taken must not reveal how much of the key was right.
    if key is None or not hmac.compare_digest(key.encode("utf-8", "replace"), expected.encode("utf-8")):
        rate_limit(request)
        raise unauthorized()
    request.state.rate_bucket = _key_bucket(expected, client_id(request))


def unauthorized() -> ApiError:
    return ApiError.of(401, "unauthorized", {"WWW-Authenticate": WWW_AUTHENTICATE})


def _key_bucket(key: str, address: str) -> str:
    """The bucket of a known-good key at one address: per key (never the key itself, kept in memory
    as a short digest), and per address within it, so key holders on different machines keep
    separate budgets as they did before keys were known."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"key:{digest}@{address}"


def client_id(request: Request) -> str:
    # The peer address. uvicorn replaces it by X-Forwarded-For only when the peer is one of
    # AIORNOT_TRUSTED_PROXIES (aiornot.apps.server), so a client cannot pick its own identity.
    return request.client.host if request.client else "unknown"


def rate_limit(request: Request, cost: int = 1) -> None:
    """Charge ``cost`` tokens to the request's bucket: its good key's, else its address's."""
    bucket = getattr(request.state, "rate_bucket", None) or client_id(request)
    wait = request.app.state.limiter.take(bucket, cost)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError.of(429, "rate_limited", {"Retry-After": str(seconds)}, seconds=seconds)


def check_rate(request: Request) -> None:
    """Dependency: one token per request before the body is read (after the key check, when there is one)."""
    rate_limit(request)


class PixelBudget:
    """Decoded pixels the model calls may hold at once (a 186 KB PNG can decode to 64 megapixels).

    A call waits until its image's declared pixel count fits; one image larger than the whole
    budget is let through alone. ``peak`` records the most ever held (for tests and the soak).
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.peak = limit, 0, 0
        self._changed: anyio.Condition | None = None  # made lazily: it binds to the running event loop

    async def acquire(self, pixels: int) -> int:
        """Wait until ``pixels`` fit; returns what was taken (hand it to :meth:`release`)."""
        pixels = min(max(0, pixels), self.limit)
        self._changed = self._changed or anyio.Condition()
        async with self._changed:
            while self.used + pixels > self.limit:
                await self._changed.wait()
            self.used += pixels
            self.peak = max(self.peak, self.used)
        return pixels

    async def release(self, pixels: int) -> None:
        assert self._changed is not None
        with anyio.CancelScope(shield=True):  # the release must happen even when the request is cancelled
            async with self._changed:
                self.used -= pixels
                self._changed.notify_all()


def declared_pixels(data: bytes | bytearray) -> int:
    """Width × height from the image header alone (0 when unreadable: the decoder will say why).

    The endpoints use :func:`aiornot.io.decode.read_header` once per upload instead (the same parse
    then serves the decoder); this stays for callers that hold only bytes.
    """
    from aiornot.io.decode import ImageDecodeError, read_header

    try:
        return read_header(bytes(data)).pixels
    except (ImageDecodeError, OSError, ValueError):
        return 0


T = TypeVar("T")


async def run_model(request: Request, function: Callable[..., T], *args: Any, pixels: int = 0) -> T:
    """Run the CPU-bound ``function`` in a worker thread, at most ``max_concurrency`` at a time,
    and only once its ``pixels`` fit the server's :class:`PixelBudget`.

    A request that cannot get a slot within ``queue_timeout_s`` gets 503 with Retry-After, so
    memory and latency stay bounded under load instead of queueing without end.
    """
    state = request.app.state
    timeout = state.settings.queue_timeout_s
    refusal = busy(max(1, math.ceil(timeout / 2)))
    with anyio.move_on_after(timeout) as waiting:
        await state.model_slots.acquire()
    if waiting.cancelled_caught:
        raise refusal
    try:
        # Taken while holding a slot: every holder of pixels is running, so the wait always ends.
        with anyio.move_on_after(timeout) as waiting:
            granted = await state.pixels.acquire(pixels)
        if waiting.cancelled_caught:
            raise refusal
        try:
            return await anyio.to_thread.run_sync(function, *args)
        finally:
            await state.pixels.release(granted)
    finally:
        state.model_slots.release()


def batch_cost(files: int, burst: int) -> int:
    """Tokens a batch takes beyond the one :func:`check_rate` took: one per file, the whole burst at most.

    Capped, because a batch larger than the burst could otherwise never pass (429 for ever); such
    a batch needs a full bucket, i.e. it counts as ``burst`` requests.
    """
    return max(0, min(files, burst) - 1)


def check_batch_pixels(headers: Sequence[ImageHeader | ApiError], settings: Settings) -> None:
    """413 before any decoding when the batch's declared pixels exceed ``max_batch_megapixels``."""
    total = sum(header.pixels for header in headers if not isinstance(header, ApiError))
    limit = settings.max_batch_megapixels * MEGAPIXEL
    if total > limit:
        raise ApiError.of(413, "batch_too_many_pixels", total=f"{total / MEGAPIXEL:,.0f}", limit=f"{limit / MEGAPIXEL:g}")

"""Load: 8 concurrent clients against the real server (uvicorn on 127.0.0.1 only, tiny model).

Bounded in count and in time: it sends a fixed number of requests and stops at a deadline even
if the server stalls. It asserts that every request got a correct answer and prints the
latency percentiles and the throughput.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import encode, photo_like

pytestmark = pytest.mark.slow

CLIENTS = 8
REQUESTS = 200
DEADLINE_S = 90.0


def _client_loop(base_url: str, image: bytes, tickets: TicketBox, latencies: list[float], errors: list[str]) -> None:
    """One client: its own connection, sending requests until the tickets or the time run out."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=30.0, trust_env=False) as client:  # trust_env: never via a proxy
        while tickets.take():
            started = time.perf_counter()
            try:
                response = client.post("/v1/detect", files={"image": ("load.jpg", image, "image/jpeg")})
                body = response.json()
                if response.status_code != 200 or body.get("verdict") not in ("ai", "real", "inconclusive"):
                    errors.append(f"{response.status_code}: {response.text[:200]}")
            except (httpx.HTTPError, ValueError) as error:
                errors.append(f"{type(error).__name__}: {error}")
            latencies.append(time.perf_counter() - started)


class TicketBox:
    """A fixed number of requests, shared by the clients, that also closes at a deadline."""

    def __init__(self, count: int, deadline_s: float) -> None:
        self.left, self.deadline = count, time.monotonic() + deadline_s
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0 or time.monotonic() > self.deadline:
                return False
            self.left -= 1
            return True


def test_eight_concurrent_clients_get_answers_without_errors(live_server, tiny_model_dir):
    # The rate limit is off here: all clients share one address, and the point is the model queue.
    url = live_server(tiny_model_dir, AIORNOT_RATE_PER_MINUTE="0", AIORNOT_QUEUE_TIMEOUT_S="30")
    # ID-photo proportions (35×45 mm), kept small: the provenance watermark check costs time per pixel.
    image = encode(photo_like(7, (240, 320)), "JPEG", quality=90)
    tickets, latencies, errors = TicketBox(REQUESTS, DEADLINE_S), [], []
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(CLIENTS):
            pool.submit(_client_loop, url, image, tickets, latencies, errors)
    elapsed = time.perf_counter() - started
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000 if latencies else (float("nan"), float("nan"))
    print(f"\nload: {len(latencies)} requests, {CLIENTS} clients, {elapsed:.1f} s, {len(latencies) / elapsed:.1f} req/s, "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, errors {len(errors)}")
    assert errors == [], errors[:5]
    assert len(latencies) == REQUESTS, f"only {len(latencies)} of {REQUESTS} requests were sent within {DEADLINE_S:.0f} s"

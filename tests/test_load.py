"""Load: 8 concurrent clients against the real server (uvicorn on 127.0.0.1 only, tiny model).

Bounded in count: the clients share a fixed number of requests. It asserts that every request
got a correct answer while more clients than model slots were waiting; how fast is measured by
``make bench`` (benchmarks/bench.py, benchmarks/soak.py), not asserted here.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from aiornot.contract.result import VERDICTS
from conftest import encode, photo_like

pytestmark = pytest.mark.slow

CLIENTS = 8
REQUESTS = 200


def _client_loop(base_url: str, image: bytes, tickets: TicketBox, answers: list[str], errors: list[str]) -> None:
    """One client: its own connection, sending requests until the tickets run out."""
    import httpx

    # The timeout only ends a hung connection; it is no speed requirement.
    with httpx.Client(base_url=base_url, timeout=120.0, trust_env=False) as client:  # trust_env: never via a proxy
        while tickets.take():
            try:
                response = client.post("/v1/detect", files={"image": ("load.jpg", image, "image/jpeg")})
                body = response.json()
                if response.status_code != 200 or body.get("verdict") not in VERDICTS:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                else:
                    answers.append(body["md5"])
            except (httpx.HTTPError, ValueError) as error:
                errors.append(f"{type(error).__name__}: {error}")


class TicketBox:
    """A fixed number of requests, shared by the clients."""

    def __init__(self, count: int) -> None:
        self.left = count
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def test_eight_concurrent_clients_get_answers_without_errors(live_server, tiny_model_dir):
    # The rate limit is off here: all clients share one address, and the point is the model queue.
    url = live_server(tiny_model_dir, AIORNOT_RATE_PER_MINUTE="0", AIORNOT_QUEUE_TIMEOUT_S="30")
    # ID-photo proportions (35×45 mm), kept small: the provenance watermark check costs time per pixel.
    image = encode(photo_like(7, (240, 320)), "JPEG", quality=90)
    tickets, answers, errors = TicketBox(REQUESTS), [], []
    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(CLIENTS):
            pool.submit(_client_loop, url, image, tickets, answers, errors)
    assert errors == [], errors[:5]
    assert len(answers) == REQUESTS and len(set(answers)) == 1  # every request answered, each about the photo sent

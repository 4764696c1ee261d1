"""`make bench` soak: ~2,000 loopback requests to a real `aiornot serve`, one in ten hostile.

Prints p50/p99 latency (normal requests, and all), the server's RSS at the start, peak and end,
the status counts and how many lines the server logged, ``/healthz``'s worst latency while it all
runs, and a flood phase (issue 18): marker-flood JPEGs and text-chunk-flood PNGs of ~19 MB sent
two at a time while normal clients are served, with ``/healthz``'s worst latency and the server's
RSS growth during it (the target: under 2 s and under 400 MB). Everything is merged into
``reports/benchmark.json`` under ``soak`` (the other keys are kept). Loopback only (127.0.0.1),
bounded in count and in time. The reliability *behaviour* is asserted in
tests/test_reliability.py; this only measures.

    python benchmarks/soak.py [--requests 2000] [--clients 4] [--model models/default]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import encode, free_loopback_port, marker_flood_jpeg, photo_like, png_declaring, text_chunk_flood_png  # noqa: E402

from aiornot.contract import paths  # noqa: E402

HOSTILE_EVERY = 10
DEADLINE_S = 600.0
FLOOD_TIMEOUT_S = 180.0


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_loopback_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "AIORNOT_RATE_PER_MINUTE": "0", "AIORNOT_QUEUE_TIMEOUT_S": "30",
           "AIORNOT_BODY_IDLE_TIMEOUT_S": "2", "AIORNOT_HEADER_TIMEOUT_S": "2"}
    command = [sys.executable, "-m", "aiornot", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--model", str(model), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-2000:]}")
        try:
            with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start in 180 s")


# --------------------------------------------------------------------------- the requests
def multipart(fields: list[tuple[str, str, bytes]], boundary: str = "soakB") -> bytes:
    body = io.BytesIO()
    for name, filename, data in fields:
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                   "Content-Type: application/octet-stream\r\n\r\n".encode())
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue()


def raw_request(port: int, payload: bytes, *, close_early: bool = False, timeout: float = 30.0) -> int:
    """Send raw bytes; returns the status (0 when the connection was dropped on purpose or closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        if close_early:
            return 0  # a client that vanishes mid-upload
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and len(data) > 12:
                break
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def post(port: int, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: multipart/form-data; boundary=soakB\r\n\r\n").encode()
    return head + body


def hostile_requests(port: int) -> list[tuple[str, Callable[[], int]]]:
    """Each kind of abuse issue 10 found, as a callable returning the status it got."""
    photo = encode(photo_like(1, (640, 480)), "JPEG", quality=90)
    text = multipart([("image", "cv.jpg", b"%PDF-1.7 not a photo" * 50)])
    bomb = multipart([("image", "bomb.png", png_declaring(30000, 30000))])
    truncated = multipart([("image", "cut.jpg", photo[: len(photo) // 3])])
    parts = b"".join(b'--soakB\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n' for _ in range(2000)) + b"--soakB--\r\n"
    pixels = multipart([("images", f"{n}.png", png_declaring(8000, 8000)) for n in range(5)])
    half = post(port, "/v1/detect", multipart([("image", "p.jpg", photo)]))
    big = io.BytesIO()  # 186 KB on the wire, 64 megapixels decoded: the pixel budget's case
    Image.new("RGB", (8000, 8000), (120, 80, 60)).save(big, format="PNG", compress_level=9)
    huge = multipart([("image", "big.png", big.getvalue())])
    return [
        ("not_an_image", lambda: raw_request(port, post(port, "/v1/detect", text))),
        ("bomb", lambda: raw_request(port, post(port, "/v1/detect", bomb))),
        ("truncated", lambda: raw_request(port, post(port, "/v1/detect", truncated))),
        ("too_many_parts", lambda: raw_request(port, post(port, "/v1/detect", parts))),
        ("batch_pixels", lambda: raw_request(port, post(port, "/v1/detect/batch", pixels))),
        ("disconnect", lambda: raw_request(port, half[: len(half) // 2], close_early=True)),
        ("garbage", lambda: raw_request(port, b"NOT HTTP AT ALL\r\n\r\n")),
        ("stalled_body", lambda: raw_request(port, half[: len(half) // 2])),  # the idle timeout answers 408
        ("64_megapixels", lambda: raw_request(port, post(port, "/v1/detect", huge))),  # scored, within the pixel budget
        *flood_requests(port),
    ]


def flood_requests(port: int) -> list[tuple[str, Callable[[], int]]]:
    """Issue 18's freezing uploads, each ~19 MB: 4.9 million empty APP15 markers, 1.3 million tEXt chunks."""
    jpeg = post(port, "/v1/detect", multipart([("image", "flood.jpg", marker_flood_jpeg())]))
    png = post(port, "/v1/detect", multipart([("image", "flood.png", text_chunk_flood_png())]))
    # A long socket timeout: before issue 18 one such request took 42 s, and the soak should say so, not give up.
    return [("marker_flood_jpeg", lambda: raw_request(port, jpeg, timeout=FLOOD_TIMEOUT_S)),
            ("text_flood_png", lambda: raw_request(port, png, timeout=FLOOD_TIMEOUT_S))]


def attempt(send: Callable[[], int]) -> int:
    """The status ``send`` got, or -1 when the connection failed or timed out (counted, never fatal)."""
    try:
        return send()
    except OSError:
        return -1


class _Every:
    """A background thread that calls :meth:`tick` every ``every_s`` while the ``with`` block runs."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()

    def tick(self) -> None:
        raise NotImplementedError


class HealthProbe(_Every):
    """Asks ``/healthz`` every ``every_s`` on a new connection and keeps the latencies (a stalled
    event loop shows here first: the probe's request waits behind whatever holds the loop)."""

    REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

    def __init__(self, port: int, every_s: float = 0.1) -> None:
        super().__init__(every_s)
        self.port = port
        self.latencies: list[float] = []
        self.failures = 0

    def tick(self) -> None:
        started = time.perf_counter()
        try:
            status = raw_request(self.port, self.REQUEST)
        except OSError:
            status = -1
        self.latencies.append(time.perf_counter() - started)  # a failed probe's wait counts too
        self.failures += status != 200

    def summary(self) -> dict:
        worst = max(self.latencies, default=float("nan")) * 1000
        return {"probes": len(self.latencies), "failures": self.failures, "worst_ms": round(worst, 1),
                **percentiles(self.latencies)}


class RssSampler(_Every):
    """The server's resident memory every 0.1 s: start, peak, end, and the peak's growth over the start."""

    def __init__(self, pid: int) -> None:
        super().__init__(0.1)
        self.pid, self.start, self.peak = pid, rss_mb(pid), 0.0

    def tick(self) -> None:
        self.peak = max(self.peak, rss_mb(self.pid))

    def summary(self) -> dict:
        peak = max(self.peak, self.start)
        return {"start": round(self.start), "peak": round(peak), "end": round(rss_mb(self.pid)), "growth": round(peak - self.start)}


def flood_phase(process: subprocess.Popen, port: int, normal: bytes, floods: int = 8, normal_clients: int = 2) -> dict:
    """Flood uploads two at a time while ``normal_clients`` keep sending ordinary photos."""
    senders = flood_requests(port)
    statuses: Counter[str] = Counter()
    normal_latencies: list[float] = []
    done = threading.Event()
    lock = threading.Lock()

    def flooder(offset: int) -> None:
        for index in range(offset, floods, 2):
            kind, send = senders[index % len(senders)]
            status = attempt(send)
            with lock:
                statuses[f"{kind}:{status}"] += 1

    def ordinary() -> None:
        while not done.is_set():
            started = time.perf_counter()
            status = attempt(lambda: raw_request(port, normal))
            with lock:
                statuses[f"normal:{status}"] += 1
                normal_latencies.append(time.perf_counter() - started)

    with RssSampler(process.pid) as rss, HealthProbe(port) as health:
        clients = [threading.Thread(target=ordinary, daemon=True) for _ in range(normal_clients)]
        for client in clients:
            client.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(flooder, range(2)))
        elapsed = time.perf_counter() - started
        done.set()
        for client in clients:
            client.join()
    return {"floods": floods, "seconds": round(elapsed, 1), "healthz": health.summary(), "rss_mb": rss.summary(),
            "normal": percentiles(normal_latencies), "statuses": dict(sorted(statuses.items()))}


class Tally:
    """Thread-safe record of what each request got and how long it took."""

    def __init__(self, total: int) -> None:
        self.left, self.deadline = total, time.monotonic() + DEADLINE_S
        self.normal: list[float] = []
        self.all: list[float] = []
        self.statuses: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if self.left <= 0 or time.monotonic() > self.deadline:
                return None
            self.left -= 1
            return self.left

    def record(self, kind: str, status: int, seconds: float) -> None:
        with self._lock:
            self.statuses[f"{kind}:{status}"] += 1
            self.all.append(seconds)
            if kind == "normal":
                self.normal.append(seconds)


def client_loop(port: int, tally: Tally, normal: bytes, hostile: list[tuple[str, Callable[[], int]]]) -> None:
    while (ticket := tally.take()) is not None:
        if ticket % HOSTILE_EVERY == 0:
            kind, send = hostile[(ticket // HOSTILE_EVERY) % len(hostile)]
        else:
            kind, send = "normal", lambda: raw_request(port, normal)
        started = time.perf_counter()
        try:
            status = send()
        except OSError:
            status = -1
        tally.record(kind, status, time.perf_counter() - started)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    p50, p99 = np.percentile(values, [50, 99]) * 1000
    return {"p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--model", type=Path, default=paths.DEFAULT_MODEL_DIR)
    parser.add_argument("--floods", type=int, default=8, help="~19 MB flood uploads in the flood phase (two at a time)")
    parser.add_argument("--show-log", action="store_true", help="print what the server logged")
    parser.add_argument("--scan-files", type=int, default=6, help="64-megapixel PNGs for the scan memory check (0: skip)")
    args = parser.parse_args(argv)
    if not (args.model / "detector.json").is_file():
        print(f"soak: no model in {args.model}; skipped", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        process, port = start_server(args.model, log)
        try:
            report = soak(process, port, args.requests, args.clients, args.floods)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # still busy with a request it cannot give up
                process.kill()
                process.wait()
        logged = log.read_text(errors="replace")
        report["server_log_lines"] = len(logged.splitlines())  # start-up and shut-down lines; no request is logged
        report["server_tracebacks"] = logged.count("Traceback")
        if args.show_log:
            print(logged, file=sys.stderr)
    if args.scan_files:
        report["scan_64mp"] = scan_peak_rss(args.model, args.scan_files)
    print(json.dumps(report, indent=2))
    out = paths.REPORTS_DIR / "benchmark.json"
    existing = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**existing, "soak": report}, indent=2))  # merge: bench.py's keys stay
    print(f"soak: merged into {out.relative_to(ROOT)}", file=sys.stderr)
    return 0


def scan_peak_rss(model: Path, files: int) -> dict:
    """Peak RSS of `aiornot scan` over ``files`` PNGs of 8000×8000 (64 MP, ~200 KB each on disk).

    Before batches were cut by pixels, 12 such files peaked at 3.9 GB: the whole batch was decoded
    at once. Now a batch ends at --batch-megapixels (64), so the peak should not grow with ``files``.
    """
    with tempfile.TemporaryDirectory() as folder:
        for index in range(files):
            Image.new("RGB", (8000, 8000), (40 + index, 90, 160)).save(Path(folder) / f"big{index}.png", compress_level=1)
        scan = [sys.executable, "-m", "aiornot", "scan", folder, "--model", str(model), "-q", "-o", str(Path(folder) / "out.jsonl")]
        # A wrapper process waits for the scan, so its RUSAGE_CHILDREN peak is the scan's alone (not the server's).
        wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
                   "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", wrapper, *scan], cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                             check=True, capture_output=True, text=True, timeout=DEADLINE_S)
        elapsed = time.perf_counter() - started
    peak = int(run.stdout.split()[-1]) / 1024  # KiB on Linux
    return {"files": files, "megapixels_each": 64, "batch_megapixels": 64, "peak_rss_mb": round(peak), "seconds": round(elapsed, 1)}


def soak(process: subprocess.Popen, port: int, requests: int, clients: int, floods: int = 8) -> dict:
    """Run the load and sample the server's memory while it runs."""
    normal = post(port, "/v1/detect", multipart([("image", "p.jpg", encode(photo_like(2, (640, 480)), "JPEG", quality=90))]))
    raw_request(port, normal)  # warm-up
    start_rss, peak = rss_mb(process.pid), [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], rss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tally = Tally(requests)
    started = time.perf_counter()
    hostile = hostile_requests(port)
    with HealthProbe(port) as health, ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client_loop, port, tally, normal, hostile)
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    server_errors = sum(n for key, n in tally.statuses.items() if key.split(":")[1].startswith("5") and not key.endswith(":503"))
    return {
        "requests": len(tally.all), "clients": clients, "hostile_share": round(1 / HOSTILE_EVERY, 2),
        "seconds": round(elapsed, 1), "requests_per_second": round(len(tally.all) / elapsed, 1),
        "normal": percentiles(tally.normal), "all": percentiles(tally.all),
        "rss_mb": {"start": round(start_rss), "peak": round(max(peak[0], start_rss)), "end": round(rss_mb(process.pid))},
        "statuses": dict(sorted(tally.statuses.items())), "server_errors_5xx": server_errors,
        "healthz": health.summary(),
        "flood": flood_phase(process, port, normal, floods),
        "measured": time.strftime("%Y-%m-%d"),
    }


if __name__ == "__main__":
    sys.exit(main())

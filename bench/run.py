#!/usr/bin/env python3
"""Side-by-side benchmark: the bridge vs a naive port of the seed tutorial vs a do-nothing floor.

    python bench/run.py                 # full run (a few minutes), writes bench/RESULTS.md
    python bench/run.py --quick         # smoke run (well under a minute)

Everything listens on 127.0.0.1 only. Started here, and killed in ``finally`` (also on Ctrl-C):

- a Novu stand-in in its own process (bench/novu_process.py, wrapping tests/novu_standin.py),
  answering like Novu after a latency set per phase;
- the functions, served the way Cloud Run functions serves them in production,
  ``functions-framework --target=handler --source=... --host 127.0.0.1 --port P`` (gunicorn, one
  worker, ``THREADS`` threads as deploy.sh sets it): the bridge (main.py), bench/baseline_naive.py,
  bench/baseline_floor.py, and for single events the reference bench/baseline_one_call.py;
- an in-process load generator: threads, one keep-alive ``http.client`` connection each.

See bench/README.md for what is measured and the targets.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"  # server logs (git-ignored)
HOST = "127.0.0.1"
sys.path.insert(0, str(ROOT))
from segment_novu import config  # noqa: E402  (the project's own list of the variables it reads)

SERVERS = ("bridge", "naive", "floor")
# Single events only, for reference (no target is judged against it): see bench/baseline_one_call.py.
REFERENCE = "one-call"
# Single events only, for one figure: the bridge writing every log entry alone (bench/variant_write_each.py).
WRITE_EACH = "write-each"
SINGLE_SERVERS = SERVERS + (REFERENCE, WRITE_EACH)
SOURCES = {"bridge": "main.py", "naive": "bench/baseline_naive.py", "floor": "bench/baseline_floor.py",
           REFERENCE: "bench/baseline_one_call.py", WRITE_EACH: "bench/variant_write_each.py"}
# Every variable the bridge reads: cleared so the caller's environment cannot change what is measured.
BRIDGE_VARIABLES = config.VARIABLES + (
    "WORKERS", "THREADS", "CLOUD_RUN_TIMEOUT_SECONDS", "THREADED_TIMEOUT_ENABLED", "HOST", "PORT", "DEBUG",
)
SEGMENT_DEADLINE = 5.0
EVENT_NAME = "Order Completed"
WORKFLOW = "order-completed"  # what the bridge's default rule and the naive slug make of EVENT_NAME

TARGET_SINGLE_VS_NAIVE = 2.0
TARGET_SINGLE_VS_FLOOR = 0.5
TARGET_BATCH_SECONDS = {1000: 1.0, 4000: 3.0}
TARGET_COLD_START_GAP = 0.4
TARGET_PEAK_RSS_MB = 150.0


# Hand-written: why the targets this run misses are missed, appended to the results when any is.
ANALYSIS = BENCH / "ANALYSIS.md"
# What deploy.sh sets besides the threads: the allocator returns freed large buffers to the system.
DEPLOYED_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


class BenchError(Exception):
    pass


# -- processes --------------------------------------------------------------------------------------


class Processes:
    """Every process this run starts, each in its own session so its whole tree can be ended."""

    def __init__(self):
        self.running: list[subprocess.Popen] = []

    def spawn(self, argv, **options) -> subprocess.Popen:
        process = subprocess.Popen(argv, start_new_session=True, **options)
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the process group created for it (its pid), SIGKILL after 3 s, then SIGKILL to
        whatever of the group is left (a gunicorn worker outliving its arbiter)."""
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(3.0)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            pass
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self.running)):
            self.stop(process)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def status_kb(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


# -- HTTP -------------------------------------------------------------------------------------------


def request(port: int, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
    """One request on a fresh connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class KeepAlive:
    """One keep-alive connection (one per load-generator thread); reconnects once after a dropped one."""

    def __init__(self, port: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.connection: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            try:
                self.connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
            except Exception:
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# -- the Novu stand-in -------------------------------------------------------------------------------


class Novu:
    def __init__(self, processes: Processes):
        self.processes = processes
        self.process = None
        self.url = ""
        self.port = 0

    def start(self, nagle: bool = False, timeout: float = 20.0) -> None:
        log = open(WORK / "novu.log", "wb")
        self.process = self.processes.spawn(
            [sys.executable, str(BENCH / "novu_process.py"), "--workflows", WORKFLOW, *(["--nagle"] if nagle else [])],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
            elif self.process.poll() is not None:
                break
        text = line.decode().strip()
        if not text.startswith("READY "):
            raise BenchError(f"the Novu stand-in did not start (see {WORK / 'novu.log'})")
        self.url = text.split()[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def control(self, path: str) -> dict:
        status, body = request(self.port, "GET", "/_bench/" + path, None, timeout=30)
        if status != 200:
            raise BenchError(f"stand-in control {path} answered {status}")
        return json.loads(body)

    def reset(self, latency: float) -> None:
        self.control(f"reset?latency={latency}")

    def stats(self) -> dict:
        return self.control("stats")


# -- the served functions ---------------------------------------------------------------------------


def functions_framework_command() -> str:
    beside = Path(sys.executable).parent / "functions-framework"
    if beside.exists():
        return str(beside)
    found = shutil.which("functions-framework")
    if not found:
        raise BenchError("functions-framework not found: activate the venv (. .venv/bin/activate)")
    return found


class Served:
    """One function under functions-framework (gunicorn), as in production."""

    def __init__(self, name: str, processes: Processes, novu: Novu, threads: int, label: str | None = None,
                 extra_env: dict | None = None):
        self.name = name
        self.extra_env = extra_env or {}
        self.label = label or name  # names the log files
        self.processes = processes
        self.novu = novu
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.started = 0.0
        self.launches = 0

    def environment(self) -> dict:
        env = {key: value for key, value in os.environ.items() if key not in BRIDGE_VARIABLES}
        env.update({
            "NOVU_API_URL": self.novu.url,
            "NOVU_API_KEY": "bench-key",
            "THREADS": str(self.threads),
            **DEPLOYED_ENVIRONMENT,
            **self.extra_env,
        })
        return env

    def start(self) -> None:
        self.port = free_port()
        self.launches += 1
        log = open(self.log_path(), "wb")
        argv = [functions_framework_command(), "--target=handler", f"--source={SOURCES[self.name]}",
                "--host", HOST, "--port", str(self.port)]
        self.started = time.monotonic()
        self.process = self.processes.spawn(argv, cwd=ROOT, env=self.environment(),
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def log_path(self) -> Path:
        return WORK / f"{self.label}-{self.launches}.log"

    def wait_first_200(self, body_for, limit: float = 30.0) -> float:
        """Poll with single events until one is answered 200: seconds since the process was spawned."""
        deadline = self.started + limit
        attempt = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.process.returncode} "
                                 f"(see {self.log_path()})")
            attempt += 1
            try:
                status, _ = request(self.port, "POST", "/", body_for(attempt), timeout=max(0.1, deadline - time.monotonic()))
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                time.sleep(0.005)
                continue
            except TimeoutError:
                break
            if status == 200:
                return time.monotonic() - self.started
            time.sleep(0.005)
        raise BenchError(f"{self.name} gave no 200 within {limit:.0f} s")

    def stop(self) -> None:
        if self.process is not None:
            self.processes.stop(self.process)
            self.process = None

    def restart(self, body_for) -> None:
        self.stop()
        self.start()
        self.wait_first_200(body_for)

    def tree(self) -> list[int]:
        return descendants(self.process.pid) if self.process else []

    def memory(self) -> dict:
        """VmHWM (peak RSS) and VmRSS of the arbiter and its worker(s), in MB."""
        pids = self.tree()
        arbiter = self.process.pid
        workers = [pid for pid in pids if pid != arbiter]
        def mb(pid, field_name):
            value = status_kb(pid, field_name)
            return (value or 0) / 1024
        return {
            "arbiter_hwm": mb(arbiter, "VmHWM"),
            "worker_hwm": max((mb(pid, "VmHWM") for pid in workers), default=0.0),
            "tree_hwm": sum(mb(pid, "VmHWM") for pid in pids),
            "tree_rss": sum(mb(pid, "VmRSS") for pid in pids),
        }


# -- events -----------------------------------------------------------------------------------------


def track_event(tag: str, index: int) -> dict:
    """A track event as Segment delivers it, with its own userId and messageId."""
    uid = f"{tag}-{index:06d}"
    return {
        "type": "track",
        "event": EVENT_NAME,
        "userId": f"user-{uid}",
        "anonymousId": f"anon-{uid}",
        "messageId": f"msg-{uid}",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "originalTimestamp": "2026-11-28T10:00:00.000Z",
        "sentAt": "2026-11-28T10:00:00.100Z",
        "receivedAt": "2026-11-28T10:00:00.200Z",
        "channel": "server",
        "version": 2,
        "context": {
            "library": {"name": "analytics-node", "version": "2.1.0"},
            "ip": "203.0.113.7",
            "locale": "en-US",
            "traits": {"email": f"{uid}@example.com"},
        },
        "integrations": {},
        "properties": {
            "order_id": f"order-{uid}",
            "total": 54.82,
            "currency": "USD",
            "products": [{"sku": "45790-32", "name": "Monopoly", "price": 19.0, "quantity": 2}],
        },
    }


def user_ids(tag: str, count: int) -> set[str]:
    return {f"user-{tag}-{index:06d}" for index in range(count)}


class Tags:
    """Tags unique to this run, so no messageId repeats (the bridge's ledger would skip it)."""

    def __init__(self):
        self.nonce = format(int(time.time() * 1000) % 10**8, "x")
        self.serial = 0

    def next(self, label: str) -> str:
        self.serial += 1
        return f"{self.nonce}-{label}-{self.serial}"


def one_event_body(tags: Tags, label: str):
    tag = tags.next(label)
    return lambda attempt: json.dumps(track_event(tag, attempt)).encode()


# -- measurements -----------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(fraction * len(ordered) + 0.5))))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    requests: int
    ok: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float
    triggers: int | None = None
    duplicates: int | None = None
    errors: list[str] = field(default_factory=list)
    round_rps: list[float] = field(default_factory=list)  # several rounds: each round's req/s

    @property
    def rps(self) -> float:
        if self.round_rps:
            return statistics.median(self.round_rps)
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 0.50) * 1000 if self.latencies else float("nan")

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000 if self.latencies else float("nan")


def run_load(server: Served, bodies: list[bytes], concurrency: int, timeout: float, cap: float) -> LoadResult:
    """Send every body once, ``concurrency`` at a time; latency per request, wall time overall."""
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    latencies: list[float] = []
    errors: list[str] = []
    ok = [0]
    start = threading.Barrier(concurrency + 1)

    def worker():
        client = KeepAlive(server.port, timeout)
        try:
            start.wait(30)
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                began = time.perf_counter()
                try:
                    status, _ = client.post(bodies[index])
                except Exception as error:  # recorded, not raised: one failure must not end the phase
                    with lock:
                        errors.append(type(error).__name__)
                    continue
                elapsed = time.perf_counter() - began
                with lock:
                    latencies.append(elapsed)
                    if status == 200:
                        ok[0] += 1
                    else:
                        errors.append(f"HTTP {status}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    pids = server.tree()
    cpu_before = cpu_seconds(pids)
    start.wait(30)
    began = time.perf_counter()
    for thread in threads:
        thread.join(max(0.0, began + cap - time.perf_counter()))
    seconds = time.perf_counter() - began
    if any(thread.is_alive() for thread in threads):
        errors.append(f"phase cut at {cap:.0f} s")
    cpu = cpu_seconds(pids) - cpu_before
    return LoadResult(len(bodies), ok[0], seconds, latencies, cpu, errors=errors)


@dataclass
class BatchResult:
    size: int
    seconds: float | None  # None: the client gave up (timeout)
    status: int | None
    delivered_once: bool | None  # None: nothing to check (floor)
    detail: str
    timed_out: bool = False
    worker_hwm_mb: float | None = None  # the worker's VmHWM right after this batch


def check_delivery(name: str, stats: dict, expected: set[str]) -> tuple[bool | None, str]:
    count = len(expected)
    if name == "floor":
        return None, f"{stats['triggers']} Novu triggers (none expected)"
    subscribers = stats["subscribers"]
    got = set(subscribers) & expected
    repeated = sum(1 for key in got if subscribers[key] > 1)
    missing = len(expected - got)
    if name == "bridge":
        transactions = stats["transactions"]
        duplicate_tx = sum(1 for value in transactions.values() if value > 1)
        once = (stats["triggers"] == count and len(transactions) == count and duplicate_tx == 0
                and missing == 0 and repeated == 0)
        detail = (f"{stats['triggers']} triggers, {len(transactions)} distinct transactionIds, "
                  f"{duplicate_tx} repeated, {missing} users missing "
                  f"({stats['bulkCalls']} bulk + {stats['singleCalls']} single calls)")
    else:
        once = stats["triggers"] == count and missing == 0 and repeated == 0
        detail = f"{stats['triggers']} triggers ({stats['singleCalls']} calls), {missing} users missing, {repeated} repeated"
    return once, detail


def bridge_outcomes(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return "unreadable answer"
    counts: dict[str, int] = {}
    for entry in document.get("events", []) if isinstance(document, dict) else []:
        counts[entry.get("outcome")] = counts.get(entry.get("outcome"), 0) + 1
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "no events listed"


# -- report -----------------------------------------------------------------------------------------


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    versions = {}
    for package in ("functions-framework", "gunicorn", "flask", "requests", "orjson"):
        try:
            from importlib.metadata import version
            versions[package] = version(package)
        except Exception:
            versions[package] = "?"
    return {
        "git": git_state(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far, from /proc/stat."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def git_state() -> str:
    """The commit measured, and which of the function's files differ from it (work in progress)."""
    def git(*arguments):
        try:
            done = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.rstrip() if done.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", "main.py", "segment_novu",
                                        "requirements.txt").splitlines()]
    if not changed:
        return f"{commit} (clean)"
    return f"{commit} + uncommitted changes to {', '.join(changed)}"


def fmt(value, spec=".0f", missing="–"):
    if value is None:
        return missing
    return format(value, spec)


def ratio(a, b):
    return a / b if a and b else None


class Report:
    def __init__(self, options):
        self.options = options
        self.single: dict[float, dict[str, LoadResult]] = {}
        self.batches: dict[int, dict[str, list[BatchResult]]] = {}
        self.cold: dict[str, list[float]] = {name: [] for name in SERVERS}
        self.memory: dict[str, dict] = {}
        self.scale: list[ScaleResult] = []
        self.reservation_ms: tuple[float, float] | None = None
        self.notes: list[str] = []
        self.machine = machine()
        self.elapsed = 0.0
        self.load_before = os.getloadavg()
        self.load_after = None
        self.busy_before = busy_jiffies()
        self.busy_cores = None  # whole machine, every process, averaged over the run

    # figures
    def batch_seconds(self, size: int, name: str):
        runs = self.batches.get(size, {}).get(name, [])
        if not runs:
            return None, None, False
        if any(run.seconds is None for run in runs):
            return None, None, True
        times = [run.seconds for run in runs]
        return statistics.median(times), max(times), False

    def cold_median(self, name: str):
        return statistics.median(self.cold[name]) if self.cold[name] else None

    def targets(self) -> list[tuple[str, str, bool | None]]:
        rows = []
        zero = self.single.get(0.0, {})
        if zero:
            b, n, f = (zero[name].rps for name in SERVERS)
            vs_naive, vs_floor = ratio(b, n), ratio(b, f)
            rows.append((f"single events, Novu 0 ms: bridge ≥ {TARGET_SINGLE_VS_NAIVE:g}× naive throughput",
                         f"{fmt(vs_naive, '.2f')}× ({b:.0f} vs {n:.0f} req/s)",
                         vs_naive is not None and vs_naive >= TARGET_SINGLE_VS_NAIVE))
            rows.append((f"single events, Novu 0 ms: bridge ≥ {TARGET_SINGLE_VS_FLOOR:g}× floor throughput",
                         f"{fmt(vs_floor, '.2f')}× ({b:.0f} vs {f:.0f} req/s)",
                         vs_floor is not None and vs_floor >= TARGET_SINGLE_VS_FLOOR))
        for size, limit in TARGET_BATCH_SECONDS.items():
            if size not in self.batches:
                continue
            median, worst, _ = self.batch_seconds(size, "bridge")
            rows.append((f"{size:,}-event batch, Novu 50 ms: answered in ≤ {limit:.1f} s",
                         f"median {fmt(median, '.3f')} s, worst {fmt(worst, '.3f')} s",
                         worst is not None and worst <= limit))
        runs = [run for by_name in self.batches.values() for run in by_name.get("bridge", [])]
        if runs:
            once = all(run.delivered_once and run.status == 200 for run in runs)
            rows.append(("every batch event delivered to Novu exactly once (bridge)",
                         f"{sum(1 for run in runs if run.delivered_once)}/{len(runs)} batches",
                         once))
        bridge_cold, floor_cold = self.cold_median("bridge"), self.cold_median("floor")
        if bridge_cold is not None and floor_cold is not None:
            gap = bridge_cold - floor_cold
            rows.append((f"cold start within {TARGET_COLD_START_GAP:.1f} s of the floor",
                         f"{gap:+.3f} s ({bridge_cold:.3f} vs {floor_cold:.3f} s)", gap <= TARGET_COLD_START_GAP))
        if "bridge" in self.memory:
            peak = self.memory["bridge"]
            rows.append((f"peak RSS ≤ {TARGET_PEAK_RSS_MB:.0f} MB through the 4,000-event batch",
                         f"{peak['tree_hwm']:.1f} MB (worker {peak['worker_hwm']:.1f} + arbiter {peak['arbiter_hwm']:.1f})",
                         peak["tree_hwm"] <= TARGET_PEAK_RSS_MB))
        return rows

    # rendering
    def tables(self) -> list[tuple[str, list[str], list[list[str]]]]:
        o = self.options
        tables = []
        rows = []
        for latency, results in self.single.items():
            served = [results[name] for name in SINGLE_SERVERS]
            b, n, f, c, e = served
            label = f"Novu {latency * 1000:.0f} ms"
            rows.append([f"{label}: req/s", *(fmt(r.rps) for r in served),
                         *(fmt(ratio(b.rps, other.rps), ".2f") + "×" for other in (n, f, c, e))])
            rows.append([f"{label}: p50 / p99 ms", *(f"{r.p50_ms:.1f} / {r.p99_ms:.1f}" for r in served), "", "", "", ""])
            rows.append([f"{label}: server CPU ms/req", *(fmt(1000 * r.cpu_seconds / max(1, r.requests), ".2f")
                                                            for r in served), "", "", "", ""])
            rows.append([f"{label}: req/s per round", *(" ".join(f"{v:.0f}" for v in r.round_rps) for r in served),
                         "", "", "", ""])
            rows.append([f"{label}: failed requests / Novu triggers",
                         *(f"{len(r.errors)} / {fmt(r.triggers, 'd')}" for r in served), "", "", "", ""])
        counts = ", ".join(f"{int(latency * 1000)} ms: {results['bridge'].requests // max(1, len(results['bridge'].round_rps))}"
                           for latency, results in self.single.items())
        tables.append((f"Single events ({o.single_rounds} rounds of fixed counts per function ({counts}); "
                       f"concurrency {o.concurrency}; THREADS={o.threads}; req/s = median round)",
                       ["measure", "bridge", "naive", "floor", f"{REFERENCE} (reference)", f"{WRITE_EACH} (reference)",
                        "bridge/naive", "bridge/floor", f"bridge/{REFERENCE}", f"bridge/{WRITE_EACH}"], rows))
        rows = []
        for size, by_name in self.batches.items():
            cells = []
            for name in SERVERS:
                runs = by_name.get(name)
                if not runs:
                    cells.append("skipped")
                    continue
                median, worst, timed_out = self.batch_seconds(size, name)
                if timed_out:
                    cells.append(f"> {o.naive_timeout:.0f} s (gave up)")
                elif len(runs) > 1:
                    cells.append(f"{median:.3f} s (max {worst:.3f})")
                else:
                    cells.append(f"{median:.3f} s")
            checks = []
            for name in ("bridge", "naive"):
                runs = by_name.get(name, [])
                if runs:
                    good = sum(1 for run in runs if run.delivered_once)
                    checks.append(f"{name} {good}/{len(runs)}")
            over = "yes" if (self.batch_seconds(size, "bridge")[1] or 0) > SEGMENT_DEADLINE else "no"
            rows.append([f"{size:,} events", *cells, ", ".join(checks), over])
        tables.append(("Batches of track events, Novu at 50 ms (time to answer; bridge/floor: median of "
                       f"{o.batch_repeats}, naive: 1 run)",
                       ["batch", "bridge", "naive", "floor", "exactly once", "bridge over 5 s"], rows))
        rows = []
        if any(self.cold.values()):
            rows.append(["median s", *(fmt(self.cold_median(name), ".3f") for name in SERVERS)])
            rows.append(["runs s", *(" ".join(f"{value:.3f}" for value in self.cold[name]) for name in SERVERS)])
            tables.append((f"Cold start: spawn to first 200 (Novu 0 ms; median of {o.cold_repeats}, after one unmeasured warm-up)",
                           ["", "bridge", "naive", "floor"], rows))
        rows = []
        if self.memory:
            for key, label in (("tree_hwm", "VmHWM arbiter + worker MB"), ("worker_hwm", "VmHWM worker MB"),
                               ("arbiter_hwm", "VmHWM arbiter MB"), ("tree_rss", "VmRSS now MB")):
                rows.append([label, *(fmt(self.memory.get(name, {}).get(key), ".1f") for name in SERVERS)])
            tables.append(("Peak resident memory through the batch phase (functions-framework process tree)",
                           ["", "bridge", "naive", "floor"], rows))
        if self.scale:
            rows = [[f"{r.plan} ({r.rate:g}/s)", str(r.instances), f"{r.events_per_second:.0f}", f"{r.share:.0%}",
                     str(r.novu_429), str(r.accepted_twice), str(r.answered_429), str(len(r.driver_errors))]
                    for r in self.scale]
            latency = (f"; one reservation (Redis round trip, Lua script): p50 {self.reservation_ms[0]:.3f} ms, "
                       f"p99 {self.reservation_ms[1]:.3f} ms" if self.reservation_ms else "")
            tables.append((f"Scale-out: bridge instances sharing one trigger budget in Redis, Novu stand-in metering "
                           f"as Novu does ({o.scale_drivers} Segment connections per instance resending after "
                           f"Retry-After; {o.scale_seconds:g} s measured after {o.scale_warmup:g} s){latency}",
                           ["plan", "instances", "events/s accepted", "share of plan", "Novu 429s",
                            "accepted twice", "bridge 429s (Retry-After)", "driver errors"], rows))
        return tables

    def text(self) -> str:
        lines = []
        for title, header, rows in self.tables():
            widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
            lines.append(title)
            lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(header, widths)))
            lines.append("  ".join("-" * width for width in widths))
            for row in rows:
                lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
            lines.append("")
        lines.append("Targets")
        for goal, figure, passed in self.targets():
            lines.append(f"  [{'PASS' if passed else 'MISS'}] {goal}: {figure}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def markdown(self) -> str:
        m, o = self.machine, self.options
        out = ["# Benchmark results: bridge vs naive port vs floor", ""]
        out.append(f"Produced by `python bench/run.py{' --quick' if o.quick else ''}` on {m['date']} "
                   f"in {self.elapsed:.0f} s. See bench/README.md for the method.")
        out.append("")
        out.append("## Machine")
        out.append("")
        out.append(f"- Code measured: {m['git']}")
        out.append(f"- CPUs: {m['nproc']} (usable: {m['usable_cpus']}), {m['cpu']}")
        out.append(f"- Memory: {m['memory']}")
        out.append(f"- Python {m['python']} on {m['platform']}")
        out.append("- " + ", ".join(f"{name} {version}" for name, version in m["versions"].items()))
        out.append(f"- Load average (1/5/15 min) before: {' '.join(f'{v:.2f}' for v in self.load_before)}; after: "
                   f"{' '.join(f'{v:.2f}' for v in self.load_after or ())}. Whole machine busy during the run: "
                   f"{fmt(self.busy_cores, '.2f')} of {m['nproc']} CPUs on average (this benchmark and anything else "
                   "running; other work on the machine lowers every figure, the floor's most).")
        out.append(f"- Functions served by functions-framework (gunicorn, 1 worker, THREADS={o.threads}), "
                   "Novu stand-in in its own process, load generator in the runner process; all on 127.0.0.1 "
                   "and sharing the CPUs above.")
        out.append("")
        out.append("## Targets")
        out.append("")
        out.append("| target | result | |")
        out.append("|---|---|---|")
        for goal, figure, passed in self.targets():
            out.append(f"| {goal} | {figure} | **{'PASS' if passed else 'MISS'}** |")
        out.append("")
        for title, header, rows in self.tables():
            out.append(f"## {title}")
            out.append("")
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            for row in rows:
                out.append("| " + " | ".join(str(cell) for cell in row) + " |")
            out.append("")
        details = [(size, name, run) for size, by_name in self.batches.items()
                   for name, runs in by_name.items() for run in runs]
        if details:
            out.append("## Batch details (what Novu received)")
            out.append("")
            out.append("| batch | function | time | HTTP | check | worker VmHWM after, MB | detail |")
            out.append("|---|---|---|---|---|---|---|")
            for size, name, run in details:
                check = {True: "once", False: "**NOT once**", None: "n/a"}[run.delivered_once]
                seconds = f"> {o.naive_timeout:.0f} s" if run.timed_out else f"{run.seconds:.3f} s"
                out.append(f"| {size:,} | {name} | {seconds} | {fmt(run.status, 'd')} | {check} | "
                           f"{fmt(run.worker_hwm_mb, '.1f')} | {run.detail} |")
            out.append("")
        if self.notes:
            out.append("## Notes")
            out.append("")
            out.extend(f"- {note}" for note in self.notes)
            out.append("")
        if any(not passed for _, _, passed in self.targets()) and ANALYSIS.exists():
            out.append(ANALYSIS.read_text(encoding="utf-8"))
        return "\n".join(out)


# -- the run ----------------------------------------------------------------------------------------


def single_phase(report: Report, servers: dict[str, Served], novu: Novu, tags: Tags, latency: float, count: int):
    """``rounds`` rounds of ``count`` single-event requests per function, the functions taking turns
    (the first of each round rotates); req/s is the median round, latencies pool every round."""
    o = report.options
    label = f"{latency * 1000:.0f} ms"
    for name in SINGLE_SERVERS:
        novu.reset(latency)
        warm = [json.dumps(track_event(tags.next(f"warm-{name}"), i)).encode() for i in range(o.warmup)]
        run_load(servers[name], warm, o.concurrency, timeout=30, cap=120)
    rounds: dict[str, list[LoadResult]] = {name: [] for name in SINGLE_SERVERS}
    for round_number in range(o.single_rounds):
        order = SINGLE_SERVERS[round_number % len(SINGLE_SERVERS):] + SINGLE_SERVERS[:round_number % len(SINGLE_SERVERS)]
        for name in order:
            novu.reset(latency)
            tag = tags.next(f"single-{name}-{int(latency * 1000)}ms")
            bodies = [json.dumps(track_event(tag, i)).encode() for i in range(count)]
            result = run_load(servers[name], bodies, o.concurrency, timeout=30, cap=600)
            stats = novu.stats()
            result.triggers = stats["triggers"]
            if name != "floor":
                subscribers = stats["subscribers"]
                expected = user_ids(tag, count)
                result.duplicates = sum(1 for key in expected if subscribers.get(key, 0) > 1)
                missing = sum(1 for key in expected if key not in subscribers)
                if missing or result.duplicates:
                    report.notes.append(f"single events at {label}, {name}, round {round_number + 1}: {missing} "
                                        f"events missing at Novu, {result.duplicates} delivered more than once")
            rounds[name].append(result)
            print(f"  round {round_number + 1} {name:6s} Novu {label:>5s}: {result.rps:7.0f} req/s  "
                  f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  errors {len(result.errors)}  "
                  f"Novu triggers {result.triggers}", flush=True)
    results = {}
    for name, runs in rounds.items():
        merged = LoadResult(
            requests=sum(run.requests for run in runs),
            ok=sum(run.ok for run in runs),
            seconds=sum(run.seconds for run in runs),
            latencies=[value for run in runs for value in run.latencies],
            cpu_seconds=sum(run.cpu_seconds for run in runs),
            triggers=sum(run.triggers or 0 for run in runs),
            duplicates=sum(run.duplicates or 0 for run in runs),
            errors=[error for run in runs for error in run.errors],
            round_rps=[run.rps for run in runs],
        )
        if merged.errors:
            kinds = sorted(set(merged.errors))
            report.notes.append(f"single events at {label}, {name}: {len(merged.errors)} failed requests "
                                f"({', '.join(kinds[:5])})")
        results[name] = merged
    report.single[latency] = results


def batch_phase(report: Report, servers: dict[str, Served], novu: Novu, tags: Tags):
    o = report.options
    for size in o.batch_sizes:
        report.batches[size] = {}
        for name in SERVERS:
            if name == "naive" and size > o.naive_max_batch:
                continue
            repeats = 1 if name == "naive" else o.batch_repeats
            timeout = o.naive_timeout if name == "naive" else 60.0
            runs = []
            for _ in range(repeats):
                server = servers[name]
                novu.reset(0.05)
                tag = tags.next(f"batch{size}-{name}")
                body = json.dumps([track_event(tag, i) for i in range(size)]).encode()
                began = time.perf_counter()
                try:
                    status, answer = request(server.port, "POST", "/", body, timeout=timeout)
                    seconds, timed_out = time.perf_counter() - began, False
                except TimeoutError:
                    status, answer, seconds, timed_out = None, b"", None, True
                if timed_out:
                    # Its worker is still sending: read its memory, then replace it so nothing lingers.
                    record_memory(report, name, server)
                    server.stop()
                stats = novu.stats()
                once, detail = check_delivery(name, stats, user_ids(tag, size))
                if name == "bridge":
                    detail += f"; answer: {bridge_outcomes(answer)}"
                if timed_out:
                    detail = f"client gave up after {timeout:.0f} s; by then Novu had {detail}"
                    server.start()
                    server.wait_first_200(one_event_body(tags, f"restart-{name}"))
                    once = False
                memory = server.memory() if server.process else {}
                runs.append(BatchResult(size, seconds, status, once, detail, timed_out,
                                        worker_hwm_mb=None if timed_out else memory.get("worker_hwm")))
                shown = f"> {timeout:.0f} s" if timed_out else f"{seconds:.3f} s"
                print(f"  {name:6s} batch {size:5d}: {shown:>9s}  HTTP {status}  {detail}", flush=True)
            report.batches[size][name] = runs
    for name in SERVERS:
        record_memory(report, name, servers[name])


def record_memory(report: Report, name: str, server: Served) -> None:
    figures = server.memory()
    previous = report.memory.get(name)
    if previous is None:
        report.memory[name] = figures
    else:
        report.memory[name] = {key: max(previous[key], figures[key]) for key in figures}


def cold_phase(report: Report, processes: Processes, novu: Novu, tags: Tags):
    o = report.options
    novu.reset(0.0)
    for round_number in range(o.cold_repeats + 1):
        for name in SERVERS:
            server = Served(name, processes, novu, o.threads, label=f"cold-{name}")
            server.launches = round_number
            server.start()
            try:
                seconds = server.wait_first_200(one_event_body(tags, f"cold-{name}"))
            finally:
                server.stop()
            if round_number == 0:
                print(f"  {name:6s} cold start (warm-up, not counted): {seconds:.3f} s", flush=True)
            else:
                report.cold[name].append(seconds)
                print(f"  {name:6s} cold start: {seconds:.3f} s", flush=True)


def options_from(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Bridge vs naive port vs floor, side by side, on loopback.")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer requests, naive only at 100 events")
    parser.add_argument("--output", default=str(BENCH / "RESULTS.md"), help="markdown file (default bench/RESULTS.md)")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn THREADS for every function (deploy.sh: 16)")
    parser.add_argument("--concurrency", type=int, default=16, help="load-generator threads for single events")
    parser.add_argument("--requests-0ms", type=int, help="single events at Novu 0 ms (default 2000, quick 300)")
    parser.add_argument("--requests-50ms", type=int, help="single events at Novu 50 ms (default 600, quick 160)")
    parser.add_argument("--single-rounds", type=int, help="rounds of single events per function (default 3, quick 1)")
    parser.add_argument("--batch-sizes", default="100,1000,4000", help="comma-separated batch sizes")
    parser.add_argument("--batch-repeats", type=int, help="bridge/floor runs per batch size (default 3, quick 1)")
    parser.add_argument("--naive-max-batch", type=int, help="largest batch sent to naive (default 4000, quick 100)")
    parser.add_argument("--naive-timeout", type=float, default=120.0, help="client timeout for naive batches, s")
    parser.add_argument("--cold-repeats", type=int, help="cold starts per function (default 3, quick 1)")
    parser.add_argument("--standin-nagle", action="store_true",
                        help="leave Nagle's algorithm on in the Novu stand-in (tests' behaviour; real Novu has it off)")
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: single,batch,cold,scale")
    parser.add_argument("--scale-seconds", type=float, help="scale-out: seconds measured per run (default 10, quick 4)")
    parser.add_argument("--scale-warmup", type=float, help="scale-out: seconds before measuring (default 6, quick 6)")
    parser.add_argument("--scale-drivers", type=int, default=3, help="scale-out: Segment connections per instance")
    o = parser.parse_args(argv)
    quick = o.quick
    o.requests_0ms = o.requests_0ms or (300 if quick else 2000)
    o.requests_50ms = o.requests_50ms or (160 if quick else 600)
    o.batch_repeats = o.batch_repeats or (1 if quick else 3)
    o.single_rounds = o.single_rounds or (1 if quick else 3)
    o.naive_max_batch = o.naive_max_batch if o.naive_max_batch is not None else (100 if quick else 4000)
    o.cold_repeats = o.cold_repeats or (1 if quick else 3)
    o.scale_seconds = o.scale_seconds or (4.0 if quick else 10.0)
    o.scale_warmup = o.scale_warmup or 6.0
    o.batch_sizes = [int(part) for part in o.batch_sizes.split(",") if part.strip()]
    o.warmup = 50 if quick else 200
    o.skip = {part.strip() for part in o.skip.split(",") if part.strip()}
    return o


# -- scale-out: instances sharing one rate budget --------------------------------------------------

SCALE_PLANS = (("Free-like", 60.0, 60), ("Enterprise-like", 6000.0, 1000))  # name, triggers/s, batch size
SCALE_INSTANCES = (1, 2, 4)


@dataclass
class ScaleResult:
    plan: str
    rate: float
    instances: int
    events_per_second: float
    novu_429: int
    accepted_twice: int
    answered_429: int
    measured_seconds: float
    driver_errors: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.events_per_second / self.rate


def drive_batches(port: int, tag: str, batch_size: int, stop_at: float, counters: dict, lock) -> None:
    """Plays Segment for one destination connection: sends a batch, resends it after Retry-After (or 1 s)
    until it is answered 200, then sends the next, until ``stop_at``."""
    batch_number = 0
    connection = None
    while time.monotonic() < stop_at:
        batch_number += 1
        body = json.dumps([track_event(f"{tag}-{batch_number}", index) for index in range(batch_size)]).encode()
        while time.monotonic() < stop_at:
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(HOST, port, timeout=30)
                connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    counters["errors"].append(type(error).__name__)
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.1)
                continue
            if response.status == 200:
                break
            with lock:
                counters["429" if response.status == 429 else str(response.status)] += 1
            wait = float(response.getheader("Retry-After") or 1)
            time.sleep(max(0.0, min(wait, stop_at - time.monotonic())))
    if connection is not None:
        connection.close()


def reservation_latency(redis_url: str, count: int = 2000) -> tuple[float, float]:
    """p50 and p99 of one shared-bucket reservation (the Lua script's Redis round trip), in ms."""
    from segment_novu.delivery.rate_limits import SharedBucket

    bucket = SharedBucket(redis_url, "bench-latency", 1e9, timeout_seconds=1.0)
    bucket.reserve(1, 0)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        bucket.reserve(1, 0)
        times.append(time.perf_counter() - began)
    return percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000


def scale_out_phase(report: Report, processes: Processes, novu: Novu, tags: Tags) -> None:
    import redis

    from tests.redis_server import RedisServer

    o = report.options
    with RedisServer() as redis_server:
        report.reservation_ms = reservation_latency(redis_server.url)
        print(f"  shared-bucket reservation: p50 {report.reservation_ms[0]:.3f} ms, "
              f"p99 {report.reservation_ms[1]:.3f} ms", flush=True)
        for plan, rate, batch_size in SCALE_PLANS:
            for count in SCALE_INSTANCES:
                flush = redis.Redis.from_url(redis_server.url)
                flush.flushall()  # a ledger and a bucket of their own for each run
                flush.close()
                env = {"REDIS_URL": redis_server.url, "NOVU_TRIGGER_RATE_PER_SECOND": f"{rate:g}",
                       "WORKFLOW_DISCOVERY": "false"}
                servers = [Served("bridge", processes, novu, o.threads, label=f"scale-{count}-{index}", extra_env=env)
                           for index in range(count)]
                for server in servers:
                    server.start()
                for server in servers:
                    server.wait_first_200(one_event_body(tags, "scale-ready"))
                novu.reset(0.0)
                novu.control(f"meter?trigger_rate={rate:g}&config_rate=2000")
                counters = defaultdict(int, errors=[])
                lock = threading.Lock()
                began = time.monotonic()
                stop_at = began + o.scale_warmup + o.scale_seconds
                drivers = [threading.Thread(target=drive_batches,
                                            args=(server.port, tags.next(f"scale-{count}-{index}"), batch_size,
                                                  stop_at, counters, lock), daemon=True)
                           for server in servers for index in range(o.scale_drivers)]
                for driver in drivers:
                    driver.start()
                time.sleep(o.scale_warmup)  # the bucket's stored 5 s are spent; what follows is its rate
                first = novu.control("count")
                measured_from = time.monotonic()
                time.sleep(max(0.0, stop_at - time.monotonic()))
                last = novu.control("count")
                measured = time.monotonic() - measured_from
                for driver in drivers:
                    driver.join(40)
                result = ScaleResult(plan, rate, count, (last["accepted"] - first["accepted"]) / measured,
                                     last["rateLimited"], last["acceptedTwice"], counters["429"], measured,
                                     counters["errors"])
                report.scale.append(result)
                print(f"  {plan} ({rate:g}/s), {count} instance(s): {result.events_per_second:.0f} events/s "
                      f"= {result.share:.0%} of the plan, Novu 429s {result.novu_429}, "
                      f"accepted twice {result.accepted_twice}, bridge 429s {result.answered_429}", flush=True)
                for server in servers:
                    server.stop()


def main(argv=None) -> int:
    o = options_from(argv)
    WORK.mkdir(exist_ok=True)
    report = Report(o)
    processes = Processes()
    tags = Tags()
    began = time.monotonic()

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    try:
        m = report.machine
        print(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Python {m['python']}; "
              f"load average {report.load_before[0]:.2f}", flush=True)
        if report.load_before[0] > 0.5 * (os.cpu_count() or 1):
            print("warning: the machine is busy with other work; figures will be lower and noisier", flush=True)
        novu = Novu(processes)
        novu.start(nagle=o.standin_nagle)
        print(f"Novu stand-in: {novu.url} (own process)", flush=True)
        servers = {name: Served(name, processes, novu, o.threads)
                   for name in (SINGLE_SERVERS if "single" not in o.skip else SERVERS)}
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            seconds = server.wait_first_200(one_event_body(tags, f"ready-{name}"))
            print(f"{name}: functions-framework on {HOST}:{server.port}, first 200 after {seconds:.2f} s", flush=True)
        if "single" not in o.skip:
            print("single events:", flush=True)
            single_phase(report, servers, novu, tags, 0.0, o.requests_0ms)
            single_phase(report, servers, novu, tags, 0.05, o.requests_50ms)
        if "batch" not in o.skip:
            print("batches (Novu 50 ms):", flush=True)
            batch_phase(report, servers, novu, tags)
        for server in servers.values():
            server.stop()
        if "cold" not in o.skip:
            print("cold starts:", flush=True)
            cold_phase(report, processes, novu, tags)
        if "scale" not in o.skip:
            print("scale-out (instances sharing one rate budget in Redis):", flush=True)
            scale_out_phase(report, processes, novu, tags)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started", file=sys.stderr)
        return 130
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        processes.stop_all()
    report.elapsed = time.monotonic() - began
    report.load_after = os.getloadavg()
    busy, total = busy_jiffies()
    if total > report.busy_before[1]:
        report.busy_cores = (busy - report.busy_before[0]) / (total - report.busy_before[1]) * (os.cpu_count() or 1)
    print()
    print(report.text())
    output = Path(o.output)
    if not output.is_absolute():
        output = Path.cwd() / output
    output.write_text(report.markdown() + "\n", encoding="utf-8")
    print(f"\nwritten: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

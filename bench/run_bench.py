#!/usr/bin/env python3
"""make bench: every figure of the benchmark table, several runs, median and spread, against the targets.

Writes bench/results/latest.json and the results table of docs/benchmarks.md. `--smoke` runs everything
once at tiny sizes and writes nothing (make test uses it so the benchmarks keep working).
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TTMEM_BIN_DIR", os.path.join(ROOT, "build", "bin"))
sys.path.insert(0, os.path.join(os.path.dirname(BIN), "python"))
import ttmem  # noqa: E402  (the module built beside the binaries: queries with fields the CLI has no flag for)

# figure key -> (label, target, unit, better): better is "lower" or "higher"
TARGETS = {
    "hotpath_median_ns": ("client hot path per event, median", 8, "ns", "lower"),
    "hotpath_p99_ns": ("client hot path per event, p99", 50, "ns", "lower"),
    "hotpath_2threads_pinned_median_ns": ("client hot path, 2 threads pinned to both cores, median", 8, "ns",
                                          "lower"),
    "hotpath_over_floor": ("client hot path over the floor (a 64-byte thread-local store), same run", 4, "x",
                           "lower"),
    "idle_core_percent": ("a tracked process that reports nothing: its CPU use", 0.1, "% of a core", "lower"),
    "ingest_events_per_s": ("end-to-end ingest, 4 producer processes -> ttmemd", 20e6, "events/s", "higher"),
    "ingest_1m_live_ratio": ("the same ingest with 1M buffers live (other processes), over ingest with none", 0.9,
                             "x", "higher"),
    "ingest_history_events_per_s": ("end-to-end ingest, 4 producers, history on (SQLite, lifetimes up to 200k/s kept)",
                                    10e6, "events/s", "higher"),
    # 72, not 64, since records keep their per-bank size (48-byte records): the free-space map needs it.
    "bytes_per_live_buffer": ("server memory per live buffer at 1M live (RSS growth)", 72, "B", "lower"),
    "smi_json_ms": ("`ttmem smi --json` whole process, 1M live buffers on 64 devices", 10, "ms", "lower"),
    "reclaim_ms": ("reclaim after kill -9 of a process with 100k buffers", 100, "ms", "lower"),
    "reclaim_1m_ms": ("reclaim after kill -9 of a process with 1M buffers (kill() to a subscriber seeing it)", 100,
                      "ms", "lower"),
    "reclaim_1k_others_1m_over_0": ("reclaim of a 1k-buffer process while others hold 1M, over while they hold 0",
                                    1.5, "x", "lower"),
    "overhead_1_process": ("ttmem-emu, 2M alloc + free pairs, tracked over `TTMEM_TRACKING=0`, one process", 1.10, "x",
                           "lower"),
    "overhead_4_processes": ("the same, four processes at once on 2 cores", 1.20, "x", "lower"),
    "import_ttmem_over_bare": ("`python3 -c 'import ttmem'` over a bare `python3 -c pass`", 2, "x", "lower"),
    "allocator_pair_ns": ("emulated allocator alloc + free, 10k live", 100, "ns", "lower"),
    "query_loop_stall_cpu_ms": ("longest loop turn (CPU time) while `buffers --all` runs over 1M buffers, with ingest",
                                5, "ms", "lower"),
    "hostile_ids_insert_s": ("100k client-chosen colliding ids: insert and flush", 0.5, "s", "lower"),
    "hostile_ids_reclaim_ms": ("reclaim after kill -9 of the process holding them", 100, "ms", "lower"),
    "metrics_scrape_ms": ("GET /metrics, whole request, 1M live buffers on 64 announced devices", 10, "ms", "lower"),
    "ingest_dashboard_events_per_s": ("ingest, 4 producers, history on, with /metrics scraped every 100 ms and a "
                                      "dashboard open (its stream, its 7 views and the timeline each second)", 10e6,
                                      "events/s", "higher"),
    "oom_record_100k_ms": ("out-of-memory record of a device with 100k live buffers", 10, "ms", "lower"),
    # The words: "replaying 1M nodes must take seconds, not minutes"; 10 s is that bound.
    "replay_1m_offline_s": ("`ttmem replay --offline` of a 1M-node capture (90k ops), whole process", 10, "s",
                            "lower"),
}
EXTRA = {
    "hotpath_in_op_median_ns": "client hot path inside an op scope (two nested ops), median (ns)",
    "hotpath_in_op_p99_ns": "client hot path inside an op scope, p99 (ns)",
    "hotpath_2threads_median_ns": "client hot path, 2 threads at once, median (ns)",
    "hotpath_2threads_p99_ns": "client hot path, 2 threads at once, p99 (ns)",
    "hotpath_pinned_median_ns": "client hot path pinned to one core, median (ns)",
    "hotpath_2threads_pinned_p99_ns": "client hot path, 2 threads pinned to both cores, p99 (ns)",
    "floor_median_ns": "floor: one 64-byte store into a thread-local array, median (ns)",
    "floor_pinned_median_ns": "floor, pinned, median (ns)",
    "floor_2threads_pinned_median_ns": "floor, 2 threads pinned to both cores, median (ns)",
    "shm_atomics_pinned_median_ns": "baseline (b) shared-memory atomics, pinned, median (ns)",
    "shm_atomics_2threads_pinned_median_ns": "baseline (b), 2 threads pinned to both cores, median (ns)",
    "idle_wakeups_per_s": "that idle process's context switches per second",
    "blocking_send_median_ns": "baseline (a) blocking send per event, median (ns)",
    "blocking_send_2threads_median_ns": "baseline (a), 2 threads, median (ns)",
    "shm_atomics_median_ns": "baseline (b) shared-memory atomics, median (ns)",
    "shm_atomics_2threads_median_ns": "baseline (b), 2 threads contending, median (ns)",
    "ratio_blocking_send_over_ttmem": "ratio (a) / ttmem, median, 1 thread",
    "ratio_shm_atomics_over_ttmem": "ratio (b) / ttmem, median, 1 thread",
    "ratio_shm_atomics_over_ttmem_2threads": "ratio (b) / ttmem, median, 2 threads",
    "registry_bytes_per_live_buffer": "allocation table's own bytes per live buffer",
    "ingest_1m_live_events_per_s": "ingest, 4 producers, with those 1M buffers live (events/s)",
    "reclaim_1k_others_0_ms": "reclaim of a 1k-buffer process, no other buffers held (ms)",
    "reclaim_1k_others_1m_ms": "reclaim of a 1k-buffer process while others hold 1M (ms)",
    "reclaim_1m_orphan_stamp_ms": "reclaim of 1M: kill() to the orphan record's own time (reclaim done) (ms)",
    "emu_untracked_s": "ttmem-emu, 2M alloc + free pairs, `TTMEM_TRACKING=0`, one process, median of 3 (s)",
    "emu_tracked_s": "the same, tracked (s)",
    "emu_untracked_4_s": "four at once, untracked, the slowest (s)",
    "emu_tracked_4_s": "four at once, tracked, the slowest (s)",
    "import_ttmem_ms": "`python3 -c 'import ttmem'`, whole process (ms)",
    "bare_python_ms": "`python3 -c pass`, whole process (ms)",
    "ingest_exact": "ingest runs whose totals matched the ground truth",
    "ingest_server_cpu_ns_per_event": "that ingest: ttmemd's CPU per event, user + system (ns)",
    "ingest_server_sys_ns_per_event": "of which in the kernel (socket reads) (ns)",
    "ingest_producers_cpu_ns_per_event": "that ingest: the producers' CPU per event (loop, hot path, sender, kernel) (ns)",
    "ingest_producers_sys_ns_per_event": "of which in the kernel (socket writes, waits) (ns)",
    "ingest_frames_ns_per_event": "ttmemd's frame path in one process (validate, read, apply; 4 processes x 1k live), "
                                  "per event (ns)",
    "buffer_create_deallocate_ns": "Buffer create + deallocate (whole runtime path), 10k live (ns)",
    "registry_apply_per_event_ns": "registry apply, single-threaded, per event (ns)",
    "free_space_100k_ms": "free-space figures of a device with 100k live buffers, computed afresh (ms)",
    "query_loop_stall_ms": "the same turn in wall-clock time, preemption on 2 busy cores included (ms)",
    "paged_step_ms": "longest single step of that paged query, wall clock (ms)",
    "query_all_1m_s": "`ttmem buffers --all --json` over 1M buffers, whole process (s)",
    "ingest_while_querying_events_per_s": "ingest, 2 producers, while that query runs (events/s)",
    "ingest_alone_events_per_s": "ingest, 2 producers, same load without the query (events/s)",
    "loop_stall_ingest_alone_ms": "longest loop turn with that ingest alone, wall clock (ms)",
    "sequential_ids_insert_s": "100k sequential ids: insert and flush (s)",
    "metrics_scrape_first_ms": "GET /metrics, first after the 1M buffers arrived (builds 64 free-space maps), ms",
    "ingest_while_scraped_events_per_s": "ingest, 4 producers, while /metrics is scraped every 100 ms (events/s)",
    "ingest_history_off_events_per_s": "the same ingest, history off, in the same run (events/s)",
    "dashboard_fetches_per_run": "the dashboard's view requests answered during that run",
    "ingest_stalled_http_events_per_s": "ingest, 4 producers, while 40 HTTP connections hold unfinished requests "
                                        "(events/s)",
    "scrape_with_stalled_ms": "GET /metrics while 8 connections stall (under the 12 request threads), ms",
    "history_lifetimes_kept": "of that run's freed buffers, lifetimes kept in the history (rows)",
    "history_lifetimes_dropped": "lifetimes over --history-lifetimes-per-s, counted and not kept",
    "history_db_mib": "the history database after that run (MiB)",
    "ingest_history_every_lifetime_events_per_s":
        "ingest, 4 producers, history on with no lifetime rate limit (writer and producers share 2 cores)",
    "replay_1m_live_s": "`ttmem replay` of that capture into ttmemd (727k events), whole process (s)",
    "replay_1m_peak_rss_mib": "peak memory of that offline replay (MiB)",
}


# figure key -> where ttmem-bench-hotpath's JSON has it: the keys from the top, such as (approach, statistic)
HOTPATH_FIGURES = {
    "hotpath_median_ns": ("ttmem", "median_ns"),
    "hotpath_p99_ns": ("ttmem", "p99_ns"),
    "hotpath_in_op_median_ns": ("ttmem_in_op", "median_ns"),
    "hotpath_in_op_p99_ns": ("ttmem_in_op", "p99_ns"),
    "hotpath_2threads_median_ns": ("ttmem_2threads", "median_ns"),
    "hotpath_2threads_p99_ns": ("ttmem_2threads", "p99_ns"),
    "hotpath_pinned_median_ns": ("ttmem_pinned", "median_ns"),
    "hotpath_2threads_pinned_median_ns": ("ttmem_2threads_pinned", "median_ns"),
    "hotpath_2threads_pinned_p99_ns": ("ttmem_2threads_pinned", "p99_ns"),
    "blocking_send_median_ns": ("blocking_send", "median_ns"),
    "blocking_send_2threads_median_ns": ("blocking_send_2threads", "median_ns"),
    "shm_atomics_median_ns": ("shm_atomics", "median_ns"),
    "shm_atomics_2threads_median_ns": ("shm_atomics_2threads", "median_ns"),
    "shm_atomics_pinned_median_ns": ("shm_atomics_pinned", "median_ns"),
    "shm_atomics_2threads_pinned_median_ns": ("shm_atomics_2threads_pinned", "median_ns"),
    "floor_median_ns": ("floor", "median_ns"),
    "floor_pinned_median_ns": ("floor_pinned", "median_ns"),
    "floor_2threads_pinned_median_ns": ("floor_2threads_pinned", "median_ns"),
    "ratio_blocking_send_over_ttmem": ("ratio_median_blocking_send_over_ttmem",),
    "ratio_shm_atomics_over_ttmem": ("ratio_median_shm_atomics_over_ttmem",),
    "ratio_shm_atomics_over_ttmem_2threads": ("ratio_median_shm_atomics_over_ttmem_2threads",),
    "hotpath_over_floor": ("ratio_median_ttmem_over_floor",),
    "idle_core_percent": ("idle", "core_percent"),
    "idle_wakeups_per_s": ("idle", "wakeups_per_s"),
}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, history=False, args=()):
        self.dir = tempfile.TemporaryDirectory(prefix="ttmem-bench-")
        self.state_dir = os.path.join(self.dir.name, "state")
        keep = (["--state-dir", self.state_dir] if history else ["--no-history"]) + list(args)
        self.socket = os.path.join(self.dir.name, "ttmemd.sock")
        r, w = os.pipe()
        self.log = open(os.path.join(self.dir.name, "log"), "wb")
        self.proc = subprocess.Popen([os.path.join(BIN, "ttmemd"), "--socket", self.socket, "--ready-fd", str(w),
                                      "--http", "0"] + keep, pass_fds=(w,), stdout=self.log, stderr=subprocess.STDOUT)
        os.close(w)
        if os.read(r, 1) != b"1":
            raise RuntimeError("ttmemd did not start")
        os.close(r)
        with open(os.path.join(self.dir.name, "log")) as f:
            self.http_port = int(re.search(r"HTTP on http://127\.0\.0\.1:(\d+)/", f.read()).group(1))

    def scrape(self):
        """GET /metrics; returns the seconds the whole request took."""
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=30) as r:
            r.read()
        return time.perf_counter() - t0

    def stop(self, failed=False):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        if failed or code != 0:
            with open(os.path.join(self.dir.name, "log")) as f:
                print(f"ttmemd exited with {code}; the end of its log:\n" + "".join(f.readlines()[-20:]), file=sys.stderr)
        self.dir.cleanup()


class Scraper:
    """Prometheus at 10 Hz: GET /metrics every 100 ms while the block runs."""

    def __init__(self, server):
        self.server, self.stop = server, threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        while not self.stop.wait(0.1):
            self.server.scrape()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


class Dashboard:
    """What an open dashboard asks of ttmemd: its event stream, read as it comes, and each second the views
    web/app.js and web/timeline.js fetch."""
    PATHS = ["/api/stats", "/api/info", "/api/leaks", "/api/buffers?by=op&limit=50", "/api/oom",
             "/api/timeline?device=0&since=15m", "/api/history?kind=leak,orphan,oom&limit=200"]

    def __init__(self, server):
        self.port, self.stop, self.fetches, self.errors = server.http_port, threading.Event(), 0, []
        self.stream = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.stream.request("GET", "/api/events")
        self.response = self.stream.getresponse()
        self.threads = [threading.Thread(target=self._read), threading.Thread(target=self._poll)]
        for t in self.threads:
            t.start()

    def _read(self):
        try:
            while not self.stop.is_set() and self.response.read1(65536):
                pass
        except (OSError, http.client.HTTPException):
            if not self.stop.is_set():
                raise  # the stream broke while the run was on; at close it is ended on purpose

    def _poll(self):
        while True:  # at once, then each second, as the page does
            for p in self.PATHS:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{p}", timeout=30) as r:
                        r.read()
                    self.fetches += 1
                except OSError as e:
                    self.errors.append(f"{p}: {e}")
            if self.stop.wait(1.0):
                return

    def close(self):
        self.stop.set()
        self.threads[1].join()
        self.stream.sock.shutdown(socket.SHUT_RDWR)
        self.threads[0].join()
        self.stream.close()
        if self.errors:
            raise RuntimeError(f"the dashboard's requests failed: {self.errors[:3]}")


def loop_figures(server, reset):
    info = ttmem._query({"type": "info", "reset_loop": reset}, server.socket)
    return info["loop"]


def process_cpu_s(pid):
    """(user, system) CPU seconds of a running process, from /proc (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def loadgen(server, args):
    run = subprocess.run([os.path.join(BIN, "ttmem-loadgen"), "--socket", server.socket] + args, capture_output=True,
                         text=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if not result["exact"]:
        raise RuntimeError(f"ingest lost events: {result}")
    return result


def held_and_reclaimed(server, env, args):
    """One process adds and holds buffers (`args` for ttmem-loadgen), then is killed: (seconds its reports took
    to be applied, ms from kill() until a subscriber has read the orphan record, ms from kill() to the
    record's own time, which ttmemd stamps once the reclaim is done)."""
    gen = subprocess.Popen([os.path.join(BIN, "ttmem-loadgen"), "--socket", server.socket, "-p", "1", "-n", "0",
                            "--keep"] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    held = json.loads(gen.stdout.readline())
    if not held["exact"]:
        raise RuntimeError(f"the held buffers did not all arrive: {held}")
    victim = held["producer_pids"][0]
    follow = subprocess.Popen([os.path.join(BIN, "ttmem"), "events", "--follow", "--json", "-n", "0"], env=env,
                              stdout=subprocess.PIPE, text=True)
    # The follower is subscribed once the server lists it as a subscriber.
    info = [os.path.join(BIN, "ttmem"), "--socket", server.socket, "info", "--json"]
    while not any(c["subscriber"] for c in run_json(info)["clients"]):
        time.sleep(0.01)
    killed_at = time.time_ns()
    os.kill(victim, signal.SIGKILL)
    reclaim_ms = stamp_ms = None
    for line in follow.stdout:
        seen_at = time.time_ns()
        event = json.loads(line)
        if event.get("event") == "orphan" and event["pid"] == victim:
            reclaim_ms = (seen_at - killed_at) / 1e6
            stamp_ms = (event["time_ns"] - killed_at) / 1e6
            break
    follow.kill()
    follow.wait()
    gen.stdin.close()
    gen.wait(timeout=60)
    return held["seconds"], reclaim_ms, stamp_ms


def emu_overhead(socket_path, processes, smoke, rounds=3):
    """Wall time of `processes` ttmem-emu runs at once (the slowest), each 2M alloc + free pairs of
    a DRAM buffer (4M events), untracked and tracked into the ttmemd at socket_path; each on its own chip lock
    directory, so they do not wait for each other's chip. Untracked and tracked alternate `rounds` times and
    the medians are returned: on a shared VM one pair alone swings by more than the overhead measured."""
    pairs = 20_000 if smoke else 2_000_000
    script = os.path.join(tempfile.gettempdir(), f"ttmem-bench-overhead-{pairs}.ttm")
    with open(script, "w") as f:
        f.write(f"mesh n150\nrepeat {pairs}\nalloc a DRAM 4K\nfree a\nend\nclose\n")
    results = {False: [], True: []}
    for tracked in (False, True) * (1 if smoke else rounds):
        with tempfile.TemporaryDirectory(prefix="ttmem-bench-chips-") as chips:
            procs, started = [], time.perf_counter()
            ends = {}
            for i in range(processes):
                chip_dir = os.path.join(chips, str(i))
                os.mkdir(chip_dir)
                env = {**os.environ, "TTMEM_EMU_CHIP_DIR": chip_dir, "TTMEM_TRACKING": "1" if tracked else "0",
                       "TTMEM_SOCKET": socket_path}
                procs.append(subprocess.Popen([os.path.join(BIN, "ttmem-emu"), "-q", script], env=env,
                                              stdout=subprocess.DEVNULL))
            while len(ends) < len(procs):
                for i, p in enumerate(procs):
                    if i not in ends and p.poll() is not None:
                        if p.returncode != 0:
                            raise RuntimeError(f"ttmem-emu exited with {p.returncode}")
                        ends[i] = time.perf_counter() - started
                time.sleep(0.002)
            results[tracked].append(max(ends.values()))
    return statistics.median(results[False]), statistics.median(results[True])


def python_start_ms(code, runs):
    """Median wall time of `python3 -c code` with the bench's module path, whole process."""
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(BIN), "python")}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/python3", "-c", code], env=env, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run_json(args):
    """The JSON a command prints: one (possibly pretty-printed) object, or a log whose last line is one."""
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        return json.loads(out.splitlines()[-1])


def capture_file(smoke):
    """The synthetic capture the replay figures read (made once per `make bench`)."""
    path = os.path.join(tempfile.gettempdir(), f"ttmem-bench-capture-{'smoke' if smoke else '1m'}.json")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_capture.py"),
                        "20000" if smoke else "1000000", path], check=True, capture_output=True)
    return path


def timed(args, env=None):
    """Wall-clock seconds and peak RSS (MiB) of a whole command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{args} failed: status {status}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def one_run(smoke):
    figures = {}
    capture = capture_file(smoke)
    figures["replay_1m_offline_s"], figures["replay_1m_peak_rss_mib"] = timed(
        [os.path.join(BIN, "ttmem"), "replay", "--offline", "-n", "5", capture])
    server = Server()
    env = {**os.environ, "TTMEM_SOCKET": server.socket}
    try:
        hot = run_json([os.path.join(BIN, "ttmem-bench-hotpath"), "--socket", server.socket,
                        "-n", "20000" if smoke else "1000000", "--idle-seconds", "0.5" if smoke else "5"])
        for key, path in HOTPATH_FIGURES.items():
            value = hot
            for step in path:
                value = value[step]
            figures[key] = value

        server_before, children_before = process_cpu_s(server.proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        run = subprocess.run([os.path.join(BIN, "ttmem-loadgen"), "--socket", server.socket, "-p", "4",
                              "-n", "20000" if smoke else "2000000"], capture_output=True, text=True)
        server_after, children_after = process_cpu_s(server.proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        ingest = json.loads(run.stdout.strip().splitlines()[-1])
        figures["ingest_events_per_s"] = ingest["events_per_second"]
        figures["ingest_exact"] = 1 if ingest["exact"] else 0
        # Where the CPU of that ingest went, per event: ttmemd, and the producers with their senders (loadgen's
        # own share is its setup and its final check). The 2-core budget at 20 M/s is 100 ns per event in all.
        per_event = 1e9 / ingest["events"]
        figures["ingest_server_cpu_ns_per_event"] = (sum(server_after) - sum(server_before)) * per_event
        figures["ingest_server_sys_ns_per_event"] = (server_after[1] - server_before[1]) * per_event
        figures["ingest_producers_cpu_ns_per_event"] = (
            children_after.ru_utime + children_after.ru_stime - children_before.ru_utime - children_before.ru_stime
        ) * per_event
        figures["ingest_producers_sys_ns_per_event"] = (children_after.ru_stime - children_before.ru_stime) * per_event
        # The same load while a scraper asks for /metrics every 100 ms: HTTP must not slow ingest.
        with Scraper(server):
            scraped = loadgen(server, ["-p", "4", "-n", "20000" if smoke else "2000000"])
        figures["ingest_while_scraped_events_per_s"] = scraped["events_per_second"]
        # History on and off side by side: the same load into a ttmemd that keeps every buffer's lifetime.
        n = "20000" if smoke else "2000000"
        figures["ingest_history_off_events_per_s"] = loadgen(server, ["-p", "4", "-n", n])["events_per_second"]
        kept = Server(history=True)
        try:
            figures["ingest_history_events_per_s"] = loadgen(kept, ["-p", "4", "-n", n])["events_per_second"]
            db = os.path.join(kept.state_dir, "history.sqlite")
            # The writer commits on its own thread: wait for the rows the last interval handed over.
            for _ in range(300):
                r = ttmem.history(kinds=["lifetimes_dropped"], state_dir=kept.state_dir, limit=100000)
                rows = subprocess.run(["sqlite3", db, "SELECT count(*) FROM lifetimes"], capture_output=True,
                                      text=True).stdout.strip()
                kept_rows = int(rows or 0)
                dropped = sum(x["buffers"] for x in r)
                if kept_rows + dropped >= 4 * int(n) // 2:
                    break
                time.sleep(0.1)
            figures["history_lifetimes_kept"] = kept_rows
            figures["history_lifetimes_dropped"] = dropped
            figures["history_db_mib"] = round(os.path.getsize(db) / 2**20, 1)
            # A scraper and a dashboard on the same ttmemd: HTTP must not slow ingest. Five times the events
            # of the other ingest runs: a few seconds, so the page polls a few times.
            dashboard = Dashboard(kept)
            try:
                with Scraper(kept):
                    figures["ingest_dashboard_events_per_s"] = loadgen(kept, ["-p", "4", "-n", str(5 * int(n))])[
                        "events_per_second"]
            finally:
                dashboard.close()
            figures["dashboard_fetches_per_run"] = dashboard.fetches
            # Connections that never finish their request hold an HTTP thread each (until 5 s of silence):
            # ingest is the loop's and must not notice; a scrape still gets a thread while some are free.
            stalled = []
            for _ in range(40):
                c = socket.create_connection(("127.0.0.1", kept.http_port))
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                stalled.append(c)
            figures["ingest_stalled_http_events_per_s"] = loadgen(kept, ["-p", "4", "-n", n])["events_per_second"]
            for c in stalled:
                c.close()
            stalled = []
            for _ in range(8):
                c = socket.create_connection(("127.0.0.1", kept.http_port))
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                stalled.append(c)
            time.sleep(0.2)  # let them be accepted and hold their threads
            figures["scrape_with_stalled_ms"] = statistics.median(kept.scrape() * 1000 for _ in range(5))
            for c in stalled:
                c.close()
        finally:
            kept.stop()
        # What the rate limit protects: every freed buffer's lifetime handed to the writer.
        every = Server(history=True, args=["--history-lifetimes-per-s", "100000000"])
        try:
            figures["ingest_history_every_lifetime_events_per_s"] = loadgen(every, ["-p", "4", "-n", n])[
                "events_per_second"]
        finally:
            every.stop()
        if not ingest["exact"]:
            raise RuntimeError(f"ingest lost events: {ingest}")

        # 1M live buffers (4 processes x 250k), held while we measure memory and smi.
        hold = 2500 if smoke else 250_000
        rss_before = rss_bytes(server.proc.pid)
        gen = subprocess.Popen([os.path.join(BIN, "ttmem-loadgen"), "--socket", server.socket, "-p", "4", "-n", "0",
                                "--hold", str(hold), "--devices", "64", "--announce", "--keep"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        held = json.loads(gen.stdout.readline())
        live = held["truth_live"]
        figures["bytes_per_live_buffer"] = (rss_bytes(server.proc.pid) - rss_before) / live
        figures["registry_bytes_per_live_buffer"] = held["registry_bytes"] / live
        smi_times = []
        for _ in range(3 if smoke else 15):
            t0 = time.perf_counter()
            subprocess.run([os.path.join(BIN, "ttmem"), "smi", "--json"], env=env, check=True, capture_output=True)
            smi_times.append((time.perf_counter() - t0) * 1000)
        figures["smi_json_ms"] = statistics.median(smi_times)
        # The first scrape builds each device's free-space map from its records; later ones reuse the maps
        # of devices that did not change.
        figures["metrics_scrape_first_ms"] = server.scrape() * 1000
        figures["metrics_scrape_ms"] = statistics.median(server.scrape() * 1000 for _ in range(3 if smoke else 15))
        # Ingest and a small process's reclaim with the 1M buffers held by others, beside the same without.
        figures["ingest_1m_live_events_per_s"] = loadgen(server, ["-p", "4", "-n", n])["events_per_second"]
        figures["ingest_1m_live_ratio"] = figures["ingest_1m_live_events_per_s"] / figures["ingest_history_off_events_per_s"]
        _, figures["reclaim_1k_others_1m_ms"], _ = held_and_reclaimed(server, env, ["--hold", "1000"])

        # Every buffer listed while two more producers ingest: the loop must keep serving them.
        ingest_args = ["-p", "2", "-n", "20000" if smoke else "1000000"]
        loop_figures(server, reset=True)
        figures["ingest_alone_events_per_s"] = loadgen(server, ingest_args)["events_per_second"]
        figures["loop_stall_ingest_alone_ms"] = loop_figures(server, reset=True)["longest_busy_ms"]
        t0 = time.perf_counter()
        query = subprocess.Popen([os.path.join(BIN, "ttmem"), "buffers", "--all", "--json"], env=env,
                                 stdout=subprocess.DEVNULL)
        while loop_figures(server, reset=False)["paged_queries"] == 0 and query.poll() is None:
            time.sleep(0.001)
        figures["ingest_while_querying_events_per_s"] = loadgen(server, ingest_args)["events_per_second"]
        query.wait(timeout=300)
        figures["query_all_1m_s"] = time.perf_counter() - t0
        loop = loop_figures(server, reset=True)
        figures["query_loop_stall_ms"] = loop["longest_busy_ms"]
        figures["query_loop_stall_cpu_ms"] = loop["longest_busy_cpu_ms"]
        figures["paged_step_ms"] = loop["longest_paged_step_ms"]
        gen.stdin.close()
        gen.wait(timeout=60)

        figures["replay_1m_live_s"], _ = timed([os.path.join(BIN, "ttmem"), "replay", "-n", "5", capture], env)

        _, figures["reclaim_1k_others_0_ms"], _ = held_and_reclaimed(server, env, ["--hold", "1000"])
        figures["reclaim_1k_others_1m_over_0"] = figures["reclaim_1k_others_1m_ms"] / figures["reclaim_1k_others_0_ms"]
        _, figures["reclaim_ms"], _ = held_and_reclaimed(server, env, ["--hold", "1000" if smoke else "100000"])
        _, figures["reclaim_1m_ms"], figures["reclaim_1m_orphan_stamp_ms"] = held_and_reclaimed(
            server, env, ["--hold", "10000" if smoke else "1000000"])
        # Ids chosen to collide under an unkeyed multiplicative hash (they differ only in their high bits).
        ids = "1000" if smoke else "100000"
        figures["sequential_ids_insert_s"], _, _ = held_and_reclaimed(server, env, ["--hold", ids])
        figures["hostile_ids_insert_s"], figures["hostile_ids_reclaim_ms"], _ = held_and_reclaimed(
            server, env, ["--hold", ids, "--hostile-ids"])
        # Whole-process overhead, tracked into this ttmemd against untracked, one and then four at once.
        figures["emu_untracked_s"], figures["emu_tracked_s"] = emu_overhead(server.socket, 1, smoke)
        figures["overhead_1_process"] = figures["emu_tracked_s"] / figures["emu_untracked_s"]
        figures["emu_untracked_4_s"], figures["emu_tracked_4_s"] = emu_overhead(server.socket, 4, smoke)
        figures["overhead_4_processes"] = figures["emu_tracked_4_s"] / figures["emu_untracked_4_s"]
    except BaseException:
        server.stop(failed=True)
        raise
    server.stop()
    figures["bare_python_ms"] = python_start_ms("pass", 5 if smoke else 15)
    figures["import_ttmem_ms"] = python_start_ms("import ttmem", 5 if smoke else 15)
    figures["import_ttmem_over_bare"] = figures["import_ttmem_ms"] / figures["bare_python_ms"]

    micro = run_json([os.path.join(BIN, "ttmem-bench-micro"), "--benchmark_format=json",
                      "--benchmark_min_time=" + ("0.01" if smoke else "0.5")])
    by_name = {b["name"]: b for b in micro["benchmarks"]}
    figures["allocator_pair_ns"] = by_name["BM_AllocatorAllocFreePair/10000"]["real_time"]
    figures["buffer_create_deallocate_ns"] = by_name["BM_BufferCreateDeallocate/10000"]["real_time"]
    figures["registry_apply_per_event_ns"] = by_name["BM_RegistryApplyPair"]["real_time"] / 2
    figures["ingest_frames_ns_per_event"] = 1e9 / by_name["BM_IngestFrames"]["items_per_second"]
    figures["oom_record_100k_ms"] = by_name["BM_OomRecord/100000"]["real_time"]
    figures["free_space_100k_ms"] = by_name["BM_FreeSpaceFigures/100000"]["real_time"]
    return figures


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def fmt(value, unit):
    if unit == "events/s":
        return f"{value / 1e6:.2f} M/s"
    if unit == "ns":
        return f"{value:.1f} ns"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}"


HISTORY = os.path.join(ROOT, "bench", "results", "history.jsonl")
REPRODUCE_WITHIN = 0.15  # the bar: a figure's median across three `make bench` runs


def record_history(result):
    """Appends this run's medians to bench/results/history.jsonl; returns the last three runs on this machine."""
    with open(HISTORY, "a") as f:
        f.write(json.dumps({"date": result["date"], "machine": result["machine"],
                            "medians": {k: v["median"] for k, v in result["figures"].items()}}) + "\n")
    with open(HISTORY) as f:
        same = [e for e in map(json.loads, f) if e["machine"] == result["machine"]]
    return same[-3:]


def reproduction(key, recent):
    """How far apart this figure's medians are over the last three `make bench` runs on this machine."""
    values = [e["medians"][key] for e in recent if key in e["medians"]]
    if len(values) < 3:
        return f"{len(values)} of 3 runs"
    low, high = min(values), max(values)
    if low <= 0:
        return "yes (0%)" if high == low else "**no**"
    spread = high / low - 1
    return f"{'yes' if spread <= REPRODUCE_WITHIN else '**no**'} ({spread * 100:.0f}%)"


def write_docs(result, recent):
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    m = result["machine"]
    lines = [begin, "",
             f"Measured {result['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; "
             f"1-minute load average {result['load_before']:.2f} as the runs began (it still counts what ran "
             f"just before), nothing else running beside the bench; "
             f"`{result['command']}`, {result['runs']} runs: median, and the spread (min..max) over the runs. "
             f"*Reproduces*: the medians of the last three `make bench` runs on this machine "
             f"({', '.join(e['date'] for e in recent)}) are within {REPRODUCE_WITHIN * 100:.0f}% of each other "
             f"(their max over min, less one).", "",
             "| figure | target | median | spread | met | reproduces |", "|---|---|---|---|---|---|"]
    for key, (label, target, unit, better) in TARGETS.items():
        f = result["figures"][key]
        goal = ("<= " if better == "lower" else ">= ") + fmt(target, unit)
        lines.append(f"| {label} | {goal} | {fmt(f['median'], unit)} | {fmt(f['min'], unit)} .. {fmt(f['max'], unit)} | "
                     f"{'yes' if f['met'] else '**no**'} | {reproduction(key, recent)} |")
    lines += ["", "| also measured | median | spread | reproduces |", "|---|---|---|---|"]
    for key, label in EXTRA.items():
        f = result["figures"][key]
        lines.append(f"| {label} | {f['median']:.2f} | {f['min']:.2f} .. {f['max']:.2f} | "
                     f"{reproduction(key, recent)} |")
    lines += ["", end]
    start, stop = text.index(begin), text.index(end) + len(end)
    with open(path, "w") as f:
        f.write(text[:start] + "\n".join(lines) + text[stop:])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one tiny run; write nothing")
    args = parser.parse_args()
    runs = 1 if args.smoke else args.runs
    load_before = os.getloadavg()[0]  # the table says how busy the machine was when the runs began
    samples = []
    for i in range(runs):
        print(f"run {i + 1}/{runs} ...", file=sys.stderr, flush=True)
        samples.append(one_run(args.smoke))
    figures = {}
    for key in list(TARGETS) + list(EXTRA):
        values = [s[key] for s in samples]
        entry = {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}
        if key in TARGETS:
            _, target, _, better = TARGETS[key]
            entry["target"] = target
            entry["met"] = entry["median"] <= target if better == "lower" else entry["median"] >= target
        figures[key] = entry
    result = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
              "command": "make bench", "runs": runs, "load_before": load_before, "figures": figures}
    for key, (label, target, unit, better) in TARGETS.items():
        f = figures[key]
        print(f"{label:58s} {fmt(f['median'], unit):>14s}  target {'<=' if better == 'lower' else '>='} "
              f"{fmt(target, unit):>10s}  {'met' if f['met'] else 'MISSED'}")
    if args.smoke:
        return 0
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "latest.json"), "w") as f:
        json.dump(result, f, indent=2)
    write_docs(result, record_history(result))
    print("wrote bench/results/latest.json, history.jsonl and docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ttmemd over HTTP: /metrics read by Prometheus' own parser and promtool, /api the same views as the socket,
and what a client that is not a scraper is told (unknown paths, writes, a missing token)."""
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import ttmem


def http_port(server: ttmem.Server) -> int:
    found = re.search(r"HTTP on http://127\.0\.0\.1:(\d+)/", server.log)
    assert found, server.log
    return int(found.group(1))


def get(port: int, path: str, headers=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def samples(text: str):
    """{(name, frozenset(labels)): value} from Prometheus' own parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(metrics, name, **labels):
    matches = [v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def test_metrics_are_valid_prometheus_text_with_the_live_figures():
    with ttmem.Server(args=["--http", "127.0.0.1:0"]) as server:
        port = http_port(server)
        with ttmem.open_mesh_device("n300") as mesh:
            kept = [mesh.allocate("DRAM", 1 << 20) for _ in range(3)]
            l1 = mesh.allocate("L1", 64 << 10)
            assert ttmem.flush()
            status, content_type, text = get(port, "/metrics")
            assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
            metrics = samples(text)
            stats = server.stats()
            for d in stats["devices"]:
                for t in ("DRAM", "L1", "L1_SMALL", "TRACE", "CB"):
                    assert value(metrics, "ttmem_device_memory_used_bytes", device=str(d["id"]), type=t) \
                        == d["memory"][t]["used"]
                # Free space is the allocator's own, over all banks (page rounding makes it less than
                # total - used), and the largest block is per bank.
                allocator = mesh.devices[d["id"]].statistics("DRAM")
                assert value(metrics, "ttmem_device_memory_free_bytes", device=str(d["id"]), type="DRAM") \
                    == allocator["free"] * allocator["num_banks"] == d["memory"]["DRAM"]["free"]
                assert value(metrics, "ttmem_device_memory_largest_free_block_bytes", device=str(d["id"]),
                             type="DRAM") == allocator["largest_free_block"]
            me = str(os.getpid())
            assert value(metrics, "ttmem_process_memory_used_bytes", pid=me, device="1", type="DRAM") \
                == 3 * (1 << 20)  # a mesh buffer: its size on each device of the mesh
            assert value(metrics, "ttmem_process_buffers", pid=me, device="0") \
                == [r for r in stats["processes"] if r["pid"] == os.getpid() and r["device"] == 0][0]["buffers"]
            assert value(metrics, "ttmem_anomalies_total", kind="duplicate_id") == 0
            assert value(metrics, "ttmem_active_allocations") == stats["active_allocations"]
            del kept, l1
        # promtool, Prometheus' own checker, finds nothing to say about the text.
        promtool = shutil.which("promtool")
        assert promtool, "promtool is missing: scripts/install-deps.sh installs Debian's prometheus package"
        checked = subprocess.run([promtool, "check", "metrics"], input=get(port, "/metrics")[2],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_leaks_are_counted_for_prometheus():
    with ttmem.Server(args=["--http", "0"]) as server:
        port = http_port(server)
        assert value(samples(get(port, "/metrics")[2]), "ttmem_leaks_total") == 0
        mesh = ttmem.open_mesh_device("n300")
        kept = mesh.allocate("DRAM", 1 << 20)  # never freed before close: a leak on each device
        ttmem.close_mesh_device(mesh)
        assert ttmem.flush()
        assert value(samples(get(port, "/metrics")[2]), "ttmem_leaks_total") == len(server.leaks()["leaks"]) == 2
        del kept


def test_the_api_answers_are_the_socket_answers():
    with ttmem.Server(args=["--http", "0"]) as server:
        port = http_port(server)
        with ttmem.open_mesh_device("n150") as mesh:
            b = mesh.allocate("DRAM", 8192)
            assert ttmem.flush()
            for path, answer in (("/api/stats", server.stats()), ("/api/leaks", server.leaks()),
                                 ("/api/devices", {"devices": ttmem.devices(server.socket)})):
                status, content_type, body = get(port, path)
                assert status == 200 and content_type == "application/json", path
                assert json.loads(body) == answer, path
            info = json.loads(get(port, "/api/info")[2])
            assert info["pid"] == server.process.pid
            del b


def without_ages(rows):
    return [{k: v for k, v in r.items() if k != "age_ms"} for r in rows]


def test_queries_with_parameters_are_the_socket_queries():
    with ttmem.Server(args=["--http", "0"]) as server:
        port = http_port(server)
        with ttmem.open_mesh_device("n300") as mesh:
            with ttmem.op("prefill"):
                kv = mesh.allocate("DRAM", 4 << 20, page_size=2048, site="kv")
                act = mesh.allocate("L1", 64 << 10, page_size=2048, site="act")
            assert ttmem.flush()
            status, content_type, body = get(port, "/api/buffers?device=1&buffer_type=DRAM&limit=5")
            assert status == 200 and content_type == "application/json", body
            answer = json.loads(body)
            socket_answer = server.buffers(device=1, buffer_type="DRAM", limit=5)
            assert without_ages(answer["buffers"]) == without_ages(socket_answer)
            assert answer["total"] >= 1
            groups = json.loads(get(port, "/api/buffers?by=op&scope=prefill")[2])["groups"]
            assert groups == server.buffers(by="op", scope="prefill")
            assert {(g["slot"], g["buffers"], g["devices"]) for g in groups} == {("DRAM", 2, 2), ("L1", 2, 2)}
            ops = json.loads(get(port, f"/api/ops?pid={os.getpid()}&scope=prefill")[2])
            assert ops["ops"] == server.ops(pid=os.getpid(), scope="prefill") and ops["total"] == 4
            assert json.loads(get(port, "/api/map?device=0&buffer_type=L1")[2]) == server.memory_map(0, "L1")
            # Wrong parameters say what is wrong; the views that take none say so.
            status, _, body = get(port, "/api/buffers?by=tensor")
            assert status == 400 and "unknown 'by' 'tensor'" in json.loads(body)["error"], body
            status, _, body = get(port, "/api/buffers?device=zero")
            assert status == 400 and "'device' must be a whole number" in body, body
            status, _, body = get(port, "/api/map?device=9&buffer_type=L1")
            assert status == 400 and "did not announce" in body, body
            status, _, body = get(port, "/api/stats?device=0")
            assert status == 400 and "takes no parameters" in body, body
            del kv, act


def test_what_is_not_served_is_refused_with_the_reason():
    with ttmem.Server(args=["--http", "0"], track=False) as server:
        port = http_port(server)
        status, _, body = get(port, "/no/such/thing")
        assert status == 404 and "/metrics" in body and "/api/stats" in body
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 405 and b"read-only" in refused.value.read()


def test_a_token_file_makes_every_path_ask_for_the_token():
    with tempfile.NamedTemporaryFile("w", suffix=".token") as token:
        token.write("s3cret\n")
        token.flush()
        with ttmem.Server(args=["--http", "0", "--http-token-file", token.name], track=False) as server:
            port = http_port(server)
            status, _, body = get(port, "/metrics")
            assert status == 401 and "Bearer" in body
            assert get(port, "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
            assert get(port, "/metrics", {"Authorization": "Bearer s3cret"})[0] == 200


def test_bad_http_flags_are_refused_before_starting():
    ttmemd = os.path.join(os.environ.get("TTMEM_BIN_DIR", ""), "ttmemd")
    for args, expect in ((["--http", "0.0.0.0:9"], "--http-remote"), (["--http", "nine"], "not a port"),
                         (["--http-remote"], "go with --http")):
        r = subprocess.run([ttmemd, "--socket", "/tmp/never-used.sock"] + args, capture_output=True, text=True)
        assert r.returncode == 64 and expect in r.stderr, (args, r.stderr)


def run_and_kill(server, lines):
    """A ttmem-emu --step workload that runs `lines` (each answered "ok") and is then killed with -9,
    holding what it allocated: ttmemd makes an orphan of it. Returns the dead child."""
    child = subprocess.Popen([os.path.join(os.environ["TTMEM_BIN_DIR"], "ttmem-emu"), "--step", "-q"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, TTMEM_SOCKET=server.socket))
    for line in lines:
        child.stdin.write(line + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ok"
    child.kill()
    child.wait()
    return child


def read_events(port: int, until, started, timeout: float = 20.0, path: str = "/api/events"):
    """Reads the stream at `path` until `until(event)` is true; returns the events read (oldest first). Sets
    `started` once the stream is open (ttmemd answers only after it has subscribed the stream)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    started.set()
    events, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            line = response.fp.readline().decode()
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
                if until(events[-1]):
                    return events
    finally:
        conn.close()
    raise AssertionError(f"the stream did not say it in {timeout} s: {events[-5:]}")


def test_the_event_stream_shows_allocations_and_deaths_as_they_happen():
    """/api/events?each=1 has every applied event; /api/events (the dashboard's) has `changes` notes that
    count them, at most one per 100 ms, and the same records (the orphan) in full."""
    with ttmem.Server(args=["--http", "0"]) as server:
        port = http_port(server)
        found, started = {}, [threading.Event(), threading.Event()]

        def watch(key, path, n):
            found[key] = read_events(port, lambda e: e.get("event") == "orphan", started[n], path=path)
        watchers = [threading.Thread(target=watch, args=("each", "/api/events?each=1", 0)),
                    threading.Thread(target=watch, args=("changes", "/api/events", 1))]
        for w in watchers:
            w.start()
        assert all(s.wait(10) for s in started)
        with ttmem.open_mesh_device("n150") as mesh:
            b = mesh.allocate("DRAM", 12345 * 32)
            assert ttmem.flush()
            del b
        # A process that dies holding memory: its orphan record comes down the stream too.
        child = run_and_kill(server, ("mesh n150", "alloc a L1 4K", "flush"))
        for w in watchers:
            w.join(timeout=30)
        events = found["each"]
        mine = [e for e in events if e.get("pid") == os.getpid()]
        assert any(e["event"] == "alloc" and e["type"] == "DRAM" and e["size"] == 12345 * 32 for e in mine), events[:5]
        assert any(e["event"] == "free" and e["type"] == "DRAM" for e in mine)
        assert events[-1]["pid"] == child.pid and events[-1]["buffers"] >= 1
        notes = found["changes"]
        assert {e["event"] for e in notes} <= {"changes", "orphan", "leak", "oom"}, notes
        changes = [e for e in notes if e["event"] == "changes"]
        assert changes and all(e["events"] > 0 for e in changes)
        applied = sum(1 for e in events if e["event"] in ("alloc", "free"))
        assert sum(e["events"] for e in changes) >= applied  # they count what was applied, not fewer
        # One per 100 ms at most, and one before each record for the events before it.
        records = len(notes) - len(changes)
        seconds = (changes[-1]["time_ns"] - changes[0]["time_ns"]) / 1e9
        assert len(changes) <= seconds / 0.1 + records + 1, notes
        assert notes[-1]["event"] == "orphan" and notes[-1]["pid"] == child.pid
        status, _, body = get(port, "/api/events?each=2")
        assert status == 400 and "each=0|1" in body


def test_hostile_http_clients_cost_the_socket_and_ingest_nothing():
    import socket as _socket
    with ttmem.Server(args=["--http", "0"]) as server:
        port = http_port(server)
        # Many connections that never finish a request, one with a huge header, one that is garbage.
        idle = [_socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        for s in idle[:20]:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the request never ends
        big = _socket.create_connection(("127.0.0.1", port))
        big.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        junk = _socket.create_connection(("127.0.0.1", port))
        junk.sendall(bytes(range(256)) * 64)
        # Meanwhile allocations are applied and the socket's queries answered, at once.
        started = time.monotonic()
        with ttmem.open_mesh_device("n150") as mesh:
            kept = [mesh.allocate("DRAM", 4096) for _ in range(200)]
            assert ttmem.flush(timeout=5.0)
            mine = [r for r in server.stats()["processes"] if r["pid"] == os.getpid()]
            assert mine and mine[0]["DRAM"] >= 200 * 4096
            del kept
        assert time.monotonic() - started < 5, "the socket side waited on the HTTP clients"
        assert server.info()["anomalies"]["protocol_errors"] == 0
        for s in idle + [big, junk]:
            s.close()
        # Once they are gone, HTTP serves again.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(port, "/metrics")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("HTTP did not recover after the hostile clients left")
        assert server.process.poll() is None


def test_the_history_over_http_is_the_history_module():
    """/api/history and /api/timeline answer what ttmem.history() and ttmem.timeline() read from the same
    database; an orphan of a two-device mesh is a record of each device; bad parameters are 400."""
    with ttmem.Server(args=["--http", "0", "--history-interval-ms", "100"], track=False) as server:
        port = http_port(server)
        child = run_and_kill(server, ("mesh n300", "alloc w DRAM 4M site=model.py:7", "flush"))
        deadline = time.monotonic() + 20
        while not ttmem.history(kinds="orphan", device=1, state_dir=server.state_dir):
            assert time.monotonic() < deadline, "the orphan was not written to the history"
            time.sleep(0.05)
        for device in (0, 1):
            status, kind, body = get(port, f"/api/history?kind=orphan&device={device}")
            assert status == 200 and kind == "application/json", body
            records = json.loads(body)["records"]
            assert records == ttmem.history(kinds="orphan", device=device, state_dir=server.state_dir)
            assert [r["pid"] for r in records] == [child.pid] and records[0]["device"] is None
        assert json.loads(get(port, "/api/history?kind=orphan&device=2")[2])["records"] == []
        # The timeline of device 1: its 4 MiB of DRAM as the peak of the interval the process died in (the
        # timeline is written at the next tick, after the record).
        def peak():
            t = ttmem.timeline(1, since="10m", memory_type="DRAM", state_dir=server.state_dir)
            return max((p[2] for s in t["series"] for p in s["points"]), default=0)
        while peak() < 4 << 20:
            assert time.monotonic() < deadline, "no timeline point with the 4 MiB peak"
            time.sleep(0.05)
        since, until = int(time.time()) - 600, int(time.time()) + 1
        status, _, body = get(port, f"/api/timeline?device=1&since={since}&until={until}&processes=1")
        assert status == 200, body
        answer = json.loads(body)
        module = ttmem.timeline(1, since=since, until=until, per_process=True, state_dir=server.state_dir)
        del answer["until_ns"], module["until_ns"]  # an until after now is now: a moment apart
        assert answer == module
        dram = [s for s in answer["series"] if s["slot"] == "DRAM" and s["pid"] == 0][0]
        assert max(p[2] for p in dram["points"]) >= 4 << 20
        status, _, body = get(port, f"/api/timeline?device=1&since={since}&until={until}&type=L1")
        assert status == 200 and all(s["slot"] == "L1" for s in json.loads(body)["series"])
        for path, reason in [("/api/history?kind=bogus", "not one of server_start"),
                             ("/api/history?since=yesterday", "not a time"),
                             ("/api/history?limit=0", "1 to 100000"),
                             ("/api/timeline?device=x", "whole number"),
                             ("/api/timeline?type=SRAM", "not one of DRAM"),
                             ("/api/timeline?since=10&until=5", "before"),
                             ("/api/timeline?colour=red", "has no parameter 'colour'")]:
            status, _, body = get(port, path)
            assert status == 400 and reason in json.loads(body)["error"], (path, body)
    with ttmem.Server(args=["--http", "0", "--no-history"], track=False) as server:
        status, _, body = get(http_port(server), "/api/timeline?device=0")
        assert status == 404 and "--no-history" in json.loads(body)["error"]

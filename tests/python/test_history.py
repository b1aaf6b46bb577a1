"""ttmemd's history from Python and in the viewers people use: records and the timeline through the module,
`ttmem export --perfetto` read by a real trace parser (node, @tracerbench/trace-model), and
`ttmem export --memory-viz` loaded back with pickle, every key PyTorch's memory_viz reads checked."""
import json
import os
import pickle
import subprocess
import time

import pytest

import ttmem

BIN = os.environ.get("TTMEM_BIN_DIR", "")
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples")


def run_scripts(server, *names):
    env = dict(os.environ, TTMEM_SOCKET=server.socket)
    for name in names:  # crash.ttm aborts on purpose: its exit status is not checked
        subprocess.run([os.path.join(BIN, "ttmem-emu"), "-q", os.path.join(EXAMPLES, name)], env=env,
                       capture_output=True)


def eventually(check, seconds=20.0):
    """Polls the history until the writer thread has committed what `check` looks for."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture(scope="module")
def server():
    with ttmem.Server(args=["--history-interval-ms", "100"], track=False) as s:
        run_scripts(s, "leaky.ttm", "crash.ttm", "oom.ttm")
        kinds = lambda: {r["kind"] for r in ttmem.history(state_dir=s.state_dir)}  # noqa: E731
        assert eventually(lambda: {"leak", "orphan", "oom"} <= kinds()), kinds()
        # The timeline has the last workload's interval written (its 6 GiB weights on device 0).
        def has_peak():
            t = ttmem.timeline(0, since="10m", state_dir=s.state_dir)
            return any(p[2] >= 6 << 30 for series in t["series"] if series["slot"] == "DRAM" for p in series["points"])
        assert eventually(has_peak)
        yield s


def test_history_from_python_filters_like_the_cli(server):
    leaks = ttmem.history(kinds=["leak"], state_dir=server.state_dir)
    assert leaks and all(r["kind"] == "leak" for r in leaks)
    assert leaks[0]["site"] == "model.py:10" and leaks[0]["detail"]["size"] == 8 << 20
    by_site = ttmem.history(site="serve.py", state_dir=server.state_dir)
    assert [r["kind"] for r in by_site] == ["orphan"]
    assert ttmem.history(kinds="oom", state_dir=server.state_dir)[0]["detail"]["verdict"] == "exhausted"
    with pytest.raises(ttmem.HistoryError, match="unknown kind 'bogus'"):
        ttmem.history(kinds=["bogus"], state_dir=server.state_dir)
    with pytest.raises(ttmem.HistoryError, match="is not a time"):
        ttmem.history(since="yesterday", state_dir=server.state_dir)
    with pytest.raises(ttmem.HistoryError, match="no history at"):
        ttmem.history(state_dir="/nonexistent/state")


def test_perfetto_export_reads_in_a_real_trace_parser(server, tmp_path):
    out = tmp_path / "trace.json"
    r = subprocess.run([os.path.join(BIN, "ttmem"), "export", "--perfetto", str(out), "--state-dir",
                        server.state_dir], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ui.perfetto.dev" in r.stdout
    parsed = subprocess.run(["node", os.path.join(HERE, "..", "web", "perfetto_model.mjs"), str(out)],
                            capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
    model = json.loads(parsed.stdout)
    names = {p["name"] for p in model["processes"]}
    assert {"device 0", "device 1", "ttmemd records"} <= names
    # Counter tracks per device x slot, with the peak of the 6 GiB run on device 0 (pid 1 in the trace).
    assert model["counters"]["1/DRAM in use"] >= 6 << 30
    assert "2/DRAM in use" in model["counters"]
    # Buffer lifetimes as async slices named by site; every begin has its end.
    assert model["async_slices"]["buffer/model.py:10"] >= 1
    assert model["unclosed"] == 0
    instants = {i["name"] for i in model["instants"]}
    assert {"leak", "orphan", "oom", "server_start"} <= instants
    # The Python module writes the same file.
    again = tmp_path / "again.json"
    ttmem.export_perfetto(again, state_dir=server.state_dir)
    assert len(json.loads(again.read_text())["traceEvents"]) == len(json.loads(out.read_text())["traceEvents"])


def test_memory_viz_export_is_a_snapshot_memory_viz_reads(server, tmp_path):
    out = tmp_path / "snapshot.pickle"
    r = subprocess.run([os.path.join(BIN, "ttmem"), "export", "--memory-viz", str(out), "--state-dir",
                        server.state_dir], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[0] == 0x80 and 2 <= data[1] <= 4, "memory_viz reads pickle protocols 2-4 only"
    snap = pickle.loads(data)
    assert isinstance(snap["segments"], list) and isinstance(snap["device_traces"], list)
    devices = snap["ttmem_devices"]
    assert len(devices) == len(snap["device_traces"])
    actions = set()
    for i, trace in enumerate(snap["device_traces"]):
        for e in trace:  # what MemoryViz.js reads of a trace entry
            assert e["action"] in ("alloc", "free_requested", "free_completed", "oom")
            assert isinstance(e["addr"], int) and isinstance(e["size"], int) and "stream" in e
            for f in e["frames"]:
                assert isinstance(f["filename"], str) and isinstance(f["line"], int) and isinstance(f["name"], str)
            if e["action"] == "oom":
                assert isinstance(e["device_free"], int)
            actions.add(e["action"])
        times = [e["time_us"] for e in trace]
        assert times == sorted(times)
        # memory_viz joins free_requested + free_completed of one address into a "free"; alone, a completed
        # free would draw the block as still waiting.
        for prev, e in zip(trace, trace[1:]):
            if e["action"] == "free_completed":
                assert prev["action"] == "free_requested" and prev["addr"] == e["addr"]
    assert {"alloc", "free_requested", "free_completed", "oom"} <= actions
    for seg in snap["segments"]:  # and of a segment: blocks tile it from its address
        assert 0 <= seg["device"] < len(devices)
        assert sum(b["size"] for b in seg["blocks"]) == seg["total_size"]
        for b in seg["blocks"]:
            assert b["state"] in ("active_allocated", "active_pending_free", "inactive")
            assert "requested_size" in b and isinstance(b["frames"], list)
    # An alloc is matched to its free by address, as memory_viz does: every free of a traced alloc follows it.
    dram0 = next(i for i, d in enumerate(devices) if d["device"] == 0 and d["slot"] == "DRAM")
    weights = [e for e in snap["device_traces"][dram0] if e["frames"][0]["filename"] == "model.py"]
    assert weights and weights[0]["frames"][0]["line"] == 10
    assert "categories" not in snap  # none are used, so memory_viz needs no "unknown" category
    again = ttmem.export_memory_viz(tmp_path / "again.pickle", state_dir=server.state_dir)
    assert again["device_traces"] == snap["device_traces"]


def test_a_replayed_capture_exports_with_its_ops(tmp_path):
    """A real ttnn graph capture (a Blackhole matmul, tests/data/traces) replayed into ttmemd: its buffers
    and CBs reach the history with their ops, and the Perfetto export shows them as slices."""
    capture = os.path.join(HERE, "..", "data", "traces", "matmul_normal_mode.json")
    with ttmem.Server(args=["--history-interval-ms", "100"], track=False) as s:
        r = subprocess.run([os.path.join(BIN, "ttmem"), "--socket", s.socket, "replay", capture],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out = tmp_path / "replay.json"

        def exported():
            # The replay's lifetimes are written with the timeline's next point after its exit.
            ttmem.export_perfetto(out, state_dir=s.state_dir)
            parsed = subprocess.run(["node", os.path.join(HERE, "..", "web", "perfetto_model.mjs"), str(out)],
                                    capture_output=True, text=True)
            assert parsed.returncode == 0, parsed.stderr
            model = json.loads(parsed.stdout)
            return model if sum(n for k, n in model["async_slices"].items() if k.startswith("buffer/")) >= 5 else None
        model = eventually(exported)
    assert model, "the replay's five buffers (four freed, one swept at close) never reached the export"
    ops = {k for k in model["async_slices"] if k.startswith("op/")}
    assert any("ttnn.matmul/MatmulDeviceOperation" in k for k in ops), model["async_slices"]
    assert model["unclosed"] == 0
    # The 512 KiB CB of the capture's node 14 is in the device's CB counter.
    assert model["counters"]["1/CB in use"] >= 512 << 10, model["counters"]

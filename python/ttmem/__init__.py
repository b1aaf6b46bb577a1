"""ttmem: device-memory tracking for Tenstorrent accelerators, from Python.

The emulated TT-Metal runtime (meshes, buffers, programs with circular buffers) reports every allocation
to ttmemd, and the query functions read ttmemd's picture back:

    import ttmem
    with ttmem.Server():                      # a private ttmemd, for tests and notebooks
        mesh = ttmem.open_mesh_device("t3000")
        t = mesh.allocate("DRAM", 4 * 1024 * 1024)
        ttmem.flush()
        print(ttmem.stats()["devices"][0]["memory"]["DRAM"])
        ttmem.close_mesh_device(mesh)
        print(ttmem.leaks())

Errors are ttmem.Error subclasses carrying the runtime's message (OutOfMemoryError, ...).
"""
from __future__ import annotations

import itertools
import os
import sys

# Annotations only (they are strings here): typing and json (which pulls in re) are not imported at
# startup, so `import ttmem` costs little more than the extension (docs/benchmarks.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Union


class _LazyJson:
    """The json module, imported the first time a call needs it."""

    def __getattr__(self, name: str) -> Any:
        import json as module

        globals()["json"] = module
        return getattr(module, name)


json = _LazyJson()

from . import _ttmem
from ._ttmem import (
    Buffer,
    CaptureError,
    CircularBufferClashError,
    Device,
    DeviceBusyError,
    DeviceClosedError,
    Error,
    HistoryError,
    InvalidArgumentError,
    InvalidStateError,
    MeshDevice,
    OutOfMemoryError,
    Program,
    QueryError,
    ServerUnreachableError,
    UnknownPresetError,
    client_counters,
    default_socket_path,
    flush,
    presets,
    socket_path,
    tracking_active,
    use_server,
)

__all__ = [
    "open_mesh_device", "close_mesh_device", "MeshDevice", "Buffer", "Program", "Device",
    "flush", "tracking_active", "use_server", "socket_path", "default_socket_path", "client_counters", "presets",
    "op", "ops", "stats", "buffers", "leaks", "devices", "events", "oom", "memory_map", "info", "Server",
    "capture_report", "history", "timeline", "export_perfetto", "export_memory_viz", "HistoryError", "Error", "OutOfMemoryError", "CaptureError", "CircularBufferClashError", "InvalidArgumentError", "DeviceClosedError",
    "DeviceBusyError", "InvalidStateError", "UnknownPresetError", "ServerUnreachableError", "QueryError",
]

_program_names = itertools.count(1)



def _caller_site(depth: int = 2) -> str:
    """'file.py:LINE' of the code that called the public function."""
    frame = sys._getframe(depth)
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


# ---- arguments: a sentence and ttmem's own error, not pybind11's list of signatures ---------------------

_U64 = 2**64


def _bytes(name: str, value: Any, optional: bool = False) -> Optional[int]:
    """A size in bytes as the runtime takes it: a whole number from 0 to 2**64 - 1."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be a whole number of bytes, not {value!r}")
    if value < 0 or value >= _U64:
        raise InvalidArgumentError(f"{name} must be from 0 to 2**64 - 1 bytes, not {value}")
    return value


def _count(name: str, value: Any, optional: bool = False) -> Optional[int]:
    """A count of cores or banks: a whole number from 1 to 2**32 - 1."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**32:
        raise InvalidArgumentError(f"{name} must be a whole number from 1 to 2**32 - 1, not {value!r}")
    return value


def _text(name: str, value: Any, optional: bool = False, hint: str = "") -> Optional[str]:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a string{hint}, not {value!r}")
    return value


def _mesh(function: str, mesh: Any) -> MeshDevice:
    if not isinstance(mesh, MeshDevice):
        raise InvalidArgumentError(f"{function} takes the MeshDevice open_mesh_device returned, not {mesh!r}")
    return mesh


# ---- the runtime ------------------------------------------------------------------------------------


def open_mesh_device(preset: str = "n150", arch: Optional[str] = None, l1_small_size: int = 0,
                     trace_region_size: int = 0, worker_l1_size: int = 0,
                     device_ids: Optional[Sequence[int]] = None, allocation_alignment: int = 0,
                     worker_grid: Optional[Sequence[int]] = None, l1_unreserved_base: int = 0) -> MeshDevice:
    """Opens a mesh of emulated devices.

    preset: "n150" (1x1), "n300" (1x2), "t3000" (2x4), "galaxy" (8x4) of Wormhole B0, or "p150" (1x1),
    "p300" (1x2) of Blackhole. arch overrides the preset's ("wormhole_b0" or "blackhole").
    device_ids: the process's device numbers to open, one per device (TT-Metal's physical_device_ids;
    0..N-1 by default), mapped onto chips through TT_VISIBLE_DEVICES. A chip another process holds is
    waited for, as TT-Metal waits (TTMEM_EMU_CHIP_WAIT=0 raises DeviceBusyError instead).
    allocation_alignment: the free lists' granule (0: TT-Metal's current rule, the DRAM alignment).
    worker_grid: (x, y) worker cores of a chip that differs from its architecture's (a harvested chip);
    l1_unreserved_base: the build's L1 unreserved base (0: the architecture's).
    Device init places three 4096-byte dispatch control buffers on the first device. Allocations are
    reported to ttmemd when one is reachable (TTMEM_SOCKET, or use_server / Server).
    """
    return _ttmem._open_mesh_device(_text("preset", preset, hint=" such as 'n150' (ttmem.presets() lists them)"),
                                    _text("arch", arch, optional=True, hint=" ('wormhole_b0' or 'blackhole')"),
                                    _bytes("l1_small_size", l1_small_size),
                                    _bytes("trace_region_size", trace_region_size),
                                    _bytes("worker_l1_size", worker_l1_size), _device_ids(device_ids),
                                    _bytes("allocation_alignment", allocation_alignment),
                                    *_grid(worker_grid), _bytes("l1_unreserved_base", l1_unreserved_base))


def _grid(grid: Optional[Sequence[int]]) -> tuple:
    if grid is None:
        return (0, 0)
    if isinstance(grid, (str, bytes)) or not hasattr(grid, "__len__") or len(grid) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in grid):
        raise InvalidArgumentError(f"worker_grid must be (x, y) worker cores, each 1..64, such as (11, 10), not {grid!r}")
    return (grid[0], grid[1])


def _device_ids(ids: Optional[Sequence[int]]) -> List[int]:
    if ids is None:
        return []
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise InvalidArgumentError(f"device_ids must be a list of device numbers such as [0, 1], not {ids!r}")
    out = list(ids)
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**32 for i in out):
        raise InvalidArgumentError(f"device_ids must be whole numbers from 0, one per device, not {ids!r}")
    return out


def close_mesh_device(mesh: MeshDevice) -> None:
    """Closes the mesh in TT-Metal's order; buffers still held are swept and reported as leaks."""
    _mesh("close_mesh_device", mesh).close()


def _allocate(self: MeshDevice, buffer_type: str, size: int, page_size: Optional[int] = None,
              shard_cores: Optional[int] = None, site: Optional[str] = None) -> Buffer:
    """Allocates a buffer replicated on every device of the mesh.

    buffer_type: "DRAM", "L1", "L1_SMALL" (sharded only) or "TRACE" (needs trace_region_size).
    page_size: defaults to 2048 (a bf16 tile) when size is a multiple of it, else size.
    shard_cores: shard over this many cores instead of interleaving over all banks.
    site: who created it, as ttmemd shows it; defaults to the caller's "file.py:LINE".
    Raises OutOfMemoryError with the allocator's message when it does not fit.
    """
    return self._allocate(_text("buffer_type", buffer_type, hint=" (DRAM, L1, L1_SMALL, TRACE)"), _bytes("size", size),
                          _bytes("page_size", page_size, optional=True), _count("shard_cores", shard_cores, optional=True),
                          _text("site", site, optional=True) or _caller_site())


def _create_program(self: MeshDevice, cb_sizes: Sequence[int], cores: Optional[int] = None,
                    name: Optional[str] = None, kernel_binary_size: int = 4096,
                    core_ranges: Union[None, str, Sequence[Optional[str]]] = None) -> Program:
    """A program with one circular buffer per entry of cb_sizes (bytes per core) on the first `cores`
    worker cores (all by default), or on `core_ranges`: TT-Metal's CoreRangeSet text ("{[0-0 - 7-0]}"),
    one for every circular buffer or a list with one per circular buffer (None keeps `cores`).
    Nothing is allocated until it runs."""
    if isinstance(cb_sizes, (str, bytes)) or not hasattr(cb_sizes, "__iter__"):
        raise InvalidArgumentError(f"cb_sizes must be a list of sizes in bytes, one per circular buffer, not {cb_sizes!r}")
    sizes = [_bytes("each circular buffer's size", s) for s in cb_sizes]
    if core_ranges is None:
        ranges: list = []
    elif isinstance(core_ranges, str):
        ranges = [core_ranges] * len(sizes)
    elif hasattr(core_ranges, "__iter__"):
        ranges = list(core_ranges)
        if len(ranges) != len(sizes) or not all(r is None or isinstance(r, str) for r in ranges):
            raise InvalidArgumentError(
                f"core_ranges must be one core range text, or a list of {len(sizes)} (one per circular buffer, "
                f"each a text such as '{{[0-0 - 7-0]}}' or None), not {core_ranges!r}")
    else:
        raise InvalidArgumentError(f"core_ranges must be a core range text such as '{{[0-0 - 7-0]}}', not {core_ranges!r}")
    return self._create_program(sizes, ranges, _count("cores", cores, optional=True),
                                _text("name", name, optional=True) or f"program{next(_program_names)}",
                                _bytes("kernel_binary_size", kernel_binary_size))


def _enter(self: MeshDevice) -> MeshDevice:
    return self


def _exit(self: MeshDevice, *exc: Any) -> None:
    self.close()


_buffer_address = Buffer.address
# A deallocated buffer has no address: None, not the one it had (TT-Metal's Buffer::address() asserts).
Buffer.address = property(lambda self: _buffer_address.fget(self) if self.is_allocated else None,
                          doc="Where the buffer starts in each bank; None once it is deallocated.")
MeshDevice.allocate = _allocate
MeshDevice.create_program = _create_program
MeshDevice.__enter__ = _enter
MeshDevice.__exit__ = _exit
MeshDevice.__repr__ = lambda self: (f"<ttmem.MeshDevice {self.preset} {self.shape[0]}x{self.shape[1]} {self.arch}"
                                    f"{'' if self.is_open else ' (closed)'}>")


# ---- queries to ttmemd ------------------------------------------------------------------------------


def _query(request: Dict[str, Any], socket: Optional[str]) -> Any:
    return _ttmem._query(json.dumps(request), socket)


def stats(socket: Optional[str] = None) -> Dict[str, Any]:
    """The same object as `ttmem smi --json`: devices (memory per type: used, total, peak), processes,
    active_allocations."""
    return _query({"type": "stats"}, socket)


class op:
    """An op scope: allocations this thread makes inside ``with ttmem.op("matmul"):`` carry the op's path
    ("outer/inner" when nested) as their ``scope``, shown by ``buffers``, ``leaks`` and ``events``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "op":
        _ttmem._push_op(self.name)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ttmem._pop_op()


def buffers(device: Optional[int] = None, pid: Optional[int] = None, buffer_type: Optional[str] = None,
            kind: Optional[str] = None, limit: Optional[int] = None, socket: Optional[str] = None,
            site: Optional[str] = None, scope: Optional[str] = None,
            by: Optional[str] = None) -> List[Dict[str, Any]]:
    """Live buffers, largest first, optionally filtered (kind: owning, preallocated, cb, kernel_binary, trace;
    site and scope: text the buffer's site or op path contains). With by ("op", "site", "pid", "device"):
    one dict per key and memory slot instead (key, slot, bytes, buffers, largest, devices, processes),
    bytes descending; limit then counts groups."""
    request: Dict[str, Any] = {"type": "buffers"}
    for key, value in (("device", device), ("pid", pid), ("buffer_type", buffer_type), ("kind", kind), ("limit", limit),
                       ("site", site), ("scope", scope), ("by", by)):
        if value is not None:
            request[key] = value
    answer = _query(request, socket)
    return answer.get("groups", []) if by is not None else answer["buffers"]


def ops(pid: Optional[int] = None, device: Optional[int] = None, scope: Optional[str] = None, limit: int = 200,
        socket: Optional[str] = None) -> List[Dict[str, Any]]:
    """Per-op figures of live processes, largest peak first: pid, name, scope (the op path), device, slot,
    bytes (held now, allocated inside that op or an op nested in it), buffers, peak (the most it held at
    once)."""
    request: Dict[str, Any] = {"type": "ops", "limit": limit}
    for key, value in (("pid", pid), ("device", device), ("scope", scope)):
        if value is not None:
            request[key] = value
    return _query(request, socket)["ops"]


def leaks(socket: Optional[str] = None, after_leak: int = 0, after_orphan: int = 0) -> Dict[str, List[Dict[str, Any]]]:
    """{"leaks": [...], "orphans": [...]}, newest first. Each record has a ``seq`` (1, 2, ... in the order
    made); ``after_leak``/``after_orphan`` return only records with a larger one, so a watcher that passes
    the largest it has seen gets only what is new."""
    request: Dict[str, Any] = {"type": "leaks"}
    if after_leak:
        request["after_leak"] = after_leak
    if after_orphan:
        request["after_orphan"] = after_orphan
    return _query(request, socket)


def devices(socket: Optional[str] = None) -> List[Dict[str, Any]]:
    """What each device is and which processes have it open."""
    return _query({"type": "devices"}, socket)["devices"]


def events(limit: int = 100, socket: Optional[str] = None) -> List[Dict[str, Any]]:
    """The newest allocation events ttmemd applied, oldest first."""
    return _query({"type": "events", "limit": limit}, socket)["events"]


def oom(record_id: Optional[int] = None, socket: Optional[str] = None) -> List[Dict[str, Any]]:
    """Out-of-memory records, newest first (or the one with this id): what was asked, the device's free
    space and holders then, the verdict (exhausted, fragmented, reserved, unknown) and its summary."""
    request: Dict[str, Any] = {"type": "oom"}
    if record_id is not None:
        request["id"] = record_id
    return _query(request, socket)["records"]


def memory_map(device: int = 0, buffer_type: str = "L1", socket: Optional[str] = None) -> Dict[str, Any]:
    """The address map of one bank of a memory type: blocks (free, buffer, overlap) covering the bank,
    circular buffers (L1), and the free-space figures."""
    return _query({"type": "map", "device": device, "buffer_type": buffer_type}, socket)


def info(socket: Optional[str] = None) -> Dict[str, Any]:
    """The server: version, uptime, clients with their tracking costs, events/s, anomaly counters."""
    return _query({"type": "info"}, socket)


# ---- ttnn graph captures ----------------------------------------------------------------------------


def capture_report(capture: Any, check: bool = False, arch: Optional[str] = None,
                   name: str = "capture") -> Dict[str, Any]:
    """The per-op report of a ttnn graph capture, as `ttmem replay --offline --json` prints it (docs/replay.md):
    per op the peak L1 per core with circular buffers and what it is made of, the peak DRAM, the tensors that
    outlive it; TT-Metal's own figures beside. `capture` is what `ttnn.graph.end_graph_capture()` returns (a
    list of nodes), a report file's dict, or the path of either. `check=True` adds the address check of a
    NORMAL-mode capture against the emulator. Raises CaptureError naming the node that is wrong."""
    if isinstance(capture, (str, os.PathLike)):
        text = _ttmem._capture_report(None, os.fspath(capture), name, check, arch)
    else:
        text = _ttmem._capture_report(json.dumps(capture), None, name, check, arch)
    return json.loads(text)


# ---- the history on disk (docs/history.md) ----------------------------------------------------------
# Times are "90s", "30m", "2h", "7d" (that long ago), seconds since the epoch, or "2026-12-02T10:00:00" (UTC).
# state_dir: ttmemd's --state-dir; None: $TTMEM_STATE_DIR or ttmemd's default (a Server's own: server.state_dir).


def _time(t: Any) -> Optional[str]:
    return None if t is None else str(int(t)) if isinstance(t, (int, float)) else str(t)


def history(since: Any = None, until: Any = None, kinds: Sequence[str] = (), device: Optional[int] = None,
            pid: Optional[int] = None, site: str = "", op: str = "", limit: int = 1000,
            state_dir: Optional[str] = None) -> List[Dict[str, Any]]:
    """The records ttmemd kept, oldest first, as `ttmem history --json` has them: its starts and stops,
    processes, device opens and closes, leaks, orphans, OOM records, anomalies. Raises HistoryError."""
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k]
    text = _ttmem._history(state_dir, _time(since), _time(until), device, pid, site, op, list(kinds), limit)
    return json.loads(text)["records"]


def timeline(device: int = 0, since: Any = "1h", until: Any = None, memory_type: Optional[str] = None,
             per_process: bool = False, state_dir: Optional[str] = None) -> Dict[str, Any]:
    """Memory in use over time on one device, as `ttmem timeline --json`: series per slot (and per process)
    of [time_ns, bytes, peak] points, and the gaps when ttmemd was down."""
    return json.loads(_ttmem._timeline(state_dir, device, _time(since), _time(until), memory_type, per_process))


def export_perfetto(path: Any, since: Any = "1h", until: Any = None, device: Optional[int] = None,
                    state_dir: Optional[str] = None) -> None:
    """Writes the history as Chrome trace JSON for ui.perfetto.dev (as `ttmem export --perfetto`)."""
    text = _ttmem._export(state_dir, "perfetto", _time(since), _time(until), device)
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        f.write(text)


def export_memory_viz(path: Any, since: Any = "1h", until: Any = None, device: Optional[int] = None,
                      state_dir: Optional[str] = None) -> Dict[str, Any]:
    """Writes the history as a PyTorch memory_viz snapshot pickle (protocol 4, which memory_viz reads) and
    returns the snapshot."""
    import pickle

    snapshot = json.loads(_ttmem._export(state_dir, "memory_viz", _time(since), _time(until), device))
    with open(os.fspath(path), "wb") as f:
        pickle.dump(snapshot, f, protocol=4)
    return snapshot


# ---- a private ttmemd -------------------------------------------------------------------------------


def _ttmemd_path() -> str:
    candidates = [os.environ.get("TTMEM_BIN_DIR", "")]
    try:
        from . import _paths  # written by the build

        candidates.append(_paths.BIN_DIR)
    except ImportError:
        pass
    for directory in candidates:
        if directory and os.access(os.path.join(directory, "ttmemd"), os.X_OK):
            return os.path.join(directory, "ttmemd")
    import shutil  # here, not at the top: `import ttmem` stays cheap for what does not start a server

    found = shutil.which("ttmemd")
    if not found:
        raise FileNotFoundError("ttmemd not found: build it (make build) or set TTMEM_BIN_DIR")
    return found


class Server:
    """A private ttmemd on a temporary socket, for tests and notebooks.

    Entering starts it and points this process's tracking at it; leaving stops it (SIGTERM) and points
    tracking back where it was. `log` holds what the server printed.
    """

    def __init__(self, verbose: bool = False, args: Sequence[str] = (), track: bool = True):
        self.verbose = verbose
        if isinstance(args, (str, bytes)) or not all(isinstance(a, str) for a in args):
            raise InvalidArgumentError(f"args must be a list of ttmemd's flags as strings, not {args!r}")
        self.args = list(args)
        self.track = track
        self.socket: Optional[str] = None
        self.process: Optional[subprocess.Popen] = None
        self._dir: Optional[tempfile.TemporaryDirectory] = None
        self._previous: Optional[str] = None
        self._previous_env: Optional[str] = None
        self._log_path: Optional[str] = None
        self.state_dir: Optional[str] = None  # where this server keeps its history (ttmem.history reads it)

    def start(self) -> "Server":
        import select  # here, not at the top: `import ttmem` stays cheap for what does not start a server
        import subprocess
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="ttmemd-")
        self.socket = os.path.join(self._dir.name, "ttmemd.sock")
        self._log_path = os.path.join(self._dir.name, "ttmemd.log")
        read_fd, write_fd = os.pipe()
        command = [_ttmemd_path(), "--socket", self.socket, "--ready-fd", str(write_fd)] + self.args
        if "--state-dir" in self.args[:-1]:
            self.state_dir = self.args[self.args.index("--state-dir") + 1]
        elif "--no-history" not in self.args:
            self.state_dir = os.path.join(self._dir.name, "state")  # its own history, gone with it
            command += ["--state-dir", self.state_dir]
        if self.verbose:
            command.append("--verbose")
        with open(self._log_path, "wb") as log:
            self.process = subprocess.Popen(command, pass_fds=(write_fd,), stdout=log, stderr=subprocess.STDOUT)
        os.close(write_fd)
        ready, _, _ = select.select([read_fd], [], [], 10.0)
        started = bool(ready) and os.read(read_fd, 1) == b"1"
        os.close(read_fd)
        if not started:
            self.stop()
            raise Error("ttmemd did not start:\n" + self.log)
        if self.track:
            # A process that has not reported yet then connects straight here, never to the default socket.
            self._previous_env = os.environ.get("TTMEM_SOCKET")
            self._previous = self._previous_env or default_socket_path()
            os.environ["TTMEM_SOCKET"] = self.socket
            if not use_server(self.socket):
                raise RuntimeError(f"could not connect tracking to {self.socket}:\n" + self.log)
        return self

    def stop(self) -> int:
        """Stops the server; returns its exit status."""
        code = -1
        if self.track and self._previous is not None:
            # Leave the server before it goes, so its going is not mistaken for a failure.
            use_server(self._previous, wait=2.0)
            self._previous = None
            if self._previous_env is None:
                os.environ.pop("TTMEM_SOCKET", None)
            else:
                os.environ["TTMEM_SOCKET"] = self._previous_env
        if self.process is not None:
            self.process.terminate()
            code = self.process.wait(timeout=10)
            self.process = None
        return code

    @property
    def log(self) -> str:
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, "r", errors="replace") as f:
            return f.read()

    def stats(self) -> Dict[str, Any]:
        return stats(self.socket)

    def buffers(self, **filters: Any) -> List[Dict[str, Any]]:
        return buffers(socket=self.socket, **filters)

    def leaks(self, after_leak: int = 0, after_orphan: int = 0) -> Dict[str, List[Dict[str, Any]]]:
        return leaks(self.socket, after_leak, after_orphan)

    def ops(self, **filters: Any) -> List[Dict[str, Any]]:
        return ops(socket=self.socket, **filters)

    def oom(self, record_id: Optional[int] = None) -> List[Dict[str, Any]]:
        return oom(record_id, self.socket)

    def memory_map(self, device: int = 0, buffer_type: str = "L1") -> Dict[str, Any]:
        return memory_map(device, buffer_type, self.socket)

    def info(self) -> Dict[str, Any]:
        return info(self.socket)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()

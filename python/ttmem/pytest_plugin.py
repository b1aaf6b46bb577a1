"""pytest plugin: ttmemd checks each test's device memory.

With `--ttmem` (or `ttmem = true` in the ini file) each test runs inside a ttmem op scope named for it,
so every allocation the test makes — in its body, or in code it calls, on the test's thread — carries
that op. When the test (and its fixtures' teardown) is over, ttmemd is asked:

* which buffers made in the test this process still holds, and
* which leaks were recorded at a device close during the test (buffers still held when their device was
  closed),

and each is reported, naming sizes, memory types, devices, sites and ops: as the test's failure
(`--ttmem-leaks=fail`, the default) or as a warning in pytest's summary (`--ttmem-leaks=warn`).

The `ttmem_usage` fixture gives a test its own figures, from the same op scope (an op's figures include
the ops nested in it): `ttmem_usage.peak("L1", device=0)`, `ttmem_usage.held("DRAM")`. It works with or
without `--ttmem`.

Loaded by its entry point (`pytest11`: installed with the package) or by `-p ttmem.pytest_plugin`.
ttmemd must be running where this process reports (TTMEM_SOCKET, else the default socket).
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional

import pytest

import ttmem

_FINDINGS = pytest.StashKey[List[str]]()
_SCOPE = pytest.StashKey[str]()
_STARTED = pytest.StashKey[int]()
_MODES = ("fail", "warn")
_RUNTIME_KINDS = ("preallocated", "kernel_binary")


class TtmemMemoryWarning(pytest.PytestWarning):
    """A test left device memory held or leaked at a device close (with --ttmem-leaks=warn)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ttmem", "device memory checked by ttmemd")
    group.addoption("--ttmem", action="store_true", default=None,
                    help="check each test for device memory it still holds at its end and for leaks at a "
                         "device close during it")
    group.addoption("--ttmem-leaks", choices=_MODES, default=None,
                    help="what a finding does to the test: fail it (default) or warn")
    parser.addini("ttmem", "check each test's device memory, as --ttmem", type="bool", default=False)
    parser.addini("ttmem_leaks", "fail or warn, as --ttmem-leaks", default="fail")


def _enabled(config: pytest.Config) -> bool:
    option = config.getoption("ttmem")
    return bool(config.getini("ttmem")) if option is None else bool(option)


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("ttmem_leaks") or config.getini("ttmem_leaks")
    if mode not in _MODES:
        raise pytest.UsageError(f"ttmem_leaks = {mode!r} in the ini file: give fail or warn")
    return mode


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ttmem_ignore: do not check this test's device memory (--ttmem)")
    if not _enabled(config):
        return
    _mode(config)
    try:
        ttmem.info()
    except ttmem.Error as e:
        raise pytest.UsageError(
            f"--ttmem: ttmemd does not answer at {ttmem.socket_path()}: {e}\n"
            "Start it (ttmemd), or point TTMEM_SOCKET at the one this process should report to.") from None


def _scope_of(item: pytest.Item) -> str:
    # One op per test. "/" separates op levels, so it may not appear in the name.
    name = f"{os.path.basename(str(item.path))}::{item.name}" if hasattr(item, "path") else item.nodeid
    return "test " + name.replace("/", "|")


def _wanted(item: pytest.Item) -> bool:
    return (_enabled(item.config) and item.get_closest_marker("ttmem_ignore") is None) or \
        "ttmem_usage" in getattr(item, "fixturenames", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    if not _wanted(item):
        yield
        return
    item.stash[_SCOPE] = _scope_of(item)
    item.stash[_STARTED] = time.time_ns()
    with ttmem.op(item.stash[_SCOPE]):
        yield


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _where(record: Dict[str, Any], scope: str) -> str:
    op = record.get("scope", "")
    inner = op[len(scope) + 1:] if op.startswith(scope + "/") else ""
    parts = [f"site {record['site']}" if record.get("site") else "no site"]
    if inner:
        parts.append(f"op {inner}")
    return ", ".join(parts)


def _findings(item: pytest.Item) -> List[str]:
    scope = item.stash[_SCOPE]
    started = item.stash[_STARTED]
    if not ttmem.flush(timeout=5.0):
        return [f"ttmemd did not take this process's reports within 5 s ({ttmem.socket_path()}): not checked"]
    me = os.getpid()
    out: List[str] = []
    held = [b for b in ttmem.buffers(pid=me, scope=scope, limit=1001)
            if b.get("scope") == scope or b.get("scope", "").startswith(scope + "/")]
    # The runtime's own buffers (dispatch, kernel binaries) are there because a device the test opened is
    # still open: one line for them, the test's buffers one each.
    runtime = [b for b in held if b["kind"] in _RUNTIME_KINDS]
    made = [b for b in held if b["kind"] not in _RUNTIME_KINDS]
    for b in made[:20]:
        out.append(f"still held: {_human(b['size'])} of {b['type']} on device {b['device']} "
                   f"({b['kind']}, {_where(b, scope)})")
    if len(made) > 20:
        out.append(f"... and {len(made) - 20} more buffers{' (at least)' if len(held) > 1000 else ''}")
    if runtime:
        devices = sorted({b["device"] for b in runtime})
        out.append(f"still open: device{'s' if len(devices) > 1 else ''} {', '.join(map(str, devices))}, "
                   f"with {len(runtime)} buffers of the runtime's own "
                   f"({_human(sum(b['size'] for b in runtime))}): close the mesh the test opened")
    leaks = [lk for lk in ttmem.leaks()["leaks"] if lk["pid"] == me and lk["time_ns"] >= started]
    for lk in leaks[:20]:
        out.append(f"leaked at close: {_human(lk['size'])} of {lk['type']} on device {lk['device']} "
                   f"({lk.get('cause', 'held at close')}, {_where(lk, scope)})")
    if len(leaks) > 20:
        out.append(f"... and {len(leaks) - 20} more leaks")
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Optional[pytest.Item]):
    yield
    if _enabled(item.config) and _SCOPE in item.stash and item.get_closest_marker("ttmem_ignore") is None:
        item.stash[_FINDINGS] = _findings(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if call.when != "teardown":
        return
    findings = item.stash.get(_FINDINGS, [])
    if not findings:
        return
    text = "device memory (ttmem):\n  " + "\n  ".join(findings)
    report = outcome.get_result()
    if _mode(item.config) == "fail" and report.passed:
        report.outcome = "failed"
        report.longrepr = text
    else:
        item.warn(TtmemMemoryWarning(text))


class Usage:
    """A test's own device memory figures: what it allocated (on its thread, in its op scope and the ops
    inside it) and the most of it held at once."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    def _figures(self, memory_type: str, device: int) -> Dict[str, int]:
        scope = self._item.stash.get(_SCOPE, None)
        if scope is None:
            raise RuntimeError("ttmem_usage is read while the test runs (its op scope exists only then)")
        if not ttmem.flush(timeout=5.0):
            raise ttmem.ServerUnreachableError(f"ttmemd did not take this process's reports ({ttmem.socket_path()})")
        for o in ttmem.ops(pid=os.getpid(), device=device, scope=scope, limit=10000):
            if o["scope"] == scope and o["slot"] == memory_type:
                return o
        return {"peak": 0, "bytes": 0, "buffers": 0}

    def peak(self, memory_type: str = "DRAM", device: int = 0) -> int:
        """The most this test held at once on that device and memory type (bytes, all banks)."""
        return int(self._figures(memory_type, device)["peak"])

    def held(self, memory_type: str = "DRAM", device: int = 0) -> int:
        """What it holds now."""
        return int(self._figures(memory_type, device)["bytes"])

    def buffers(self, memory_type: str = "DRAM", device: int = 0) -> int:
        """How many buffers it holds now."""
        return int(self._figures(memory_type, device)["buffers"])


@pytest.fixture
def ttmem_usage(request: pytest.FixtureRequest) -> Usage:
    """This test's own device memory figures (see Usage)."""
    return Usage(request.node)

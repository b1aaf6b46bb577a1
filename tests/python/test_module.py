"""The ttmem Python module itself: buffers, programs, statistics, errors, queries, garbage collection."""
import gc
import os

import pytest

import ttmem
from ttmem.testing import ttmemd  # noqa: F401  (fixture)


def test_buffers_have_tt_metal_addresses():
    with ttmem.open_mesh_device("n150") as mesh:
        l1 = mesh.allocate("L1", 4096, page_size=2048)
        assert (l1.address, l1.size, l1.buffer_type, l1.page_size) == (1_497_088, 4096, "L1", 2048)
        dram = mesh.allocate("DRAM", 2048)
        assert dram.address == 32
        assert l1.is_allocated
        l1.deallocate()
        assert not l1.is_allocated
        l1.deallocate()  # idempotent


def test_device_statistics_follow_allocations():
    with ttmem.open_mesh_device("n300") as mesh:
        assert [d.id for d in mesh.devices] == [0, 1]
        before = mesh.devices[1].statistics("DRAM")
        assert before["allocated"] == 0
        assert before["free"] == before["total_allocatable"] == before["largest_free_block"]
        t = mesh.allocate("DRAM", 12 * 2048)
        after = mesh.devices[1].statistics("DRAM")
        assert after["allocated"] == 2048
        assert after["free"] == before["free"] - 2048
        assert mesh.devices[1].memory_blocks("DRAM")[0] == (32, 2048, True)
        del t


def test_programs_place_circular_buffers_and_release_them():
    with ttmem.open_mesh_device("n150") as mesh:
        p = mesh.create_program([4096, 4096, 4096], name="eltwise")
        assert p.state == "created" and p.circular_buffers == []
        mesh.run(p)
        assert [cb["address"] for cb in p.circular_buffers] == [101_152, 105_248, 109_344]
        p.release()
        assert p.state == "released" and p.circular_buffers == []
        with pytest.raises(ttmem.InvalidStateError):
            mesh.run(p)


def test_circular_buffers_take_tt_metal_core_ranges():
    with ttmem.open_mesh_device("n150") as mesh:
        p = mesh.create_program([100, 100, 100], core_ranges=["{[0-0 - 7-0]}", "{[(x=0,y=1) - (x=7,y=1)]}", None])
        mesh.run(p)
        assert [cb["address"] for cb in p.circular_buffers] == [101_152, 101_152, 101_280]
        assert [cb["num_cores"] for cb in p.circular_buffers] == [8, 8, 64]
        with pytest.raises(ttmem.InvalidArgumentError, match="core_ranges"):
            mesh.create_program([100, 100], core_ranges=["{[0-0 - 7-0]}"])
        with pytest.raises(ttmem.InvalidArgumentError, match="no closing"):
            mesh.create_program([100], core_ranges="{[0-0 - 7-0]")


def test_a_chip_of_its_own_geometry_places_as_the_real_capture():
    with ttmem.open_mesh_device("p150", worker_grid=(11, 10), l1_unreserved_base=111616) as mesh:
        assert mesh.allocate("L1", 2 << 20, page_size=2048).address == 1_552_384
        p = mesh.create_program([128 << 10, 128 << 10, 512 << 10], core_ranges="{[0-0 - 1-1]}")
        mesh.run(p)
        assert [cb["address"] for cb in p.circular_buffers] == [111_616, 242_688, 373_760]
    with pytest.raises(ttmem.InvalidArgumentError, match="worker_grid"):
        ttmem.open_mesh_device("p150", worker_grid=(11,))


def test_a_mesh_out_of_memory_keeps_the_lockstep_figures_apart():
    with ttmem.open_mesh_device("n300") as mesh:
        with pytest.raises(ttmem.OutOfMemoryError) as oom:
            mesh.allocate("DRAM", 13 << 30, page_size=1 << 20)
        assert "lockstep" not in str(oom.value)
        assert oom.value.detail.startswith("lockstep over 2 devices")
    with ttmem.open_mesh_device("n150") as mesh:
        with pytest.raises(ttmem.OutOfMemoryError) as oom:
            mesh.allocate("DRAM", 13 << 30, page_size=1 << 20)
        assert oom.value.detail is None


def test_device_ids_choose_chips_that_other_processes_then_wait_for(monkeypatch):
    import subprocess
    emu = os.path.join(os.environ["TTMEM_BIN_DIR"], "ttmem-emu")
    with ttmem.open_mesh_device("n150", device_ids=[3]) as mesh:
        buf = mesh.allocate("DRAM", 2048)
        assert [d.id for d in mesh.devices] == [3]
        env = dict(os.environ, TTMEM_EMU_CHIP_WAIT="0", TTMEM_TRACKING="0")
        busy = subprocess.run([emu, "-"], input="mesh n150 devices=3\n", text=True, capture_output=True, env=env)
        assert busy.returncode == 3
        assert "chip 3 is in use: lock 'CHIP_IN_USE_3_PCIe'" in busy.stderr
        free = subprocess.run([emu, "-"], input="mesh n150\n", text=True, capture_output=True, env=env)
        assert free.returncode == 0, free.stderr
        del buf
    holder = subprocess.Popen([emu, "--step", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, TTMEM_TRACKING="0"))
    try:
        holder.stdin.write("mesh n150\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "ok"
        monkeypatch.setenv("TTMEM_EMU_CHIP_WAIT", "0")
        with pytest.raises(ttmem.DeviceBusyError, match=f"PID: {holder.pid}"):
            ttmem.open_mesh_device("n150")
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(ttmem.InvalidArgumentError, match="device_ids"):
        ttmem.open_mesh_device("n300", device_ids="01")


def test_errors_are_typed_and_carry_the_runtime_message():
    with ttmem.open_mesh_device("n150") as mesh:
        with pytest.raises(ttmem.OutOfMemoryError) as oom:
            mesh.allocate("DRAM", 13 << 30, page_size=1 << 20)
        assert "Out of Memory: Not enough space to allocate" in str(oom.value)
        assert "largest free block" in str(oom.value)
        assert isinstance(oom.value, ttmem.Error)
        # An impossible size is out of memory, never a wrapped small buffer.
        with pytest.raises(ttmem.OutOfMemoryError, match="allocate 18446744073709551615 B DRAM"):
            mesh.allocate("DRAM", 2**64 - 1)
        big = mesh.allocate("L1", 64 * 1_300_000, page_size=1_300_000)
        with pytest.raises(ttmem.CircularBufferClashError, match="clash with L1 buffers"):
            mesh.run(mesh.create_program([200_000]))
        del big
        with pytest.raises(ttmem.InvalidArgumentError):
            mesh.allocate("HBM", 4096)
        with pytest.raises(ValueError):  # InvalidArgumentError is a ValueError too
            mesh.allocate("DRAM", 3000, page_size=2048)
        with pytest.raises(ttmem.DeviceBusyError):
            ttmem.open_mesh_device("n150")
    with pytest.raises(ttmem.UnknownPresetError, match="n999"):
        ttmem.open_mesh_device("n999")
    closed = ttmem.open_mesh_device("n150")
    closed.close()
    with pytest.raises(ttmem.DeviceClosedError):
        closed.allocate("DRAM", 4096)


def test_bad_arguments_are_ttmems_errors_with_a_sentence():
    """Not pybind11's list of signatures: each says which argument and what it may be."""
    with ttmem.open_mesh_device("n150") as mesh:
        for size, said in [(-1, "from 0 to 2**64 - 1 bytes, not -1"), (1.5, "whole number of bytes, not 1.5"),
                           (2**70, "from 0 to 2**64 - 1 bytes"), ("1k", "whole number of bytes, not '1k'"),
                           (True, "whole number of bytes, not True"), (None, "not None")]:
            with pytest.raises(ttmem.InvalidArgumentError, match="size must be") as e:
                mesh.allocate("DRAM", size)
            assert said in str(e.value) and "incompatible function arguments" not in str(e.value)
            assert isinstance(e.value, ttmem.Error) and isinstance(e.value, ValueError)
        with pytest.raises(ttmem.InvalidArgumentError, match="page_size must be a whole number"):
            mesh.allocate("DRAM", 4096, page_size=2048.0)
        with pytest.raises(ttmem.InvalidArgumentError, match="shard_cores must be a whole number from 1"):
            mesh.allocate("L1", 4096, shard_cores=0)
        with pytest.raises(ttmem.InvalidArgumentError, match="buffer_type must be a string .DRAM, L1"):
            mesh.allocate(None, 4096)
        with pytest.raises(ttmem.InvalidArgumentError, match="cb_sizes must be a list"):
            mesh.create_program(4096)
        with pytest.raises(ttmem.InvalidArgumentError, match="each circular buffer's size must be from 0"):
            mesh.create_program([-1])
        # A deallocated buffer has no address any more.
        b = mesh.allocate("DRAM", 4096)
        assert b.address is not None
        b.deallocate()
        assert b.address is None and not b.is_allocated
    with pytest.raises(ttmem.InvalidArgumentError, match="preset must be a string such as 'n150'"):
        ttmem.open_mesh_device(None)
    with pytest.raises(ttmem.InvalidArgumentError, match="l1_small_size must be from 0"):
        ttmem.open_mesh_device("n150", l1_small_size=-5)
    with pytest.raises(ttmem.InvalidArgumentError, match="close_mesh_device takes the MeshDevice"):
        ttmem.close_mesh_device(None)
    with pytest.raises(ttmem.InvalidArgumentError, match="args must be a list of ttmemd's flags"):
        ttmem.Server(args="--no-history")
    with pytest.raises(ttmem.Error, match="ttmemd did not start"):
        with ttmem.Server(args=["--bogus"]):
            pass


def test_garbage_collection_frees_buffers(ttmemd):
    mesh = ttmem.open_mesh_device("n300")

    def scratch():
        t = mesh.allocate("DRAM", 1 << 20, site="scratch")
        assert t.is_allocated

    scratch()
    gc.collect()
    assert ttmem.flush()
    assert ttmem.buffers(pid=os.getpid(), buffer_type="DRAM") == []
    ttmem.close_mesh_device(mesh)


def test_queries_filter_and_sort(ttmemd):
    with ttmem.open_mesh_device("n300") as mesh:
        small = mesh.allocate("DRAM", 4096, site="small")
        big = mesh.allocate("DRAM", 1 << 20, site="big")
        assert ttmem.flush()
        rows = ttmem.buffers(pid=os.getpid(), buffer_type="DRAM", device=1)
        assert [r["site"] for r in rows] == ["big", "small"]
        assert len(ttmem.buffers(pid=os.getpid(), kind="preallocated")) == 3
        assert ttmem.devices()[0]["processes"][0]["pid"] == os.getpid()
        assert any(e["site"] == "big" for e in ttmem.events(limit=50))
        info = ttmem.info()
        assert info["anomalies"]["free_unknown_id"] == 0
        counters = ttmem.client_counters()
        assert counters["connected"] and counters["events"] > 0
        with pytest.raises(ttmem.QueryError, match="unknown buffer_type") as bad:
            ttmem.buffers(buffer_type="HBM")
        assert bad.value.code == "bad_query"
        with pytest.raises(ttmem.QueryError, match="unknown query type") as unknown:
            ttmem._query({"type": "nonsense"}, None)
        assert unknown.value.code == "bad_query"
        del small, big


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(ttmem.ServerUnreachableError, match="cannot reach ttmemd"):
        ttmem.stats(socket=str(tmp_path / "nobody.sock"))


def test_help_is_useful():
    assert "preset" in ttmem.open_mesh_device.__doc__
    assert "site" in ttmem.MeshDevice.allocate.__doc__
    assert ttmem.Buffer.deallocate.__doc__
    assert ("t3000", "wormhole_b0", 2, 4) in ttmem.presets()


def test_the_server_helper_logs_and_stops(ttmemd):
    with ttmem.open_mesh_device("n150"):
        assert ttmem.flush()
    assert "ttmem" in ttmemd.log and "connected" in ttmemd.log
    assert ttmem.socket_path() == ttmemd.socket


def test_the_type_stubs_name_everything_the_module_exports():
    """The stubs (_ttmem.pyi) must not drift from the compiled module."""
    import ast
    import pathlib

    stub = pathlib.Path(ttmem.__file__).with_name("_ttmem.pyi")
    tree = ast.parse(stub.read_text())
    stubbed = {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    public = {name for name in dir(ttmem._ttmem) if not name.startswith("_")}
    assert public <= stubbed, f"missing from _ttmem.pyi: {sorted(public - stubbed)}"

"""The seed's acceptance test, for real: the Python process opens a mesh, allocates, runs programs with
circular buffers, frees, clears the program cache and closes the mesh — and while it is still alive,
ttmemd shows nothing left for it and no leak. Against a private ttmemd (ttmem.testing.ttmemd)."""
import gc
import os

import pytest

import ttmem
from ttmem.testing import ttmemd  # noqa: F401  (fixture)

# The seed's tensors: (8, 8, 512, 512) bf16 spread over the 8 devices of a T3000 = 4 MiB per device.
TENSOR_BYTES = 8 * 8 * 512 * 512 * 2 // 8
assert TENSOR_BYTES == 4_194_304

PRESETS = ["n150", "n300", "t3000", "galaxy", "p100", "p150", "p300"]


def mine(rows):
    return [r for r in rows if r["pid"] == os.getpid()]


def run_seed_scenario(mesh):
    a = mesh.allocate("DRAM", TENSOR_BYTES)
    b = mesh.allocate("DRAM", TENSOR_BYTES)
    add = mesh.create_program([4096, 4096, 4096], name="add")
    matmul = mesh.create_program([32768, 32768, 65536], name="matmul")
    mesh.run(add)
    mesh.run(matmul)
    a.deallocate()
    b.deallocate()
    mesh.clear_program_cache()
    return add, matmul


def test_the_seed_scenario_leaves_nothing_tracked_and_no_leak(ttmemd):
    mesh = ttmem.open_mesh_device("t3000")
    assert mesh.num_devices == 8
    run_seed_scenario(mesh)
    ttmem.close_mesh_device(mesh)
    assert ttmem.flush()
    stats = ttmem.stats()
    assert stats["active_allocations"] == 0
    assert mine(stats["processes"]) == []
    assert ttmem.buffers(pid=os.getpid()) == []
    assert ttmem.leaks()["leaks"] == []


def test_while_the_mesh_is_open_the_server_sees_its_memory(ttmemd):
    with ttmem.open_mesh_device("t3000") as mesh:
        a = mesh.allocate("DRAM", TENSOR_BYTES)
        assert ttmem.flush()
        rows = mine(ttmem.stats()["processes"])
        assert len(rows) == 8  # one row per device
        assert all(r["DRAM"] == TENSOR_BYTES for r in rows)
        assert rows[0]["L1"] == 3 * 4096  # device 0's dispatch control buffers
        a.deallocate()


def test_a_tensor_kept_past_close_is_a_leak_with_its_site(ttmemd):
    mesh = ttmem.open_mesh_device("t3000")
    kept = mesh.allocate("DRAM", TENSOR_BYTES)  # never freed before close
    line = kept.site
    assert line == f"test_mesh_allocation.py:{test_a_tensor_kept_past_close_is_a_leak_with_its_site.__code__.co_firstlineno + 2}"
    run_seed_scenario(mesh)
    ttmem.close_mesh_device(mesh)
    assert ttmem.flush()
    leaks = ttmem.leaks()["leaks"]
    assert len(leaks) == 8
    assert {leak["device"] for leak in leaks} == set(range(8))
    for leak in leaks:
        assert leak["site"] == line
        assert leak["size"] == TENSOR_BYTES
        assert leak["pid"] == os.getpid()
        assert leak["type"] == "DRAM"
    assert ttmem.stats()["active_allocations"] == 0
    # The tensor's garbage collection after close changes nothing.
    events_before = ttmem.info()["events_total"]
    del kept
    gc.collect()
    assert ttmem.flush()
    assert ttmem.info()["events_total"] == events_before
    assert ttmem.stats()["active_allocations"] == 0
    assert len(ttmem.leaks()["leaks"]) == 8


def test_a_watcher_gets_only_the_leaks_newer_than_it_has_seen(ttmemd):
    mesh = ttmem.open_mesh_device("t3000")
    kept = [mesh.allocate("DRAM", TENSOR_BYTES)]  # never freed before close: one leak per device
    ttmem.close_mesh_device(mesh)
    assert ttmem.flush()
    first = ttmem.leaks()["leaks"]
    seqs = [leak["seq"] for leak in first]
    assert sorted(seqs, reverse=True) == seqs and len(set(seqs)) == 8  # newest first, each its own
    newest = max(seqs)
    assert ttmem.leaks(after_leak=newest)["leaks"] == []
    assert [leak["seq"] for leak in ttmem.leaks(after_leak=newest - 3)["leaks"]] == seqs[:3]
    mesh = ttmem.open_mesh_device("t3000")
    kept.append(mesh.allocate("DRAM", TENSOR_BYTES))
    ttmem.close_mesh_device(mesh)
    assert ttmem.flush()
    newer = ttmem.leaks(after_leak=newest)["leaks"]
    assert len(newer) == 8 and all(leak["seq"] > newest for leak in newer)
    with pytest.raises(ttmem.QueryError):
        ttmem.leaks(after_leak=-1)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_ends_clean(ttmemd, preset):
    mesh = ttmem.open_mesh_device(preset)
    run_seed_scenario(mesh)
    ttmem.close_mesh_device(mesh)
    assert ttmem.flush()
    assert ttmem.stats()["active_allocations"] == 0
    assert ttmem.buffers(pid=os.getpid()) == []
    assert ttmem.leaks()["leaks"] == []


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_reports_a_kept_tensor(ttmemd, preset):
    mesh = ttmem.open_mesh_device(preset)
    kept = mesh.allocate("DRAM", TENSOR_BYTES, site="kept_tensor")
    run_seed_scenario(mesh)
    ttmem.close_mesh_device(mesh)
    assert ttmem.flush()
    leaks = ttmem.leaks()["leaks"]
    assert len(leaks) == mesh.num_devices
    assert all(leak["site"] == "kept_tensor" for leak in leaks)
    assert ttmem.stats()["active_allocations"] == 0
    del kept

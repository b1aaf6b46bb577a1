"""Why an allocation failed, from Python: the error's attributes, ttmemd's record, the address map."""
import os

import pytest

import ttmem
from ttmem.testing import ttmemd  # noqa: F401  (fixture)


def test_out_of_memory_carries_its_figures_and_ttmemds_record(ttmemd):
    with ttmem.open_mesh_device("n150") as mesh:
        held = mesh.allocate("DRAM", 6 << 30, page_size=2048, site="held")
        with pytest.raises(ttmem.OutOfMemoryError) as caught:
            mesh.allocate("DRAM", 6 << 30, page_size=2048, site="wanted")
        e = caught.value
        stats = mesh.devices[0].statistics("DRAM")
        assert e.size == 6 << 30 and e.num_banks == 12
        assert e.needed_per_bank == 536_870_912
        assert e.free_per_bank == stats["free"] and e.largest_free_block == stats["largest_free_block"]
        assert e.free_per_bank < e.needed_per_bank
        # ttmemd's record of the same failure, found by the error itself.
        assert e.record_id == 1 and e.verdict == "exhausted"
        assert "536,870,912 B per bank" in e.summary
        [record] = ttmem.oom()
        assert record["id"] == e.record_id and record["pid"] == os.getpid()
        assert record["space"]["free_per_bank"] == e.free_per_bank
        assert ttmem.oom(record_id=1)[0]["summary"] == e.summary
        with pytest.raises(ttmem.QueryError, match="no out-of-memory record 5"):
            ttmem.oom(record_id=5)
        del held


def test_without_a_server_the_error_still_has_the_runtimes_figures(tmp_path):
    ttmem.use_server(str(tmp_path / "nobody.sock"), wait=0.5)
    with ttmem.open_mesh_device("n150") as mesh:
        with pytest.raises(ttmem.OutOfMemoryError) as caught:
            mesh.allocate("L1", 64 * 2_000_000, page_size=2_000_000)
        assert caught.value.needed_per_bank == 2_000_000
        assert caught.value.record_id is None and caught.value.verdict is None


def test_the_memory_map_covers_the_bank_and_names_the_buffers(ttmemd):
    with ttmem.open_mesh_device("n150") as mesh:
        a = mesh.allocate("L1", 64 * 4096, page_size=4096, site="a")
        b = mesh.allocate("L1", 64 * 8192, page_size=8192, site="b")
        assert ttmem.flush()
        m = ttmem.memory_map(0, "L1")
        assert sum(block["size"] for block in m["blocks"]) == m["space"]["bank_size"]
        sites = sorted(block["site"] for block in m["blocks"] if block["use"] == "buffer")
        assert sites == ["a", "b"]
        table = mesh.devices[0].memory_blocks("L1")
        assert [(x["address"], x["size"], x["use"] != "free") for x in m["blocks"]] == table
        assert ttmem.stats()["devices"][0]["memory"]["L1"]["largest_free_block"] == \
            mesh.devices[0].statistics("L1")["largest_free_block"]
        del a, b


def test_allocations_inside_ttmem_op_carry_its_path(ttmemd):
    with ttmem.open_mesh_device("n150") as mesh:
        with ttmem.op("forward"):
            outer = mesh.allocate("DRAM", 1 << 20, page_size=2048, site="outer")
            with ttmem.op("matmul"):
                inner = mesh.allocate("DRAM", 2 << 20, page_size=2048, site="inner")
        after = mesh.allocate("DRAM", 3 << 20, page_size=2048, site="after")
        assert ttmem.flush()
        scopes = {b["site"]: b["scope"] for b in ttmem.buffers(buffer_type="DRAM")}
        assert scopes["outer"] == "forward"
        assert scopes["inner"] == "forward/matmul"
        assert scopes["after"] == ""
        [only] = ttmem.buffers(scope="matmul")
        assert only["site"] == "inner"
        del outer, inner, after


def test_buffers_by_op_and_per_op_peaks(ttmemd):
    with ttmem.open_mesh_device("n300") as mesh:
        with ttmem.op("decode"):
            a = mesh.allocate("DRAM", 1 << 20, page_size=2048, site="a")
            b = mesh.allocate("DRAM", 2 << 20, page_size=2048, site="b")
            del a  # decode held 3 MiB on each device at once, 2 MiB now
            with pytest.raises(ttmem.OutOfMemoryError) as caught:
                mesh.allocate("DRAM", 64 << 30, page_size=2048, site="too big")
        assert caught.value.op == "decode"
        assert ttmem.flush()
        [group] = ttmem.buffers(by="op", scope="decode")
        assert (group["key"], group["slot"], group["buffers"], group["devices"]) == ("decode", "DRAM", 2, 2)
        assert group["bytes"] == 2 * (2 << 20)
        peaks = ttmem.ops(pid=os.getpid(), scope="decode")
        assert sorted(p["device"] for p in peaks) == [0, 1]
        assert all(p["peak"] == 3 << 20 and p["bytes"] == 2 << 20 and p["slot"] == "DRAM" for p in peaks)
        assert ttmem.oom()[0]["scope"] == "decode"
        del b

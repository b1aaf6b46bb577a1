"""A ttnn graph capture's per-op report from Python: what a test calls right after
`ttnn.graph.end_graph_capture()`, on TT-Metal's own captures (tests/data/traces, Apache-2.0)."""
import json
import os

import pytest

import ttmem

TRACES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "traces")


def matmul_nodes():
    with open(os.path.join(TRACES, "matmul_normal_mode.json")) as f:
        return json.load(f)


def test_the_nodes_end_graph_capture_returns_give_each_ops_l1_peak_per_core():
    report = ttmem.capture_report(matmul_nodes())
    ops = {op["op"]: op for op in report["ops"]}
    matmul = ops["ttnn.matmul/MatmulDeviceOperation"]
#Three CBs(131072 + 131072 + 524288 B on cores(0, 0) - (1, 1)) and the output's 20480 B per bank.
    assert matmul["l1"]["per_core"] == 806_912
    assert matmul["l1"]["program_per_core"] == 786_432
    assert [p["bytes_per_core"] for p in matmul["l1"]["parts"]] == [524_288, 131_072, 131_072, 20_480]
    assert [o["size"] for o in matmul["outlived"]] == [2_097_152, 22_528]
    assert report["tt_metal_rules"]["peak_total"] == 806_912
    assert report["before_capture"]["bytes"]["DRAM"] == 2_097_152


def test_a_path_and_the_address_check():
    report = ttmem.capture_report(os.path.join(TRACES, "matmul_normal_mode.json"), check=True)
    assert report["address_check"]["matched"] == 5 and report["address_check"]["mismatched"] == 0
    add = ttmem.capture_report(os.path.join(TRACES, "sharded_add.json"))
    assert add["mode"] == "NO_DISPATCH" and add["bridge"]["tensor_backed"] == 3
    with pytest.raises(ttmem.CaptureError, match="NO_DISPATCH"):
        ttmem.capture_report(os.path.join(TRACES, "sharded_add.json"), check=True)


def test_a_wrong_capture_names_the_node():
    nodes = matmul_nodes()
    nodes[3]["counter"] = 7
    with pytest.raises(ttmem.CaptureError, match=r"capture: node 3: \"counter\" is 7"):
        ttmem.capture_report(nodes)
    with pytest.raises(ValueError):  # a CaptureError is a ValueError too
        ttmem.capture_report([{"counter": 0}], name="mine")
    with pytest.raises(ttmem.CaptureError, match="cannot be read"):
        ttmem.capture_report("/nonexistent/capture.json")
    with pytest.raises(ttmem.InvalidArgumentError, match="unknown arch 'grayskull'"):
        ttmem.capture_report(matmul_nodes(), arch="grayskull")

#!/usr/bin/env python3
"""A synthetic ttnn graph capture of about N nodes (the 2025 schema, NO_DISPATCH-like sizes), for the
replay benchmark: a model of matmuls and adds, each op allocating its output in L1 or DRAM, running a
program with three CBs, and freeing the previous op's output, with a residual tensor kept across layers.

make_capture.py NODES OUT.json
"""
import json
import sys


def main():
    want, out = int(sys.argv[1]), sys.argv[2]
    nodes = []
    count = 0

    def node(kind, params, connections=(), level=1):
        nonlocal count
        nodes.append(json.dumps({"counter": count, "node_type": kind, "params": params,
                                 "connections": list(connections), "arguments": [], "input_tensors": [],
                                 "stacking_level": level}, separators=(",", ":")))
        count += 1
        return count - 1

    def buffer_params(size, l1, per_bank):
        return {"size": size, "address": 0, "type": "L1" if l1 else "DRAM", "buffer_type": 1 if l1 else 0,
                "layout": "INTERLEAVED", "page_size": 2048, "num_cores": 0, "max_size_per_bank": per_bank,
                "device_id": 1}

    with open(out, "w") as f:
        node("capture_start", None, level=0)
        previous = None
        op = 0
        while count < want - 12:
            l1 = op % 3 != 2
            size = (1 << 20) if l1 else (4 << 20)
            per_bank = 10240 if l1 else (size // 8)
            name = "ttnn.matmul" if op % 2 == 0 else "ttnn.add"
            node("function_start", {"name": name, "inputs": "2"})
            node("function_start", {"name": "tt::tt_metal::create_device_tensor", "inputs": "5"}, level=2)
            buffer = node("buffer", {"size": size, "type": "L1" if l1 else "DRAM", "buffer_type": 1 if l1 else 0,
                                     "layout": "INTERLEAVED", "device_id": 1}, level=2)
            node("buffer_allocate", buffer_params(size, l1, per_bank), [buffer], level=2)
            node("function_end", {"name": "tt::tt_metal::create_device_tensor"}, level=2)
            node("circular_buffer_deallocate_all", {"device_id": 1})
            for cb in (65536, 65536, 131072 if op % 2 == 0 else 32768):
                node("circular_buffer_allocate", {"size": cb, "address": 0, "core_range_set": "{[0-0 - 7-7]}",
                                                  "globally_allocated": "0", "device_id": 1})
            node("function_end", {"name": name})
            if previous is not None:
                node("buffer_deallocate", previous[1], [previous[0]])
            previous = (buffer, buffer_params(size, l1, per_bank))
            op += 1
        node("capture_end", None, level=0)
        f.write("[\n" + ",\n".join(nodes) + "\n]\n")
    print(json.dumps({"nodes": count, "ops": op}))


if __name__ == "__main__":
    main()

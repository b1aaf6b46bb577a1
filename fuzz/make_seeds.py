#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/*): valid messages laid out as
docs/protocol.md says, so the fuzzers start from inputs that reach deep into the handlers."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x4D4D5454
PROTOCOL = 4  # ttmem/protocol.hpp kProtocolVersion


def frame(kind, payload):
    return struct.pack("<IHH", len(payload), kind, 0) + payload


def hello(role=0, name=b"seed"):
    return frame(1, struct.pack("<IHBBIIB", MAGIC, PROTOCOL, role, 0, 0x000100, 4242, len(name)) + name)


def device_open(device=0):
    return frame(2, struct.pack("<HBBI", device, 0, 0, 1) + struct.pack("<5Q", 12 << 30, 85 << 20, 0, 0, 0)
                 + struct.pack("<5I", 12, 64, 0, 64, 12) + struct.pack("<5Q", 32, 101152, 0, 0, 0))


def alloc_failure(device=0, size=6 << 30, per_bank=512 << 20, site=b"model.py:11",
                  message=b"Out of Memory: Not enough space to allocate 6442450944 B DRAM buffer across 12 banks",
                  scope=b"forward/matmul"):
    return frame(10, struct.pack("<HBBIQQQQHHH", device, 0, 0, 12, size, 2048, per_bank, 1, len(site), len(message),
                                 len(scope))
                 + site + message + scope)


def device_close(device=0, phase=0):
    return frame(3, struct.pack("<HBB", device, phase, 0))


def event(op, ident, size=4096, device=0, kind=0, reason=0, site=0, typ=0, scope=0):
    return struct.pack("<BBBBHHIIII5Q", op, typ, kind, reason, device, 0, site, 12, 1, scope, ident, size, 32, size, 1)


def events(records):
    return frame(4, struct.pack("<I", len(records)) + b"".join(records))


def sites(pairs):
    body = b"".join(struct.pack("<IH", i, len(t)) + t for i, t in pairs)
    return frame(5, struct.pack("<I", len(pairs)) + body)


def query(text, qid=1):
    return frame(16, struct.pack("<I", qid) + text)


def write(target, name, data):
    os.makedirs(os.path.join(HERE, "corpus", target), exist_ok=True)
    with open(os.path.join(HERE, "corpus", target, name), "wb") as f:
        f.write(data)


def payload(message):
    return message[8:]


# decoders: a selector byte, then a payload
for sel, msg in [(0, hello()), (2, device_open()), (3, device_close()), (5, sites([(1, b"dispatch/control")])),
                 (8, frame(8, struct.pack("<Q", 7))), (10, query(b'{"type":"stats"}'))]:
    write("decoders", f"sel{sel}", bytes([sel]) + payload(msg))
write("decoders", "events", bytes([4]) + payload(events([event(1, 1), event(2, 1, reason=2)])))
write("decoders", "alloc_failure", bytes([14]) + payload(alloc_failure()))
write("decoders", "stream", bytes([13]) + hello() + device_open() + events([event(1, 5)]))

# connection: whole byte streams
session = (hello() + sites([(1, b"test.py:1"), (2, b"program add/cb0"), (3, b"forward/matmul")])
           + device_open(0) + device_open(1)
           + events([event(1, i, device=i % 2, site=1, scope=3 * (i % 2)) for i in range(1, 9)]
                    + [event(2, 3, device=1)])
           + device_close(0, 0) + events([event(2, 2, reason=2)]) + device_close(0, 1)
           + frame(6, struct.pack("<Q", 1)) + events([event(1, 100)]) + frame(7, struct.pack("<QQ", 1, 1))
           + alloc_failure() + frame(8, struct.pack("<Q", 9)))
write("connection", "session", session)
write("connection", "tool_queries", hello(role=1) + query(b'{"type":"stats"}') + query(b'{"type":"buffers","limit":3}', 2)
      + query(b'{"type":"leaks"}', 3) + query(b'{"type":"info"}', 4) + query(b'{"type":"events","limit":5}', 5)
      + query(b'{"type":"oom"}', 6) + query(b'{"type":"map","device":0,"buffer_type":"L1"}', 7))
write("connection", "garbage", b"GET / HTTP/1.1\r\n\r\n")
# a paged answer with frames waiting behind it, then a query of an unknown type
write("connection", "paged", hello(role=1) + query(b'{"type":"buffers"}') + query(b'{"type":"leaks"}', 2)
      + query(b'{"type":"events","limit":10000}', 3) + query(b'{"type":"x"}', 4))

# query: the JSON of one query
for i, text in enumerate([b'{"type":"stats"}', b'{"type":"buffers","device":0,"buffer_type":"L1","kind":"cb","limit":2}',
                          b'{"type":"buffers","pid":1}', b'{"type":"leaks"}', b'{"type":"devices"}',
                          b'{"type":"events","limit":10}', b'{"type":"info"}', b'{"type":"nope"}',
                          b'{"type":"buffers"}', b'{"type":"info","reset_loop":true}', b'{"type":"buffers","limit":100000}',
                          b'{"type":"oom","id":1}', b'{"type":"map","device":1,"buffer_type":"DRAM"}']):
    write("query", f"q{i}", text)

# schema: answers as ttmemd writes them (captured from a run of the n150 emulator), and queries
SCHEMA_SEEDS = {
    'smi': '{"active_allocations":0,"devices":[{"arch":"wormhole_b0","buffers":0,"id":0,"memory":{"CB":{"buffers":0,"peak":0,"total":89470976,"used":0},"DRAM":{"buffers":0,"peak":4096,"total":12884901504,"used":0},"L1":{"buffers":0,"peak":20480,"total":89470976,"used":0},"L1_SMALL":{"buffers":0,"peak":0,"total":0,"used":0},"TRACE":{"buffers":0,"peak":0,"total":0,"used":0}},"processes":0}],"processes":[]}',
    'devices': '{"devices":[{"arch":"wormhole_b0","id":0,"processes":[],"total":{"CB":89470976,"DRAM":12884901504,"L1":89470976,"L1_SMALL":0,"TRACE":0}}]}',
    'leaks': '{"leaks":[{"address":32,"age_ms":1,"cause":"held at close (swept)","device":0,"id":5,"kind":"owning","name":"ttmem-emu","pid":12298,"site":"s.py:1","size":4096,"swept_by_close":true,"time_ns":1796139537462630719,"type":"DRAM"}],"orphans":[]}',
    'info': '{"active_allocations":0,"anomalies":{"descriptor_shortages":0,"device_out_of_range":0,"duplicate_id":0,"events_after_close":0,"free_unknown_id":0,"handshake_timeouts":0,"limit_refused":0,"pid_mismatch":0,"protocol_errors":0,"refused_connections":0,"refused_identities":0,"site_limit":0,"size_overflow":0,"snapshot_mismatch":0},"clients":[{"connected_s":0.000196779,"connection":6,"events":0,"events_per_second":0.0,"name":"ttmem","pending_output_bytes":0,"pid":12468,"read_buffer_bytes":0,"role":"tool","subscriber":false,"uid":0}],"connections":1,"death_watch":"pidfd","events_per_second":10.0,"events_total":10,"limits":{"handshake_timeout_ms":5000,"max_connections":1024,"max_device_id":4095,"max_frame_bytes":1048576,"max_handshakes":64,"max_leak_records":10000,"max_live_allocations_per_process":16000000,"max_orphan_records":1000,"max_paged_queries":8,"max_pending_output_bytes":67108864,"max_query_rows":4000000,"max_site_bytes_per_process":8388608,"max_sites_per_process":65536,"max_subscriber_backlog_bytes":8388608,"tool_slots":16,"write_timeout_ms":30000},"loop":{"longest_busy_cpu_ms":1.069215,"longest_busy_ms":1.069416,"longest_paged_step_ms":0.029335,"paged_queries":0},"pid":12296,"processes":0,"protocol":2,"registry_bytes":10844,"socket":"/tmp/seed-2678.sock","uptime_s":1.077222539,"version":"0.2.0"}',
    'buffers': '{"buffers":[{"pid":7,"name":"p","device":1,"type":"L1","kind":"cb","id":9,"size":4096,"address":4096,"site":"a.py:3","internal":true,"age_ms":12}],"total":1}',
    'event': '{"address":88864,"device":0,"event":"alloc","id":1,"internal":true,"kind":"preallocated","mesh":1,"name":"ttmem-emu","num_banks":64,"pid":12298,"site":"dispatch/control","size":4096,"size_per_bank":4096,"time_ns":1796139537461624010,"timestamp_ns":25789209182201,"type":"L1"}',
    'events': '{"events":[{"address":88864,"device":0,"event":"alloc","id":1,"internal":true,"kind":"preallocated","mesh":1,"name":"ttmem-emu","num_banks":64,"pid":12298,"site":"dispatch/control","size":4096,"size_per_bank":4096,"time_ns":1796139537461624010,"timestamp_ns":25789209182201,"type":"L1"},{"address":92960,"device":0,"event":"alloc","id":2,"internal":true,"kind":"preallocated","mesh":1,"name":"ttmem-emu","num_banks":64,"pid":12298,"site":"dispatch/control","size":4096,"size_per_bank":4096,"time_ns":1796139537461624010,"timestamp_ns":25789209200305,"type":"L1"}]}',
    'dropped': '{"event":"dropped","count":3}',
    'orphan': '{"event":"orphan","pid":141211,"name":"python","time_ns":1,"bytes":12288,"buffers":3,"held":[{"device":0,"type":"L1","bytes":12288,"buffers":3}],"messages":["pid 141211 (python) died holding 12288 bytes of L1 on device 0 in 3 buffers"]}',
    'error': '{"error":"unknown query type \'x\'","code":"bad_query"}',
    'oom': '{"records":[{"device":0,"free_blocks":[{"address":536870944,"size":536866784}],"holders":[{"buffers":8,"bytes":{"CB":8192,"DRAM":6442455040,"L1":77824,"L1_SMALL":0,"TRACE":0},"internal_per_bank":4096,"name":"ttmem-emu","per_bank":536870912,"pid":6070}],"id":1,"largest":[{"address":32,"age_ms":1,"id":5,"internal":false,"kind":"owning","pid":6070,"site":"stdin:2","size":6442450944,"size_per_bank":536870912},{"address":1073737728,"age_ms":1,"id":8,"internal":true,"kind":"kernel_binary","pid":6070,"site":"program_cache/kernel_bin p","size":4096,"size_per_bank":4096}],"message":"Out of Memory: Not enough space to allocate 6442450944 B DRAM buffer across 12 banks, where each bank needs to store 536870912 B, but bank size is 1073741792 B (allocated: 536875008 B, free: 536866784 B, largest free block: 536866784 B)","name":"ttmem-emu","needed_per_bank":536870912,"num_banks":12,"page_size":2048,"pid":6070,"reason":"out_of_memory","site":"stdin:6","size":6442450944,"space":{"bank_size":1073741792,"fragmentation":0.0,"free":6442401408,"free_blocks":1,"free_per_bank":536866784,"largest_free_block":536866784,"num_banks":12,"unplaced_buffers":0},"summary":"exhausted: 6,442,450,944 B of DRAM on device 0 needs 536,870,912 B per bank over 12 banks; 536,866,784 B are free per bank (4,128 B short); this process holds 536,870,912 B per bank, the runtime 4,096 B, other processes 0 B \\u2014 free some of this process\'s buffers (the largest are listed) or ask for less","time_ns":1796153941763175041,"type":"DRAM","verdict":"exhausted"}],"total":1}',
    'map': '{"base":101152,"blocks":[{"address":101152,"size":1395936,"use":"free"},{"address":1497088,"id":7,"internal":false,"kind":"owning","pid":6070,"site":"stdin:3","size":2048,"use":"buffer"}],"circular_buffers":[{"address":101152,"id":9,"internal":false,"kind":"cb","pid":6070,"site":"program p/cb0","size":4096,"use":"cb"},{"address":105248,"id":10,"internal":false,"kind":"cb","pid":6070,"site":"program p/cb1","size":4096,"use":"cb"}],"device":0,"overlapping_bytes":0,"space":{"bank_size":1397984,"fragmentation":0.0,"free":89339904,"free_blocks":1,"free_per_bank":1395936,"largest_free_block":1395936,"num_banks":64,"unplaced_buffers":0},"type":"L1"}',
    'groups': '{"buffers":[],"groups":[{"buffers":16,"bytes":75497472,"devices":8,"key":"prefill","largest":8388608,"name":"","pid":0,"processes":1,"slot":"DRAM","device":0}],"total_groups":1,"total":16}',
    'ops': '{"ops":[{"pid":7,"name":"python3","scope":"decode","device":3,"slot":"DRAM","bytes":2097152,"buffers":1,"peak":3145728}],"total":1}',
}
for name, text in SCHEMA_SEEDS.items():
    write("schema", name, text.encode())
write("schema", "query", b'{"type":"buffers","device":0,"buffer_type":"L1","kind":"cb","limit":2}')
write("schema", "query_by", b'{"type":"buffers","by":"op","scope":"mat","limit":5}')
write("schema", "query_ops", b'{"type":"ops","pid":7,"device":0,"scope":"decode","limit":20}')

# emu_script: the example scripts
for name in ("seed.ttm", "leaky.ttm", "crash.ttm"):
    with open(os.path.join(HERE, "..", "examples", name), "rb") as f:
        write("emu_script", name, f.read())
write("emu_script", "everything.ttm", b"mesh t3000 l1_small=64K trace_region=1M\nalloc a DRAM 4M page=2048 site=\"x y\"\n"
      b"alloc_at p L1 4K 200000 device=1\nrepeat 3\n alloc t L1_SMALL 8K shard_cores=8\n free t\nend\n"
      b"program p cb=4Kx3 cores=8 kernel=8K\nrun p\nrelease p\ntrace tr 64K\nrelease_trace tr\nstats\ndump device=0\nclose\n")

# http: the bytes a client sends on one connection
HTTP_SEEDS = {
    'metrics': b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    'buffers_by': b"GET /api/buffers?by=op&device=0&limit=5&scope=mat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    'buffers_bad': b"GET /api/buffers?device=%zz&by=tensor&pid=-1 HTTP/1.1\r\n\r\n",
    'ops': b"GET /api/ops?pid=1&device=0 HTTP/1.1\r\n\r\nGET /api/map?device=0&buffer_type=DRAM HTTP/1.1\r\n\r\n",
    'map_l1': b"GET /api/map?device=0&buffer_type=L1 HTTP/1.1\r\n\r\n",
    'stats_param': b"GET /api/stats?x=1 HTTP/1.1\r\n\r\n",
    'post': b"POST /api/stats HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    'index': b"GET / HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\nGET /assets/app.js HTTP/1.1\r\n\r\n",
    'chunked': b"GET /api/oom HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    'range': b"GET /api/leaks HTTP/1.1\r\nRange: bytes=0-10,5-1\r\n\r\n",
    'timeline': b"GET /api/timeline?device=0&since=1h&type=L1&processes=1 HTTP/1.1\r\n\r\n"
                b"GET /api/timeline?since=99999999999999999999&until=2026-13-40T99:99:99 HTTP/1.1\r\n\r\n",
    'history': b"GET /api/history?kind=leak,orphan,,oom&limit=100001&device=65536&site=%00 HTTP/1.1\r\n\r\n"
               b"GET /api/history?since=7d&pid=-5&op=forward HTTP/1.1\r\n\r\n",
    'events_each': b"GET /api/events?each=1 HTTP/1.1\r\n\r\n",
}
for name, text in HTTP_SEEDS.items():
    write("http", name, text)

# capture: TT-Metal's own captures (tests/data/traces, Apache-2.0), a report file and the 2024 schema
TRACES = os.path.join(os.path.dirname(HERE), "tests", "data", "traces")
for name in ("matmul_normal_mode.json", "matmul_l1_out.json", "sharded_add.json"):
    with open(os.path.join(TRACES, name), "rb") as f:
        write("capture", name, f.read())
write("capture", "report.json", b'{"version": 1, "graph": [{"counter": 0, "node_type": "capture_start", "params": null},'
      b'{"counter": 1, "node_type": "circular_buffer_allocate", "params": {"size": 4096, "address": 0,'
      b'"core_range_set": "{[(x=0,y=0) - (x=1,y=1)]}", "globally_allocated": "0", "device_id": 0}}],'
      b'"devices": [{"device_id": 0, "arch": "BLACKHOLE", "l1_num_banks": 110, "l1_bank_size": 1400000}]}')
write("capture", "schema2024.json", b'[{"counter": 0, "node_type": "function_start", "params": {"name": "ttnn::add"}},'
      b'{"counter": 1, "node_type": "buffer_allocate", "params": {"size": "4096", "address": "1024", "type": "L1",'
      b'"layout": "HEIGHT_SHARDED", "num_cores": "8", "device_id": "0"}},'
      b'{"counter": 2, "node_type": "buffer_deallocate", "params": {"size": "4096", "address": "1024", "type": "L1",'
      b'"layout": "HEIGHT_SHARDED", "device_id": "0"}}, {"counter": 3, "node_type": "function_end", "params": {}}]')

#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/*): valid messages laid out as
docs/protocol.md says, so the fuzzers start from inputs that reach deep into the handlers."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x4D4D5454
PROTOCOL = 2  # ttmem/protocol.hpp kProtocolVersion


def frame(kind, payload):
    return struct.pack("<IHH", len(payload), kind, 0) + payload


def hello(role=0, name=b"seed"):
    return frame(1, struct.pack("<IHBBIIB", MAGIC, PROTOCOL, role, 0, 0x000100, 4242, len(name)) + name)


def device_open(device=0):
    return frame(2, struct.pack("<HBBI", device, 0, 0, 1) + struct.pack("<5Q", 12 << 30, 85 << 20, 0, 0, 0)
                 + struct.pack("<5I", 12, 64, 0, 64, 12))


def device_close(device=0, phase=0):
    return frame(3, struct.pack("<HBB", device, phase, 0))


def event(op, ident, size=4096, device=0, kind=0, reason=0, site=0, typ=0):
    return struct.pack("<BBBBHHIIII5Q", op, typ, kind, reason, device, 0, site, 12, 1, 0, ident, size, 32, size, 1)


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
write("decoders", "stream", bytes([13]) + hello() + device_open() + events([event(1, 5)]))

# connection: whole byte streams
session = (hello() + sites([(1, b"test.py:1"), (2, b"program add/cb0")]) + device_open(0) + device_open(1)
           + events([event(1, i, device=i % 2, site=1) for i in range(1, 9)] + [event(2, 3, device=1)])
           + device_close(0, 0) + events([event(2, 2, reason=2)]) + device_close(0, 1)
           + frame(6, struct.pack("<Q", 1)) + events([event(1, 100)]) + frame(7, struct.pack("<QQ", 1, 1))
           + frame(8, struct.pack("<Q", 9)))
write("connection", "session", session)
write("connection", "tool_queries", hello(role=1) + query(b'{"type":"stats"}') + query(b'{"type":"buffers","limit":3}', 2)
      + query(b'{"type":"leaks"}', 3) + query(b'{"type":"info"}', 4) + query(b'{"type":"events","limit":5}', 5))
write("connection", "garbage", b"GET / HTTP/1.1\r\n\r\n")
# a paged answer with frames waiting behind it, then a query of an unknown type
write("connection", "paged", hello(role=1) + query(b'{"type":"buffers"}') + query(b'{"type":"leaks"}', 2)
      + query(b'{"type":"events","limit":10000}', 3) + query(b'{"type":"x"}', 4))

# query: the JSON of one query
for i, text in enumerate([b'{"type":"stats"}', b'{"type":"buffers","device":0,"buffer_type":"L1","kind":"cb","limit":2}',
                          b'{"type":"buffers","pid":1}', b'{"type":"leaks"}', b'{"type":"devices"}',
                          b'{"type":"events","limit":10}', b'{"type":"info"}', b'{"type":"nope"}',
                          b'{"type":"buffers"}', b'{"type":"info","reset_loop":true}', b'{"type":"buffers","limit":100000}']):
    write("query", f"q{i}", text)

# emu_script: the example scripts
for name in ("seed.ttm", "leaky.ttm", "crash.ttm"):
    with open(os.path.join(HERE, "..", "examples", name), "rb") as f:
        write("emu_script", name, f.read())
write("emu_script", "everything.ttm", b"mesh t3000 l1_small=64K trace_region=1M\nalloc a DRAM 4M page=2048 site=\"x y\"\n"
      b"alloc_at p L1 4K 200000 device=1\nrepeat 3\n alloc t L1_SMALL 8K shard_cores=8\n free t\nend\n"
      b"program p cb=4Kx3 cores=8 kernel=8K\nrun p\nrelease p\ntrace tr 64K\nrelease_trace tr\nstats\ndump device=0\nclose\n")

"""The ttmem demo (make demo): the seed's investigation, done with ttmem.

A private ttmemd tracks this process and two others. We run the seed's scenario (a T3000 mesh, two DRAM
tensors per device, an add and a matmul program with circular buffers, then free, clear the program
cache, close) and look at `ttmem smi` while memory is held and after the close; then a run that forgets a
tensor and a run that crashes, and `ttmem leaks` names what they left behind.
"""
import os
import shutil
import subprocess
import sys

import ttmem

BIN = os.environ["TTMEM_BIN_DIR"]


def section(title):
    print(f"\n\033[1m== {title} ==\033[0m" if sys.stdout.isatty() else f"\n== {title} ==", flush=True)


def tool(*args, socket):
    print(f"$ ttmem {' '.join(args)}", flush=True)
    subprocess.run([os.path.join(BIN, "ttmem"), "--socket", socket, *args], check=True)


def emu(script, socket):
    print(f"$ ttmem-emu -q {script}", flush=True)
    result = subprocess.run([os.path.join(BIN, "ttmem-emu"), "-q", script], env={**os.environ, "TTMEM_SOCKET": socket})
    if result.returncode != 0:
        print(f"  (exited with status {result.returncode}{': killed by SIGKILL, a crash' if result.returncode < 0 else ''})")


def main():
    # The history goes where the demo's exports go (a fresh one each run), not into the user's own state dir.
    out = os.environ.get("TTMEM_DEMO_OUT", "demo-out")
    state = os.path.join(out, "state")
    shutil.rmtree(state, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    with ttmem.Server(args=["--state-dir", state, "--history-interval-ms", "100"]) as server:
        sock = server.socket
        print(f"ttmemd is listening on {sock} (pid {server.process.pid})")

        section("1. The seed's scenario: a T3000 mesh, two tensors per device, two programs")
        mesh = ttmem.open_mesh_device("t3000")
        tensor_bytes = 8 * 8 * 512 * 512 * 2 // 8  # (8, 8, 512, 512) bf16 over 8 devices
        a = mesh.allocate("DRAM", tensor_bytes, site="test_mesh_allocation.py:21 input_a")
        b = mesh.allocate("DRAM", tensor_bytes, site="test_mesh_allocation.py:22 input_b")
        add = mesh.create_program([4096, 4096, 4096], name="add")
        matmul = mesh.create_program([32768, 32768, 65536], name="matmul")
        mesh.run(add)
        mesh.run(matmul)
        ttmem.flush()
        print(f"circular buffers of 'add' on device 0: {[cb['address'] for cb in add.circular_buffers if cb['device'] == 0]}")
        tool("smi", socket=sock)

        section("2. Free the tensors, clear the program cache, close the mesh (this process stays alive)")
        a.deallocate()
        b.deallocate()
        mesh.clear_program_cache()
        ttmem.close_mesh_device(mesh)
        ttmem.flush()
        tool("smi", socket=sock)
        held = ttmem.buffers(pid=os.getpid())
        print(f"buffers this process still holds: {len(held)}  |  leak records: {len(ttmem.leaks()['leaks'])}")
        print("The seed's three L1 control buffers were released by the close sweep: nothing stays tracked.")

        section("3. A run that forgets to free a tensor before closing its mesh")
        emu(os.path.join(os.path.dirname(__file__), "leaky.ttm"), sock)

        section("4. A run that crashes while holding device memory")
        emu(os.path.join(os.path.dirname(__file__), "crash.ttm"), sock)
        # The orphan record appears as soon as ttmemd sees the process die; wait for it, not for a fixed time.
        for _ in range(1000):
            if ttmem.leaks()["orphans"]:
                break

        section("5. A run that asks for more DRAM than is free: why did it fail?")
        emu(os.path.join(os.path.dirname(__file__), "oom.ttm"), sock)
        tool("oom", socket=sock)
        print()
        tool("oom", "1", socket=sock)

        section("6. What was left behind")
        tool("leaks", socket=sock)
        print()
        tool("events", "-n", "6", socket=sock)
        print()
        tool("info", socket=sock)

    section("7. ttmemd has stopped: what it kept on disk, a timeline, and exports for Perfetto and memory_viz")
    history = ["--state-dir", state]
    tool("history", "--kind", "leak,orphan,oom,server_stop", *history, socket=sock)
    print()
    tool("timeline", "-d", "0", "-t", "DRAM", "--since", "1m", "--width", "60", *history, socket=sock)
    print()
    tool("export", "--perfetto", os.path.join(out, "ttmem-trace.json"), *history, socket=sock)
    tool("export", "--memory-viz", os.path.join(out, "ttmem-memory.pickle"), *history, socket=sock)
    print("\nNext: `make test`, the README, docs/ (docs/history.md for what is kept).")


if __name__ == "__main__":
    main()

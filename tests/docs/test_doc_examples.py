"""Every sample session in README.md and docs/*.md (a "$ command" line in a fenced block, and the output under
it) runs against a live ttmemd holding a workload like the docs': the command must be one the tools take
(no usage error, no crash, exit status as shown when the block shows `echo $?`), and what can be compared
is — each table header and each fixed sentence of the shown output (lines without digits) must be in what
the command prints. The ttmem and ttmem-emu commands of the ```sh blocks must run too (not the ttmemd ones,
which start servers, nor those that do not end by themselves: top, --follow, loops, `... &`)."""
import os
import re
import subprocess
import time

import pytest

import ttmem

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TTMEM_BIN_DIR", os.path.join(ROOT, "build", "bin"))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(
    os.path.join(ROOT, "docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
# Samples that cannot run here, each with the reason (they are still listed, never silently passed).
UNRUNNABLE = {
    "ttmem replay --offline bad.json": "shows the error for a capture the reader does not have",
}
# Commands of ```sh blocks that do not end by themselves or change files.
NOT_RUN = re.compile(r"\b(top|--follow|-f)\b|--keep-open|\s-l\s|--loop(?!-ms)|&$")
TOOL_LINE = re.compile(r"(build/bin/)?(ttmem|ttmem-emu) ")  # ttmemd lines start servers: not run


def blocks(path):
    """(line number, fence info, lines) of each fenced block."""
    out, inside, info, start, lines = [], False, "", 0, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("```"):
                if inside:
                    out.append((start, info, lines))
                    inside, lines = False, []
                else:
                    inside, info, start = True, line[3:].strip(), n
            elif inside:
                lines.append(line)
    return out


def sessions():
    """Each "$ command" with the output the doc shows under it."""
    found = []
    for path in DOCS:
        for start, _, lines in blocks(path):
            for i, line in enumerate(lines):
                if not line.startswith("$ "):
                    continue
                shown = []
                for later in lines[i + 1:]:
                    if later.startswith("$ "):
                        break
                    shown.append(later)
                name = f"{os.path.relpath(path, ROOT)}:{start + 1 + i}"
                found.append(pytest.param(line[2:], shown, id=name))
    return found


def sh_commands():
    found = []
    for path in DOCS:
        for start, info, lines in blocks(path):
            if info not in ("sh", "bash"):
                continue
            for i, line in enumerate(lines):
                command = line.split("  #")[0].strip()
                if TOOL_LINE.match(command) and not NOT_RUN.search(command):
                    found.append(pytest.param(command, id=f"{os.path.relpath(path, ROOT)}:{start + 1 + i}"))
    return found


def runnable(command, state_dir):
    """The command with the tools taken from the build and the docs' state directory replaced."""
    command = command.split("  #")[0].strip()
    command = re.sub(r"--state-dir \S+", f"--state-dir {state_dir}", command)
    command = re.sub(r"(^|\| *)(build/bin/)?(ttmem-emu|ttmemd|ttmem)\b", lambda m: m.group(1) + os.path.join(BIN, m.group(3)),
                     command)
    return command


@pytest.fixture(scope="module")
def server():
    """A ttmemd with what the docs' samples were made from: leaks, an orphan, an OOM record, a held workload
    on an n300 with ops, a program's circular buffers."""
    with ttmem.Server(args=["--history-interval-ms", "100"], track=False) as s:
        env = dict(os.environ, TTMEM_SOCKET=s.socket, TTMEM_TRACKING="1")
        for script in ("leaky.ttm", "crash.ttm", "oom.ttm"):
            subprocess.run([os.path.join(BIN, "ttmem-emu"), "-q", os.path.join(ROOT, "examples", script)], env=env,
                           capture_output=True, timeout=60)
        held = subprocess.Popen([os.path.join(BIN, "ttmem-emu"), "--step", "-q"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env)
        # (an op block is one step: its lines, then one "ok")
        for line in ("mesh n300", "alloc weights DRAM 64M site=model.py:10",
                     "op decode\nalloc kv DRAM 8M site=serve.py:9\nalloc act L1 1M site=model.py:11\nend",
                     "op forward\nalloc fwd DRAM 8M site=model.py:11\nop matmul\nalloc mm L1 1M site=model.py:12\nend\nend",
                     "program conv cb=16Kx3", "run conv", "flush"):
            held.stdin.write(line + "\n")
            held.stdin.flush()
            assert held.stdout.readline().strip() == "ok", line
        # The history has the records once the writer committed them.
        deadline = time.monotonic() + 20
        while {"leak", "orphan", "oom"} - {r["kind"] for r in ttmem.history(state_dir=s.state_dir)}:
            assert time.monotonic() < deadline, ttmem.history(state_dir=s.state_dir)
            time.sleep(0.05)
        yield s
        held.kill()
        held.wait()


def fixed_lines(shown):
    """The lines of a shown output that do not depend on the run: table headers and sentences without
    figures (no digit), whitespace-normalised."""
    out = []
    for line in shown:
        text = " ".join(line.split())
        # (a line without spaces is a drawing, as `ttmem map`'s, which depends on the run)
        if not text or re.search(r"\d", text) or len(text) < 20 or text.startswith("...") or " " not in text:
            continue
        out.append(text)
    return out


@pytest.mark.parametrize("command,shown", sessions())
def test_sample_session(server, command, shown):
    if command in UNRUNNABLE:
        pytest.skip(UNRUNNABLE[command])
    if command.startswith("echo $?"):
        pytest.skip("the status of the command before it: checked with that command")
    env = dict(os.environ, TTMEM_SOCKET=server.socket, TTMEM_TRACKING="1", NO_COLOR="1", COLUMNS="200")
    # A sample of what a tool says with no ttmemd (and its status, shown by the `echo $?` after it).
    unreachable = bool(shown) and shown[0].startswith("ttmem: cannot reach ttmemd")
    if unreachable:
        env["TTMEM_SOCKET"] = os.path.join(server.state_dir, "no-ttmemd-here.sock")
    run = subprocess.run(runnable(command, server.state_dir), shell=True, cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    printed = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 64, f"{command}: a usage error:\n{run.stderr}"
    assert 0 <= run.returncode < 128, f"{command}: killed by a signal ({run.returncode})"
    if unreachable:
        assert run.returncode == 2, run.stderr
        assert printed.startswith("ttmem: cannot reach ttmemd at "), printed
        return
    for line in fixed_lines(shown):
        assert line in printed, f"{command}: the doc shows\n  {line}\nbut it printed:\n{run.stdout}{run.stderr}"


@pytest.mark.parametrize("command", sh_commands())
def test_documented_command_parses(server, command, tmp_path):
    env = dict(os.environ, TTMEM_SOCKET=server.socket, TTMEM_TRACKING="1", NO_COLOR="1")
    # In a directory of its own (exports write files there), the repository's files by their full path.
    command = re.sub(r"(?<![\w/])(examples|tests)/", lambda m: os.path.join(ROOT, m.group(1)) + "/", command)
    run = subprocess.run(runnable(command, server.state_dir), shell=True, cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode != 64, f"{command}: a usage error:\n{run.stderr}"
    assert 0 <= run.returncode < 128, f"{command}: killed by a signal ({run.returncode})"

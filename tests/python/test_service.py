"""ttmemd as a systemd service: it serves the listening socket systemd passes (LISTEN_PID, LISTEN_FDS,
descriptor 3), leaves that socket's file to systemd, and refuses a passing it cannot serve."""
import os
import socket
import subprocess

import ttmem

TTMEMD = os.path.join(os.environ.get("TTMEM_BIN_DIR", ""), "ttmemd")
# As systemd execs the service: the variables name the process that gets the sockets.
ACTIVATE = 'LISTEN_PID=$$ LISTEN_FDS=$TTMEM_TEST_FDS exec "$0" "$@"'


def start_activated(listener, *args, fds="1"):
    read_fd, write_fd = os.pipe()
    fd = listener.fileno()
    proc = subprocess.Popen(["/bin/sh", "-c", ACTIVATE, TTMEMD, "--no-history", "--ready-fd", str(write_fd), *args],
                            pass_fds=(3, write_fd), preexec_fn=lambda: os.dup2(fd, 3),
                            env=dict(os.environ, TTMEM_TEST_FDS=fds), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    os.close(write_fd)
    ready = os.read(read_fd, 1)
    os.close(read_fd)
    return proc, ready == b"1"


def test_ttmemd_serves_the_socket_systemd_passes(tmp_path):
    path = str(tmp_path / "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    proc, ready = start_activated(listener, "--socket", str(tmp_path / "other.sock"))
    try:
        assert ready, proc.communicate(timeout=10)[0]
        assert ttmem.stats(socket=path)["devices"] == []
        assert ttmem.info(socket=path)["socket"] == path
        assert not os.path.exists(tmp_path / "other.sock")
    finally:
        proc.terminate()
        log = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0, log
    assert "serving the socket systemd passed: " + path in log
    assert "--socket " + str(tmp_path / "other.sock") + " ignored" in log
    assert os.path.exists(path), "the socket file is systemd's: ttmemd must leave it"


def test_a_passing_ttmemd_cannot_serve_is_refused_with_the_reason(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "a.sock"))
    listener.listen(1)
    proc, ready = start_activated(listener, fds="2")
    out = proc.communicate(timeout=10)[0]
    assert not ready and proc.returncode == 1
    assert "systemd passed 2 sockets (LISTEN_FDS)" in out
    not_listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    proc, ready = start_activated(not_listening)
    out = proc.communicate(timeout=10)[0]
    assert not ready and proc.returncode == 1
    assert "not a listening Unix stream socket" in out

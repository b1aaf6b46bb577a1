"""The pytest plugin (ttmem.pytest_plugin), run by pytester in a pytest of its own that reports to a private
ttmemd: memory a test still holds and leaks at a device close fail the test (or warn), naming sites and
ops; clean tests pass; ttmem_usage gives a test its own peak; the ini option, -p and a missing ttmemd."""
import pytest

import ttmem

pytest_plugins = ["pytester"]

TESTS = '''
import ttmem

kept = []


def test_clean():
    mesh = ttmem.open_mesh_device("n150")
    b = mesh.allocate("DRAM", 1 << 20)
    del b
    ttmem.close_mesh_device(mesh)


def test_leaks_at_close():
    m = ttmem.open_mesh_device("n300")
    held = m.allocate("L1", 64 << 10)
    ttmem.close_mesh_device(m)
    del held


def test_keeps_a_buffer():
    global mesh
    mesh = ttmem.open_mesh_device("n150")
    with ttmem.op("prefill"):
        kept.append(mesh.allocate("DRAM", 4 << 20))
'''


@pytest.fixture
def server():
    with ttmem.Server(track=False) as s:
        yield s


def run(pytester, server, *args, source=TESTS):
    pytester.makepyfile(test_model=source)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("TTMEM_SOCKET", server.socket)  # the inner pytest reports to this test's ttmemd
        return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", *args)


def test_memory_a_test_still_holds_and_leaks_at_close_fail_it(pytester, server):
    result = run(pytester, server, "--ttmem")
    out = result.stdout.str()
    result.assert_outcomes(passed=3, errors=2)  # a teardown finding is the test's error, after it passed
    assert "test_clean" not in [line.split()[-1] for line in out.splitlines() if line.startswith("ERROR")]
    assert "still held: 4.0 MiB of DRAM on device 0 (owning, site test_model.py:24, op prefill)" in out, out
    assert "leaked at close: 64.0 KiB of L1 on device 0" in out and "site test_model.py:15" in out, out
    assert "leaked at close: 64.0 KiB of L1 on device 1" in out, out  # the mesh's second chip
    assert result.ret == 1


def test_warn_mode_and_the_ini_option(pytester, server):
    result = run(pytester, server, "--ttmem", "--ttmem-leaks=warn")
    result.assert_outcomes(passed=3, warnings=2)
    assert "TtmemMemoryWarning" in result.stdout.str() and "still held: 4.0 MiB" in result.stdout.str()
    pytester.makeini("[pytest]\nttmem = true\nttmem_leaks = fail\n")
    result = run(pytester, server)
    result.assert_outcomes(passed=3, errors=2)
    pytester.makeini("[pytest]\nttmem = true\nttmem_leaks = sometimes\n")
    result = run(pytester, server)
    assert result.ret == 4 and "ttmem_leaks = 'sometimes'" in result.stderr.str()


def test_without_the_option_nothing_is_checked_and_the_marker_opts_out(pytester, server):
    result = run(pytester, server)
    result.assert_outcomes(passed=3)
    marked = TESTS.replace("def test_keeps_a_buffer", "@pytest.mark.ttmem_ignore\ndef test_keeps_a_buffer")
    result = run(pytester, server, "--ttmem", source="import pytest\n" + marked)
    result.assert_outcomes(passed=3, errors=1)
    assert "still held" not in result.stdout.str()


def test_loaded_with_dash_p_when_the_entry_point_is_off(pytester, server):
    result = run(pytester, server, "-p", "no:ttmem", "--ttmem")
    assert result.ret == 4 and "unrecognized arguments: --ttmem" in result.stderr.str()
    result = run(pytester, server, "-p", "no:ttmem", "-p", "ttmem.pytest_plugin", "--ttmem")
    result.assert_outcomes(passed=3, errors=2)


def test_usage_fixture_gives_the_tests_own_peak(pytester, server):
    source = '''
import pytest
import ttmem

@pytest.fixture
def mesh():  # opened in setup, outside the test's op: its runtime buffers are not the test's
    m = ttmem.open_mesh_device("n150")
    yield m
    ttmem.close_mesh_device(m)

def test_peak(mesh, ttmem_usage):
    a = mesh.allocate("DRAM", 1 << 20)
    with ttmem.op("attention"):
        b = mesh.allocate("DRAM", 2 << 20)  # in an op inside the test's: counted in the test's peak
    del a, b
    c = mesh.allocate("DRAM", 512 << 10)
    assert ttmem_usage.peak("DRAM", device=0) == 3 << 20
    assert ttmem_usage.held("DRAM") == 512 << 10 and ttmem_usage.buffers("DRAM") == 1
    assert ttmem_usage.peak("L1") == 0
    del c
'''
    result = run(pytester, server, "--ttmem", source=source)
    result.assert_outcomes(passed=1)


def test_no_ttmemd_is_a_usage_error_that_says_what_to_do(pytester, tmp_path, monkeypatch):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    monkeypatch.setenv("TTMEM_SOCKET", str(tmp_path / "nobody.sock"))
    result = pytester.runpytest_subprocess("-q", "--ttmem")
    assert result.ret == 4
    err = result.stderr.str()
    assert "--ttmem: ttmemd does not answer at" in err and "Start it (ttmemd)" in err, err

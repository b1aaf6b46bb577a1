"""Each test runs on an emulated machine of its own: chips are held one process at a time (docs/runtime.md,
"Devices that processes share"), and a test's processes share only that test's chips."""
import pytest


@pytest.fixture(autouse=True)
def _own_machine(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TTMEM_EMU_CHIP_DIR", str(tmp_path_factory.mktemp("machine")))

import os
import tempfile
from pathlib import Path

import pytest

# Offline, quiet, and a cache shared by the test workers (it is keyed by content hashes).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GANKD_QUIET"] = "1"
os.environ.setdefault("GANKD_CACHE", str(Path(tempfile.gettempdir()) / "gankd-test-cache"))

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N` shares the cores among N workers: one thread each
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def run_cli(capsys):
    """Run the gankd CLI in-process; returns (exit code, stdout, stderr)."""
    from gankd.cli import main

    def run(*args):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run

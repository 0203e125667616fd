"""Runs every C unit-test binary (lib/*/test-*.c, <program>/test-*.c).

Each binary prints "ok - NAME" / "FAIL - NAME" per test and ends with
"N passed, N failed"; a binary passes when it exits 0 and reports no
failure."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("POSTHORN_BUILD", "build")
UNIT_DIR = BUILD / "unit"
BINARIES = sorted(UNIT_DIR.glob("test-*")) if UNIT_DIR.is_dir() else []


def test_unit_binaries_were_built():
    assert BINARIES, f"no unit-test binaries in {UNIT_DIR}; run make test-programs"


@pytest.mark.parametrize("binary", BINARIES, ids=[b.name for b in BINARIES])
def test_unit(binary, tmp_path):
    proc = subprocess.run([str(binary)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "FAIL -" not in out, out
    last = [l for l in proc.stdout.splitlines() if l.strip()][-1]
    assert last.endswith(" 0 failed"), out

"""Runs every C unit-test binary (lib/*/test-*.c, <program>/test-*.c).

Each binary prints "ok - NAME" / "FAIL - NAME" per test and ends with
"N passed, N failed" (", N skipped"); a binary passes when it exits 0 and
reports no failure. Cases a binary could not run here ("skip - NAME:
WHY", lib/base/unit.h unit_skip, e.g. the root cases of test-privs) are
reported as pytest skips by test_unit_skipped, never counted as passed:
it has one case per binary whose source can skip."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("POSTHORN_BUILD", "build")
UNIT_DIR = BUILD / "unit"
BINARIES = sorted(UNIT_DIR.glob("test-*")) if UNIT_DIR.is_dir() else []


def test_unit_binaries_were_built():
    assert BINARIES, f"no unit-test binaries in {UNIT_DIR}; run make test-programs"


_RESULTS = {}


def run_binary(binary, tmp_path):
    """The binary's (returncode, stdout, stderr), run once per session."""
    if binary not in _RESULTS:
        proc = subprocess.run([str(binary)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        _RESULTS[binary] = (proc.returncode, proc.stdout, proc.stderr)
    return _RESULTS[binary]


def can_skip(binary):
    """Does the binary's source call unit_skip?"""
    name = binary.name + ".c"
    for src in ROOT.glob(f"**/{name}"):
        if "build" not in src.parts and "unit_skip(" in src.read_text(errors="replace"):
            return True
    return False


SKIPPABLE = [b for b in BINARIES if can_skip(b)]


@pytest.mark.parametrize("binary", SKIPPABLE, ids=[b.name for b in SKIPPABLE])
def test_unit_skipped(binary, tmp_path):
    rc, out, err = run_binary(binary, tmp_path)
    skips = re.findall(r"^skip - (.*)$", out, re.M)
    if skips:
        pytest.skip("; ".join(skips))
    assert rc == 0, out + err


@pytest.mark.parametrize("binary", BINARIES, ids=[b.name for b in BINARIES])
def test_unit(binary, tmp_path):
    rc, stdout, stderr = run_binary(binary, tmp_path)
    proc = subprocess.CompletedProcess([str(binary)], rc, stdout, stderr)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "FAIL -" not in out, out
    last = [l for l in proc.stdout.splitlines() if l.strip()][-1]
    assert re.search(r" 0 failed(, \d+ skipped)?$", last), out

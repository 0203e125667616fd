"""Smoke test of bench/inject, so that the benchmark cannot rot: one tiny
round (5 injections per loop, both loop forms) with posthorn and, when
Debian's Postfix is installed and we are root, Postfix; the floors
(/bin/true, a static no-op when a C compiler can link statically); the
JSON has a rate and the CPU per message for every command, the ratios
when Postfix ran, and nothing is left behind."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import BUILD, IS_ROOT, ROOT

INJECT = ROOT / "bench" / "inject"
HAVE_POSTFIX = all(os.path.exists(p) for p in (
    "/usr/sbin/postfix", "/usr/sbin/postconf", "/usr/sbin/postmap",
    "/usr/lib/postfix/sbin/master"))


@pytest.mark.skipif(not IS_ROOT, reason="bench/inject runs as root")
@pytest.mark.skipif(not (BUILD / "libexec" / "submit").exists(), reason="posthorn not built")
def test_inject_small_run():
    work = pathlib.Path(tempfile.mkdtemp(prefix="test-bench-inject-", dir="/var/tmp"))
    work.chmod(0o755)
    out = work / "inject.json"
    try:
        args = [sys.executable, str(INJECT), "-n", "5", "-r", "1", "--workdir", str(work),
                "--build", str(BUILD), "-o", str(out)]
        if not HAVE_POSTFIX:
            args += ["--only", "posthorn"]
        res = subprocess.run(args, capture_output=True, text=True, timeout=240)
        assert res.returncode == 0, res.stdout + res.stderr
        data = json.loads(out.read_text())
        assert data["bench"] == "inject" and data["status"] == 0
        cmds = {(r["form"], r["command"]) for r in data["rounds"]}
        for form in ("redirect", "pipe"):
            assert (form, "floor /bin/true") in cmds
            assert (form, "posthorn sendmail") in cmds
            if HAVE_POSTFIX:
                assert (form, "postfix sendmail") in cmds
                ratio = data["summary"][form]["posthorn sendmail"]["ratio_to_postfix"]
                assert ratio > 0
        for r in data["rounds"]:
            assert r["n"] == 5 and r["rate"] > 0 and r["client_cpu_ms"] > 0, r
            if r["command"].startswith(("posthorn", "postfix")):
                assert r["server_cpu_ms"] >= 0, r
        assert "10x Postfix" in res.stdout or not HAVE_POSTFIX or \
            not shutil.which("cc"), res.stdout
        # nothing left: only our JSON in the work directory
        assert sorted(p.name for p in work.iterdir()) == ["inject.json"]
        assert subprocess.run(["pgrep", "-f", str(work)], capture_output=True).stdout == b""
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""Smoke test of bench/ingest and its package bench/benchlib, so that the
benchmark cannot rot: one tiny run (20 messages over 2 sessions, 2
latency probes, one round) with posthorn and, when Debian's Postfix is
installed and we are root, Postfix; unpinned and pinned when the machine
has CPUs 0 and 1; the durability audit, the syscall count and the floors
(bench/sync-floor.c, smtp-sink, bench/session-floor.c) over a few
messages.  Checks the JSON has the figures (rate, CPU, context switches and CPU per program, latencies,
the one-CPU latency, syncs, syscalls per program, the floors and their
verdicts), that bench/mkreport renders it, that nothing is left behind,
and that it all takes well under 90 s."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import BUILD, IS_ROOT, ROOT

INGEST = ROOT / "bench" / "ingest"
MKREPORT = ROOT / "bench" / "mkreport"
HAVE_POSTFIX = IS_ROOT and all(os.path.exists(p) for p in (
    "/usr/sbin/postfix", "/usr/sbin/postconf", "/usr/sbin/postmap",
    "/usr/lib/postfix/sbin/master"))
TWO_CPUS = {0, 1} <= os.sched_getaffinity(0)
HAVE_SINK = all(os.access(p, os.X_OK) for p in ("/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"))
HAVE_CC = bool(shutil.which("cc") or shutil.which("gcc"))
N = 20
FLOORS = 20


def _check_server(r, name, mode):
    assert "error" not in r, f"{mode} {name}: {r.get('error')}"
    assert r["mode"] == mode
    assert r["msgs_per_s"] > 0 and r["cpu_ms_per_msg"] > 0, r
    assert r["peak_pss_kib"] > 0 and r["ctxsw_per_msg"] > 0, r
    for key in ("connect_to_file_ms", "eod_to_file_ms", "eod_to_250_ms"):
        lat = r["latency"][key]
        assert len(lat["samples_ms"]) == 2 and 0 < lat["median_ms"] < 30000, (key, lat)
    (rnd,) = r["rounds"]
    assert rnd["messages"] == N and rnd["delivered"] == N, rnd
    progs = rnd["cpu_ms_per_msg_by_program"]
    assert {"smtpd", "cleanup", "qmgr"} <= set(progs), progs
    cs = rnd["ctxsw_per_msg_by_program"]
    assert "cleanup" in cs and cs["cleanup"]["voluntary"] > 0, cs
    if mode == "pinned":
        assert rnd["server_cpus"] == [0] and rnd["client_cpus"] == [1], rnd
        assert rnd["server_affinities"] == [[0]], rnd        # every process, as observed
    else:
        assert rnd["server_cpus"] is None and rnd["client_cpus"] is None, rnd
        assert [0, 1] in rnd["server_affinities"] and [0] not in rnd["server_affinities"], rnd


def _check_floors(fl, mode):
    """The floors of a mode: the sync floor (posthorn's four syncs counted,
    not assumed), the SMTP floor when smtp-sink is installed, their sums
    and, with Postfix, the verdicts of the latency and CPU goals."""
    sync, smtp = fl["sync"], fl["smtp"]
    if HAVE_CC:
        assert sync and "error" not in sync, (mode, fl)
        assert sync["messages"] == FLOORS and sync["syncs_per_msg"] == 4, (mode, sync)
        assert sync["wall_ms_per_msg"] > 0 and sync["cpu_ms_per_msg"] > 0, (mode, sync)
        assert sync["no_sync_wall_ms_per_msg"] > 0 and sync["no_sync_cpu_ms_per_msg"] >= 0, sync
        assert sync["cpus"] == ([0] if mode == "pinned" else None), sync
    if HAVE_SINK:
        assert smtp and "error" not in smtp, (mode, fl)
        assert smtp["probes"] == 2 and smtp["messages"] == N, (mode, smtp)
        for key in ("connect_to_250_ms", "eod_to_250_ms", "cpu_ms_per_msg", "msgs_per_s"):
            assert smtp[key] > 0, (mode, key, smtp)
        assert smtp["client_cpus"] == ([1] if mode == "pinned" else None), smtp
    if HAVE_CC and os.access("/usr/sbin/smtp-source", os.X_OK):
        # bench/session-floor.c under smtp-source: a process per session
        # (inline), and the same split into posthorn's layout
        for key, layout, procs in (("session", "inline", 2), ("pipeline", "split", 2 * 2 + 3)):
            sess = fl[key]
            assert sess and "error" not in sess, (mode, key, fl)
            assert sess["mode"] == layout and sess["processes"] == procs, (mode, sess)
            assert sess["messages"] == N, (mode, sess)
            assert sess["cpu_ms_per_msg"] > 0 and sess["msgs_per_s"] > 0, (mode, sess)
            assert sess["cpus"] == ([0] if mode == "pinned" else None), sess
    if HAVE_CC and HAVE_SINK:
        assert fl["latency_floor_ms"] == pytest.approx(
            smtp["connect_to_250_ms"] + sync["wall_ms_per_msg"], abs=0.002), fl
        assert fl["cpu_floor_ms"] == pytest.approx(
            smtp["cpu_ms_per_msg"] + sync["cpu_ms_per_msg"], abs=0.0002), fl
        if HAVE_POSTFIX:
            v = fl["verdict"]
            assert set(v) == {"latency", "cpu"}, fl
            assert set(v.values()) <= {"below floor", "above floor"}, v


@pytest.mark.skipif(not (BUILD / "libexec" / "smtpd").exists(), reason="posthorn not built")
def test_ingest_small_run():
    work = pathlib.Path(tempfile.mkdtemp(prefix="test-bench-ingest-", dir="/var/tmp"))
    work.chmod(0o755)              # the daemons' users must reach their instances
    try:
        _small_run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _small_run(work):
    out = work / "ingest.json"
    servers = ["postfix", "posthorn"] if HAVE_POSTFIX else ["posthorn"]
    modes = ["unpinned", "pinned"] if TWO_CPUS else ["unpinned"]
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, str(INGEST), "-n", str(N), "-c", "2", "-l", "2", "-r", "1",
         "-t", "40", "--audit", "2", "--syscalls", "4", "--floors", str(FLOORS),
         "--pin", "both" if TWO_CPUS else "no",
         "--only", "both" if HAVE_POSTFIX else "posthorn",
         "--build", str(BUILD), "--workdir", str(work), "-o", str(out)],
        capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["bench"] == "ingest" and res["params"]["modes"] == modes
    assert res["params"]["floor_messages"] == FLOORS
    for mode in modes:
        for name in servers:
            _check_server(res[mode][name], name, mode)
        _check_floors(res[mode]["floors"], mode)
        if HAVE_POSTFIX:
            goals = res[mode]["comparison"]["goals"]
            assert "rate >= 3x Postfix" in goals and "CPU <= 1/3 Postfix" in goals, goals
    if TWO_CPUS:
        oc = res["one_cpu"]["posthorn"]
        assert oc["one_cpu_ms"] > 0 and oc["two_cpus_ms"] > 0 and oc["ratio"] > 0, oc
        assert list(res["one_cpu"]["goal"]) == ["end-of-data->250 on one CPU <= 1.5x two CPUs"]
    for name in servers:
        a = res["audit"][name]
        if IS_ROOT:
            assert a["messages"] == 2 and a["file_syncs_per_msg"] >= 1, a
        sc = res["syscalls"][name]
        if shutil.which("strace") and IS_ROOT:
            assert sc["messages"] == 4 and sc["per_msg"] > 10, sc
            assert "cleanup" in sc["by_program"], sc
    if HAVE_POSTFIX and IS_ROOT:
        # posthorn fsyncs its queue directory entry and the Maildir's, Postfix neither
        assert res["audit"]["posthorn"]["dir_syncs_per_msg"] >= 2
    # the text report and the Markdown one
    assert "msgs/s (end to end)" in r.stdout and "context switches/msg" in r.stdout
    md = subprocess.run([sys.executable, str(MKREPORT), str(out)], capture_output=True,
                        text=True, check=True).stdout
    assert "context switches per message" in md and "#### Unpinned" in md
    if HAVE_CC and HAVE_SINK:
        assert r.stdout.count("floors (same run;") == len(modes), r.stdout
        assert md.count("Floors (same run, same affinity)") == len(modes), md
        assert md.count("Session floors (same run") == len(modes), md
        assert md.count("| pipeline | 7 |") == len(modes), md
        assert r.stdout.count("session floor (bench/session-floor.c inline") == len(modes)
        assert r.stdout.count("pipeline floor (bench/session-floor.c split") == len(modes)
    if TWO_CPUS:
        assert "#### Pinned" in md and "End of DATA → 250 with every server process" in md
    # nothing left behind: the instances and their processes are gone
    dirs = [res[m][n]["dir"] for m in modes for n in servers]
    assert not [d for d in dirs if os.path.exists(d)], dirs
    assert not list(work.glob("*floor*")), list(work.iterdir())     # sync-floor's directories
    left = subprocess.run(["pgrep", "-f", str(work)], capture_output=True, text=True).stdout
    assert not left.strip(), left
    assert took < 90, took

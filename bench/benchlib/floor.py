"""benchlib.floor - the floors of bench/ingest: what no server that keeps
posthorn's durability promises can go below on this machine, measured
in the same run as the servers:

  compile_sync_floor(dest)   bench/sync-floor.c compiled into dest (None
                             without a C compiler)
  sync_floor(binary, workdir, count, size, cpus)
                             posthorn's four syncs per message and the file
                             steps around them, nothing else, in one
                             process (and the same without the syncs)
  compile_session_floor(dest)
                             bench/session-floor.c compiled into dest
  session_floor(binary, workdir, n_load, sessions, size, cpus, client_cpus,
                mode)        a server with one process per SMTP session
                             that does the dialogue and the file steps
                             with the four syncs itself (mode "inline": no
                             other process, no logging), or hands them to
                             posthorn's layout of processes doing nothing
                             else (mode "split"), under smtp-source's
                             load: its CPU per message and messages/s
  smtp_floor(port, count_latency, n_load, sessions, size, cpus, client_cpus)
                             the SMTP dialogue against Postfix's smtp-sink,
                             which answers 250 and keeps nothing: single
                             messages timed by the latency probe's client,
                             and smtp-sink's CPU per message under
                             smtp-source's load
  combine_floors(sync, smtp, latency_metric)
                             the latency and CPU floors of a mode

The sync and SMTP floors are lower bounds, not models: a real server adds
processes, IPC, parsing and logging to them.  The session floor is the
least of one design: a process per session (posthorn's and Postfix's
smtpd) with nothing split off; set against posthorn's figures, the
difference is what its separate processes and the rest of its work
cost.  Standard library only."""
import contextlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time

from .accounting import read_schedstat, read_stat
from .client import make_body, smtp_one, smtp_source_command
from .util import (CLK_TCK, DOMAIN, ROOT, SMTP_SOURCE, BenchError, free_port, log, port_open,
                   wait_for)

__all__ = ["SMTP_SINK", "compile_sync_floor", "compile_session_floor", "sync_floor",
           "session_floor", "smtp_floor", "combine_floors"]

SMTP_SINK = "/usr/sbin/smtp-sink"
SINK_USER = "nobody"
SYNC_FLOOR_SRC = ROOT / "bench" / "sync-floor.c"
SESSION_FLOOR_SRC = ROOT / "bench" / "session-floor.c"
LOAD_DEFAULT = 2000             # smtp-sink's load when the run has no rate rounds (-n 0)


def _confine(cpus):
    """A Popen preexec_fn confining the child to cpus (None: no hook)."""
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def _compile(dest, src, what):
    """Compile src into the directory dest (as bench/inject compiles its
    static no-op); the binary's path, or None with a logged note when
    there is no C compiler or the program does not compile."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log(f"no C compiler: the {what} (bench/{src.name}) is left out")
        return None
    out = pathlib.Path(dest) / src.stem
    r = subprocess.run([cc, "-std=c17", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                        str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"bench/{src.name} does not compile: the {what} is left out\n"
            f"{r.stderr.strip()[-1500:]}")
        return None
    return out


def compile_sync_floor(dest):
    """bench/sync-floor.c compiled into dest, or None (_compile)."""
    return _compile(dest, SYNC_FLOOR_SRC, "sync floor")


def compile_session_floor(dest):
    """bench/session-floor.c compiled into dest, or None (_compile)."""
    return _compile(dest, SESSION_FLOOR_SRC, "session floor")


def _tree_ns(pid):
    """CPU ns (schedstat) of pid and its children (session-floor's
    processes live as long as it does)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        ns = read_schedstat(p)
        if ns is None:
            return None, len(pids)
        total += ns
    return total, len(pids)


def _run_load(port, rcpt, count, sessions, size, client_cpus, persistent, timeout, name):
    """smtp-source (count messages over sessions sessions, confined to
    client_cpus) against the server on port; its CompletedProcess."""
    cmd = smtp_source_command(port, rcpt, count, sessions, size, persistent)
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, preexec_fn=_confine(client_cpus),
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"smtp-source against {name}: not done after {timeout}s") from None


@contextlib.contextmanager
def _listening(cmd, port, cpus, name):
    """Start cmd (a server for 127.0.0.1:port) confined to cpus, in a
    session of its own; yield (process, why) once the port answers, why()
    being the end of its stderr; stop it (SIGTERM, then its whole process
    group) however the block ends."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err, preexec_fn=_confine(cpus), start_new_session=True)

    def why():
        err.seek(0)
        return err.read().decode(errors="replace").strip()[-500:]
    try:
        if not wait_for(lambda: proc.poll() is not None or port_open(port), 10) \
                or proc.poll() is not None:
            raise BenchError(f"{name} did not start on 127.0.0.1:{port}: {why()}")
        yield proc, why
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        err.close()


SESSION_MODES = ("inline", "split")


def session_floor(binary, workdir, n_load, sessions, size, cpus=None, client_cpus=None,
                  persistent=False, timeout=180, mode="inline"):
    """bench/session-floor.c in mode ("inline": a session process does
    everything; "split": posthorn's process layout with nothing but the
    hand-overs) with `sessions` session processes on 127.0.0.1 (a free
    port), confined to cpus, in a fresh directory under workdir (the
    instances' file system), then smtp-source (n_load messages over
    sessions sessions, confined to client_cpus) against it: its
    messages/s (until the last message is delivered) and CPU per message
    (the schedstat of its processes).  The server is stopped and its
    directory removed."""
    if mode not in SESSION_MODES:
        raise ValueError(f"session floor mode {mode!r}")
    if not os.access(SMTP_SOURCE, os.X_OK):
        log(f"{SMTP_SOURCE} not installed: the session floor is left out")
        return None
    port = free_port()
    work = tempfile.mkdtemp(prefix="floor-session-", dir=str(workdir))
    procs = sessions if mode == "inline" else 2 * sessions + 3     # + qmgr, 2 deliveries
    try:
        with _listening([str(binary), work, str(port), str(sessions), mode], port, cpus,
                        "session-floor") as (proc, why):
            if not wait_for(lambda: _tree_ns(proc.pid)[1] == procs + 1, 10):
                raise BenchError("session-floor did not start its processes")
            ns0, _ = _tree_ns(proc.pid)
            t0 = time.monotonic()
            r = _run_load(port, f"floor@{DOMAIN}", n_load, sessions, size, client_cpus,
                          persistent, timeout, "session-floor")
            # split: the deliveries may still run after the last 250
            queue = [pathlib.Path(work) / q for q in ("incoming", "active")]
            drained = wait_for(lambda: not any(any(q.iterdir()) for q in queue),
                               max(5.0, timeout - (time.monotonic() - t0)))
            elapsed = time.monotonic() - t0
            ns1, _ = _tree_ns(proc.pid)
            if not drained:
                raise BenchError(f"session-floor ({mode}): the queue did not drain")
            if r.returncode != 0 or proc.poll() is not None:
                raise BenchError(f"smtp-source against session-floor: exit {r.returncode}: "
                                 f"{r.stderr.decode(errors='replace').strip()[-300:]} {why()}")
            if ns0 is None or ns1 is None:
                raise BenchError("session-floor's /proc/PID/schedstat could not be read")
            return {"mode": mode, "messages": n_load, "sessions": sessions, "processes": procs,
                    "size": size,
                    "msgs_per_s": round(n_load / elapsed, 1), "elapsed_s": round(elapsed, 4),
                    "cpu_ms_per_msg": round((ns1 - ns0) / 1e6 / n_load, 4),
                    "cpus": sorted(cpus) if cpus else None,
                    "client_cpus": sorted(client_cpus) if client_cpus else None}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sync_floor(binary, workdir, count, size, cpus=None, timeout=None):
    """Run sync-floor over count messages of size bytes in a fresh
    directory under workdir (the instances' file system), confined to
    cpus (a set, or None); its figures as a dict, plus the size, the CPUs
    and the CPU of the syncs alone.  The directory is removed."""
    work = tempfile.mkdtemp(prefix="floor-sync-", dir=str(workdir))
    try:
        r = subprocess.run([str(binary), work, str(count), str(size)], capture_output=True,
                           text=True, preexec_fn=_confine(cpus),
                           timeout=timeout or 60 + 0.2 * count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if r.returncode != 0:
        raise BenchError(f"sync-floor failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"sync-floor: not a JSON line: {r.stdout[-300:]!r}") from None
    res["size"] = size
    res["cpus"] = sorted(cpus) if cpus else None
    res["syncs_cpu_ms_per_msg"] = round(res["cpu_ms_per_msg"] - res["no_sync_cpu_ms_per_msg"], 4)
    res["syncs_wall_ms_per_msg"] = round(res["wall_ms_per_msg"] - res["no_sync_wall_ms_per_msg"],
                                         4)
    return res


def smtp_floor(port, count_latency, n_load, sessions, size, cpus=None, client_cpus=None,
               persistent=False, timeout=180):
    """Postfix's smtp-sink on 127.0.0.1:port (None: a free port), confined
    to cpus: the medians of count_latency single messages timed as the
    latency probe times them (smtp_one, after one warm-up; this process's
    affinity is the caller's), then, with n_load > 0, smtp-source
    (smtp_source_command: n_load messages over sessions sessions, confined
    to client_cpus) against it, for smtp-sink's messages/s and its CPU per
    message (/proc/PID/schedstat, ns; /proc/PID/stat utime+stime in clock
    ticks as the second figure).  None, with a logged note, when
    smtp-sink or smtp-source is missing.  smtp-sink is always stopped."""
    missing = [p for p in (SMTP_SINK, SMTP_SOURCE) if not os.access(p, os.X_OK)]
    if missing:
        log(f"{' and '.join(missing)} not installed (Debian's postfix package): the SMTP "
            f"floor is left out")
        return None
    port = port or free_port()
    cmd = [SMTP_SINK, "-4"] + (["-u", SINK_USER] if os.geteuid() == 0 else []) + \
        [f"127.0.0.1:{port}", "256"]
    rcpt = f"floor@{DOMAIN}"
    with _listening(cmd, port, cpus, "smtp-sink") as (proc, why):
        conn_250, conn_eod, eod_250 = [], [], []
        for i in range(count_latency + 1):
            t_conn, t_eod, t_ack = smtp_one(port, rcpt, make_body(size, i), timeout=10)
            if i > 0:                                  # message 0 warms up
                conn_250.append((t_ack - t_conn) * 1000)
                conn_eod.append((t_eod - t_conn) * 1000)
                eod_250.append((t_ack - t_eod) * 1000)
        res = {"probes": count_latency,
               "connect_to_250_ms": round(statistics.median(conn_250), 3),
               "connect_to_eod_ms": round(statistics.median(conn_eod), 3),
               "eod_to_250_ms": round(statistics.median(eod_250), 3),
               "samples_connect_to_250_ms": [round(x, 3) for x in conn_250],
               "cpus": sorted(cpus) if cpus else None,
               "client_cpus": sorted(client_cpus) if client_cpus else None,
               "messages": n_load, "sessions": sessions, "size": size,
               "msgs_per_s": None, "cpu_ms_per_msg": None}
        if n_load > 0:
            res.update(_sink_load(proc.pid, port, rcpt, n_load, sessions, size, client_cpus,
                                  persistent, timeout))
            if proc.poll() is not None:
                raise BenchError(f"smtp-sink exited during the load: {why()}")
        return res


def _sink_load(pid, port, rcpt, count, sessions, size, client_cpus, persistent, timeout):
    """smtp-source against the sink: messages/s and the sink's CPU/msg."""
    ns0, st0 = read_schedstat(pid), read_stat(pid)
    t0 = time.monotonic()
    r = _run_load(port, rcpt, count, sessions, size, client_cpus, persistent, timeout,
                  "smtp-sink")
    elapsed = time.monotonic() - t0
    ns1, st1 = read_schedstat(pid), read_stat(pid)
    if r.returncode != 0:
        raise BenchError(f"smtp-source against smtp-sink: exit {r.returncode}: "
                         f"{r.stderr.decode(errors='replace').strip()[-500:]}")
    if None in (st0, st1):
        raise BenchError("smtp-sink's /proc/PID/stat could not be read")
    ticks = st1[3] - st0[3]
    out = {"msgs_per_s": round(count / elapsed, 1),
           "elapsed_s": round(elapsed, 4),
           # utime + stime, in clock ticks: coarse (1/CLK_TCK s) for small loads
           "cpu_ms_per_msg_stat": round(ticks * 1000 / CLK_TCK / count, 4)}
    if ns0 is not None and ns1 is not None:
        out["cpu_ms_per_msg"] = round((ns1 - ns0) / 1e6 / count, 4)
        out["cpu_method"] = "schedstat"
    else:
        out["cpu_ms_per_msg"] = out["cpu_ms_per_msg_stat"]
        out["cpu_method"] = "stat"
    return out


LATENCY_PART = {"connect_to_file_ms": "connect_to_250_ms", "eod_to_file_ms": "eod_to_250_ms"}


def combine_floors(sync, smtp, latency_metric="connect_to_file_ms", session=None,
                   pipeline=None):
    """The floors of a mode from its sync and SMTP floors (either may be
    None or {"error": ...}): latency = smtp-sink's connect -> 250 median
    (end of DATA -> 250 when the run's latency metric starts there) + the
    sync floor's wall time per message; CPU = smtp-sink's CPU per message
    + the sync floor's.  A part that is missing leaves its floor out.  The
    session floors (session_floor's results in its two modes, or None)
    are kept as they are."""
    ok = lambda x: bool(x) and "error" not in x
    out = {"sync": sync, "smtp": smtp, "latency_floor_ms": None, "cpu_floor_ms": None,
           "session": session, "pipeline": pipeline}
    if ok(sync) and ok(smtp):
        part = LATENCY_PART.get(latency_metric, "connect_to_250_ms")
        out["latency_floor_ms"] = round(smtp[part] + sync["wall_ms_per_msg"], 3)
        out["latency_floor_smtp_part"] = part
        if smtp.get("cpu_ms_per_msg") is not None:
            out["cpu_floor_ms"] = round(smtp["cpu_ms_per_msg"] + sync["cpu_ms_per_msg"], 4)
    return out

"""benchlib.measure - the measurements of one instance: a latency probe
(one message on an idle server), a rate round (N messages over M
sessions by smtp-source or the asyncio client, with CPU, memory, context
switches and the block device accounted), the strace durability audit
(fsync-family calls per message, file or directory) and the syscall
count per message per program (strace -f over a small separate run).
Standard library only."""
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from .accounting import (MemSampler, block_counters, block_stat_path, instance_procs,
                         own_cpu_s, system_busy_ticks)
from .client import DirWatch, make_body, python_load, smtp_one, smtp_source_command
from .util import CLK_TCK, BenchError, wait_for

def latency_one(server, user, i, size, timeout):
    """One message on an idle server: (connect->file, end-of-data->file,
    end-of-data->250) in ms."""
    new = server.maildir_new(user)
    watch = DirWatch(new)
    try:
        have = watch.count()
        t_conn, t_eod, t_ack = smtp_one(server.port, server.rcpt(user), make_body(size, i),
                                        timeout=timeout)
        t_file = watch.wait(have + 1, time.monotonic() + timeout)
    finally:
        watch.close()
    if t_file is None:
        raise BenchError(f"{server.name}: message {i} got 250 but was not in "
                         f"{new} within {timeout}s\n{server.log_tail()}")
    return (t_file - t_conn) * 1000, (t_file - t_eod) * 1000, (t_ack - t_eod) * 1000


def run_load(server, user, args, client_cpus=None):
    """The rate run: returns a dict of figures for one round.  args: n, c,
    size, persistent, timeout, client ("smtp-source" or "python"),
    mem_interval.  client_cpus: the CPUs smtp-source runs on (the python
    client runs in this process: confine the caller instead)."""
    client_preexec = (lambda: os.sched_setaffinity(0, client_cpus)) if client_cpus else None
    new = server.maildir_new(user)
    watch = DirWatch(new)
    before = watch.count()
    target = before + args.n
    cpu0, cg0, _ = server.cpu_snapshot()
    split0 = server.cpu_split()
    sys0, own0 = system_busy_ticks(), own_cpu_s()
    dev_stat = block_stat_path(server.dir)
    io0 = block_counters(dev_stat)
    sampler = MemSampler(server.master, args.mem_interval, server.group)
    sampler.start()
    client_err = []
    deadline = time.monotonic() + args.timeout
    t0 = time.monotonic()
    proc = thread = None
    try:
        if args.client == "smtp-source":
            cmd = smtp_source_command(server.port, server.rcpt(user), args.n, args.c, args.size,
                                      args.persistent)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, preexec_fn=client_preexec)
        else:
            def client():
                try:
                    python_load(server.port, server.rcpt(user), args.n, args.c, args.size,
                                args.persistent, args.timeout)
                except Exception as e:        # reported below
                    client_err.append(f"{type(e).__name__}: {e}")
            thread = threading.Thread(target=client, daemon=True)
            thread.start()
        t_done = None
        while t_done is None:
            t_done = watch.wait(target, min(deadline, time.monotonic() + 1.0))
            if t_done is not None or time.monotonic() >= deadline:
                break
            failed = (proc is not None and proc.poll() not in (None, 0)) or client_err
            if failed:
                # the client gave up: give deliveries a moment, then stop
                t_done = watch.wait(target, min(deadline, time.monotonic() + 5))
                break
        t_client = None
        if proc is not None:
            try:
                proc.wait(max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            t_client = time.monotonic()
            if proc.returncode != 0:
                client_err.append(f"smtp-source exit {proc.returncode}: "
                                  f"{proc.stderr.read().decode(errors='replace').strip()[-500:]}")
        else:
            thread.join(max(1, deadline - time.monotonic()))
            t_client = time.monotonic()
        if t_done is None:
            got = watch.count() - before
            raise BenchError(f"{server.name}: only {got} of {args.n} messages in {new} after "
                             f"{time.monotonic() - t0:.1f}s "
                             f"{'; '.join(client_err)}\n{server.log_tail()}")
        if client_err:
            raise BenchError(f"{server.name}: load client failed: {'; '.join(client_err)}\n"
                             f"{server.log_tail()}")
        # let the queue drain (removal of queue files) before reading CPU
        wait_for(lambda: server.queue_busy() == 0, max(1, deadline - time.monotonic()))
        time.sleep(0.3)
        cpu1, cg1, nprocs = server.cpu_snapshot()
        split1 = server.cpu_split()
        affinities = set()
        for pid in server.pids():
            try:
                affinities.add(tuple(sorted(os.sched_getaffinity(pid))))
            except OSError:
                pass
        sys1, own1 = system_busy_ticks(), own_cpu_s()
        io1 = block_counters(dev_stat)
    finally:
        sampler.finish()
        watch.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = t_done - t0
    delivered = watch.count() - before
    by_prog = sampler.cpu_by_program()
    seen = sum(by_prog.values())
    cpu_by_program = {c: round(v * 1000 / args.n, 3)
                      for c, v in sorted(by_prog.items(), key=lambda x: -x[1])}
    csw = sampler.ctxsw_by_program()
    csw_by_program = {c: {"voluntary": round(v / args.n, 2), "involuntary": round(i / args.n, 2)}
                      for c, (v, i) in sorted(csw.items(), key=lambda x: -sum(x[1]))}
    proc_cpu_s = (cpu1 - cpu0) / CLK_TCK
    cg_cpu_s = (cg1 - cg0) / 1e9 if cg0 is not None else None
    cpu_s = cg_cpu_s if cg_cpu_s is not None else proc_cpu_s
    other_s = (sys1 - sys0) / CLK_TCK - (own1 - own0)
    return {
        "messages": args.n,
        "delivered": delivered,
        "elapsed_s": round(elapsed, 4),
        "client_s": round(t_client - t0, 4),
        "msgs_per_s": round(args.n / elapsed, 1),
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_msg": round(cpu_s * 1000 / args.n, 3),
        "cpu_method": "cgroup" if cg_cpu_s is not None else "proc",
        "cpu_ms_per_msg_by_program": cpu_by_program,
        "cpu_ms_per_msg_unattributed": round(max(0.0, cpu_s - seen) * 1000 / args.n, 3),
        # voluntary + involuntary, of the processes the samples saw
        "ctxsw_per_msg": round(sum(v + i for v, i in csw.values()) / args.n, 2),
        "ctxsw_per_msg_by_program": csw_by_program,
        "client_cpus": sorted(client_cpus) if client_cpus else None,
        "server_cpus": sorted(server.cpus) if getattr(server, "cpus", None) else None,
        # the CPU sets the instance's processes had at the end of the round
        "server_affinities": sorted(list(a) for a in affinities),
        "cgroup_cpu_ms_per_msg": round(cg_cpu_s * 1000 / args.n, 3) if cg_cpu_s is not None else None,
        "proc_cpu_ms_per_msg": round(proc_cpu_s * 1000 / args.n, 3),
        # the cgroup's CPU split into user and kernel (system) time
        "cgroup_user_system_ms_per_msg": None if not (split0 and split1) else [
            round((split1[0] - split0[0]) / 1e6 / args.n, 3),
            round((split1[1] - split0[1]) / 1e6 / args.n, 3)],
        "machine_cpu_ms_per_msg": round(other_s * 1000 / args.n, 3),
        "client_and_harness_cpu_s": round(own1 - own0, 3),
        "peak_pss_kib": sampler.peak_pss,
        "peak_rss_kib": sampler.peak_rss,
        "peak_processes": sampler.peak_procs,
        "peak_pss_by_program": sampler.peak_breakdown,
        "mem_samples": sampler.samples,
        "processes_at_end": nprocs,
        "queue_left": server.queue_busy(),
        # the whole device, during the round (other I/O included; writeback
        # that comes after the drain is not)
        "device_per_msg": None if io0 is None or io1 is None else {
            "writes": round((io1[0] - io0[0]) / args.n, 2),
            "write_kib": round((io1[1] - io0[1]) * 512 / 1024 / args.n, 1),
            "discards": round((io1[2] - io0[2]) / args.n, 2),
            "flushes": round((io1[3] - io0[3]) / args.n, 2)},
    }


SYNC_CALLS = ("fsync", "fdatasync", "syncfs", "sync_file_range", "msync", "sync")
STRACE_LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\w+)\((?:(\d+)<([^>]*)>)?")


def stop_strace(st, timeout):
    """Detach strace (SIGINT) and reap it; killed after timeout seconds."""
    st.send_signal(signal.SIGINT)
    try:
        st.wait(timeout)
    except subprocess.TimeoutExpired:
        st.kill()
        st.wait()


def audit_sync(server, user, count, size, timeout):
    """Durability audit: trace every process of the instance with strace -f
    while count messages are sent one at a time, and count the fsync-family
    calls per message, split into directory and file syncs (strace -y
    shows the path of each descriptor).  Returns a dict, or None if strace
    is missing."""
    strace = shutil.which("strace")
    if not strace:
        return None
    pids = sorted(instance_procs(server.master, server.group))
    out = server.dir / "strace.out"
    cmd = [strace, "-f", "-y", "-qq", "-o", str(out),
           "-e", "trace=" + ",".join(SYNC_CALLS)]
    for pid in pids:
        cmd += ["-p", str(pid)]
    st = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)                       # let strace attach
        if st.poll() is not None:
            return {"error": "strace failed: " + st.stderr.read().decode(errors="replace")[-300:]}
        new = server.maildir_new(user)
        watch = DirWatch(new)
        try:
            for i in range(count):
                have = watch.count()
                smtp_one(server.port, server.rcpt(user), make_body(size, i), timeout=timeout)
                if watch.wait(have + 1, time.monotonic() + timeout) is None:
                    raise BenchError(f"{server.name}: audit message {i} not delivered\n"
                                     f"{server.log_tail()}")
        finally:
            watch.close()
        wait_for(lambda: server.queue_busy() == 0, timeout)
        time.sleep(0.5)
    finally:
        stop_strace(st, 20)
    counts = {"file": 0, "directory": 0}
    by_path = {}
    try:
        lines = out.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    dirs = {str(server.queue / d) for d in ("maildrop", "incoming", "active", "deferred", "defer",
                                             "bounce", "hold", "corrupt")}
    for line in lines:
        m = STRACE_LINE.match(line)
        if not m or m.group(2) not in SYNC_CALLS or "resumed>" in line:
            continue
        path = m.group(4) or "?"
        kind = "directory" if (path in dirs or os.path.isdir(path)) else "file"
        counts[kind] += 1
        key = path if kind == "directory" else re.sub(r"/[^/]*$", "/*", path)
        key = key.replace(str(server.dir), "DIR")
        by_path[(m.group(2), kind, key)] = by_path.get((m.group(2), kind, key), 0) + 1
    return {"messages": count,
            "file_syncs_per_msg": round(counts["file"] / count, 2),
            "dir_syncs_per_msg": round(counts["directory"] / count, 2),
            "calls": [{"call": c, "kind": k, "path": pth, "per_msg": round(n / count, 2)}
                      for (c, k, pth), n in sorted(by_path.items(), key=lambda x: -x[1])]}


STRACE_COMM_LINE = re.compile(r"^(\d+)<([^>]*)>\s+(\w+)\(")


def syscall_count(server, user, count, sessions, size, timeout):
    """Syscalls per message per program: strace -f (every process of the
    instance, and the children they fork) while count messages go over
    sessions parallel sessions of the asyncio client, until they are all
    in the Maildir and the queue is empty.  strace slows everything down
    several times, so this is a separate, small run; the counts, unlike
    times, do not depend on that (except where a server batches more
    under a slower flow).  Returns {"messages", "per_msg", "by_program":
    {program: {"total": n, "top": {syscall: n, ...}}}}, or None without
    strace."""
    strace = shutil.which("strace")
    if not strace:
        return None
    pids = sorted(instance_procs(server.master, server.group))
    out = server.dir / "strace-syscalls.out"
    cmd = [strace, "-f", "-qq", "--decode-pids=comm", "-e", "signal=none", "-s", "0",
           "-o", str(out)]
    for pid in pids:
        cmd += ["-p", str(pid)]
    st = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    new = server.maildir(user)
    watch = DirWatch(new)
    try:
        time.sleep(1.0)                       # let strace attach
        if st.poll() is not None:
            return {"error": "strace failed: " + st.stderr.read().decode(errors="replace")[-300:]}
        before = watch.count()
        python_load(server.port, server.rcpt(user), count, sessions, size, False, timeout)
        if watch.wait(before + count, time.monotonic() + timeout) is None:
            raise BenchError(f"{server.name}: syscall run: {watch.count() - before} of {count} "
                             f"messages delivered\n{server.log_tail()}")
        wait_for(lambda: server.queue_busy() == 0, timeout)
        time.sleep(0.5)
    finally:
        watch.close()
        stop_strace(st, 30)
    calls = {}
    try:
        with open(out, errors="replace") as f:
            for line in f:
                m = STRACE_COMM_LINE.match(line)
                if m:
                    key = (m.group(2), m.group(3))
                    calls[key] = calls.get(key, 0) + 1
    except OSError:
        pass
    by_prog = {}
    for (comm, call), n in calls.items():
        by_prog.setdefault(comm, {})[call] = n
    res = {}
    for comm, d in sorted(by_prog.items(), key=lambda x: -sum(x[1].values())):
        top = sorted(d.items(), key=lambda x: -x[1])
        res[comm] = {"total": round(sum(d.values()) / count, 1),
                     "top": {c: round(n / count, 2) for c, n in top[:8]}}
    out.unlink(missing_ok=True)
    return {"messages": count, "sessions": sessions,
            "per_msg": round(sum(calls.values()) / count, 1), "by_program": res}

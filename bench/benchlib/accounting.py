"""benchlib.accounting - what an instance costs, read from the kernel:
CPU by cgroup (cpuacct or cgroup v2 cpu.stat) and by the /proc process
tree, the machine's busy ticks, the harness's own CPU, PSS/RSS sampling
from smaps_rollup, per-program CPU (/proc/PID/schedstat) and context
switches (/proc/PID/status), and the block device's counters.  Standard
library only."""
import os
import resource
import signal
import threading
import time

from .util import BenchError, mount_of

def read_stat(pid):
    """(comm, state, ppid, utime+stime, cutime+cstime) in clock ticks, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    lp, rp = data.index("("), data.rindex(")")
    comm = data[lp + 1:rp]
    rest = data[rp + 2:].split()
    # rest[0] = state (field 3); utime = field 14 -> rest[11]
    return (comm, rest[0], int(rest[1]), int(rest[11]) + int(rest[12]),
            int(rest[13]) + int(rest[14]))


def all_stats():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def proc_tree(root, stats=None):
    """root and all its live descendants: {pid: stat}."""
    stats = stats if stats is not None else all_stats()
    if root not in stats:
        return {}
    kids = {}
    for pid, st in stats.items():
        kids.setdefault(st[2], []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in out:
            out[pid] = stats[pid]
            todo.extend(kids.get(pid, ()))
    return out


def cpu_ticks(root):
    """CPU ticks used so far by an instance: for the master and each live
    descendant, utime+stime plus cutime+cstime (the CPU of the children it
    has reaped, which includes what those reaped in turn).  A process that
    exits between two readings moves its whole total into its parent's
    cutime/cstime, so the difference of two readings counts it once."""
    tree = proc_tree(root)
    if not tree:
        raise BenchError(f"master process {root} is gone")
    return sum(st[3] + st[4] for st in tree.values()), len(tree)


def system_busy_ticks():
    """Busy CPU ticks of the whole machine so far (/proc/stat: all but idle
    and iowait): a cross-check that includes kernel threads and anything
    else running, so it is only meaningful on a quiet machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return user + nice + system + irq + softirq + steal


def own_cpu_s():
    """CPU seconds of this process plus its reaped children (the client)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


class CpuGroup:
    """A cgroup of its own for one instance, used only for CPU accounting:
    every process the instance ever runs is in it (children inherit it), so
    its usage counter includes processes that came and went.  cgroup v1
    cpuacct (cpuacct.usage, ns) or cgroup v2 (cpu.stat usage_usec).  None of
    this is available without root or on a read-only /sys/fs/cgroup; then
    create() returns None and only the /proc method is used."""

    V1 = "/sys/fs/cgroup/cpuacct"
    V2 = "/sys/fs/cgroup"

    def __init__(self, path, v2):
        self.path = path
        self.v2 = v2

    @classmethod
    def create(cls, name):
        cands = []
        if os.path.exists(os.path.join(cls.V1, "cpuacct.usage")):
            cands.append((cls.V1, False))
        if os.path.exists(os.path.join(cls.V2, "cgroup.controllers")):
            cands.append((cls.V2, True))
        for base, v2 in cands:
            path = os.path.join(base, f"posthorn-bench-{os.getpid()}-{name}")
            try:
                os.mkdir(path)
            except OSError:
                continue
            g = cls(path, v2)
            try:
                g.usage_ns()
                return g
            except (OSError, ValueError):
                g.remove()
        return None

    def enter(self):
        """Move the calling process into the group (a Popen preexec_fn)."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def usage_ns(self):
        if self.v2:
            with open(os.path.join(self.path, "cpu.stat")) as f:
                for line in f:
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) * 1000
            raise ValueError("no usage_usec in cpu.stat")
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read())

    def user_system_ns(self):
        """(user ns, system ns) of the group, or None."""
        if not self.v2:
            try:
                with open(os.path.join(self.path, "cpuacct.usage_user")) as f:
                    user = int(f.read())
                with open(os.path.join(self.path, "cpuacct.usage_sys")) as f:
                    return user, int(f.read())
            except (OSError, ValueError):
                return None
        got = {}
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k in ("user_usec", "system_usec"):
                    got[k] = int(v) * 1000
        if len(got) != 2:
            return None
        return got["user_usec"], got["system_usec"]

    def pids(self):
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def remove(self):
        """Kill anything left in the group, then remove it."""
        for _ in range(50):
            left = self.pids()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)


def mem_kib(pids):
    """({pid: (comm, pss_kib, rss_kib)}) from /proc/PID/smaps_rollup."""
    out = {}
    for pid, comm in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                text = f.read().decode()
        except OSError:
            continue
        pss = rss = 0
        for line in text.splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
        out[pid] = (comm, pss, rss)
    return out


def read_schedstat(pid):
    """Nanoseconds a process's main thread has been on a CPU, or None."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_ctxsw(pid):
    """(voluntary, involuntary) context switches of a process's main
    thread so far (/proc/PID/status), or None.  The daemons measured are
    single-threaded."""
    vol = inv = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    vol = int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    inv = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None if vol is None or inv is None else (vol, inv)


def instance_procs(root, group):
    """{pid: stat} of an instance: its cgroup members when it has a group
    (every process it runs is in it; cheap to read), else the master's
    process tree (a scan of /proc)."""
    if group is not None:
        out = {}
        for pid in group.pids():
            st = read_stat(pid)
            if st is not None:
                out[pid] = st
        if root in out:
            return out
    return proc_tree(root)


class MemSampler(threading.Thread):
    """Samples the summed PSS/RSS of an instance's processes every interval;
    keeps the peak sum and the per-program breakdown at that peak, and per
    program the on-CPU time (schedstat) and the context switches (status)
    of every process a sample saw, from its value at the start (0 for a
    process born later) to its last sample: a process that lives less than
    one interval is missed (cpu_by_program() leaves it to the caller's
    "unattributed")."""

    def __init__(self, root, interval=0.1, group=None):
        super().__init__(daemon=True)
        self.root = root
        self.group = group
        # CPU attribution by program: on-CPU ns (/proc/PID/schedstat) of the
        # processes seen by the samples, from their value at the start (0 for
        # processes born later) to their last sample
        self.cpu_base = {}
        self.cpu_last = {}
        self.cpu_comm = {}
        self.csw_base = {}
        self.csw_last = {}
        for pid in instance_procs(root, group):
            ns = read_schedstat(pid)
            if ns is not None:
                self.cpu_base[pid] = ns
            cs = read_ctxsw(pid)
            if cs is not None:
                self.csw_base[pid] = cs
        self.interval = interval
        self.stop_ev = threading.Event()
        self.samples = 0
        self.peak_pss = 0
        self.peak_rss = 0
        self.peak_procs = 0
        self.peak_breakdown = {}

    def sample(self):
        tree = instance_procs(self.root, self.group)
        for pid, st in tree.items():
            ns = read_schedstat(pid)
            if ns is not None:
                self.cpu_last[pid] = ns
                self.cpu_comm[pid] = st[0]
            cs = read_ctxsw(pid)
            if cs is not None:
                self.csw_last[pid] = cs
                self.cpu_comm[pid] = st[0]
        mem = mem_kib([(pid, st[0]) for pid, st in tree.items() if st[1] not in ("Z", "X")])
        if not mem:
            return
        self.samples += 1
        pss = sum(v[1] for v in mem.values())
        rss = sum(v[2] for v in mem.values())
        self.peak_rss = max(self.peak_rss, rss)
        if pss > self.peak_pss:
            self.peak_pss = pss
            self.peak_procs = len(mem)
            brk = {}
            for comm, p, _ in mem.values():
                n, k = brk.get(comm, (0, 0))
                brk[comm] = (n + 1, k + p)
            self.peak_breakdown = {c: {"processes": n, "pss_kib": k}
                                   for c, (n, k) in sorted(brk.items(), key=lambda x: -x[1][1])}

    def run(self):
        while not self.stop_ev.is_set():
            t = time.monotonic()
            self.sample()
            self.stop_ev.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def finish(self):
        self.stop_ev.set()
        self.join(5)
        self.sample()

    def cpu_by_program(self):
        """{program: on-CPU seconds} of the processes the samples saw."""
        out = {}
        for pid, ns in self.cpu_last.items():
            comm = self.cpu_comm[pid]
            out[comm] = out.get(comm, 0) + (ns - self.cpu_base.get(pid, 0)) / 1e9
        return out

    def ctxsw_by_program(self):
        """{program: (voluntary, involuntary)} context switches of the
        processes the samples saw."""
        out = {}
        for pid, (vol, inv) in self.csw_last.items():
            comm = self.cpu_comm[pid]
            v0, i0 = self.csw_base.get(pid, (0, 0))
            a, b = out.get(comm, (0, 0))
            out[comm] = (a + vol - v0, b + inv - i0)
        return out


def block_stat_path(path):
    """/sys/class/block/DEV/stat of the block device holding path, or None
    (not a /dev block device)."""
    source = mount_of(path)[0]
    if not source or not source.startswith("/dev/"):
        return None
    stat = f"/sys/class/block/{os.path.basename(os.path.realpath(source))}/stat"
    return stat if os.path.exists(stat) else None


def block_counters(stat_path):
    """(write requests, written sectors, discard requests, flush requests)
    so far, or None (the fields of Documentation/block/stat.rst)."""
    if not stat_path:
        return None
    try:
        f = open(stat_path).read().split()
        return int(f[4]), int(f[6]), int(f[11]), int(f[15])
    except (OSError, ValueError, IndexError):
        return None

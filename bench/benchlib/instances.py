"""benchlib.instances - private mail server instances for the benchmarks,
loopback only, each in a fresh directory under a work directory, each
delivering to virtual Maildirs DIR/mail/example.test/USER/:

  PostfixInstance(workdir, users, port=None, params={})
      Debian's postfix package with its own config_directory and
      queue_directory, no chroot, smtpd on a loopback port, virtual(8);
  PosthornInstance(workdir, build, users, port=None, params={})
      the built daemons, made by tools/mkinstance.py (the generator the
      tests, tests/mailsuite.py and tools/sandbox.sh use: no other copy
      of the instance-making code), smtp-front on the port as in
      production.

Both: .setup() (start() calls it when it was not called), .start(),
.stop(), .remove(), .maildir(user) (the Path of its new/), .rcpt(user),
.pids() (every live process of the instance), .cgroup (its CpuGroup or
None), .sendmail_command(recipient) and .env() (the argv and environment
of a sendmail injection into this instance), .cpu_snapshot(), .log_tail().

Pinning: every process of an instance descends from its master, and
inherits the master's CPU affinity and cgroup.  pin(inst, cpus) confines
an instance to cpus (None: every CPU): it applies to the processes that
run now (every thread of each) and, through .cpus, to the master of a
later start() (affinity_preexec, the Popen hook that also puts it in the
instance's cgroup).

PostfixServer(workdir, users, vmail) and PosthornServer(workdir, users,
vmail, build) are the older constructors, kept for bench/relay,
bench/access, bench/abuse and bench/tls.  Standard library only."""
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile

from .accounting import CpuGroup, cpu_ticks, instance_procs, proc_tree, read_stat
from .util import (DOMAIN, POSTCONF, POSTFIX, POSTFIX_SENDMAIL, POSTMAP, ROOT, VMAIL_USER,
                   BenchError, free_port, log, mkinstance, port_open, wait_for)

try:
    ALL_CPUS = frozenset(os.sched_getaffinity(0))
except OSError:
    ALL_CPUS = frozenset(range(os.cpu_count() or 1))


def affinity_preexec(group, cpus):
    """A Popen preexec_fn: enter the cgroup (when there is one), then
    confine the process to cpus (when given)."""
    def pre():
        if group is not None:
            group.enter()
        if cpus:
            os.sched_setaffinity(0, cpus)
    return pre


def set_affinity(pids, cpus):
    """Confine every thread of the processes pids to cpus; the number of
    threads changed (a process that exited meanwhile is skipped)."""
    n = 0
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
                n += 1
            except OSError:
                pass
    return n


def pin(inst, cpus):
    """Confine an instance to the CPUs cpus (an int, a set, or None for
    all of them): its running processes now, its master at a later
    start(), and through inheritance every process forked after."""
    if isinstance(cpus, int):
        cpus = {cpus}
    inst.cpus = set(cpus) if cpus else None
    if getattr(inst, "master", None):
        set_affinity(inst.pids(), inst.cpus or ALL_CPUS)


def pid_alive(pid):
    st = read_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def vmail_account():
    """The pwd entry of the Maildirs' owner (created when missing)."""
    return pwd.getpwnam(mkinstance.ensure_accounts(VMAIL_USER)[2])


class Instance:
    """A private mail server instance delivering to DIR/mail/example.test/USER/."""

    name = "?"
    # defaults for subclasses that set their instance up without __init__
    # (bench/relay's)
    is_setup = False
    master = None
    cpus = None
    params = {}
    layout = None

    def __init__(self, workdir, users, port=None, params=None, vmail=None, cpus=None,
                 prefix="ingest"):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{prefix}-{self.name}-",
                                                 dir=str(workdir)))
        self.dir.chmod(0o755)
        self.etc = self.dir / "etc"
        self.queue = self.dir / "queue"
        self.mailroot = self.dir / "mail"
        self.maillog = self.dir / "maillog"
        self.users = list(users)
        self.vmail = vmail if vmail is not None else vmail_account()
        self.port = port or free_port()
        self.params = dict(params or {})
        self.cpus = set(cpus) if cpus else None
        self.master = None
        self.is_setup = False
        self.group = CpuGroup.create(self.name)
        self.etc.mkdir()
        # The same Maildirs and virtual mailbox table (relative paths) for
        # both servers, made the way posthorn's instances make them.
        mkinstance.write_mailboxes(self.mailroot, self.etc, [self.rcpt(u) for u in self.users],
                                   self.vmail.pw_name)

    @property
    def cgroup(self):
        return self.group

    def maildir(self, user):
        """The new/ directory of user's Maildir."""
        return self.mailroot / DOMAIN / user / "new"

    maildir_new = maildir

    def rcpt(self, user):
        return f"{user}@{DOMAIN}"

    def env(self):
        """The environment of a command run against this instance."""
        return dict(os.environ)

    def sendmail_command(self, recipient):
        raise NotImplementedError

    def log_tail(self, lines=25):
        try:
            text = self.maillog.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def queue_busy(self):
        """Files still in the queue's transit directories (not dot files:
        posthorn's incoming/.group-sync is state, not a message)."""
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred"):
            d = self.queue / sub
            if d.is_dir():
                for _root, _dirs, files in os.walk(d):
                    n += sum(1 for f in files if not f.startswith("."))
        return n

    def pids(self):
        """Every live process of the instance (its cgroup's, else the
        master's process tree)."""
        return sorted(instance_procs(self.master, self.group)) if self.master else []

    processes = pids

    def kill_leftovers(self):
        """SIGKILL whatever still runs from this instance."""
        needle = str(self.dir).encode()
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            if pid == os.getpid():
                continue
            try:
                argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if needle in argv or cwd.startswith(str(self.dir)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def preexec(self):
        """For Popen: run the instance's processes in its CPU group, on its
        CPUs."""
        cpus = getattr(self, "cpus", None)
        if self.group is None and not cpus:
            return None
        return affinity_preexec(self.group, cpus)

    def cpu_snapshot(self):
        """(proc-tree ticks, cgroup ns or None, live processes)."""
        ticks, n = cpu_ticks(self.master)
        return ticks, (self.group.usage_ns() if self.group else None), n

    def cpu_split(self):
        """The cgroup's (user ns, system ns), or None."""
        return self.group.user_system_ns() if self.group else None

    def remove(self, keep_files=False):
        if self.group is not None:
            self.group.remove()
            self.group = None
        if not keep_files:
            shutil.rmtree(self.dir, ignore_errors=True)


POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
proxywrite unix - - n -    1 proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
virtual   unix  - n n -    - virtual
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixInstance(Instance):
    """A private Postfix: its own config_directory and queue_directory, no
    chroot, smtpd on a free loopback port, virtual(8) Maildir delivery;
    params: main.cf settings added last."""

    name = "postfix"

    def __init__(self, workdir, users, port=None, params=None, postscreen=False, **kw):
        super().__init__(workdir, users, port=port, params=params, **kw)
        # True: postscreen(8) on the port hands clients to smtpd (the role
        # of posthorn's smtp-front; Debian ships it commented out)
        self.postscreen = postscreen

    @staticmethod
    def available():
        """None, or why this machine cannot run a private Postfix."""
        for p in (POSTFIX, POSTCONF, POSTMAP, "/usr/lib/postfix/sbin/master"):
            if not os.path.exists(p):
                return f"{p} missing (apt-get install postfix; see bench/README.md)"
        if os.geteuid() != 0:
            return "Postfix must be started by root"
        return None

    def version(self):
        r = subprocess.run([POSTCONF, "-d", "-h", "mail_version"], capture_output=True, text=True)
        return r.stdout.strip() or "?"

    def env(self):
        return {**os.environ, "MAIL_CONFIG": str(self.etc)}

    def sendmail_command(self, recipient):
        return [POSTFIX_SENDMAIL, "-C", str(self.etc), recipient]

    def _postfix(self, *args, timeout=60):
        # postfix(1) reports errors on stderr only when that is a tty; they
        # also go to maillog_file, which we show on failure.
        return subprocess.run([POSTFIX, "-c", str(self.etc), *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              preexec_fn=self.preexec())

    def main_cf(self):
        """The main.cf settings (without self.params)."""
        return {
            "compatibility_level": "3.6",
            "config_directory": str(self.etc),
            "queue_directory": str(self.queue),
            "data_directory": str(self.dir / "data"),
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "bench.example.test",
            "mydomain": "example.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.dir),
            **self.mailbox_cf(),
            "biff": "no",
        }

    def mailbox_cf(self):
        """The main.cf settings of the virtual Maildirs (virtual(8))."""
        return {
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": str(self.mailroot),
            "virtual_mailbox_maps": f"hash:{self.etc}/vmailbox",
            "virtual_uid_maps": f"static:{self.vmail.pw_uid}",
            "virtual_gid_maps": f"static:{self.vmail.pw_gid}",
        }

    def master_cf(self):
        """Debian's master.cf services that matter here, all without
        chroot (posthorn's test instances do not chroot either)."""
        cf = POSTFIX_MASTER_CF.format(port=self.port)
        if self.postscreen:
            cf = cf.replace(f"127.0.0.1:{self.port} inet n - n - - smtpd\n",
                            f"127.0.0.1:{self.port} inet n - n - 1 postscreen\n"
                            "smtpd     pass  - - n -    - smtpd\n"
                            "dnsblog   unix  - - n -    0 dnsblog\n"
                            "tlsproxy  unix  - - n -    0 tlsproxy\n")
        return cf

    def setup(self):
        self.maillog.touch()
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        pfx = pwd.getpwnam("postfix")
        os.chown(data, pfx.pw_uid, pfx.pw_gid)
        self.queue.mkdir(mode=0o755, exist_ok=True)
        main = {**self.main_cf(), **self.params}
        (self.etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.etc / "master.cf").write_text(self.master_cf())
        r = subprocess.run([POSTMAP, "-c", str(self.etc), f"hash:{self.etc}/vmailbox"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"postmap failed: {r.stderr.strip()} {self.log_tail(5)}")
        self.is_setup = True

    def start(self):
        if not self.is_setup:
            self.setup()
        r = self._postfix("check")
        if r.returncode != 0:
            raise BenchError(f"postfix check failed: {r.stderr.strip()}\n{self.log_tail()}")
        r = self._postfix("start")
        if r.returncode != 0:
            raise BenchError(f"postfix start failed: {r.stderr.strip()}\n{self.log_tail()}")
        pidfile = self.queue / "pid" / "master.pid"

        def master():
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                return None
            return pid if pid_alive(pid) else None
        self.master = wait_for(master, 10)
        if not self.master:
            raise BenchError(f"Postfix master did not start\n{self.log_tail()}")
        if not wait_for(lambda: port_open(self.port), 10):
            raise BenchError(f"Postfix smtpd port {self.port} not open\n{self.log_tail()}")

    def stop(self):
        if self.master is None:
            return
        pid, self.master = self.master, None
        try:
            self._postfix("stop", timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if not wait_for(lambda: not pid_alive(pid), 15):
            self._postfix("abort", timeout=30)
            wait_for(lambda: not pid_alive(pid), 5)
        self.kill_leftovers()
        # postfix's children run without our directory in their argv:
        # kill any that were left by an aborted master (ppid 1 now)
        for p in proc_tree(pid):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


class PosthornInstance(Instance):
    """A private posthorn instance made by tools/mkinstance.py, as the tests
    make theirs: master with smtp-front and smtpd on the port, pickup,
    cleanup, qmgr, bounce, local-delivery, client-limits; params: main.cf
    settings."""

    name = "posthorn"
    REQUIRED = ("master", "smtpd", "cleanup", "qmgr", "local-delivery")
    # master.cf services besides the smtp port (a subclass or an instance
    # may name others, e.g. bench/inject adds submit)
    # client-limits as in conf/master.cf: the processes facing the
    # network report to it what a limit can refuse (the bench's loopback
    # clients are in $mynetworks, exempt, so nothing; as Postfix's anvil)
    SERVICES = ("pickup", "cleanup", "qmgr", "bounce", "local", "client-limits")

    def __init__(self, workdir, build, users, port=None, params=None, front=True,
                 local_unpriv=False, **kw):
        super().__init__(workdir, users, port=port, params=params, **kw)
        self.build = pathlib.Path(build)
        self.front = front      # False: smtpd on the port itself (an experiment)
        # True: local-delivery runs as the mail owner, who also owns the
        # Maildirs, so it delivers in-process without a per-user worker
        # (an experiment: one process hop fewer per delivery)
        self.local_unpriv = local_unpriv
        self.maillog = self.dir / "log" / "maillog"      # where make_instance puts it
        self.stderr_path = self.dir / "master.stderr"
        self.layout = None

    @classmethod
    def missing(cls, build):
        """The programs of the build this instance needs and lacks."""
        build = pathlib.Path(build)
        miss = [p for p in cls.REQUIRED if not (build / "libexec" / p).exists()]
        if not (build / "bin" / "posthorn").exists():
            miss.append("posthorn (tool)")
        return miss

    def version(self):
        try:
            r = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                               capture_output=True, text=True, timeout=10)
            return r.stdout.strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    def env(self):
        return {**os.environ, "POSTHORN_CONFIG_DIR": str(self.etc)}

    def sendmail_command(self, recipient):
        bindir = self.layout.bin if self.layout is not None and self.layout.bin else \
            self.build / "bin"
        return [str(bindir / "sendmail"), recipient]

    def posthorn(self, *args):
        return subprocess.run([str(self.build / "bin" / "posthorn"), "-c", str(self.etc), *args],
                              capture_output=True, text=True, timeout=60)

    def setup(self):
        """The instance, from tools/mkinstance.py: smtp-front and smtpd on
        the loopback port (smtpd alone with front=False), pickup, cleanup,
        qmgr, bounce, local; the queue made by posthorn check."""
        try:
            lay = mkinstance.make_instance(
                self.dir, self.build, ports={"smtp": f"127.0.0.1:{self.port}"},
                services=self.SERVICES,
                mailboxes=[self.rcpt(u) for u in self.users], daemons="link", commands="link",
                vmail_owner=(mkinstance.ROOT_MAIL_OWNER if self.local_unpriv and os.geteuid() == 0
                             else self.vmail.pw_name),
                main={"master_stop_timeout": "5s", **self.params}, check=True,
                front=self.front, unpriv={"local": "y"} if self.local_unpriv else None)
        except mkinstance.SetupError as e:
            raise BenchError(str(e)) from None
        self.maillog = lay.maillog
        self.layout = lay
        self.is_setup = True
        return lay

    def master_pid(self):
        try:
            pid = int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def start(self):
        """Start master as an operator would (it detaches; not -F, which
        would also copy every log line to stderr)."""
        if not self.is_setup:
            self.setup()
        with open(self.stderr_path, "ab") as err:
            r = subprocess.run([str(self.build / "libexec" / "master"), "-c", str(self.etc)],
                               stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=30,
                               start_new_session=True, preexec_fn=self.preexec())
        started = wait_for(lambda: "daemon started" in self.maillog.read_text(errors="replace")
                           and self.master_pid(), 10) if r.returncode == 0 else None
        if not started:
            raise BenchError(f"posthorn master did not start (exit {r.returncode}):\n"
                             f"{self.stderr_path.read_text(errors='replace')[-2000:]}\n"
                             f"{self.log_tail()}")
        self.master = self.master_pid()
        if not wait_for(lambda: port_open(self.port), 10):
            raise BenchError(f"posthorn smtpd port {self.port} not answering 220\n{self.log_tail()}")

    def stop(self):
        if self.master is None:
            return
        pid, self.master = self.master, None
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
        if not wait_for(lambda: not pid_alive(pid), 20):
            log("posthorn: master did not stop on SIGTERM within 20 s; killing it")
            for p in proc_tree(pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self.kill_leftovers()


class PostfixServer(PostfixInstance):
    """The older constructor: PostfixServer(workdir, users, vmail)."""

    def __init__(self, workdir, users, vmail, **kw):
        super().__init__(workdir, users, vmail=vmail, **kw)


class PosthornServer(PosthornInstance):
    """The older constructor: PosthornServer(workdir, users, vmail, build)."""

    def __init__(self, workdir, users, vmail, build, **kw):
        super().__init__(workdir, build, users, vmail=vmail, **kw)

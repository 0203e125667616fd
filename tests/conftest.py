"""Shared pytest fixtures: a throwaway posthorn instance.

The `instance` fixture (function scope) builds a complete instance in a
fresh directory under /tmp (mode 0755, so a daemon that dropped to the
mail owner can still traverse it):

    DIR/etc/main.cf, DIR/etc/master.cf   configuration (-c DIR/etc)
    DIR/queue                            queue_directory
    DIR/data                             data_directory
    DIR/libexec                          daemon_directory: symlinks to every
                                         $POSTHORN_BUILD/libexec/* and
                                         $POSTHORN_BUILD/testbin/* program
    DIR/log/maillog                      maillog_file (every process logs here)
    DIR/master.stderr                    master's stderr (with start(foreground=True))

tools/mkinstance.py (the generator shared with tools/sandbox.sh and
bench/ingest) writes it: main.cf sets inet_interfaces = 127.0.0.1,
mail_owner = "posthorn" and setgid_group = "posthorn-drop" when the tests
run as root (created if missing) or the invoking user otherwise; master.cf
has no service until the test writes one. Teardown ALWAYS stops master
and then kills whatever process still mentions DIR in its command line or
working directory, so a failed test never leaves daemons behind.

Methods and attributes of an Instance (see the class for details):
    dir, etc, queue, data, libexec, maillog   pathlib.Path
    is_root                                   tests run as root
    mail_owner                                main.cf mail_owner
    set_main(**params)                        update main.cf
    write_master_cf(text)                     write master.cf
    start(foreground=True, timeout=10)        start master; waits for
                                              "daemon started"
    stop(timeout=20)                          SIGTERM master and wait
    reload(timeout=10)                        SIGHUP, wait for "reload --"
    master_pid()                              from the pid file
    run_master(*args)                         run master -c DIR/etc ARGS
                                              (e.g. "-t"); CompletedProcess
    log_text(), log_mark()                    log contents / current size
    wait_log(regex, timeout=5, since=0)       wait for a log line; the match
    count_log(regex, since=0)                 number of matching lines
    children(service=None)                    pids whose parent is master
                                              (optionally: "-n SERVICE")
    wait_children(count, service=None, timeout=5)
    processes()                               every pid that mentions DIR
    connect(port, host="127.0.0.1")           a Client (line-oriented)
    free_port()                               an unused loopback TCP port
"""
import errno
import os
import pathlib
import re
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import mkinstance  # noqa: E402  pylint: disable=wrong-import-position
BUILD = pathlib.Path(os.environ.get("POSTHORN_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
LIBEXEC = BUILD / "libexec"
MASTER = LIBEXEC / "master"
IS_ROOT = os.geteuid() == 0


_ports_given = set()


def free_port(host="127.0.0.1", family=socket.AF_INET):
    """An unused TCP port on host (bound and released at once), never one
    this test process handed out before: the kernel may offer the same
    port to two binds in a row, and two services of one instance then
    collide ("duplicate service")."""
    for _ in range(50):                         # bounded
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            break
    _ports_given.add(port)
    return port


def stand_in_place(prefix, daemons):
    """A world-searchable scratch directory under /tmp (as root the
    daemons' user must reach it) holding a stand-in build in build/: the
    real posthorn and a stub for each name in daemons, so a test of the
    instance generator or the sandbox does not depend on which daemons
    exist yet. The caller removes it."""
    base = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    build = base / "build"
    (build / "bin").mkdir(parents=True)
    (build / "libexec").mkdir()
    shutil.copy2(BUILD / "bin" / "posthorn", build / "bin" / "posthorn")
    for postdrop in (build / "bin" / "postdrop", build / "libexec" / "postdrop"):
        postdrop.write_text("#!/bin/sh\nexit 0\n")   # make copies it to libexec
        postdrop.chmod(0o755)
    for name in daemons:
        stub = build / "libexec" / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return base


def as_nobody_or_skip(program):
    """The command prefix that runs a program as the user nobody (setpriv,
    no groups); skips the test unless root, setpriv exists and nobody can
    reach program (a checkout under /root cannot be)."""
    if not IS_ROOT:
        pytest.skip("needs root to act as another user")
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("setpriv (util-linux) is not installed")
    nobody = pwd.getpwnam("nobody")
    prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    if subprocess.run(prefix + ["test", "-x", str(program)]).returncode != 0:
        pytest.skip(f"{program} is not reachable for the user nobody")
    return prefix


def proc_stat(pid):
    """(state, ppid) of a process, or None if it is gone."""
    try:
        data = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def proc_cmdline(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


class Client:
    """A line-oriented TCP or unix-socket client with timeouts."""

    def __init__(self, sock, timeout=5):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def readline(self, timeout=5):
        """One line without its terminator; '' at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line within {timeout}s (have {self.buf!r})")
            self.sock.settimeout(left)
            data = self.sock.recv(4096)
            if not data:
                line, self.buf = self.buf, b""
                return line.decode(errors="replace")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def cmd(self, line, timeout=5):
        self.send(line)
        return self.readline(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Instance:
    """A throwaway posthorn instance; see the module docstring."""

    def __init__(self, **layout):
        """layout: more make_instance arguments (tools/mkinstance.py), for
        the mail fixture; main= adds to the tests' own parameters."""
        self.is_root = IS_ROOT
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="posthorn-test-", dir="/tmp"))
        self.dir.chmod(0o755)
        imports = ["TZ", "LANG", "LC_ALL"] + [
            n for n in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS") if n in os.environ]
        # The tests log in to pop3d-login and imapd-login over cleartext
        # on 127.0.0.1: allowed here explicitly (the default is: nobody
        # without TLS); the TLS tests take it away again with -o.
        main = {"import_environment": " ".join(imports), "master_stop_timeout": "5s",
                "pop3d_cleartext_login_networks": "127.0.0.0/8",
                "imapd_cleartext_login_networks": "127.0.0.0/8",
                **layout.pop("main", {})}
        args = dict(mail=False, services=[], daemons="link", testbin=True, commands=None)
        args.update(layout)
        self.layout = mkinstance.make_instance(self.dir, BUILD, main=main, **args)
        self.etc = self.layout.etc
        self.queue = self.layout.queue
        self.data = self.layout.data
        self.libexec = self.layout.libexec
        self.logdir = self.layout.logdir
        self.maillog = self.layout.maillog
        self.mail_owner = self.layout.mail_owner
        self.main = dict(self.layout.main)
        self.proc = None
        self.stderr_path = self.dir / "master.stderr"
        self._stderr = None
        self._pid = None

    # -- configuration ---------------------------------------------------
    def _write_main(self):
        mkinstance.write_main_cf(self.etc, self.main, self.layout.unknown)

    def set_main(self, **params):
        """Set main.cf parameters (a value of None removes the line)."""
        for k, v in params.items():
            if v is None:
                self.main.pop(k, None)
            else:
                self.main[k] = str(v)
        self._write_main()

    def write_master_cf(self, text):
        (self.etc / "master.cf").write_text(text)

    # -- master ----------------------------------------------------------
    def run_master(self, *args, timeout=20):
        """Run master -c ETC ARGS to completion."""
        return subprocess.run([str(MASTER), "-c", str(self.etc), *args],
                              capture_output=True, text=True, timeout=timeout)

    def start(self, foreground=True, timeout=10, args=()):
        """Start master: -F as a child of the test (default), or as a
        daemon (returns the CompletedProcess of the starting master)."""
        mark = self.log_mark()
        if foreground:
            self._stderr = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen([str(MASTER), "-c", str(self.etc), "-F", *args],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self._stderr, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if re.search(r"daemon started", self.log_text()[mark:]):
                    self._pid = self.proc.pid
                    return self.proc
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            err = self.stderr_path.read_text(errors="replace")
            raise AssertionError(f"master did not start (status {self.proc.poll()}):\n{err}")
        res = self.run_master(*args, timeout=timeout)
        if res.returncode == 0:
            self.wait_log(r"daemon started", timeout=timeout, since=mark)
            self._pid = self.master_pid()
        return res

    def master_pid(self):
        """The pid in $queue_directory/pid/master.pid (None if none)."""
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        try:
            return int((self.queue / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout=20):
        """SIGTERM master; wait until it is gone. Returns its exit status
        when it is our child, else None."""
        pid = self._pid or self.master_pid()
        status = None
        if pid and pid_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                status = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError("master did not stop on SIGTERM")
            self.proc = None
        elif pid:
            deadline = time.monotonic() + timeout
            while pid_alive(pid):
                if time.monotonic() > deadline:
                    raise AssertionError("master did not stop on SIGTERM")
                time.sleep(0.05)
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        self._pid = None
        return status

    def reload(self, timeout=10):
        """SIGHUP master and wait for its "reload --" log line; returns the
        log offset from before the reload."""
        mark = self.log_mark()
        os.kill(self.master_pid(), signal.SIGHUP)
        self.wait_log(r"reload -- version", timeout=timeout, since=mark)
        return mark

    # -- logs --------------------------------------------------------------
    def log_text(self):
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def log_mark(self):
        return len(self.log_text())

    def wait_log(self, regex, timeout=5, since=0):
        """Wait until a log line (after offset since) matches; the match."""
        pat = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = pat.search(self.log_text(), since)
            if m:
                return m
            if time.monotonic() > deadline:
                tail = "\n".join(self.log_text()[since:].splitlines()[-30:])
                raise AssertionError(f"no log line matching {regex!r} within {timeout}s; "
                                     f"log since mark:\n{tail}")
            time.sleep(0.05)

    def count_log(self, regex, since=0):
        return len(re.findall(regex, self.log_text()[since:], re.M))

    # -- processes -----------------------------------------------------------
    def children(self, service=None):
        """Live children of master, optionally only those run with -n SERVICE."""
        mpid = self.master_pid()
        if not mpid:
            return []
        out = []
        for pid in all_pids():
            st = proc_stat(pid)
            if st is None or st[1] != mpid or st[0] in ("Z", "X"):
                continue
            if service is not None:
                argv = proc_cmdline(pid)
                if not any(argv[i] == b"-n" and argv[i + 1] == service.encode()
                           for i in range(len(argv) - 1)):
                    continue
            out.append(pid)
        return sorted(out)

    def wait_children(self, count, service=None, timeout=5):
        """Wait until exactly count children (of service) exist; the pids."""
        deadline = time.monotonic() + timeout
        while True:
            kids = self.children(service)
            if len(kids) == count:
                return kids
            if time.monotonic() > deadline:
                raise AssertionError(f"want {count} children of {service}, have {kids}")
            time.sleep(0.05)

    def processes(self):
        """Every live process whose command line or cwd mentions DIR."""
        me = os.getpid()
        needle = str(self.dir).encode()
        out = []
        for pid in all_pids():
            if pid == me or not pid_alive(pid):
                continue
            hit = any(needle in a for a in proc_cmdline(pid))
            if not hit:
                try:
                    hit = os.readlink(f"/proc/{pid}/cwd").startswith(str(self.dir))
                except OSError:
                    pass
            if hit:
                out.append(pid)
        return out

    # -- clients -------------------------------------------------------------
    def connect(self, port, host="127.0.0.1", timeout=5):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect((host, port))
        return Client(sock, timeout)

    def connect_unix(self, path, timeout=5):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(str(path))
        return Client(sock, timeout)

    @staticmethod
    def free_port(host="127.0.0.1"):
        return free_port(host, socket.AF_INET6 if ":" in host else socket.AF_INET)

    # -- teardown --------------------------------------------------------------
    def cleanup(self):
        try:
            self.stop(timeout=15)
        except Exception:
            pass
        for _ in range(3):
            left = self.processes()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError as e:
                    if e.errno != errno.ESRCH:
                        raise
            time.sleep(0.2)
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


@pytest.fixture
def instance():
    """A fresh instance (see Instance); master not started yet. Fails the
    test if master or a child wrote a sanitizer report to master's stderr
    (make check-asan)."""
    if not MASTER.exists():
        pytest.skip(f"{MASTER} not built (make test-programs all)")
    inst = Instance()
    report = ""
    try:
        yield inst
    finally:
        try:
            inst.stop(timeout=15)
        except Exception:
            pass
        try:
            report = inst.stderr_path.read_text(errors="replace")
        except OSError:
            report = ""
        inst.cleanup()
    m = SANITIZER_REPORT.search(report)
    assert not m, "sanitizer report in master's stderr:\n" + report[max(0, m.start() - 200):][:4000]

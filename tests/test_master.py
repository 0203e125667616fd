"""master: spawning on demand, process limits, crashes, throttling, reload,
stop, the pid-file lock, unix/fifo services with wake-ups, IPv6, -t, and
(as root) the privilege drop. Each test runs a real master on a
throwaway instance (tests/conftest.py) with the test daemons of
tests/bin/ and stays well under 20 seconds."""
import fcntl
import os
import pathlib
import pwd
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import IS_ROOT, MASTER, pid_alive, proc_cmdline


def greet_pid(line):
    m = re.match(r"ph-echo ready pid=(\d+) uid=(\d+) gid=(\d+)$", line)
    assert m, f"bad greeting {line!r}"
    return int(m.group(1))


def status_ids(pid, key):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def wait_refused(port, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.1)
    return False


def test_spawn_on_demand(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    time.sleep(0.3)
    assert instance.children() == [], "a child before the first connection"
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        assert instance.children(str(port)) == [pid]
        assert c.cmd("echo hello world") == "hello world"
        assert c.cmd("quit") == "bye"
    # The idle child is reused for the next client (once master has its
    # "available" status: it follows the disconnect log line).
    instance.wait_log(rf"ph-echo\[{pid}\]: disconnect")
    time.sleep(0.3)
    with instance.connect(port) as c:
        assert greet_pid(c.readline()) == pid
    # master -F: children log to (master's) stderr as well.
    instance.wait_log(rf"ph-echo\[{pid}\]: connect")
    assert f"posthorn/ph-echo: connect pid={pid}" in instance.stderr_path.read_text()


def test_child_argv_and_environment(instance, monkeypatch):
    monkeypatch.setenv("POSTHORN_TEST_SECRET", "leak")
    monkeypatch.setenv("TZ", "UTC")
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo -o max_use=7 extra\n")
    instance.start()
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        argv = [a.decode() for a in proc_cmdline(pid) if a]
        want = [str(instance.libexec / "ph-echo"), "-c", str(instance.etc), "-n", str(port),
                "-t", "inet", "-s", "1"] + (["-u"] if IS_ROOT else []) + \
            ["-o", "max_use=7", "extra"]
        assert argv == want
        env = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {e.split(b"=", 1)[0].decode() for e in env if e}
        assert "POSTHORN_TEST_SECRET" not in names
        assert f"POSTHORN_CONFIG_DIR={instance.etc}".encode() in env
        assert b"POSTHORN_LOG_STDERR=1" in env          # master -F
        assert b"TZ=UTC" in env
        assert b"POSTHORN_CONFIG_FD=5" in env           # right after the listener
        assert b"POSTHORN_SCOREBOARD=6:0" in env        # after main.cf; slot 0
        assert names <= {"POSTHORN_CONFIG_DIR", "POSTHORN_LOG_STDERR", "POSTHORN_CONFIG_FD",
                         "POSTHORN_SCOREBOARD", "TZ", "LANG", "LC_ALL",
                         "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}
        # Descriptors: 0-2, status pipe 3, listener 4, and nothing else
        # but the connection the child accepted (main.cf's memfd is closed
        # once read, the scoreboard's once mapped).
        fds = sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))
        assert fds[:5] == [0, 1, 2, 3, 4]
        assert not any("memfd:" in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds)
        assert os.readlink(f"/proc/{pid}/fd/3").startswith("pipe:")
        assert os.readlink(f"/proc/{pid}/fd/4").startswith("socket:")
        maps = pathlib.Path(f"/proc/{pid}/maps").read_text()
        assert "posthorn-scoreboard" in maps


def test_maxproc_limits_children(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 2 ph-echo\n")
    instance.start()
    seen_max = 0
    stop = threading.Event()

    def sample():
        nonlocal seen_max
        while not stop.is_set():
            seen_max = max(seen_max, len(instance.children(str(port))))
            time.sleep(0.02)

    t = threading.Thread(target=sample)
    t.start()
    try:
        c1 = instance.connect(port)
        c2 = instance.connect(port)
        greet_pid(c1.readline())
        greet_pid(c2.readline())
        c3 = instance.connect(port)          # queued in the listen backlog
        with pytest.raises(TimeoutError):
            c3.readline(timeout=1.5)
        assert len(instance.children(str(port))) == 2
        assert c1.cmd("quit") == "bye"
        c1.close()
        greet_pid(c3.readline(timeout=5))    # served once a slot is free
        assert c3.cmd("echo third") == "third"
        for c in (c2, c3):
            c.close()
    finally:
        stop.set()
        t.join()
    assert seen_max == 2


def test_connection_not_stranded_when_woken_child_cannot_accept(instance):
    """A new connection wakes ONE idle child (EPOLLEXCLUSIVE): the oldest.
    If that child cannot accept it (here: out of descriptors; in life also
    killed or leaving at the wrong moment), another idle child must still
    take the connection: no client may wait for the next connection to
    come along. The woken child pauses between failed accepts instead of
    spinning."""
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    c1 = instance.connect(port)
    a = greet_pid(c1.readline())           # spawned first: woken first
    c2 = instance.connect(port)
    b = greet_pid(c2.readline())
    assert c1.cmd("exhaust") == "exhausting"
    for c in (c1, c2):
        assert c.cmd("quit") == "bye"
        c.close()
    instance.wait_log(rf"ph-echo\[{b}\]: disconnect")
    instance.wait_log(rf"ph-echo\[{a}\]: out of descriptors")
    time.sleep(0.2)                        # a is back in its wait
    start = time.monotonic()
    with instance.connect(port) as c:
        assert greet_pid(c.readline(timeout=5)) == b
    assert time.monotonic() - start < 3
    instance.wait_log(rf"ph-echo\[{a}\]: warning: accept: Too many open files")
    time.sleep(1)
    assert instance.count_log(rf"ph-echo\[{a}\]: warning: accept") <= 10


def test_child_that_cannot_accept_gives_up(instance):
    """The only child of a service cannot accept (out of descriptors): it
    exits after a bounded number of failed accepts, and master starts a
    fresh child that serves the waiting client."""
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-echo\n")
    instance.start()
    with instance.connect(port) as c:
        a = greet_pid(c.readline())
        assert c.cmd("exhaust") == "exhausting"
        assert c.cmd("quit") == "bye"
    instance.wait_log(rf"ph-echo\[{a}\]: out of descriptors")
    time.sleep(0.2)
    with instance.connect(port) as c:
        b = greet_pid(c.readline(timeout=10))
        assert b != a
        assert c.cmd("echo served") == "served"
    instance.wait_log(rf"ph-echo\[{a}\]: fatal: accept failed 10 times in a row -- exiting")
    assert instance.count_log(rf"ph-echo\[{a}\]: warning: accept: Too many open files") == 10


def test_crash_command_is_logged_and_replaced(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        c.send("crash")
        assert c.readline() == ""
    instance.wait_log(rf"warning: process \S*ph-echo pid {pid} killed by signal 6")
    with instance.connect(port) as c:
        assert greet_pid(c.readline()) != pid
        assert c.cmd("echo again") == "again"
    assert instance.count_log(r"throttling") == 0


def test_kill9_busy_child(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        os.kill(pid, signal.SIGKILL)
        assert c.readline() == ""
    instance.wait_log(rf"warning: process \S*ph-echo pid {pid} killed by signal 9")
    with instance.connect(port) as c:
        assert greet_pid(c.readline()) != pid
    assert instance.count_log(r"throttling") == 0


def test_exit_status_logged(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-failstart\n")
    instance.start()
    c = instance.connect(port)
    instance.wait_log(r"warning: process \S*ph-failstart pid \d+ exit status 1")
    c.close()


def test_missing_command_is_logged_and_throttled(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - no-such-daemon\n")
    instance.start()
    c = instance.connect(port)
    instance.wait_log(rf"warning: exec {instance.libexec}/no-such-daemon: No such file")
    instance.wait_log(r"process \S*no-such-daemon pid \d+ exit status 127")
    instance.wait_log(rf"warning: {port}: bad command startup -- throttling")
    c.close()


def test_failing_service_is_throttled(instance):
    instance.set_main(service_throttle_time="2s")
    port = instance.free_port()
    good = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-failstart\n"
                             f"{good} inet - - n - - ph-echo\n")
    instance.start()
    mark = instance.log_mark()
    c = instance.connect(port)            # stays queued: master keeps retrying
    instance.wait_log(rf"warning: {port}: bad command startup -- throttling", since=mark)
    time.sleep(5)
    starts = instance.count_log(r"ph-failstart\[\d+\]: fatal: ph-failstart: failing", since=mark)
    # One start, then one per 2s throttle period: no respawn storm.
    assert 2 <= starts <= 4, f"{starts} starts in 5s"
    # Other services are not affected.
    with instance.connect(good) as g:
        greet_pid(g.readline())
    c.close()


def test_reload_add_and_remove_services(instance):
    a, b, c = instance.free_port(), instance.free_port(), instance.free_port()
    instance.write_master_cf(f"{a} inet - - n - - ph-echo\n{b} inet - - n - - ph-echo\n")
    instance.start()
    with instance.connect(a) as x:
        greet_pid(x.readline())
    instance.write_master_cf(f"{b} inet - - n - - ph-echo\n{c} inet - - n - - ph-echo\n")
    instance.reload()
    with instance.connect(c) as x:
        greet_pid(x.readline())
    with instance.connect(b) as x:
        greet_pid(x.readline())
    assert wait_refused(a), f"port {a} still accepts after its service was removed"


def test_reload_keeps_listener_open(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    with instance.connect(port) as x:
        old = greet_pid(x.readline())
    errors = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                with instance.connect(port) as y:
                    greet_pid(y.readline())
            except Exception as e:          # refused or no greeting
                errors.append(repr(e))
            time.sleep(0.02)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for _ in range(3):
            instance.reload()
            time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    assert errors == []
    # The idle child of the old generation exits after SIGHUP.
    deadline = time.monotonic() + 5
    while pid_alive(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(old)


def test_reload_changes_maxproc(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-echo\n")
    instance.start()
    c1 = instance.connect(port)
    greet_pid(c1.readline())
    c2 = instance.connect(port)
    with pytest.raises(TimeoutError):
        c2.readline(timeout=1)
    instance.write_master_cf(f"{port} inet - - n - 2 ph-echo\n")
    instance.reload()
    greet_pid(c2.readline(timeout=5))
    assert c1.cmd("echo one") == "one"
    assert c2.cmd("echo two") == "two"
    c1.close()
    c2.close()


def test_busy_session_survives_reload(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    c = instance.connect(port)
    pid = greet_pid(c.readline())
    instance.reload()
    assert c.cmd("echo still here") == "still here"
    assert c.cmd("sleep 1", timeout=5) == "slept 1"
    assert pid_alive(pid)
    assert c.cmd("quit") == "bye"
    c.close()
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "a retired child must exit after its session"


def test_removed_service_refuses_while_busy_session_finishes(instance):
    port = instance.free_port()
    other = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    c = instance.connect(port)
    pid = greet_pid(c.readline())
    instance.write_master_cf(f"{other} inet - - n - - ph-echo\n")
    instance.reload()
    # The busy child gave up its copy of the listener at SIGHUP.
    assert wait_refused(port, timeout=3)
    assert c.cmd("echo last words") == "last words"
    assert c.cmd("quit") == "bye"
    c.close()
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_reload_with_broken_config_keeps_old(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\nbroken line\n")
    mark = instance.log_mark()
    os.kill(instance.master_pid(), signal.SIGHUP)
    instance.wait_log(r"warning: reload: \S*master\.cf:2: .* keeping the old configuration",
                      since=mark)
    with instance.connect(port) as c:
        greet_pid(c.readline())
    instance.set_main(max_use="many")
    mark = instance.log_mark()
    os.kill(instance.master_pid(), signal.SIGHUP)
    instance.wait_log(r"warning: reload: \S*main\.cf:\d+: .*max_use", since=mark)
    with instance.connect(port) as c:
        greet_pid(c.readline())


def test_stop_leaves_no_process(instance):
    port = instance.free_port()
    multi = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n"
                             f"{multi} inet - - n - - ph-multi-echo\n"
                             "trig unix - - n 1 1 ph-trigger\n")
    instance.start()
    busy = instance.connect(port)
    greet_pid(busy.readline())
    m = instance.connect(multi)
    assert m.readline().startswith("ph-multi-echo ready")
    instance.wait_children(3)
    mpid = instance.master_pid()
    status = instance.stop()
    assert status == 0
    instance.wait_log(r"terminating on signal 15")
    assert instance.processes() == []
    assert not pid_alive(mpid)
    # The pid-file lock is free.
    with open(instance.queue / "pid" / "master.pid", "r+") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert wait_refused(port, timeout=1)
    busy.close()
    m.close()


def test_daemon_mode_start_and_stop(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    res = instance.start(foreground=False)
    assert res.returncode == 0, res.stderr
    mpid = instance.master_pid()
    assert pid_alive(mpid)
    assert os.getsid(mpid) == mpid, "the daemon leads its own session"
    # stderr is the pipe master reads the children's stderr from (its own
    # messages go to the log only): no terminal is held
    # (master may still be setting it up when its starter has returned)
    deadline = time.monotonic() + 2
    while True:
        err = os.readlink(f"/proc/{mpid}/fd/2")
        ends = [f for f in os.listdir(f"/proc/{mpid}/fd")
                if os.readlink(f"/proc/{mpid}/fd/{f}") == err]
        if (err.startswith("pipe:") and len(ends) == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert err.startswith("pipe:"), err
    assert len(ends) == 2, ends          # the write end (2) and the read end
    with instance.connect(port) as c:
        greet_pid(c.readline())
    instance.stop()
    assert instance.processes() == []


def test_daemon_mode_reports_failure(instance):
    port = instance.free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
        res = instance.start(foreground=False)
        assert res.returncode == 1
        assert re.search(rf"master: fatal: \S*master\.cf:1: .*{port}.*in use", res.stderr), \
            res.stderr
    finally:
        blocker.close()
    assert instance.processes() == []


def test_second_master_refused(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    mpid = instance.master_pid()
    res = instance.run_master()
    assert res.returncode == 1
    assert (f"master: fatal: another master process (pid {mpid}) is using "
            f"queue_directory {instance.queue}") in res.stderr
    res = instance.run_master("-F")
    assert res.returncode == 1
    assert "another master process" in res.stderr
    with instance.connect(port) as c:      # the first one is unharmed
        greet_pid(c.readline())


def test_unix_and_fifo_services_with_wakeup(instance):
    instance.write_master_cf("trig unix - - n 1 1 ph-trigger\n"
                             "tfifo fifo - - n 1 1 ph-trigger\n"
                             "ptrig unix n - n - 1 ph-trigger\n"
                             "lazy unix - - n 1? 1 ph-trigger\n")
    instance.start()
    private = instance.queue / "private"
    public = instance.queue / "public"
    st = os.stat(private / "trig")
    assert oct(st.st_mode & 0o777) == "0o600"
    st = os.stat(private / "tfifo")
    assert oct(st.st_mode & 0o777) == "0o600"
    st = os.stat(public / "ptrig")
    assert oct(st.st_mode & 0o777) == "0o666"
    assert oct(os.stat(public).st_mode & 0o777) == "0o710"
    owner = pwd.getpwnam(instance.mail_owner).pw_uid
    assert os.stat(private / "trig").st_uid == owner
    # Wake-ups start both services at once and reach them about once a
    # second; the "?" service is not woken before it has been used.
    mark = instance.log_mark()
    instance.wait_children(1, "trig", timeout=2)
    instance.wait_children(1, "tfifo", timeout=2)
    time.sleep(2.6)
    assert instance.children("lazy") == []
    trig = instance.children("trig")
    tfifo = instance.children("tfifo")
    assert len(trig) == 1 and len(tfifo) == 1
    text = instance.log_text()[mark:]
    for pid in (trig[0], tfifo[0]):
        n = len(re.findall(rf"ph-trigger\[{pid}\]: trigger: 1 bytes \"W\"", text))
        assert 2 <= n <= 5, f"{n} wakeups for pid {pid}"
    # Clients can trigger too.
    mark = instance.log_mark()
    with instance.connect_unix(public / "ptrig") as c:
        c.sock.sendall(b"hello")
    instance.wait_log(r"trigger: 5 bytes \"hello\"", since=mark)
    fd = os.open(private / "tfifo", os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"abc")
    os.close(fd)
    instance.wait_log(rf"ph-trigger\[{tfifo[0]}\]: trigger: 3 bytes \"abc\"", since=mark)


def test_killed_wakeup_service_is_woken_again_at_once(instance):
    # qmgr's shape: a fifo service with a long wake-up period. Killed, it
    # left its work behind; master must not wait for the next period (300 s)
    # or the next message to start a replacement.
    instance.write_master_cf("tfifo fifo - - n 300 1 ph-trigger\n")
    instance.start()
    first = instance.wait_children(1, "tfifo", timeout=3)
    instance.wait_log(rf"ph-trigger\[{first[0]}\]: trigger: 1 bytes \"W\"")
    mark = instance.log_mark()
    os.kill(first[0], signal.SIGKILL)
    match = instance.wait_log(r"ph-trigger\[(\d+)\]: trigger: 1 bytes \"W\"",
                              since=mark, timeout=3)
    assert int(match.group(1)) != first[0]
    instance.wait_log(r"service tfifo: waking a replacement", since=mark)
    # A normal exit (max_idle, max_use) leaves nothing behind: no extra wake-up.
    assert instance.count_log(r"waking a replacement", since=mark) == 1


def test_reload_ends_throttling(instance):
    instance.set_main(service_throttle_time="60s")
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-failstart\n")
    instance.start()
    c = instance.connect(port)
    instance.wait_log(rf"{port}: bad command startup -- throttling")
    # The operator fixes the command and reloads: no 60s wait.
    instance.write_master_cf(f"{port} inet - - n - 1 ph-echo\n")
    instance.reload()
    greet_pid(c.readline(timeout=5))
    c.close()


def test_reload_removes_unix_socket(instance):
    instance.write_master_cf("trig unix - - n - 1 ph-trigger\n")
    instance.start()
    path = instance.queue / "private" / "trig"
    assert path.exists()
    instance.write_master_cf("trig2 unix - - n - 1 ph-trigger\n")
    instance.reload()
    assert not path.exists()
    assert (instance.queue / "private" / "trig2").exists()


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback (::1) on this host")
def test_ipv6_listener(instance):
    port = instance.free_port("::1")
    v4 = instance.free_port()
    instance.set_main(inet_protocols="all")
    instance.write_master_cf(f"[::1]:{port} inet - - n - - ph-echo\n"
                             f"{v4} inet - - n - - ph-echo\n")
    instance.start()
    with instance.connect(port, host="::1") as c:
        greet_pid(c.readline())
    # inet_interfaces = 127.0.0.1: the second service is IPv4-only.
    with instance.connect(v4) as c:
        greet_pid(c.readline())
    with pytest.raises(OSError):
        instance.connect(v4, host="::1").close()


def test_loopback_only_listens_on_both_families(instance):
    if not have_ipv6():
        pytest.skip("no IPv6 loopback (::1) on this host")
    port = instance.free_port()
    instance.set_main(inet_interfaces="loopback-only", inet_protocols="all")
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    for host in ("127.0.0.1", "::1"):
        with instance.connect(port, host=host) as c:
            greet_pid(c.readline())


def test_master_t_good_config(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\ntrig unix - - n 5 1 ph-trigger\n")
    res = instance.run_master("-t")
    assert res.returncode == 0, res.stderr
    assert not (instance.queue / "pid" / "master.pid").exists()


def test_master_t_broken_master_cf(instance):
    instance.write_master_cf("# comment\n2525 inet - - n - - ph-echo\nbogus inet x\n")
    res = instance.run_master("-t")
    assert res.returncode == 1
    assert re.search(r"master: fatal: \S*/etc/master\.cf:3: ", res.stderr), res.stderr


def test_master_t_broken_main_cf(instance):
    instance.write_master_cf("")
    instance.set_main(default_process_limit="lots")
    res = instance.run_master("-t")
    assert res.returncode == 1
    assert re.search(r"master: fatal: \S*/etc/main\.cf:\d+: .*default_process_limit",
                     res.stderr), res.stderr


def test_master_t_bad_address(instance):
    instance.write_master_cf("[::1]:2525 inet - - n - - ph-echo\n")
    instance.set_main(inet_protocols="ipv5")
    res = instance.run_master("-t")
    assert res.returncode == 1
    assert re.search(r"master\.cf:1: .*inet_protocols", res.stderr), res.stderr


@pytest.mark.skipif(not IS_ROOT, reason="privilege drop needs root")
def test_privilege_drop_as_root(instance):
    unpriv = instance.free_port()
    priv = instance.free_port()
    jail = instance.free_port()
    instance.write_master_cf(f"{unpriv} inet - - n - - ph-echo\n"
                             f"{priv} inet - n n - - ph-echo\n"
                             f"{jail} inet - - y - - ph-echo\n")
    instance.start()
    pw = pwd.getpwnam("posthorn")
    with instance.connect(unpriv) as c:
        line = c.readline()
        pid = greet_pid(line)
        assert f"uid={pw.pw_uid} gid={pw.pw_gid}" in line
        assert status_ids(pid, "Uid") == [pw.pw_uid] * 4
        assert status_ids(pid, "Gid") == [pw.pw_gid] * 4
        assert set(status_ids(pid, "Groups")) <= {pw.pw_gid}
        assert os.readlink(f"/proc/{pid}/root") == "/"
    with instance.connect(priv) as c:
        line = c.readline()
        pid = greet_pid(line)
        assert "uid=0 gid=0" in line
        assert status_ids(pid, "Uid") == [0] * 4
    with instance.connect(jail) as c:
        pid = greet_pid(c.readline())
        assert status_ids(pid, "Uid") == [pw.pw_uid] * 4
        assert os.readlink(f"/proc/{pid}/root") == str(instance.queue)


@pytest.mark.skipif(not IS_ROOT, reason="ownership of private sockets needs root")
def test_private_socket_owned_by_mail_owner_as_root(instance):
    instance.write_master_cf("trig unix - - n - 1 ph-trigger\n")
    instance.start()
    st = os.stat(instance.queue / "private" / "trig")
    assert st.st_uid == pwd.getpwnam("posthorn").pw_uid
    assert os.stat(instance.queue / "private").st_uid == st.st_uid


def test_unprivileged_master_runs_children_as_itself(instance):
    """The sandbox case: a master that is not root runs every child as its
    own user and needs no privilege. As a normal user the test starts
    master directly; as root it starts it as nobody (setpriv)."""
    import shutil
    if not IS_ROOT:
        port = instance.free_port()
        instance.write_master_cf(f"{port} inet - - y - - ph-echo\n")
        instance.start()
        with instance.connect(port) as c:
            line = c.readline()
            assert f"uid={os.getuid()} " in line
        instance.wait_log(r"warning: not running as root: skipping chroot")
        return
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("setpriv (util-linux) not installed")
    nobody = pwd.getpwnam("nobody")
    probe = subprocess.run([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                            "--clear-groups", "test", "-x", str(MASTER)])
    if probe.returncode != 0:
        pytest.skip(f"{MASTER} is not reachable for user nobody (checkout path not searchable)")
    port = instance.free_port()
    instance.set_main(mail_owner="nobody")
    instance.write_master_cf(f"{port} inet - - y - - ph-echo\n")
    for path in [instance.dir, *instance.dir.rglob("*")]:
        os.lchown(path, nobody.pw_uid, nobody.pw_gid)
    mark = instance.log_mark()
    proc = subprocess.Popen([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                             "--clear-groups", str(MASTER), "-c", str(instance.etc), "-F"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        instance.wait_log(r"daemon started", timeout=10, since=mark)
        with instance.connect(port) as c:
            line = c.readline()
            assert f"uid={nobody.pw_uid} " in line, line
        instance.wait_log(r"warning: not running as root: skipping chroot", since=mark)
        assert status_ids(proc.pid, "Uid") == [nobody.pw_uid] * 4
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0
    assert instance.processes() == []


def test_posthorn_start_status_stop(instance):
    from conftest import BUILD
    posthorn = BUILD / "bin" / "posthorn"
    if not posthorn.exists():
        pytest.skip(f"{posthorn} not built")
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")

    def ph(*args):
        return subprocess.run([str(posthorn), "-c", str(instance.etc), *args],
                              capture_output=True, text=True, timeout=30)

    res = ph("start")
    assert res.returncode == 0, res.stderr
    instance.wait_log(r"daemon started")
    mpid = instance.master_pid()
    assert f"master pid {mpid}" in ph("status").stdout
    with instance.connect(port) as c:
        greet_pid(c.readline())
    assert ph("reload").returncode == 0
    instance.wait_log(r"reload -- version")
    # A second start reports the running master.
    assert ph("start").returncode != 0
    res = ph("stop")
    assert res.returncode == 0, res.stderr
    assert instance.processes() == []


def test_reload_moves_masters_own_log(instance):
    """After maillog_file changes and a reload, master's own lines (a
    child's fatal error, 'reload --') go to the new file, as the daemons'
    do; before, master kept writing to the old one."""
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    new_log = instance.dir / "log" / "maillog.new"
    instance.set_main(maillog_file=str(new_log))
    os.kill(instance.master_pid(), signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if new_log.exists() and "reload --" in new_log.read_text():
            break
        time.sleep(0.05)
    assert new_log.exists() and "posthorn/master" in new_log.read_text() \
        and "reload --" in new_log.read_text(), instance.log_text()[-2000:]
    with instance.connect(port) as c:        # the children follow too
        greet_pid(c.readline())
    assert "ph-echo" in new_log.read_text()
    assert stat.S_IMODE(new_log.stat().st_mode) & 0o007 == 0    # not world-readable


def test_journal_stream_gets_each_line_once(instance):
    """Under systemd (JOURNAL_STREAM names master's stderr), master -F and
    its children do not copy their log lines to stderr: the journal gets
    the syslog (or maillog_file) lines already."""
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    err = open(instance.dir / "journal.stderr", "wb")
    st = os.fstat(err.fileno())
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    proc = subprocess.Popen([str(MASTER), "-c", str(instance.etc), "-F"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, env=env,
                            start_new_session=True)
    try:
        instance.wait_log(r"daemon started")
        with instance.connect(port) as c:
            pid = greet_pid(c.readline())
            environ = pathlib.Path(f"/proc/{pid}/environ").read_bytes()
            assert b"POSTHORN_LOG_STDERR=1" not in environ
        instance.wait_log(r"ph-echo.*disconnect|disconnect")
        assert (instance.dir / "journal.stderr").read_text() == ""
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        err.close()

"""The server skeleton (lib/mail/server.c) through the test daemons of
tests/bin/: -S (one client on stdin/stdout), option errors, max_use,
max_idle, the watchdog, SIGPIPE, SIGHUP/SIGTERM handling and the
status reports that let master reuse an idle child."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import pid_alive

PROG_TIMEOUT = 10


def run_daemon(instance, name, *args, input=""):
    return subprocess.run([str(instance.libexec / name), "-c", str(instance.etc), *args],
                          input=input, capture_output=True, text=True, timeout=PROG_TIMEOUT)


def greet_pid(line):
    m = re.match(r"ph-echo ready pid=(\d+) uid=\d+ gid=\d+$", line)
    assert m, f"bad greeting {line!r}"
    return int(m.group(1))


def wait_gone(pid, timeout=5):
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_stdin_mode_single(instance):
    res = run_daemon(instance, "ph-echo", "-S", input="echo one\nsleep 0\necho two\nquit\necho x\n")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    greet_pid(lines[0])
    assert lines[1:] == ["one", "slept 0", "two", "bye"]
    # -S logs to stderr as well as maillog.
    assert "posthorn/ph-echo: connect" in res.stderr
    assert re.search(r"posthorn/ph-echo\[\d+\]: connect", instance.log_text())


def test_stdin_mode_eof_ends_session(instance):
    res = run_daemon(instance, "ph-echo", "-S", input="echo only\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1:] == ["only"]


def test_stdin_mode_socket(instance):
    """inetd style: stdin and stdout are one socket."""
    a, b = socket.socketpair()
    proc = subprocess.Popen([str(instance.libexec / "ph-echo"), "-c", str(instance.etc), "-S"],
                            stdin=b, stdout=b, stderr=subprocess.DEVNULL)
    b.close()
    try:
        f = a.makefile("rw")
        greet_pid(f.readline().strip())
        f.write("echo sock\nquit\n")
        f.flush()
        assert f.readline().strip() == "sock"
        assert f.readline().strip() == "bye"
        assert proc.wait(timeout=PROG_TIMEOUT) == 0
    finally:
        a.close()
        if proc.poll() is None:
            proc.kill()


def test_stdin_mode_multi(instance):
    res = run_daemon(instance, "ph-multi-echo", "-S", input="echo m\nclients\nquit\n")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("ph-multi-echo ready pid=")
    assert lines[1:] == ["m", "clients 1", "bye"]


def test_stdin_mode_trigger(instance):
    res = run_daemon(instance, "ph-trigger", "-S", input="wake")
    assert res.returncode == 0, res.stderr
    assert 'trigger: 4 bytes "wake"' in res.stderr


def test_overrides_and_bad_options(instance):
    res = run_daemon(instance, "ph-echo", "-S", "-o", "max_use=oops", input="")
    assert res.returncode == 1
    assert "max_use" in res.stderr
    res = run_daemon(instance, "ph-echo", "-Z")
    assert res.returncode == 1
    assert "usage:" in res.stderr
    res = run_daemon(instance, "ph-echo")
    assert res.returncode == 1
    assert "no listeners" in res.stderr
    res = run_daemon(instance, "ph-echo", "-s", "1")
    assert res.returncode == 1
    assert "listener descriptor 4 is not open" in res.stderr


def test_missing_config_is_fatal(instance, tmp_path):
    res = subprocess.run([str(instance.libexec / "ph-echo"), "-c", str(tmp_path), "-S"],
                         input="", capture_output=True, text=True, timeout=PROG_TIMEOUT)
    assert res.returncode == 1
    assert "main.cf" in res.stderr


def test_max_use(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-echo -o max_use=2\n")
    instance.start()
    pids = []
    for _ in range(2):
        with instance.connect(port) as c:
            pids.append(greet_pid(c.readline()))
            assert c.cmd("quit") == "bye"
    assert pids[0] == pids[1]
    assert wait_gone(pids[0]), "the process must exit after max_use connections"
    with instance.connect(port) as c:
        assert greet_pid(c.readline()) != pids[0]


def test_max_use_multi(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-multi-echo -o max_use=2\n")
    instance.start()
    c1 = instance.connect(port)
    c2 = instance.connect(port)
    p1 = c1.readline()
    p2 = c2.readline()
    assert p1 == p2, "one MULTI process serves both clients"
    pid = int(p1.split("pid=")[1])
    assert c1.cmd("clients") == "clients 2"
    # The limit is reached but both clients are still served.
    assert c1.cmd("quit") == "bye"
    assert c2.cmd("echo still") == "still"
    assert pid_alive(pid)
    assert c2.cmd("quit") == "bye"
    c1.close()
    c2.close()
    assert wait_gone(pid)


def test_max_idle(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo -o max_idle=1\n")
    instance.start()
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        time.sleep(1.5)                      # a busy process is not idle
        assert c.cmd("echo busy") == "busy"
        assert c.cmd("quit") == "bye"
    assert wait_gone(pid, timeout=4), "an idle process exits after max_idle"
    assert instance.count_log(rf"pid {pid} (exit status|killed)") == 0


def test_max_idle_trigger(instance):
    instance.write_master_cf("trig unix - - n - 1 ph-trigger -o max_idle=1\n")
    instance.start()
    mark = instance.log_mark()
    with instance.connect_unix(instance.queue / "private" / "trig") as c:
        c.sock.sendall(b"x")
    instance.wait_log(r"trigger: 1 bytes", since=mark)
    [pid] = instance.wait_children(1, "trig")
    assert wait_gone(pid, timeout=4)


def test_watchdog(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo -o daemon_timeout=1\n")
    instance.start()
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        c.send("sleep 4")
        assert c.readline(timeout=6) == ""
    instance.wait_log(rf"ph-echo\[{pid}\]: fatal: watchdog timeout")
    instance.wait_log(rf"process \S*ph-echo pid {pid} exit status 1")


def test_sigpipe_does_not_kill(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-echo\n")
    instance.start()
    c = instance.connect(port)
    pid = greet_pid(c.readline())
    c.send("sleep 1")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()                                # RST: the answer hits a dead socket
    time.sleep(1.5)
    assert pid_alive(pid)
    with instance.connect(port) as c:
        assert greet_pid(c.readline()) == pid
    assert instance.count_log(r"killed by signal 13") == 0


def test_sighup_idle_exits_busy_finishes(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    busy = instance.connect(port)
    busy_pid = greet_pid(busy.readline())
    with instance.connect(port) as c:
        idle_pid = greet_pid(c.readline())
        assert c.cmd("quit") == "bye"
    time.sleep(0.2)
    os.kill(idle_pid, signal.SIGHUP)
    os.kill(busy_pid, signal.SIGHUP)
    assert wait_gone(idle_pid)
    assert busy.cmd("echo finishing") == "finishing"
    assert pid_alive(busy_pid)
    assert busy.cmd("quit") == "bye"
    busy.close()
    assert wait_gone(busy_pid)
    text = instance.log_text()
    assert not re.search(rf"pid ({idle_pid}|{busy_pid}) (exit status|killed)", text)


def test_sigterm_exits_now(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        c.send("sleep 10")
        time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
        assert wait_gone(pid, timeout=2)
        assert c.readline() == ""


def test_idle_child_is_reused_not_duplicated(instance):
    """Status reports: a child that finished its client is idle again, so
    master does not start a second one for the next client."""
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    pids = set()
    for _ in range(5):
        with instance.connect(port) as c:
            pids.add(greet_pid(c.readline()))
            assert c.cmd("quit") == "bye"
        time.sleep(0.05)
    assert len(pids) == 1
    assert len(instance.children(str(port))) == 1


def test_master_death_takes_children(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    with instance.connect(port) as c:
        pid = greet_pid(c.readline())
        os.kill(instance.master_pid(), signal.SIGKILL)
        instance.proc.wait(timeout=5)
        instance.proc = None
        assert wait_gone(pid, timeout=5), "children must not outlive a killed master"


def test_silent_trigger_client_does_not_block(instance):
    instance.write_master_cf("trig unix - - n - 1 ph-trigger\n")
    instance.start()
    path = instance.queue / "private" / "trig"
    silent = instance.connect_unix(path)       # connects, never writes
    time.sleep(0.3)
    mark = instance.log_mark()
    start = time.monotonic()
    with instance.connect_unix(path) as c:
        c.sock.sendall(b"go")
    instance.wait_log(r'trigger: 2 bytes "go"', since=mark, timeout=3)
    assert time.monotonic() - start < 2
    instance.wait_log(r"warning: trigger connection: timeout", timeout=8)
    silent.close()


def test_multi_client_timeout(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-multi-echo -o ipc_timeout=1\n")
    instance.start()
    with instance.connect(port) as c:
        assert c.readline().startswith("ph-multi-echo ready")
        time.sleep(2)
        assert c.readline(timeout=2) == "", "a silent MULTI client is disconnected"


# -- MULTI: what a real MULTI daemon (auth) needs ------------------------

def multi_pid(line):
    m = re.match(r"ph-multi-echo ready pid=(\d+)$", line)
    assert m, f"bad greeting {line!r}"
    return int(m.group(1))


def start_multi(instance, *args, opts="", maxproc="1"):
    port = instance.free_port()
    extra = " " + " ".join(args) if args else ""
    instance.write_master_cf(f"{port} inet - - n - {maxproc} ph-multi-echo {opts}{extra}\n")
    instance.start()
    return port


def test_multi_many_clients_in_one_process(instance):
    port = start_multi(instance)
    clients = [instance.connect(port) for _ in range(20)]
    try:
        pids = {multi_pid(c.readline()) for c in clients}
        assert len(pids) == 1, "one MULTI process serves every client"
        # all at once: every request goes out before any answer is read
        for i, c in enumerate(clients):
            c.send(f"echo client {i}")
        for i, c in enumerate(clients):
            assert c.readline() == f"client {i}"
        assert clients[0].cmd("clients") == "clients 20"
        assert len(instance.children(str(port))) == 1
    finally:
        for c in clients:
            c.close()


def test_multi_slow_client_does_not_block_others(instance):
    """A client that sent half a request must not stall the process:
    the skeleton calls multi_input only for whole requests."""
    port = start_multi(instance)
    slow = instance.connect(port)
    fast = instance.connect(port)
    try:
        assert multi_pid(slow.readline()) == multi_pid(fast.readline())
        slow.sock.sendall(b"echo hal")             # no newline yet
        time.sleep(0.3)
        start = time.monotonic()
        assert fast.cmd("echo quick", timeout=3) == "quick"
        assert time.monotonic() - start < 1
        slow.sock.sendall(b"f done\necho next\n")   # completes, plus one more
        assert slow.readline() == "half done"
        assert slow.readline() == "next"
    finally:
        slow.close()
        fast.close()


def test_multi_raw_framing_waits_for_the_rest(instance):
    """SERVER_FRAME_NONE, for contrast: a partial line holds the process
    (why daemons should name a framing)."""
    port = start_multi(instance, "raw")
    slow = instance.connect(port)
    fast = instance.connect(port)
    try:
        slow.readline()
        fast.readline()
        slow.sock.sendall(b"echo hal")
        time.sleep(0.3)
        fast.send("echo quick")
        with pytest.raises(TimeoutError):
            fast.readline(timeout=1)
        slow.sock.sendall(b"f\n")
        assert slow.readline() == "half"
        assert fast.readline() == "quick"
    finally:
        slow.close()
        fast.close()


def test_multi_ipc_framing(instance):
    """SERVER_FRAME_IPC (auth's framing): a request split anywhere, even
    one byte at a time, is served whole, and others go on meanwhile."""
    from phwire import IpcReader, encode
    port = start_multi(instance, "ipc")
    slow = instance.connect(port)
    fast = instance.connect(port)
    try:
        request = encode(user="alice", data=b"a\x00b\nc")
        for b in request[:-1]:
            slow.sock.sendall(bytes([b]))
        time.sleep(0.2)
        fast.sock.sendall(encode(user="bob"))
        reply = IpcReader(fast.sock).message_dict()
        assert reply["user"] == "bob"
        slow.sock.sendall(request[-1:])
        reply = IpcReader(slow.sock).message_dict()
        assert reply["user"] == "alice" and reply["data"] == "a\x00b\nc"
        assert reply["pid"]
        # a malformed message ends that client only
        slow.sock.sendall(b"4:USER,1:x,0:,")
        assert slow.sock.recv(100) == b""
        fast.sock.sendall(encode(user="carol"))
        assert IpcReader(fast.sock).message_dict()["user"] == "carol"
    finally:
        slow.close()
        fast.close()


def test_multi_read_deadline(instance):
    """A client that dribbles a request without finishing it is dropped
    after the read deadline (client_timeout = ipc_timeout here), bytes
    or not; a client that completes requests stays."""
    port = start_multi(instance, opts="-o ipc_timeout=2")
    dribbler = instance.connect(port)
    good = instance.connect(port)
    try:
        dribbler.readline()
        good.readline()
        start = time.monotonic()
        gone = None
        for _ in range(8):
            try:
                dribbler.sock.sendall(b"x")
            except OSError:
                gone = time.monotonic() - start
                break
            assert good.cmd("echo alive") == "alive"
            time.sleep(0.5)
            try:
                dribbler.sock.settimeout(0.01)
                if dribbler.sock.recv(10) == b"":
                    gone = time.monotonic() - start
                    break
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                gone = time.monotonic() - start
                break
        assert gone is not None, "a never-finished request must hit the deadline"
        assert 1.5 <= gone <= 3.5
        assert good.cmd("echo still") == "still"
    finally:
        dribbler.close()
        good.close()


def test_multi_max_idle(instance):
    port = start_multi(instance, opts="-o max_idle=1")
    with instance.connect(port) as c:
        pid = multi_pid(c.readline())
        time.sleep(1.5)                      # a process with a client is busy
        assert c.cmd("echo here") == "here"
        assert c.cmd("quit") == "bye"
    assert wait_gone(pid, timeout=4), "without clients it exits after max_idle"
    assert instance.count_log(rf"pid {pid} (exit status|killed)") == 0


def test_multi_sighup_finishes_clients(instance):
    """Reload: the process takes no new client, serves the ones it has
    to their end, then exits; a new client goes to a fresh process at
    once (the old one told master it is no longer available)."""
    port = start_multi(instance, maxproc="-")
    a = instance.connect(port)
    b = instance.connect(port)
    try:
        pid = multi_pid(a.readline())
        assert multi_pid(b.readline()) == pid
        os.kill(pid, signal.SIGHUP)
        time.sleep(0.3)
        assert a.cmd("echo after hup") == "after hup"
        with instance.connect(port) as c:
            assert multi_pid(c.readline(timeout=3)) != pid
        assert a.cmd("quit") == "bye"
        assert pid_alive(pid), "b is still being served"
        assert b.cmd("echo last") == "last"
        b.close()
        assert wait_gone(pid)
        assert instance.count_log(rf"pid {pid} (exit status|killed)") == 0
    finally:
        a.close()
        b.close()

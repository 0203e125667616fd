"""The event-driven login process (login_front, pop3d-login): one process
serves many pre-authentication clients at once; a silent or slow client
never holds up the others; logins run concurrently over pooled auth
connections; the per-process client limit; a reload lets the clients
being served finish; login_max_use, not max_use, retires a login process.

Uses the POP3 instance of test_pop3.py (auth, pop3d-login, pop3d)."""
import shutil
import threading
import time

import pytest

from conftest import BUILD, MASTER, pid_alive, proc_cmdline
from test_pop3 import PASSWORD, USER, Pop3Instance, Raw


class FrontInstance(Pop3Instance):
    """test_pop3's instance plus a pop3d-login with login_client_limit=3
    and one with max_use=2, login_max_use=4."""

    def __init__(self):
        super().__init__()
        self.limit_port = self.inst.free_port()
        self.use_port = self.inst.free_port()
        libexec = self.inst.libexec
        cf = self.inst.etc / "master.cf"
        text = cf.read_text() if cf.exists() else ""
        self.inst.write_master_cf(
            text + f"127.0.0.1:{self.limit_port} inet n - n - - {libexec}/pop3d-login\n"
            f"  -o login_client_limit=3\n"
            f"127.0.0.1:{self.use_port} inet n - n - - {libexec}/pop3d-login\n"
            f"  -o max_use=2 -o login_max_use=4\n")


@pytest.fixture
def front():
    for prog in ("auth", "pop3d", "pop3d-login"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    p = FrontInstance()
    p.inst.start()
    try:
        yield p
    finally:
        p.inst.stop(timeout=15)
        shutil.rmtree(p.inst.dir, ignore_errors=True)


def login_pids(front, port):
    """The pop3d-login processes of the port; one that exits between the
    listing and the look at its command line (a retiring login process)
    is left out."""
    return [pid for pid in front.inst.children(f"127.0.0.1:{port}")
            if (proc_cmdline(pid) or [b""])[0].endswith(b"pop3d-login")]


def test_one_process_serves_many_clients(front):
    clients = [Raw(front.port) for _ in range(150)]
    try:
        for c in clients:
            assert c.line() == "+OK POP3 server ready"
        pids = login_pids(front, front.port)
        # maxproc is "-" here: master may have started a second one while
        # the first was starting, never one per client
        assert 1 <= len(pids) <= 2, pids
        # every one of them is served, in any order
        for i, c in enumerate(reversed(clients)):
            assert c.cmd("NOOP") == "-ERR Log in first (USER/PASS or AUTH)", i
        assert login_pids(front, front.port) == pids
        with open(f"/proc/{pids[0]}/status") as f:
            assert "Threads:\t1\n" in f.read()
    finally:
        for c in clients:
            c.close()


def test_silent_and_dribbling_clients_do_not_block_a_login(front):
    silent = Raw(front.port)
    partial = Raw(front.port)
    assert partial.line().startswith("+OK")
    partial.send("USER ali")                   # half a command, no CRLF
    t0 = time.monotonic()
    p = front.login()
    assert p.stat()[0] == 0
    p.quit()
    assert time.monotonic() - t0 < 3
    partial.send(f"ce\r\n")
    assert partial.line() == "+OK Send your password"
    silent.close()
    partial.close()


def test_concurrent_logins(front):
    """40 logins at once: all succeed over the pooled auth connections,
    and one failing client (with auth's delay) does not slow them."""
    bad = Raw(front.port)
    assert bad.line().startswith("+OK")
    bad.cmd(f"USER {USER}")
    bad.send("PASS wrong\r\n")                 # answered after the delay
    results = []

    def one():
        # past the login process and auth: pop3d answers +OK, or [IN-USE]
        # while another of these sessions holds the one mailbox
        try:
            r = Raw(front.port, timeout=20)
            r.line()
            r.cmd(f"USER {USER}")
            got = r.cmd(f"PASS {PASSWORD}")
            results.append(0 if got.startswith("+OK Logged in") or "[IN-USE]" in got else got)
            if got.startswith("+OK"):
                r.cmd("QUIT")
            r.close()
        except Exception as e:                 # pylint: disable=broad-except
            results.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(40)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [0] * 40, results
    assert time.monotonic() - t0 < 20
    assert bad.line() == "-ERR [AUTH] Authentication failed"
    bad.close()


def test_client_limit_per_process(front):
    held = [Raw(front.limit_port) for _ in range(3)]
    for c in held:
        assert c.line().startswith("+OK")
    extra = Raw(front.limit_port)
    assert extra.line() == "-ERR [SYS/TEMP] Too many connections, try again later"
    assert extra.at_eof()
    held[0].cmd("QUIT")
    held[0].close()
    deadline = time.monotonic() + 5
    while True:
        again = Raw(front.limit_port)
        line = again.line()
        if line.startswith("+OK") or time.monotonic() > deadline:
            break
        again.close()
        time.sleep(0.1)
    assert line == "+OK POP3 server ready"
    again.close()
    for c in held[1:]:
        c.close()


def test_reload_lets_clients_finish(front):
    c = Raw(front.port)
    assert c.line().startswith("+OK")
    [pid] = login_pids(front, front.port)
    assert c.cmd(f"USER {USER}") == "+OK Send your password"
    front.inst.reload()
    # a new client goes to a fresh process; the old one still serves c
    n = Raw(front.port)
    assert n.line().startswith("+OK")
    assert c.cmd(f"PASS {PASSWORD}").startswith("+OK Logged in")
    assert c.cmd("QUIT").startswith("+OK")
    n.close()
    c.close()
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_login_max_use_retires_a_login_process(front):
    """A login process takes login_max_use clients (4 here), not max_use
    (2), then exits; the next client is served by a fresh process."""
    served = []
    for i in range(5):
        c = Raw(front.use_port)
        assert c.line() == "+OK POP3 server ready", i
        assert c.cmd("QUIT").startswith("+OK"), i
        c.close()
        pids = login_pids(front, front.use_port)
        served.append(pids)
        if i < 3:
            # the first four clients: one process, the one of the first
            assert len(pids) == 1 and pids == served[0], (i, served)
    first = served[0][0]
    deadline = time.monotonic() + 5
    while pid_alive(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(first), served
    fresh = login_pids(front, front.use_port)
    assert fresh and first not in fresh, served

"""session_host (lib/mail/session_host.c), the post-login framework of
pop3d and imapd, with a fake protocol module (tests/bin/ph-session-echo):
the dispatcher takes hand-overs (login_proto.h) on its event loop,
redeems the token with a real auth, and runs the sessions in per-uid
worker processes: sessions of one uid share a worker, different uids
never do, a worker serves at most $name_worker_session_limit sessions,
there are at most $name_worker_limit workers, an idle worker goes after
$name_worker_linger, a reload lets sessions finish and a stop ends them.
The hand-over is done here in Python (socket.send_fds), as a login
process does it.
"""
import base64
import os
import pathlib
import pwd
import re
import shutil
import socket
import subprocess
import time

import pytest

import mkinstance
import phwire
from conftest import BUILD, IS_ROOT, Instance, MASTER

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="workers change uid: needs root")

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "pw-alice-1"
BOB_PASSWORD = "pw-bob-2"
NOBODY = pwd.getpwnam("nobody")


class Host:
    """An instance with auth and three ph-session-echo services."""

    def __init__(self):
        mkinstance.service_accounts()
        self.inst = Instance(mail=True, mailboxes=[ALICE], commands="link",
                             main={"auth_failure_delay": "10", "auth_failure_delay_max": "50"})
        pw = pwd.getpwnam(self.inst.layout.vmail_owner)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        root = self.inst.layout.mailroot
        users = self.inst.etc / "users"
        users.write_text(
            f"{ALICE}:{mkinstance._sha512_crypt(PASSWORD)}:{self.uid}:{self.gid}:"  # pylint: disable=protected-access
            f"{root}/example.test/alice/:\n"
            f"{BOB}:{mkinstance._sha512_crypt(BOB_PASSWORD)}:{NOBODY.pw_uid}:{NOBODY.pw_gid}:"  # pylint: disable=protected-access
            f"{root}/example.test/bob/:\n"
            f"owner@example.test:{mkinstance._sha512_crypt(PASSWORD)}:"  # pylint: disable=protected-access
            f"{pwd.getpwnam(self.inst.mail_owner).pw_uid}:{pwd.getpwnam(self.inst.mail_owner).pw_gid}:"
            f"{root}/example.test/owner/:\n")
        res = subprocess.run([str(self.inst.layout.bin / "posthorn"), "-c", str(self.inst.etc),
                              "users", f"cdb:{users}"], capture_output=True, text=True,
                             timeout=60, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        self.inst.set_main(auth_user_maps=f"cdb:{users}.auth")
        prog = self.inst.libexec / "ph-session-echo"
        self.inst.write_master_cf(
            f"auth unix - - n - 1 {self.inst.libexec}/auth\n"
            f"sessecho unix - n n - - {prog}\n"
            f"sesssmall unix - n n - - {prog} -o imapd_worker_session_limit=2\n"
            f"  -o imapd_worker_limit=2 -o imapd_worker_linger=1\n")

    def token(self, user=ALICE, password=PASSWORD):
        sock, rd = phwire.connect(self.inst.queue / "private" / "auth", "auth")
        resp = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        sock.sendall(phwire.encode([("request", "auth"), ("service", "pop3"),
                                    ("mechanism", "PLAIN"), ("client_address", "127.0.0.1"),
                                    ("response", resp)]))
        reply = rd.message_dict()
        sock.close()
        assert reply["status"] == "ok", reply
        return reply["token"]

    def hand_over(self, token, service="sessecho", data=b"", tag=None):
        """A session: our end of the client socketpair, handed over."""
        mine, theirs = socket.socketpair()
        mine.settimeout(10)
        sock, rd = phwire.connect(self.inst.queue / "private" / service, "login")
        socket.send_fds(sock, [b"F"], [theirs.fileno()])
        attrs = [("token", token), ("client_address", "192.0.2.7"),
                 ("client_port", "4711"), ("input", data)]
        if tag is not None:
            attrs.append(("login_tag", tag))
        sock.sendall(phwire.encode(attrs))
        assert rd.message_dict() == {"status": "ok"}
        sock.close()
        theirs.close()
        return Session(mine)

    def login(self, user=ALICE, password=PASSWORD, service="sessecho", data=b""):
        s = self.hand_over(self.token(user, password), service, data)
        s.greeting = s.line()
        assert s.greeting.startswith("+OK user="), s.greeting
        return s


class Session:
    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rb")
        self.greeting = None

    def line(self):
        got = self.f.readline(65536)
        return got.decode().rstrip("\r\n") if got else ""

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def field(self, name):
        return int(re.search(rf"\b{name}=(\d+)", self.greeting).group(1))

    def at_eof(self):
        return self.f.read(1) == b""

    def close(self):
        self.f.close()
        self.sock.close()


@pytest.fixture(name="host")
def host_fixture():
    for prog in ("auth", "ph-session-echo"):
        if not ((BUILD / "libexec" / prog).exists() or (BUILD / "testbin" / prog).exists()):
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    h = Host()
    h.inst.start()
    try:
        yield h
    finally:
        h.inst.stop(timeout=15)
        shutil.rmtree(h.inst.dir, ignore_errors=True)


def proc_status(pid):
    text = pathlib.Path(f"/proc/{pid}/status").read_text()
    get = lambda key: re.search(rf"^{key}:[ \t]*(.*)$", text, re.M).group(1).split()
    return get("Uid"), get("Gid"), get("Groups"), int(get("PPid")[0])


def alive(pid):
    try:
        st = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return st.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_sessions_of_one_uid_share_a_worker(host):
    a1 = host.login()
    a2 = host.login()
    assert a1.field("pid") == a2.field("pid")
    assert a1.field("uid") == host.uid and a1.field("gid") == host.gid
    assert a1.field("groups") == 0
    assert a2.field("sessions") == 2
    assert f"root={host.inst.layout.mailroot}/example.test/alice/" in a1.greeting
    uids, gids, groups, ppid = proc_status(a1.field("pid"))
    assert set(uids) == {str(host.uid)} and set(gids) == {str(host.gid)} and groups == []
    # the worker is the dispatcher's child, and the dispatcher stays root
    assert set(proc_status(ppid)[0]) == {"0"}
    assert a1.cmd("echo one") == "+OK one"
    assert a2.cmd("quit") == "+OK bye" and a2.at_eof()
    assert a1.cmd("info") == f"+OK pid={a1.field('pid')} sessions=1 retiring=no"
    a1.close()


def test_different_uids_never_share(host):
    a = host.login()
    b = host.login(BOB, BOB_PASSWORD)
    assert a.field("pid") != b.field("pid")
    assert b.field("uid") == NOBODY.pw_uid
    uids, _, groups, _ = proc_status(b.field("pid"))
    assert set(uids) == {str(NOBODY.pw_uid)} and groups == []
    a.close()
    b.close()


def test_pipelined_input_crosses_the_hand_over(host):
    s = host.login(data=b"echo early\r\ninfo\r\n")
    assert s.line() == "+OK early"
    assert s.line().startswith("+OK pid=")
    assert s.cmd("quit") == "+OK bye"
    s.close()


def test_login_tag_reaches_the_session(host):
    s = host.hand_over(host.token(), tag="a001")
    assert s.line().endswith(" tag=a001")
    s.close()
    s = host.login()
    assert s.greeting.endswith(" tag=")                # none: empty
    s.close()
    # a tag with a space (or a control character) is refused, the login too
    mine, theirs = socket.socketpair()
    sock, _ = phwire.connect(host.inst.queue / "private" / "sessecho", "login")
    socket.send_fds(sock, [b"F"], [theirs.fileno()])
    sock.sendall(phwire.encode([("token", host.token()), ("client_address", "a"),
                                ("client_port", "1"), ("input", ""), ("login_tag", "a b")]))
    assert closed(sock)
    theirs.close()
    mine.settimeout(10)
    assert mine.recv(10) == b""
    assert host.inst.count_log(r"hand-over from the login process: bad login_tag") == 1


def test_forged_and_replayed_tokens(host):
    s = host.hand_over("0" * 32)
    assert s.line() == "-ERR [AUTH] Authentication failed" and s.at_eof()
    token = host.token()
    s = host.hand_over(token)
    assert s.line().startswith("+OK user=")
    s.close()
    again = host.hand_over(token)
    assert again.line() == "-ERR [AUTH] Authentication failed" and again.at_eof()
    assert host.inst.count_log(r"token refused by auth") >= 2


def closed(sock):
    """The peer closed (maybe with our bytes unread: a reset)."""
    sock.settimeout(10)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_privileged_ids_are_refused(host):
    """the mail owner's uid (queue, auth's socket) never runs a session"""
    s = host.hand_over(host.token("owner@example.test", PASSWORD))
    assert s.line() == "-ERR [SYS/TEMP] try again later" and s.at_eof()
    assert host.inst.count_log(r"refusing the mail owner's uid") == 1


def test_bad_hand_over_is_dropped(host):
    # no descriptor: the dispatcher drops the login connection, and lives on
    sock, rd = phwire.connect(host.inst.queue / "private" / "sessecho", "login")
    sock.sendall(b"F" + phwire.encode([("token", "x")]))
    assert closed(sock)
    sock.close()
    # an unexpected attribute
    mine, theirs = socket.socketpair()
    sock, rd = phwire.connect(host.inst.queue / "private" / "sessecho", "login")
    socket.send_fds(sock, [b"F"], [theirs.fileno()])
    sock.sendall(phwire.encode([("token", "x"), ("client_address", "a"), ("client_port", "1"),
                                ("input", ""), ("user", ALICE)]))
    assert closed(sock)
    sock.close()
    theirs.close()
    mine.settimeout(10)
    assert mine.recv(10) == b""
    assert host.inst.count_log(r"hand-over from the login process: unexpected attribute") == 1
    host.login().close()


def test_limits_and_linger(host):
    a1 = host.login(service="sesssmall")
    a2 = host.login(service="sesssmall")
    a3 = host.login(service="sesssmall")             # the first worker is full
    assert a1.field("pid") == a2.field("pid") != a3.field("pid")
    b = host.hand_over(host.token(BOB, BOB_PASSWORD), "sesssmall")   # 2 workers: no more
    assert b.line() == "-ERR [SYS/TEMP] try again later" and b.at_eof()
    assert host.inst.count_log(r"imapd_worker_limit \(2\) reached") == 1
    first, second = a1.field("pid"), a3.field("pid")
    assert a3.cmd("quit") == "+OK bye"
    assert wait_gone(second, 5), "an idle worker outlived its linger"
    assert alive(first)
    a1.close()
    time.sleep(0.3)
    assert alive(first)                              # one session left
    a2.close()
    assert wait_gone(first, 5)
    # a new login after the linger gets a new worker
    s = host.login(service="sesssmall")
    assert s.field("pid") not in (first, second)
    s.close()


def test_reload_lets_sessions_finish_and_stop_ends_them(host):
    s = host.login()
    worker = s.field("pid")
    host.inst.reload()
    assert s.cmd("echo after reload") == "+OK after reload"
    # master's SIGHUP reaches the dispatcher, which closes the worker's
    # socket: the worker learns it a moment after reload() returns
    deadline = time.monotonic() + 5
    while (info := s.cmd("info")).endswith("retiring=no") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert info == f"+OK pid={worker} sessions=1 retiring=yes"
    t = host.login()                                # the new dispatcher, a new worker
    assert t.field("pid") != worker
    t.close()
    host.inst.stop(timeout=15)
    assert s.at_eof()
    assert wait_gone(worker, 5)

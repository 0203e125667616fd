"""POP3: pop3d-login (before login) and pop3d (after it) against a real
instance running auth, with Python's poplib and raw sockets.

Covers every command and its error paths, CAPA in both states, USER/PASS,
AUTH PLAIN (with and without an initial response), AUTH LOGIN, cancel,
the RFC 3206 codes ([AUTH], [IN-USE]), deletions only at QUIT and
durable, octet counts of messages stored with bare LF, dot-stuffing,
UIDL stable across sessions, pipelining across the hand-over, the
limits and deadlines of both halves, the login process's confinement
(as root, from /proc) and the hand-over's refusal of forged and replayed
tokens (talking to pop3d's socket directly with SCM_RIGHTS).
"""
import base64
import os
import pathlib
import poplib
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import time

import pytest

import mkinstance
import phwire
from conftest import BUILD, IS_ROOT, Instance, MASTER, free_port

USER = "alice@example.test"
OTHER = "bob@example.test"
PASSWORD = "correct horse 9"
OTHER_PASSWORD = "bobs-secret"
LOGIN_USER = "posthorn-login"

MSG1 = (b"From: a@example.test\nSubject: one\n\nline one\n.starts with a dot\n"
        b"..two dots\nlast line\n")                       # bare LF, dots
MSG2 = b"From: b@example.test\r\nSubject: two\r\n\r\nbody\r\n"   # CRLF already
MSG3 = b"Subject: three\n\n" + b"x" * 1500 + b"\nend\n"


def crlf(data):
    """data with every bare LF made CRLF: what POP3 counts and sends"""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


class Raw:
    """A line-oriented POP3 client on a raw socket."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.line()

    def line(self):
        got = self.f.readline(65536)
        if not got:
            raise EOFError("connection closed")
        assert got.endswith(b"\r\n"), got
        return got[:-2].decode()

    def multi(self):
        """The raw bytes of a multi-line body up to (not with) ".\\r\\n"."""
        out = b""
        while True:
            got = self.f.readline(1 << 20)
            if not got:
                raise EOFError("connection closed in a multi-line response")
            if got == b".\r\n":
                return out
            out += got

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.f.read(1) == b""
        except OSError:
            return False

    def close(self):
        self.f.close()
        self.sock.close()


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


class Pop3Instance:
    """An instance with auth, two POP3 services (the normal one, and one
    with one-second deadlines on both halves) and two users."""

    def __init__(self):
        mkinstance.service_accounts()       # auth_user, login_user (as root)
        self.inst = Instance(mail=True, mailboxes=[USER, OTHER], commands="link",
                             main={"auth_failure_delay": "10", "auth_failure_delay_max": "50"})
        self.port = free_port()
        self.short_port = free_port()
        self.mailroot = self.inst.layout.mailroot
        self.vmail = self.inst.layout.vmail_owner
        pw = pwd.getpwnam(self.vmail)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self._users_table()
        libexec = self.inst.libexec
        self.inst.write_master_cf(
            f"auth unix - - n - 1 {libexec}/auth\n"
            f"127.0.0.1:{self.port} inet n - n - - {libexec}/pop3d-login\n"
            f"pop3d unix - n n - - {libexec}/pop3d\n"
            f"127.0.0.1:{self.short_port} inet n - n - - {libexec}/pop3d-login\n"
            f"  -o pop3d_login_timeout=1 -o pop3d_login_service=pop3dshort\n"
            f"  -o pop3d_login_command_limit=5\n"
            f"pop3dshort unix - n n - - {libexec}/pop3d -o pop3d_idle_timeout=1\n"
            f"  -o pop3d_command_limit=4\n")

    def _users_table(self):
        """etc/users (users(5)) with both users, built with posthorn users"""
        lines = []
        for addr, password in ((USER, PASSWORD), (OTHER, OTHER_PASSWORD)):
            local, domain = addr.split("@")
            hashed = mkinstance._sha512_crypt(password)  # pylint: disable=protected-access
            lines.append(f"{addr}:{hashed}:{self.uid}:{self.gid}:"
                         f"{self.mailroot}/{domain}/{local}/:\n")
        users = self.inst.etc / "users"
        users.write_text("".join(lines))
        res = subprocess.run([str(self.inst.layout.bin / "posthorn"), "-c", str(self.inst.etc),
                              "users", f"cdb:{users}"], capture_output=True, text=True,
                             timeout=60, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        self.inst.set_main(auth_user_maps=f"cdb:{users}.auth")

    def maildir(self, addr=USER):
        local, domain = addr.split("@")
        return self.mailroot / domain / local

    def deliver(self, *messages, addr=USER):
        """Put messages into new/ as local-delivery would."""
        box = self.maildir(addr)
        for i, data in enumerate(messages):
            name = f"{int(time.time())}.M{i}P{os.getpid()}Q{secrets.token_hex(4)}.test"
            tmp = box / "tmp" / name
            tmp.write_bytes(data)
            if IS_ROOT:
                os.chown(tmp, self.uid, self.gid)
            os.rename(tmp, box / "new" / name)

    def files(self, addr=USER):
        box = self.maildir(addr)
        return sorted(p.name for d in ("new", "cur") for p in (box / d).iterdir())

    def pop(self, port=None):
        return poplib.POP3("127.0.0.1", port or self.port, timeout=10)

    def login(self, user=USER, password=PASSWORD, port=None):
        p = self.pop(port)
        p.user(user)
        p.pass_(password)
        return p

    def raw(self, port=None):
        r = Raw(port or self.port)
        assert r.line().startswith("+OK")
        return r

    def raw_login(self, port=None):
        r = self.raw(port)
        assert r.cmd(f"USER {USER}").startswith("+OK")
        assert r.cmd(f"PASS {PASSWORD}").startswith("+OK Logged in"), "login failed"
        return r


@pytest.fixture
def pop():
    for prog in ("auth", "pop3d", "pop3d-login"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    p = Pop3Instance()
    p.inst.start()
    try:
        yield p
    finally:
        p.inst.stop(timeout=15)
        shutil.rmtree(p.inst.dir, ignore_errors=True)


# ------------------------------------------------------------- before login
def test_greeting_and_capa_before_login(pop):
    p = pop.pop()
    welcome = p.getwelcome().decode()
    assert welcome.startswith("+OK") and "<" not in welcome      # no APOP time stamp
    capa = p.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
        assert cap in capa, capa
    assert capa["IMPLEMENTATION"] == ["posthorn"]
    assert {"PLAIN", "LOGIN"} <= set(capa["SASL"])
    p.quit()


def test_commands_before_login_are_refused(pop):
    r = pop.raw()
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"):
        assert r.cmd(cmd).startswith("-ERR Log in first"), cmd
    assert r.cmd("PASS x").startswith("-ERR Send USER first")
    assert r.cmd("USER").startswith("-ERR Syntax")
    assert r.cmd("APOP alice 0123").startswith("-ERR APOP")
    assert r.cmd("FROB").startswith("-ERR Unknown command")
    assert r.cmd("AUTH CRAM-MD5").startswith("-ERR Unsupported")
    assert r.cmd("X" * 2000).startswith("-ERR Line too long")
    assert r.cmd("QUIT").startswith("+OK")
    assert r.at_eof()


def test_bad_password_gets_the_auth_code(pop):
    p = pop.pop()
    p.user(USER)
    with pytest.raises(poplib.error_proto) as exc:
        p.pass_("wrong")
    assert exc.value.args[0].startswith(b"-ERR [AUTH]")
    p.user("nobody@example.test")
    with pytest.raises(poplib.error_proto) as exc2:
        p.pass_("wrong")
    assert exc2.value.args[0] == exc.value.args[0]           # the same answer
    # the connection is still usable
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat() == (0, 0)
    p.quit()


def test_failure_limit_closes_the_connection(pop):
    r = pop.raw()
    for _ in range(3):
        r.cmd(f"USER {USER}")
        assert r.cmd("PASS nope").startswith("-ERR [AUTH]")
    assert r.line().startswith("-ERR Too many failed logins")
    assert r.at_eof()


def test_auth_plain_with_initial_response(pop):
    pop.deliver(MSG2)
    r = pop.raw()
    got = r.cmd("AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}"))
    assert got.startswith("+OK Logged in, 1 message"), got
    assert r.cmd("STAT") == f"+OK 1 {len(MSG2)}"
    assert r.cmd("QUIT").startswith("+OK")


def test_auth_plain_without_initial_response_and_cancel(pop):
    r = pop.raw()
    assert r.cmd("AUTH PLAIN") == "+ "
    assert r.cmd("*").startswith("-ERR")
    assert r.cmd("AUTH PLAIN") == "+ "
    assert r.cmd(b64(f"\0{USER}\0wrong")).startswith("-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN") == "+ "
    assert r.cmd(b64(f"\0{USER}\0{PASSWORD}")).startswith("+OK Logged in")
    r.close()


def test_auth_login(pop):
    r = pop.raw()
    got = r.cmd("AUTH LOGIN")
    assert got.startswith("+ "), got
    got = r.cmd(b64(USER))
    assert got.startswith("+ "), got
    assert r.cmd(b64(PASSWORD)).startswith("+OK Logged in")
    assert r.cmd("NOOP").startswith("+OK")
    r.close()


# ----------------------------------------------------------- after login
def test_stat_list_retr_top_octets_and_dot_stuffing(pop):
    pop.deliver(MSG1, MSG2, MSG3)
    p = pop.login()
    sizes = [len(crlf(m)) for m in (MSG1, MSG2, MSG3)]
    assert p.stat() == (3, sum(sizes))
    _, listing, _ = p.list()
    assert [int(x.split()[1]) for x in listing] == sizes
    assert p.list(2) == f"+OK 2 {sizes[1]}".encode()
    resp, lines, octets = p.retr(1)
    assert resp == f"+OK {sizes[0]} octets".encode()
    assert b"\r\n".join(lines) + b"\r\n" == crlf(MSG1)
    assert octets == sizes[0]
    resp, lines, _ = p.top(3, 1)
    assert lines == [b"Subject: three", b"", b"x" * 1500]
    resp, lines, _ = p.top(1, 0)
    assert lines == [b"From: a@example.test", b"Subject: one", b""]
    p.quit()

    # the bytes on the wire: CRLF everywhere, dots doubled
    r = pop.raw_login()
    r.send("RETR 1\r\n")
    assert r.line() == f"+OK {sizes[0]} octets"
    wire = r.multi()
    assert wire == crlf(MSG1).replace(b"\r\n.", b"\r\n..")
    assert b"\r\n..starts with a dot\r\n...two dots\r\n" in wire
    assert b"\n" not in wire.replace(b"\r\n", b"")
    r.cmd("QUIT")


def test_capa_after_login(pop):
    p = pop.login()
    capa = p.capa()
    assert "UIDL" in capa and "TOP" in capa and "PIPELINING" in capa
    assert "USER" not in capa and "SASL" not in capa
    p.quit()


def test_errors_after_login(pop):
    pop.deliver(MSG1, MSG2)
    r = pop.raw_login()
    for cmd, want in (("RETR 0", "-ERR No such message"), ("RETR 3", "-ERR No such message"),
                      ("RETR x", "-ERR Invalid message number"), ("RETR", "-ERR Syntax"),
                      ("RETR 1 2", "-ERR Syntax"), ("LIST 9", "-ERR No such message"),
                      ("UIDL -1", "-ERR Invalid message number"), ("TOP 1", "-ERR Syntax"),
                      ("TOP 1 x", "-ERR Invalid number of lines"), ("STAT 1", "-ERR Syntax"),
                      ("DELE", "-ERR Syntax"), ("NOOP x", "-ERR Syntax"),
                      ("USER x", "-ERR Already logged in"), ("AUTH PLAIN", "-ERR Already logged in"),
                      ("FROB", "-ERR Unknown command"), ("X" * 2000, "-ERR Line too long")):
        got = r.cmd(cmd)
        assert got.startswith(want), (cmd, got)
    assert r.cmd("DELE 1") == "+OK Message 1 deleted"
    assert r.cmd("DELE 1").startswith("-ERR Message 1 is deleted")
    assert r.cmd("RETR 1").startswith("-ERR Message 1 is deleted")
    assert r.cmd("LIST 1").startswith("-ERR Message 1 is deleted")
    assert r.cmd("STAT") == f"+OK 1 {len(MSG2)}"
    assert r.cmd("RSET").startswith("+OK 2 messages")
    assert r.cmd("STAT") == f"+OK 2 {len(crlf(MSG1)) + len(MSG2)}"
    assert r.cmd("RETR 1").startswith("+OK")
    r.multi()
    assert r.cmd("QUIT") == "+OK Bye"
    assert r.at_eof()
    assert len(pop.files()) == 2


def test_deletions_only_at_quit_and_durable(pop):
    pop.deliver(MSG1, MSG2, MSG3)
    r = pop.raw_login()
    assert r.cmd("DELE 1").startswith("+OK")
    assert r.cmd("DELE 3").startswith("+OK")
    r.close()                                   # no QUIT: nothing deleted
    time.sleep(0.3)
    assert len(pop.files()) == 3
    p = pop.login()
    assert p.stat()[0] == 3
    p.dele(1)
    p.dele(3)
    resp = p.quit()
    assert resp.startswith(b"+OK")
    # gone from the directory when the +OK came
    assert len(pop.files()) == 1
    p = pop.login()
    assert p.stat() == (1, len(MSG2))
    assert b"\r\n".join(p.retr(1)[1]) + b"\r\n" == MSG2
    p.quit()


def test_uidl_is_stable_across_sessions(pop):
    pop.deliver(MSG1, MSG2, MSG3)
    p = pop.login()
    _, first, _ = p.uidl()
    one = p.uidl(2)
    p.dele(1)
    p.quit()
    ids = [x.split()[1] for x in first]
    assert len(set(ids)) == 3 and all(re.fullmatch(rb"[0-9A-F]{16}", i) for i in ids)
    assert one.split()[2] == ids[1]
    pop.deliver(MSG1)
    p = pop.login()
    _, second, _ = p.uidl()
    p.quit()
    again = [x.split()[1] for x in second]
    assert again[:2] == ids[1:]                   # the old ones keep their ids
    assert again[2] not in ids                     # a new message, a new id


def test_second_session_gets_in_use(pop):
    p = pop.login()
    r = pop.raw()
    r.cmd(f"USER {USER}")
    got = r.cmd(f"PASS {PASSWORD}")
    assert got.startswith("-ERR [IN-USE]"), got
    assert r.at_eof()
    # another user's mailbox is not affected
    q = pop.login(OTHER, OTHER_PASSWORD)
    q.quit()
    p.quit()
    # the lock went with the session
    pop.login().quit()


def test_pipelined_commands_cross_the_hand_over(pop):
    pop.deliver(MSG2)
    r = pop.raw()
    r.send(f"CAPA\r\nUSER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nUIDL 1\r\nQUIT\r\n")
    assert r.line().startswith("+OK")
    r.multi()
    assert r.line().startswith("+OK")
    assert r.line().startswith("+OK Logged in")
    assert r.line() == f"+OK 1 {len(MSG2)}"
    assert r.line().startswith("+OK 1 ")
    assert r.line().startswith("+OK Bye")
    assert r.at_eof()


def test_deadlines_and_command_limits(pop):
    r = pop.raw(pop.short_port)
    t0 = time.monotonic()
    assert r.line().startswith("-ERR Timeout")
    assert r.at_eof() and time.monotonic() - t0 < 5
    r = pop.raw(pop.short_port)
    for _ in range(5):
        r.cmd("CAPA") and r.multi()
    assert r.cmd("NOOP").startswith("-ERR Too many commands")
    assert r.at_eof()
    # after login: pop3d's own deadline and limit
    r = pop.raw_login(pop.short_port)
    assert r.line().startswith("-ERR Timeout")
    assert r.at_eof()
    r = pop.raw_login(pop.short_port)
    for _ in range(4):
        assert r.cmd("NOOP").startswith("+OK")
    assert r.cmd("NOOP").startswith("-ERR Too many commands")
    assert r.at_eof()


# ------------------------------------------------------- the hand-over
def _auth_token(pop):
    """A real token, straight from auth (as pop3d-login gets it)."""
    sock, rd = phwire.connect(pop.inst.queue / "private" / "auth", "auth")
    sock.sendall(phwire.encode([("request", "auth"), ("service", "pop3"),
                                ("mechanism", "PLAIN"), ("client_address", "127.0.0.1"),
                                ("response", b64(f"\0{USER}\0{PASSWORD}"))]))
    reply = rd.message_dict()
    sock.close()
    assert reply["status"] == "ok", reply
    return reply["token"]


def _hand_over(pop, token):
    """Pass one end of a socketpair to pop3d with token; the other end."""
    mine, theirs = socket.socketpair()
    mine.settimeout(10)
    sock, rd = phwire.connect(pop.inst.queue / "private" / "pop3d", "login")
    socket.send_fds(sock, [b"F"], [theirs.fileno()])
    sock.sendall(phwire.encode([("token", token), ("client_address", "192.0.2.1"),
                                ("client_port", "1"), ("input", "")]))
    assert rd.message_dict() == {"status": "ok"}
    sock.close()
    theirs.close()
    return mine


def _first_line(sock):
    data = b""
    while not data.endswith(b"\r\n"):
        got = sock.recv(4096)
        if not got:
            break
        data += got
    return data.decode()


def test_forged_token_gets_nothing(pop):
    pop.deliver(MSG1)
    for token in (secrets.token_hex(16), "", "x" * 200):
        mine = _hand_over(pop, token)
        got = _first_line(mine)
        assert got.startswith("-ERR [AUTH]"), got
        assert mine.recv(10) == b""
        mine.close()
    assert pop.inst.count_log(r"token refused by auth") >= 3


def test_replayed_token_gets_nothing(pop):
    pop.deliver(MSG1)
    token = _auth_token(pop)
    mine = _hand_over(pop, token)
    assert _first_line(mine).startswith("+OK Logged in, 1 message")
    mine.sendall(b"QUIT\r\n")
    assert _first_line(mine).startswith("+OK")
    mine.close()
    again = _hand_over(pop, token)
    assert _first_line(again).startswith("-ERR [AUTH]")
    again.close()


# ------------------------------------------------------- confinement
def _login_pids(pop):
    out = []
    for pid in pop.inst.children():
        try:
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"pop3d-login"):
            out.append(pid)
    return out


@pytest.mark.skipif(not IS_ROOT, reason="confinement needs root")
def test_login_process_is_confined(pop):
    r = pop.raw()                              # a live pop3d-login serves it
    pids = _login_pids(pop)
    assert pids
    login = pwd.getpwnam(LOGIN_USER)
    for pid in pids:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
        uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
        groups = re.search(r"^Groups:[ \t]*(.*)$", status, re.M).group(1).split()
        assert set(uids) == {str(login.pw_uid)}, uids
        assert set(gids) == {str(login.pw_gid)}, gids
        assert groups == []
        root = os.readlink(f"/proc/{pid}/root")
        assert root == str(pop.inst.queue / "login")
        # the chroot holds the two socket links and nothing else
        assert set(os.listdir(root)) <= {"auth", "pop3d", "pop3dshort"}
    r.close()

    # a process with the login uid cannot open a Maildir
    pop.deliver(MSG1)
    box = pop.maildir()
    target = next((box / "new").iterdir(), None) or next((box / "cur").iterdir())
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setgid(login.pw_gid)
            os.setuid(login.pw_uid)
            for attempt in (lambda: os.listdir(box / "cur"), lambda: open(target, "rb")):
                try:
                    attempt()
                    code = 1
                except PermissionError:
                    pass
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the login uid could read the Maildir"


@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_pop3d_runs_as_the_mailbox_owner(pop):
    r = pop.raw_login()
    deadline = time.monotonic() + 5
    seen = []
    while time.monotonic() < deadline and not seen:
        for pid in pop.inst.processes():        # the session is pop3d's child
            try:
                cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                status = pathlib.Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
            if cmd[0].endswith(b"/pop3d") and set(uids) == {str(pop.uid)}:
                seen.append(status)
        time.sleep(0.1)
    assert seen, "no pop3d process runs as the mailbox owner"
    assert re.search(r"^Groups:[ \t]*$", seen[0], re.M)
    r.cmd("QUIT")


def test_session_children_follow_reload_and_stop(pop):
    """A session lives in a child of pop3d: a reload lets it finish, a
    stop ends it, and nothing of it is left behind."""
    pop.deliver(MSG2)
    r = pop.raw_login()
    pop.inst.reload()
    assert r.cmd("STAT") == f"+OK 1 {len(MSG2)}"        # survived the reload
    pop.login(OTHER, OTHER_PASSWORD).quit()             # new logins still work
    pop.inst.stop(timeout=15)
    assert r.at_eof()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pop.inst.processes():
        time.sleep(0.1)
    assert pop.inst.processes() == []


def _worker_pid(pop):
    """the pid of the pop3d worker: of pop3d's two processes (the
    dispatcher and the one worker of the test's uid), the younger"""
    pids = []
    for pid in pop.inst.processes():
        try:
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[0].endswith(b"/pop3d"):
            pids.append(pid)
    assert len(pids) == 2, f"want a dispatcher and a worker, got {pids}"
    return max(pids, key=lambda p: int(pathlib.Path(f"/proc/{p}/stat").read_text()
                                       .rsplit(")", 1)[1].split()[19]))


def _private_kib(pid):
    """KiB of private dirty anonymous memory (the heap and mapped blocks)"""
    total, anon = 0, False
    for line in pathlib.Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            fields = line.split()
            anon = len(fields) < 6 or fields[5] == "[heap]"
        elif anon and line.startswith("Private_Dirty:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(bool(os.environ.get("POSTHORN_SANITIZED")),
                    reason="ASan's allocator replaces glibc's: its heap is not what is measured")
def test_worker_gives_back_a_big_sessions_memory(pop):
    """A worker lives on after a session of a big mailbox: the snapshot
    (3,000 messages here, ~200 bytes each) goes back to the system when
    the session ends, instead of staying resident (glibc's heap keeps
    freed memory unless trimmed, and its moving mmap threshold puts the
    next big block in the heap)."""
    pop.deliver(MSG2)
    keep = pop.raw_login()                      # holds the worker between sessions
    worker = _worker_pid(pop)
    before = _private_kib(worker)
    pop.deliver(*[b"Subject: %d\n\nbody %d\n" % (i, i) for i in range(3000)], addr=OTHER)
    for _ in range(2):
        p = pop.login(OTHER, OTHER_PASSWORD)
        assert p.stat()[0] == 3000
        assert len(p.list()[1]) == 3000 and len(p.uidl()[1]) == 3000
        for i in range(1, 3001, 7):
            p.retr(i)
        p.quit()
    assert _worker_pid(pop) == worker          # one uid: one worker for both
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _private_kib(worker) - before > 120:
        keep.cmd("NOOP")                        # the trim may come from a timer
        time.sleep(0.2)
    grown = _private_kib(worker) - before
    assert grown <= 120, f"the worker kept {grown} KiB after the sessions ended"
    keep.cmd("QUIT")

"""imapd-login: the IMAP server before login (login_front), against a
real instance with auth and imapd, with raw sockets and imaplib.

Covers the greeting with CAPABILITY, every pre-auth command (CAPABILITY,
NOOP, LOGOUT, ID, LOGIN with atoms, quoted strings, synchronising and
non-synchronising literals, AUTHENTICATE with and without SASL-IR,
continuations and "*" cancel), bad syntax answered BAD, the limits
(commands, failures, line length, literal size, the wait for a command),
the tagged OK written by imapd after the hand-over, pipelining across
it, the confinement of the login process (as root, from /proc), and the
refusal of forged and replayed tokens by imapd."""
import base64
import imaplib
import os
import pathlib
import pwd
import re
import secrets
import shutil
import socket
import time

import pytest

import mkinstance
import phwire
from conftest import BUILD, IS_ROOT, MASTER, Instance, free_port, proc_cmdline

USER = "carol@example.test"
PASSWORD = "imap pass 7"
LOGIN_USER = "posthorn-login"


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


class Raw:
    """A line-oriented IMAP client on a raw socket."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        got = self.f.readline(65536)
        if not got:
            raise EOFError("connection closed")
        assert got.endswith(b"\r\n"), got
        return got[:-2].decode(errors="replace")

    def until(self, tag):
        """lines up to and with the one tagged tag"""
        out = []
        while True:
            out.append(self.line())
            if out[-1].startswith(tag + " "):
                return out

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.f.read(1) == b""
        except OSError:
            return False

    def close(self):
        self.f.close()
        self.sock.close()


class ImapLoginInstance:
    """auth, imapd-login (normal, and one with short limits), imapd."""

    def __init__(self):
        mkinstance.service_accounts()
        self.inst = Instance(mail=True, mailboxes=[USER], commands="link",
                             main={"auth_failure_delay": "10", "auth_failure_delay_max": "50"})
        self.port = free_port()
        self.short_port = free_port()
        self.mailroot = self.inst.layout.mailroot
        pw = pwd.getpwnam(self.inst.layout.vmail_owner)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        local, domain = USER.split("@")
        hashed = mkinstance._sha512_crypt(PASSWORD)  # pylint: disable=protected-access
        users = self.inst.etc / "users"
        users.write_text(f"{USER}:{hashed}:{self.uid}:{self.gid}:"
                         f"{self.mailroot}/{domain}/{local}/:\n")
        subprocess_run([str(self.inst.layout.bin / "posthorn"), "-c", str(self.inst.etc),
                        "users", f"cdb:{users}"])
        self.inst.set_main(auth_user_maps=f"cdb:{users}.auth")
        libexec = self.inst.libexec
        self.inst.write_master_cf(
            f"auth unix - - n - 1 {libexec}/auth\n"
            f"127.0.0.1:{self.port} inet n - n - 1 {libexec}/imapd-login\n"
            f"127.0.0.1:{self.short_port} inet n - n - 1 {libexec}/imapd-login\n"
            f"  -o imapd_login_timeout=1 -o imapd_login_command_limit=5\n"
            f"  -o imapd_login_line_limit=300 -o imapd_login_literal_limit=100\n"
            f"  -o imapd_login_disabled=yes\n"
            f"imapd unix - n n - - {libexec}/imapd\n")

    def maildir(self):
        local, domain = USER.split("@")
        return self.mailroot / domain / local

    def raw(self, port=None):
        r = Raw(port or self.port)
        greeting = r.line()
        assert greeting.startswith("* OK [CAPABILITY IMAP4rev1 "), greeting
        return r


def subprocess_run(argv):
    import subprocess  # pylint: disable=import-outside-toplevel
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture
def il():
    for prog in ("auth", "imapd", "imapd-login"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    i = ImapLoginInstance()
    i.inst.start()
    try:
        yield i
    finally:
        i.inst.stop(timeout=15)
        shutil.rmtree(i.inst.dir, ignore_errors=True)


CAPS = ("IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE AUTH=PLAIN AUTH=LOGIN "
        "AUTH=SCRAM-SHA-256")


def logged_in(lines, tag):
    """imapd's tagged OK after the hand-over"""
    last = lines[-1]
    assert last.startswith(f"{tag} OK [CAPABILITY IMAP4rev1"), lines
    assert last.endswith("Logged in"), lines
    return last


# ------------------------------------------------------------ pre-auth
def test_greeting_capability_noop_id_logout(il):
    r = Raw(il.port)
    assert r.line() == f"* OK [CAPABILITY {CAPS}] posthorn IMAP ready"
    assert r.cmd("c1", "CAPABILITY") == [f"* CAPABILITY {CAPS}", "c1 OK CAPABILITY completed"]
    assert r.cmd("c2", "capability") == [f"* CAPABILITY {CAPS}", "c2 OK CAPABILITY completed"]
    assert r.cmd("n1", "NOOP") == ["n1 OK NOOP completed"]
    assert r.cmd("i1", "ID NIL") == ['* ID ("name" "posthorn")', "i1 OK ID completed"]
    assert r.cmd("i2", 'ID ("name" "test" "version" NIL)')[-1] == "i2 OK ID completed"
    assert r.cmd("i3", 'ID ("name")')[-1].startswith("i3 BAD")
    assert r.cmd("i4", "ID")[-1].startswith("i4 BAD")
    assert r.cmd("l1", "LOGOUT") == ["* BYE Logging out", "l1 OK LOGOUT completed"]
    assert r.at_eof()
    r.close()


def test_bad_syntax_and_state(il):
    r = il.raw()
    assert r.cmd("b1", "NOOP extra")[-1].startswith("b1 BAD")
    assert r.cmd("b2", "LOGIN onlyone")[-1].startswith("b2 BAD")
    assert r.cmd("b3", 'LOGIN "unterminated')[-1].startswith("b3 BAD")
    assert r.cmd("b4", "FROB")[-1] == "b4 BAD Unknown command"
    assert r.cmd("b5", "SELECT INBOX")[-1] == "b5 BAD Log in first (LOGIN or AUTHENTICATE)"
    assert r.cmd("b6", "AUTHENTICATE")[-1].startswith("b6 BAD")
    assert r.cmd("b7", "AUTHENTICATE CRAM-MD5")[-1].startswith("b7 NO")
    assert r.cmd("b8", "STARTTLS")[-1].startswith("b8 BAD")
    r.send("\r\n")
    assert r.line().startswith("* BAD")
    r.send("(((\r\n")
    assert r.line().startswith("* BAD")
    assert r.cmd("b9", "NOOP") == ["b9 OK NOOP completed"]
    r.close()


def test_login_atom_then_session(il):
    r = il.raw()
    lines = r.cmd("a1", f"LOGIN {USER} \"{PASSWORD}\"")
    logged_in(lines, "a1")
    lines = r.cmd("a2", "SELECT INBOX")
    assert lines[-1].startswith("a2 OK"), lines
    assert r.cmd("a3", "LOGOUT")[-1].startswith("a3 OK")
    r.close()


def test_imaplib_login(il):
    m = imaplib.IMAP4("127.0.0.1", il.port, timeout=10)
    assert "AUTH=PLAIN" in m.capabilities
    typ, _ = m.login(USER, PASSWORD)
    assert typ == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"0"]
    m.logout()


def test_login_literals_sync_and_nonsync(il):
    r = il.raw()
    r.send(f"s1 LOGIN {{{len(USER)}}}\r\n")
    assert r.line().startswith("+ ")
    r.send(f"{USER} {{{len(PASSWORD)}}}\r\n")
    assert r.line().startswith("+ ")
    r.send(f"{PASSWORD}\r\n")
    logged_in(r.until("s1"), "s1")
    r.close()
    r = il.raw()
    r.send(f"s2 LOGIN {{{len(USER)}+}}\r\n{USER} {{{len(PASSWORD)}+}}\r\n{PASSWORD}\r\n")
    logged_in(r.until("s2"), "s2")
    r.close()


def test_authenticate_plain_login_and_cancel(il):
    plain = b64(f"\0{USER}\0{PASSWORD}")
    r = il.raw()
    logged_in(r.cmd("p1", f"AUTHENTICATE PLAIN {plain}"), "p1")     # SASL-IR
    r.close()
    r = il.raw()
    r.send("p2 AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send(plain + "\r\n")
    logged_in(r.until("p2"), "p2")
    r.close()
    r = il.raw()
    r.send("p3 authenticate login\r\n")
    assert r.line() == "+ " + b64("Username:")
    r.send(b64(USER) + "\r\n")
    assert r.line() == "+ " + b64("Password:")
    r.send(b64(PASSWORD) + "\r\n")
    logged_in(r.until("p3"), "p3")
    r.close()
    r = il.raw()
    r.send("p4 AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send("*\r\n")
    assert r.line() == "p4 BAD Authentication cancelled"
    assert r.cmd("p5", "NOOP") == ["p5 OK NOOP completed"]
    r.close()


def test_failures_and_failure_limit(il):
    r = il.raw()
    assert r.cmd("f1", f"LOGIN {USER} wrong") == [
        "f1 NO [AUTHENTICATIONFAILED] Authentication failed"]
    assert r.cmd("f2", f"AUTHENTICATE PLAIN {b64('x' * 3)}")[-1].startswith("f2 NO")
    lines = r.cmd("f3", "LOGIN nobody@example.test x")
    assert lines[-1] == "f3 NO [AUTHENTICATIONFAILED] Authentication failed"
    assert r.line() == "* BYE Too many failed logins"
    assert r.at_eof()
    r.close()


def test_pipelined_commands_travel_with_the_hand_over(il):
    r = il.raw()
    r.send(f"q1 LOGIN {USER} \"{PASSWORD}\"\r\nq2 SELECT INBOX\r\nq3 NOOP\r\n")
    logged_in(r.until("q1"), "q1")
    assert r.until("q2")[-1].startswith("q2 OK")
    assert r.until("q3")[-1].startswith("q3 OK")
    r.close()


def test_limits(il):
    # the command limit (5), then BYE
    r = il.raw(il.short_port)
    for i in range(5):
        assert r.cmd(f"n{i}", "NOOP") == [f"n{i} OK NOOP completed"]
    r.send("n5 NOOP\r\n")
    assert r.line() == "* BYE Too many commands"
    assert r.at_eof()
    r.close()
    # a line over imapd_login_line_limit, a literal over the literal limit
    r = il.raw(il.short_port)
    r.send("t1 NOOP " + "x" * 400 + "\r\n")
    assert r.line() == "* BAD Command line too long"
    r.send("t2 LOGIN {500}\r\n")
    assert r.line().startswith("t2 BAD")
    r.send("t3 LOGIN {500+}\r\n" + "y" * 500 + "\r\n")
    assert r.line().startswith("t3 BAD")
    assert r.cmd("t4", "NOOP") == ["t4 OK NOOP completed"]
    r.close()
    # LOGINDISABLED by policy
    r = Raw(il.short_port)
    assert "LOGINDISABLED" in r.line()
    assert r.cmd("d1", f"LOGIN {USER} x")[-1].startswith("d1 NO")
    r.close()
    # the wait for a command (1 s)
    r = il.raw(il.short_port)
    t0 = time.monotonic()
    assert r.line() == "* BYE Autologout; idle for too long"
    assert 0.8 < time.monotonic() - t0 < 4
    assert r.at_eof()
    r.close()


# ------------------------------------------------------------ trust
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_login_process_is_confined(il):
    r = il.raw()
    pids = [pid for pid in il.inst.children(f"127.0.0.1:{il.port}")
            if proc_cmdline(pid)[0].endswith(b"imapd-login")]
    assert len(pids) == 1, pids
    login = pwd.getpwnam(LOGIN_USER)
    status = pathlib.Path(f"/proc/{pids[0]}/status").read_text()
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
    gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
    groups = re.search(r"^Groups:[ \t]*(.*)$", status, re.M).group(1).split()
    assert set(uids) == {str(login.pw_uid)}, uids
    assert set(gids) == {str(login.pw_gid)}, gids
    assert groups == []
    root = os.readlink(f"/proc/{pids[0]}/root")
    assert root == str(il.inst.queue / "login")
    assert set(os.listdir(root)) <= {"auth", "imapd", "pop3d"}
    # nothing of the mail store is inside its root
    assert not os.path.exists(f"/proc/{pids[0]}/root{il.maildir()}")
    r.close()
    # a process with the login uid cannot open a Maildir
    box = il.maildir()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setgid(login.pw_gid)
            os.setuid(login.pw_uid)
            try:
                os.listdir(box / "cur")
                code = 1
            except PermissionError:
                pass
        finally:
            os._exit(code)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0, "the login uid could read the Maildir"


def _token(il):
    sock, rd = phwire.connect(il.inst.queue / "private" / "auth", "auth")
    sock.sendall(phwire.encode([("request", "auth"), ("service", "imap"),
                                ("mechanism", "PLAIN"), ("client_address", "127.0.0.1"),
                                ("response", b64(f"\0{USER}\0{PASSWORD}"))]))
    reply = rd.message_dict()
    sock.close()
    assert reply["status"] == "ok", reply
    return reply["token"]


def _hand_over(il, token, tag="h1"):
    mine, theirs = socket.socketpair()
    mine.settimeout(10)
    sock, rd = phwire.connect(il.inst.queue / "private" / "imapd", "login")
    socket.send_fds(sock, [b"F"], [theirs.fileno()])
    sock.sendall(phwire.encode([("token", token), ("client_address", "192.0.2.1"),
                                ("client_port", "1"), ("input", b"x1 SELECT INBOX\r\n"),
                                ("login_tag", tag)]))
    assert rd.message_dict() == {"status": "ok"}
    sock.close()
    theirs.close()
    return mine


def _all(sock):
    out = b""
    while True:
        try:
            got = sock.recv(4096)
        except socket.timeout:
            break
        if not got:
            break
        out += got
    return out


def test_forged_and_replayed_tokens_get_nothing(il):
    forged = _all(_hand_over(il, secrets.token_hex(16)))
    assert forged.startswith(b"* BYE"), forged
    assert b"OK" not in forged and b"EXISTS" not in forged
    token = _token(il)
    good = _hand_over(il, token)
    first = good.recv(4096)
    assert first.startswith(b"h1 OK [CAPABILITY"), first
    good.close()
    replayed = _all(_hand_over(il, token))
    assert replayed.startswith(b"* BYE"), replayed
    assert b"EXISTS" not in replayed and b"h1 OK" not in replayed

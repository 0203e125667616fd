"""IMAP after login: imapd (the session, selected state, every message
command and extension it owns) against a real instance running auth,
with Python's imaplib and raw sockets.

Sessions reach imapd in two ways: through imapd-login on TCP (the real
path, when imapd-login is built), and by a hand-over made here (a token
straight from auth, the client's end of a socketpair passed to imapd's
socket with SCM_RIGHTS and the login tag), so that imapd is tested on
its own. Covers: the tagged OK of the login written by imapd, SELECT /
EXAMINE, FETCH (every item, sections, partials, \\Seen), STORE (+/-,
.SILENT, UNCHANGEDSINCE), SEARCH (keys, CHARSET, ESEARCH, MODSEQ),
COPY/MOVE (COPYUID), APPEND (sync and non-sync literals, flags, date,
APPENDUID), EXPUNGE / UID EXPUNGE, CLOSE, UNSELECT, IDLE with a
delivery, untagged updates across two sessions, ENABLE, ID, CAPABILITY,
bad syntax, a client that disconnects mid-literal, the bounds.
"""
import base64
import imaplib
import io
import os
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
QUSER = "quinn@example.test"     # a user with a quota of QUOTA bytes
QUSER_PASSWORD = "quinn-pass"
QUOTA = 4000

MSG1 = (b"From: Alice <alice@example.test>\nTo: bob@example.test\n"
        b"Subject: first one\nDate: Mon, 7 Feb 1994 21:52:25 -0800\n"
        b"Message-ID: <m1@example.test>\n\nHello there\nsecond line\n")
MSG2 = (b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
        b"Date: Tue, 8 Feb 1994 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"K=C3=A4se und Brot\r\n--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--XX--\r\n")
MSG3 = b"Subject: three\n\n" + b"x" * 3000 + b"\nend\n"


def crlf(data):
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


class Raw:
    """An IMAP client on a raw socket: lines and literals."""

    def __init__(self, sock, timeout=10):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.f = sock.makefile("rb")
        self.n = 0

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """one response line, literals included inline (as bytes)"""
        got = self.f.readline(1 << 20)
        if not got:
            raise EOFError("connection closed")
        assert got.endswith(b"\r\n"), got
        out = got
        m = re.search(rb"\{(\d+)\}\r\n$", got)
        while m:
            out += self.f.read(int(m.group(1)))
            rest = self.f.readline(1 << 20)
            if not rest:
                raise EOFError("connection closed in a literal")
            out += rest
            m = re.search(rb"\{(\d+)\}\r\n$", rest)
        return out

    def cmd(self, text, tag=None):
        """send "tag text"; all lines up to the tagged one"""
        self.n += 1
        tag = tag or f"t{self.n}"
        self.send(f"{tag} {text}\r\n" if isinstance(text, str) else tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag.encode() + b" "):
                return lines

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                got = self.sock.recv(4096)
                if not got:
                    return True
        except OSError:
            return False

    def close(self):
        self.f.close()
        self.sock.close()


def tagged(lines):
    return lines[-1].decode(errors="replace")


class ImapInstance:
    """An instance with auth, imapd (and imapd-login when built), two users."""

    def __init__(self):
        mkinstance.service_accounts()
        self.inst = Instance(mail=True, mailboxes=[USER, OTHER, QUSER], commands="link",
                             main={"auth_failure_delay": "10", "auth_failure_delay_max": "50"})
        self.port = free_port()
        self.mailroot = self.inst.layout.mailroot
        self.vmail = self.inst.layout.vmail_owner
        pw = pwd.getpwnam(self.vmail)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self._users_table()
        libexec = self.inst.libexec
        login = ""
        if (BUILD / "libexec" / "imapd-login").exists():
            login = f"127.0.0.1:{self.port} inet n - n - - {libexec}/imapd-login\n"
        self.inst.write_master_cf(
            f"auth unix - - n - 1 {libexec}/auth\n"
            + login
            + f"imapd unix - n n - - {libexec}/imapd\n"
            f"imapdshort unix - n n - - {libexec}/imapd -o imapd_idle_timeout=60\n"
            f"  -o imapd_bad_command_limit=3 -o imapd_line_limit=2048"
            f" -o message_size_limit=100000\n"
            f"imapdidle unix - n n - - {libexec}/imapd -o imapd_idle_timeout=2\n")

    def _users_table(self):
        lines = []
        for addr, password, quota in ((USER, PASSWORD, ""), (OTHER, OTHER_PASSWORD, ""),
                                      (QUSER, QUSER_PASSWORD, str(QUOTA))):
            local, domain = addr.split("@")
            hashed = mkinstance._sha512_crypt(password)  # pylint: disable=protected-access
            lines.append(f"{addr}:{hashed}:{self.uid}:{self.gid}:"
                         f"{self.mailroot}/{domain}/{local}/:{quota}\n")
        users = self.inst.etc / "users"
        users.write_text("".join(lines))
        res = subprocess.run([str(self.inst.layout.bin / "posthorn"), "-c", str(self.inst.etc),
                              "users", f"cdb:{users}"], capture_output=True, text=True,
                             timeout=60, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        self.inst.set_main(auth_user_maps=f"cdb:{users}.auth")

    def maildir(self, addr=USER, folder=None):
        local, domain = addr.split("@")
        box = self.mailroot / domain / local
        return box / f".{folder}" if folder else box

    def deliver(self, *messages, addr=USER, folder=None):
        box = self.maildir(addr, folder)
        for i, data in enumerate(messages):
            name = f"{int(time.time())}.M{i}P{os.getpid()}Q{secrets.token_hex(4)}.test"
            tmp = box / "tmp" / name
            tmp.write_bytes(data)
            if IS_ROOT:
                os.chown(tmp, self.uid, self.gid)
            os.rename(tmp, box / "new" / name)

    def files(self, addr=USER, folder=None):
        box = self.maildir(addr, folder)
        return sorted(p.name for d in ("new", "cur") for p in (box / d).iterdir())

    def token(self, user=USER, password=PASSWORD):
        sock, rd = phwire.connect(self.inst.queue / "private" / "auth", "auth")
        sock.sendall(phwire.encode([("request", "auth"), ("service", "imap"),
                                    ("mechanism", "PLAIN"), ("client_address", "127.0.0.1"),
                                    ("response", b64(f"\0{user}\0{password}"))]))
        reply = rd.message_dict()
        sock.close()
        assert reply["status"] == "ok", reply
        return reply["token"]

    def hand_over(self, token=None, tag="a1", input_=b"", service="imapd"):
        """the client's end of a session handed to imapd"""
        token = token or self.token()
        mine, theirs = socket.socketpair()
        mine.settimeout(10)
        sock, rd = phwire.connect(self.inst.queue / "private" / service, "login")
        socket.send_fds(sock, [b"F"], [theirs.fileno()])
        attrs = [("token", token), ("client_address", "192.0.2.1"), ("client_port", "1"),
                 ("input", input_)]
        if tag:
            attrs.append(("login_tag", tag))
        sock.sendall(phwire.encode(attrs))
        assert rd.message_dict() == {"status": "ok"}
        sock.close()
        theirs.close()
        return mine

    def raw(self, service="imapd", input_=b""):
        """a logged-in raw session (the login's tagged OK consumed)"""
        r = Raw(self.hand_over(tag="a0", service=service, input_=input_))
        ok = r.line().decode()
        assert ok.startswith("a0 OK [CAPABILITY IMAP4rev1"), ok
        return r

    def imap(self, service="imapd"):
        """an imaplib client in the authenticated state, on a hand-over"""
        return HandedIMAP(self, service)


class _Greeted(io.RawIOBase):
    """a fake greeting, then the socket: imaplib wants one"""

    def __init__(self, greeting, sock):
        self.pending = greeting
        self.sock = sock

    def readable(self):
        return True

    def readinto(self, b):
        if self.pending:
            n = min(len(b), len(self.pending))
            b[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            return n
        data = self.sock.recv(len(b))
        b[:len(data)] = data
        return len(data)


class HandedIMAP(imaplib.IMAP4):
    """imaplib over a hand-over: it sees a greeting, then the logged-in
    session (its state set to AUTH after imapd's tagged OK)"""

    def __init__(self, imap, service):
        self._imap = imap
        self._service = service
        super().__init__()

    def open(self, host="", port=0, timeout=None):
        self.host, self.port = host, port
        self.sock = self._imap.hand_over(tag="z0", service=self._service)
        first = b""
        while not first.endswith(b"\r\n"):
            got = self.sock.recv(1)
            assert got, "closed before the login's OK"
            first += got
        assert first.startswith(b"z0 OK [CAPABILITY"), first
        caps = first[first.index(b"[CAPABILITY ") + 12:first.index(b"]")]
        self.file = io.BufferedReader(_Greeted(b"* OK [CAPABILITY " + caps + b"] hi\r\n",
                                               self.sock))

    def _connect(self):
        super()._connect()
        self.state = "AUTH"

    def shutdown(self):
        self.file.close()
        self.sock.close()


@pytest.fixture
def imap():
    for prog in ("auth", "imapd"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    i = ImapInstance()
    i.inst.start()
    try:
        yield i
    finally:
        i.inst.stop(timeout=15)
        shutil.rmtree(i.inst.dir, ignore_errors=True)


# ------------------------------------------------------------ the login
def test_login_tag_answered_by_imapd(imap):
    r = Raw(imap.hand_over(tag="L1"))
    line = r.line().decode()
    assert line.startswith("L1 OK [CAPABILITY IMAP4rev1 ")
    assert "IDLE" in line and "UIDPLUS" in line and "CONDSTORE" in line
    lines = r.cmd("CAPABILITY")
    assert lines[0].startswith(b"* CAPABILITY IMAP4rev1")
    assert tagged(lines).startswith("t1 OK")
    lines = r.cmd("LOGIN a b")
    assert tagged(lines).startswith("t2 BAD")
    lines = r.cmd("LOGOUT")
    assert lines[0].startswith(b"* BYE")
    assert tagged(lines).startswith("t3 OK")
    assert r.at_eof()


def test_forged_token_gets_bye(imap):
    sock = imap.hand_over(token=secrets.token_hex(16), tag="a1")
    r = Raw(sock)
    assert r.line().startswith(b"* BYE")
    assert r.at_eof()


def test_pipelined_input_after_login(imap):
    r = Raw(imap.hand_over(tag="a1", input_=b"p1 NOOP\r\np2 CAPABILITY\r\n"))
    assert r.line().startswith(b"a1 OK")
    assert r.line().startswith(b"p1 OK")
    lines = r.until("p2")
    assert tagged(lines).startswith("p2 OK")


# ------------------------------------------------------------ selecting
def test_select_examine_and_state(imap):
    imap.deliver(MSG1, MSG2, MSG3)
    r = imap.raw()
    lines = r.cmd("FETCH 1 FLAGS")
    assert tagged(lines).startswith("t1 BAD")          # not selected
    lines = r.cmd("SELECT INBOX")
    text = b"".join(lines).decode()
    assert "* 3 EXISTS" in text and "* 3 RECENT" in text
    assert re.search(r"\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Forwarded\)", text)
    assert "PERMANENTFLAGS (" in text and "\\*)" in text
    assert re.search(r"OK \[UIDVALIDITY \d+\]", text)
    assert "OK [UIDNEXT 4]" in text and "OK [UNSEEN 1]" in text
    assert "HIGHESTMODSEQ" in text
    assert tagged(lines).startswith("t2 OK [READ-WRITE]")
    # \Recent belongs to one session: a second one sees none
    r2 = imap.raw()
    lines = r2.cmd("EXAMINE inbox")
    text = b"".join(lines).decode()
    assert "* 3 EXISTS" in text and "* 0 RECENT" in text
    assert tagged(lines).startswith("t1 OK [READ-ONLY]")
    lines = r2.cmd("STORE 1 +FLAGS (\\Seen)")
    assert "READ-ONLY" in tagged(lines) and tagged(lines).startswith("t2 NO")
    lines = r2.cmd("SELECT nosuch")
    assert tagged(lines).startswith("t3 NO")
    lines = r2.cmd("FETCH 1 FLAGS")                     # a failed SELECT unselects
    assert tagged(lines).startswith("t4 BAD")
    lines = r.cmd("UNSELECT")
    assert tagged(lines).startswith("t3 OK")
    lines = r.cmd("CLOSE")
    assert tagged(lines).startswith("t4 BAD")


def test_imaplib_fetch_items(imap):
    imap.deliver(MSG1, MSG2)
    m = imap.imap()
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    typ, data = m.fetch("1", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
    assert typ == "OK"
    assert re.search(rb"UID 1 FLAGS \(\\Recent\) RFC822.SIZE %d INTERNALDATE \"" % len(crlf(MSG1)),
                     data[0]), data
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == crlf(MSG1)
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]                    # PEEK leaves it
    typ, data = m.fetch("1", "(BODY[HEADER.FIELDS (Subject From)])")
    assert data[0][1] == b"From: Alice <alice@example.test>\r\nSubject: first one\r\n\r\n"
    assert b"\\Seen" in data[0][0] or b"\\Seen" in data[1]   # FLAGS sent with it
    typ, data = m.fetch("2", "(BODY[1] BODY[2.MIME] BODY[TEXT]<0.7>)")
    assert typ == "OK"
    joined = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert b"K=C3=A4se und Brot" in joined
    assert b"BODY[TEXT]<0> {7}--XX\r\nC" in joined
    typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    assert b'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "first one" (("Alice" NIL "alice" ' \
           b'"example.test"))' in data[0]
    assert b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ' in data[0]
    typ, data = m.fetch("1:*", "FAST")
    assert typ == "OK" and len(data) == 2
    typ, data = m.fetch("2", "(RFC822.HEADER RFC822.TEXT)")
    joined = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert b"RFC822.HEADER {" in joined and b"RFC822.TEXT {" in joined
    typ, data = m.uid("FETCH", "2", "(FLAGS)")
    assert b"UID 2" in data[0] and b"\\Seen" in data[0]   # RFC822.TEXT set it
    with pytest.raises(imaplib.IMAP4.error, match="invalid message set"):
        m.fetch("5", "FLAGS")
    m.logout()


def test_store_flags_and_keywords(imap):
    imap.deliver(MSG1, MSG2, MSG3)
    r = imap.raw()
    r.cmd("SELECT INBOX")
    lines = r.cmd("STORE 1:2 +FLAGS (\\Flagged $Forwarded Junk)")
    text = b"".join(lines).decode()
    assert "* FLAGS (" in text and "Junk" in text            # a new keyword announced
    assert re.search(r"\* 1 FETCH \(FLAGS \(\\Flagged \$Forwarded Junk \\Recent\)\)", text), text
    assert tagged(lines).startswith("t2 OK")
    lines = r.cmd("STORE 1 -FLAGS.SILENT (Junk)")
    assert len(lines) == 1 and tagged(lines).startswith("t3 OK")
    lines = r.cmd("UID STORE 3 FLAGS (\\Seen \\Deleted)")
    assert re.search(rb"\* 3 FETCH \(UID 3 FLAGS \(\\Deleted \\Seen \\Recent\)\)", lines[0]), lines
    lines = r.cmd("STORE 1 +FLAGS (\\Bogus)")
    assert tagged(lines).startswith("t5 BAD")
    files = imap.files()
    assert sum(1 for f in files if f.endswith(":2,FPa") or ":2,FP" in f) >= 1
    assert any(f.endswith(":2,ST") for f in files)
    # EXPUNGE reports and removes the \Deleted one
    lines = r.cmd("EXPUNGE")
    assert lines[0] == b"* 3 EXPUNGE\r\n" and tagged(lines).startswith("t6 OK")
    assert len(imap.files()) == 2


def test_condstore(imap):
    imap.deliver(MSG1, MSG2)
    r = imap.raw()
    lines = r.cmd("ENABLE CONDSTORE")
    assert lines[0] == b"* ENABLED CONDSTORE\r\n"
    lines = r.cmd("SELECT INBOX (CONDSTORE)")
    hm = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(lines)).group(1))
    lines = r.cmd("FETCH 1:* (MODSEQ)")
    mods = [int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", b"".join(lines))]
    assert len(mods) == 2 and max(mods) <= hm
    lines = r.cmd(f"STORE 1 (UNCHANGEDSINCE {mods[0]}) +FLAGS (\\Flagged)")
    assert re.search(rb"\* 1 FETCH \(FLAGS \(.*\) MODSEQ \((\d+)\)\)", lines[0]), lines
    new = int(re.search(rb"MODSEQ \((\d+)\)", lines[0]).group(1))
    assert new > mods[0]
    lines = r.cmd(f"STORE 1 (UNCHANGEDSINCE {mods[0]}) +FLAGS (\\Seen)")
    assert "[MODIFIED 1]" in tagged(lines)
    lines = r.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {max(mods)})")
    assert len([x for x in lines if x.startswith(b"* ")]) == 1 and b"* 1 FETCH" in lines[0]
    lines = r.cmd(f"SEARCH MODSEQ {new}")
    assert lines[0] == f"* SEARCH 1 (MODSEQ {new})\r\n".encode()


# ------------------------------------------------------------ SEARCH
def test_search_keys(imap):
    imap.deliver(MSG1, MSG2, MSG3)
    r = imap.raw()
    r.cmd("SELECT INBOX")
    r.cmd("STORE 2 +FLAGS (\\Answered)")

    def search(keys):
        lines = r.cmd("SEARCH " + keys if isinstance(keys, str) else b"SEARCH " + keys)
        assert tagged(lines).split()[1] == "OK", lines
        return [ln for ln in lines if ln.startswith(b"* SEARCH")][0].decode().split()[2:]

    assert search("ALL") == ["1", "2", "3"]
    assert search("ANSWERED") == ["2"]
    assert search("UNANSWERED") == ["1", "3"]
    assert search("FROM alice") == ["1"]
    assert search("HEADER Message-ID m1@") == ["1"]
    assert search("TEXT brot") == ["2"]                  # quoted-printable decoded
    assert search("BODY \"hello world\"") == ["2"]        # base64 decoded
    assert search("OR FROM carol SUBJECT three") == ["2", "3"]
    assert search("NOT FROM alice") == ["2", "3"]
    assert search("LARGER 1000") == ["3"]
    assert search("SMALLER 1000") == ["1", "2"]
    assert search("SENTBEFORE 8-Feb-1994") == ["1"]
    assert search("SENTON 8-Feb-1994") == ["2"]
    assert search("SINCE 1-Jan-2000") == ["1", "2", "3"]
    assert search("BEFORE 1-Jan-2000") == []
    assert search("2:3 UNANSWERED") == ["3"]
    assert search("UID 1,3") == ["1", "3"]
    assert search("(FROM alice) (TO bob)") == ["1"]
    assert search("RECENT NEW") == ["1", "2", "3"]
    assert search("SEEN") == [] and search("OLD") == []
    assert search("KEYWORD Nosuch") == []
    assert search("UNKEYWORD Nosuch") == ["1", "2", "3"]
    lines = r.cmd("UID SEARCH ANSWERED")
    assert lines[0] == b"* SEARCH 2\r\n"
    # a literal in UTF-8
    r.send(f"s1 SEARCH CHARSET UTF-8 SUBJECT {{{len('grüße'.encode())}}}\r\n")
    assert r.line().startswith(b"+ ")
    r.send("grüße".encode() + b"\r\n")
    lines = r.until("s1")
    assert lines[0] == b"* SEARCH 2\r\n", lines
    r.send(b"s2 SEARCH CHARSET UTF-8 BODY {5+}\r\nk\xc3\xa4se\r\n")
    lines = r.until("s2")
    assert lines[0] == b"* SEARCH 2\r\n", lines
    lines = r.cmd("SEARCH CHARSET X-NOSUCH ALL")
    assert "BADCHARSET" in tagged(lines)
    # another charset: the strings are converted to UTF-8 first
    r.send(b"s3 SEARCH CHARSET ISO-8859-1 BODY {3+}\r\nk\xe4s\r\n")
    lines = r.until("s3")
    assert lines[0] == b"* SEARCH 2\r\n", lines
    lines = r.cmd("SEARCH FROB")
    assert tagged(lines).split()[1] == "BAD"
    lines = r.cmd("SEARCH RETURN (MIN MAX COUNT ALL) NOT ANSWERED")
    assert re.match(rb'\* ESEARCH \(TAG "t\d+"\) MIN 1 MAX 3 ALL 1,3 COUNT 2\r\n', lines[0]), lines
    lines = r.cmd("UID SEARCH RETURN () ALL")
    assert re.match(rb'\* ESEARCH \(TAG "t\d+"\) UID ALL 1:3\r\n', lines[0]), lines
    lines = r.cmd("SEARCH RETURN (COUNT) FROM nobody")
    assert re.match(rb'\* ESEARCH \(TAG "t\d+"\) COUNT 0\r\n', lines[0]), lines


# ------------------------------------------------------------ COPY, MOVE, APPEND
def test_copy_move_append(imap):
    imap.deliver(MSG1, MSG2, MSG3)
    m = imap.imap()
    assert m.create("Archive")[0] == "OK"
    m.select("INBOX")
    typ, data = m.copy("1:2", "Archive")
    assert typ == "OK" and re.search(rb"\[COPYUID \d+ 1:2 1:2\]", data[0]), data
    typ, data = m.copy("1", "Nosuch")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    typ, data = m._simple_command("UID", "MOVE", "3", "Archive")   # pylint: disable=protected-access
    assert typ == "OK", data
    assert re.search(rb"\[COPYUID \d+ 3 3\]", b" ".join(m.untagged_responses.get("OK", [])))
    assert m.untagged_responses.get("EXPUNGE") == [b"3"]
    assert len(imap.files()) == 2 and len(imap.files(folder="Archive")) == 3
    typ, data = m.append("Archive", "(\\Seen $Label1)", '"05-Feb-2020 10:00:00 +0100"',
                         crlf(MSG1))
    assert typ == "OK" and re.search(rb"\[APPENDUID \d+ 4\]", data[0]), data
    m.select("Archive")
    typ, data = m.fetch("4", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert b"$Label1" in data[0][0] and b"\\Seen" in data[0][0]
    assert b'INTERNALDATE "05-Feb-2020' in data[0][0]
    assert data[0][1] == crlf(MSG1)
    typ, data = m.append("Nosuch", None, None, b"x\r\n")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    m.logout()


def test_append_copy_respect_the_quota(imap):
    """APPEND and COPY past the user's quota: NO [OVERQUOTA] (RFC 9208,
    RFC 5530), nothing stored; MOVE is allowed (it adds nothing); room
    made by EXPUNGE counts at once (a recount before any refusal)."""
    body = b"Subject: q\n\n" + b"y" * 1200 + b"\n"          # 1,216 bytes stored
    imap.deliver(body, body, addr=QUSER)                    # 2,432 of 4,000
    r = Raw(imap.hand_over(token=imap.token(QUSER, QUSER_PASSWORD), tag="a0"))
    assert r.line().startswith(b"a0 OK")
    assert tagged(r.cmd("CREATE Keep", "c1")).startswith("c1 OK")
    assert tagged(r.cmd("SELECT INBOX", "s1")).startswith("s1 OK")
    # 2,432 + 1,216 fits; another 1,216 does not
    r.send(b"p1 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    assert tagged(r.until("p1")).startswith("p1 OK [APPENDUID"), "first APPEND"
    r.send(b"p2 APPEND Keep {%d+}\r\n" % len(body) + body + b"\r\n")
    line = tagged(r.until("p2"))
    assert line.startswith("p2 NO [OVERQUOTA]"), line
    assert len(imap.files(addr=QUSER)) == 3 and imap.files(addr=QUSER, folder="Keep") == []
    line = tagged(r.cmd("COPY 1 Keep", "k1"))
    assert line.startswith("k1 NO [OVERQUOTA]"), line
    assert imap.files(addr=QUSER, folder="Keep") == []
    # MOVE adds nothing to the mailbox tree: allowed
    line = tagged(r.cmd("MOVE 1 Keep", "m1"))
    assert line.startswith("m1 OK"), line
    assert len(imap.files(addr=QUSER, folder="Keep")) == 1
    # the folder counts: still full
    r.send(b"p3 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    assert tagged(r.until("p3")).startswith("p3 NO [OVERQUOTA]")
    # deleting makes room at once
    assert tagged(r.cmd("STORE 1:* +FLAGS.SILENT (\\Deleted)", "d1")).startswith("d1 OK")
    assert tagged(r.cmd("EXPUNGE", "d2")).startswith("d2 OK")
    r.send(b"p4 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    assert tagged(r.until("p4")).startswith("p4 OK [APPENDUID")
    r.close()


def test_append_literals_raw(imap):
    r = imap.raw("imapdshort")
    # synchronising: the "+" first
    body = crlf(MSG3)
    r.send(f"a1 APPEND INBOX {{{len(body)}}}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(body + b"\r\n")
    lines = r.until("a1")
    assert re.match(rb"a1 OK \[APPENDUID \d+ 1\]", lines[-1]), lines
    # non-synchronising, with flags, pipelined with the next command
    r.send(b"a2 APPEND INBOX (\\Flagged) {4+}\r\nhi\r\n\r\na3 NOOP\r\n")
    assert tagged(r.until("a2")).startswith("a2 OK [APPENDUID")
    assert tagged(r.until("a3")).startswith("a3 OK")
    # too large for message_size_limit: refused before any byte (sync)
    r.send("a4 APPEND INBOX {200000}\r\n")
    assert r.line().startswith(b"a4 NO [TOOBIG]")
    # ... and non-sync: the bytes are read and dropped
    r.send(b"a5 APPEND INBOX {150000+}\r\n" + b"y" * 150000 + b"\r\na6 NOOP\r\n")
    assert r.line().startswith(b"a5 NO [TOOBIG]")
    assert r.line().startswith(b"a6 OK")           # nothing for the rest of a5
    # the rest of a refused command may announce one more literal
    r.send(b"a7 APPEND INBOX {150000+}\r\n" + b"y" * 150000 + b" {3+}\r\nabc\r\na8 NOOP\r\n")
    assert r.line().startswith(b"a7 NO [TOOBIG]")
    assert r.line().startswith(b"a8 OK")
    lines = r.cmd("SELECT INBOX")
    assert b"* 2 EXISTS\r\n" in lines
    lines = r.cmd("FETCH 2 (FLAGS BODY.PEEK[])")
    assert b"\\Flagged" in lines[0] and lines[0].endswith(b"{4}\r\nhi\r\n)\r\n")


def test_disconnect_mid_literal(imap):
    r = imap.raw()
    r.send("a1 APPEND INBOX {100000}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"z" * 5000)
    r.close()
    time.sleep(0.5)
    assert imap.files() == []
    box = imap.maildir()
    assert list((box / "tmp").iterdir()) == []
    # the worker serves the next session as before
    r = imap.raw()
    assert tagged(r.cmd("NOOP")).startswith("t1 OK")


# ------------------------------------------------------------ updates
def test_two_sessions_and_a_delivery(imap):
    imap.deliver(MSG1, MSG2, MSG3)
    a, b = imap.raw(), imap.raw()
    a.cmd("SELECT INBOX")
    b.cmd("SELECT INBOX")
    # b changes flags and expunges; a learns it at its next command
    b.cmd("STORE 2 +FLAGS (\\Deleted \\Flagged)")
    b.cmd("STORE 1 +FLAGS (\\Seen)")
    lines = a.cmd("NOOP")
    text = b"".join(lines)
    assert re.search(rb"\* 2 FETCH \(FLAGS \(\\Flagged \\Deleted[^)]*\)\)", text), text
    assert re.search(rb"\* 1 FETCH \(FLAGS \(\\Seen[^)]*\)\)", text), text
    lines = b.cmd("EXPUNGE")
    assert lines[0] == b"* 2 EXPUNGE\r\n"
    # not during FETCH by sequence number (RFC 3501 7.4.1) ...
    lines = a.cmd("FETCH 1:3 (UID)")
    assert not any(b"EXPUNGE" in ln for ln in lines), lines
    assert b"* 3 FETCH (UID 3)\r\n" in lines
    # ... but with UID FETCH, and at NOOP
    lines = a.cmd("UID FETCH 1 (UID)")
    assert b"* 2 EXPUNGE\r\n" in lines, lines
    # a delivery: EXISTS (and RECENT) for the session holding \Recent
    imap.deliver(b"Subject: four\n\nfour\n")
    lines = a.cmd("NOOP") + b.cmd("NOOP")
    assert lines.count(b"* 3 EXISTS\r\n") == 2, lines
    assert b"* 3 RECENT\r\n" in lines and b"* 0 RECENT\r\n" in lines
    lines = a.cmd("FETCH 3 (UID FLAGS)")
    assert lines[0] == b"* 3 FETCH (UID 4 FLAGS ())\r\n" or b"UID 4" in lines[0], lines


def test_idle_announces_delivery_within_a_second(imap):
    imap.deliver(MSG1)
    r = imap.raw()
    r.cmd("SELECT INBOX")
    r.send("i1 IDLE\r\n")
    assert r.line().startswith(b"+ ")
    time.sleep(0.2)
    start = time.monotonic()
    imap.deliver(MSG2)
    got = r.line()
    assert got == b"* 2 EXISTS\r\n", got
    assert time.monotonic() - start < 1.0
    assert r.line() == b"* 2 RECENT\r\n"
    # another session's flag change while idling
    other = imap.raw()
    other.cmd("SELECT INBOX")
    other.cmd("STORE 1 +FLAGS (\\Answered)")
    got = r.line()
    assert re.match(rb"\* 1 FETCH \(FLAGS \(\\Answered", got), got
    r.send("DONE\r\n")
    assert r.line().startswith(b"i1 OK")
    r.send("i2 IDLE\r\n")
    assert r.line().startswith(b"+ ")
    r.send("NOPE\r\n")
    assert r.line().startswith(b"i2 BAD")


def test_own_index_writes_hide_no_other_change(imap):
    """imapd's own index/cache writes wake no sync, but a change by
    someone else next to them is still announced (at NOOP and in IDLE)"""
    imap.deliver(MSG1, MSG2)
    r = imap.raw()
    r.cmd("SELECT INBOX")
    # counts CRLF sizes and fills the cache: our own index and cache written
    lines = r.cmd("FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)")
    assert tagged(lines).startswith("t2 OK"), lines
    box = imap.maildir()
    assert (box / "posthorn-cache").exists()
    imap.deliver(MSG3)
    lines = r.cmd("NOOP")
    assert b"* 3 EXISTS\r\n" in lines, lines
    lines = r.cmd("FETCH 1:* (RFC822.SIZE ENVELOPE)")
    assert tagged(lines).startswith("t4 OK"), lines
    r.send("i1 IDLE\r\n")
    assert r.line().startswith(b"+ ")
    other = imap.raw()
    other.cmd("SELECT INBOX")
    other.cmd("STORE 2 +FLAGS (\\Flagged)")
    start = time.monotonic()
    got = r.line()
    assert re.match(rb"\* 2 FETCH \(FLAGS \(\\Flagged", got), got
    assert time.monotonic() - start < 1.0
    r.send("DONE\r\n")
    assert r.line().startswith(b"i1 OK")


# ------------------------------------------------------------ other commands
def test_enable_id_namespace_check(imap):
    r = imap.raw()
    lines = r.cmd('ID ("name" "test" "version" "1")')
    assert lines[0].startswith(b'* ID ("name" "posthorn"') and tagged(lines).startswith("t1 OK")
    assert tagged(r.cmd("ID NIL")).startswith("t2 OK")
    assert tagged(r.cmd("ID (\"odd\")")).startswith("t3 BAD")
    lines = r.cmd("ENABLE FOO")
    assert lines[0] == b"* ENABLED\r\n"
    lines = r.cmd("NAMESPACE")
    assert lines[0].startswith(b"* NAMESPACE ((\"\" \".\"))") and tagged(lines).startswith("t5 OK")
    assert tagged(r.cmd("CHECK")).startswith("t6 BAD")
    r.cmd("SELECT INBOX")
    assert tagged(r.cmd("CHECK")).startswith("t8 OK")
    assert tagged(r.cmd("UID FROB 1")).startswith("t9 BAD")
    assert tagged(r.cmd("XYZZY")).startswith("t10 BAD")


def test_close_expunges_silently(imap):
    imap.deliver(MSG1, MSG2)
    r = imap.raw()
    r.cmd("SELECT INBOX")
    r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines = r.cmd("CLOSE")
    assert lines == [b"t3 OK CLOSE completed\r\n"]
    assert len(imap.files()) == 1
    r.cmd("EXAMINE INBOX")
    r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert tagged(r.cmd("EXPUNGE")).startswith("t6 NO")


def test_uid_expunge(imap):
    imap.deliver(MSG1, MSG2, MSG3)
    r = imap.raw()
    r.cmd("SELECT INBOX")
    r.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    lines = r.cmd("UID EXPUNGE 2:3")
    assert lines[:2] == [b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"], lines
    assert len(imap.files()) == 1


# ------------------------------------------------------------ syntax and bounds
def test_bad_syntax(imap):
    r = imap.raw()
    for line, want in ((b"t1 FETCH 1 (FLAGS", b"t1 BAD Missing ')'"),
                       (b"t2 SELECT \"INBOX", b"t2 BAD Unterminated quoted string"),
                       (b"t3 NOOP\0x", b"t3 BAD NUL byte"),
                       (b"", b"* BAD Empty command line")):
        r.send(line + b"\r\n")
        got = r.line()
        assert got.startswith(want), got
    # three BAD in a row (imapd_bad_command_limit=3) end the session
    r = imap.raw("imapdshort")
    for i in range(3):
        r.send(f"x{i} FROB\r\n")
    lines = [r.line() for _ in range(3)]
    assert all(b" BAD " in ln for ln in lines), lines
    assert r.line().startswith(b"* BYE")
    assert r.at_eof()


def test_bounds(imap):
    r = imap.raw("imapdshort")                    # imapd_line_limit=2048
    r.send(b"l1 NOOP " + b"x" * 5000 + b"\r\n")
    assert r.line().startswith(b"* BAD Command line too long")
    r.send(b"l2 NOOP\r\n")
    got = r.until("l2")
    assert tagged(got).startswith("l2 OK")
    # nesting
    r.send(b"l3 SEARCH " + b"(" * 100 + b"ALL" + b")" * 100 + b"\r\n")
    assert r.line().startswith(b"l3 BAD")
    # a literal too big for memory (not APPEND): refused
    r.send(b"l4 LOGIN {100000}\r\n")
    assert r.line().startswith(b"l4 BAD")
    assert tagged(r.cmd("NOOP")).endswith("OK NOOP completed\r\n")


def test_autologout_with_bye(imap):
    r = imap.raw("imapdidle")
    assert tagged(r.cmd("NOOP")).startswith("t1 OK")
    start = time.monotonic()
    assert r.line().startswith(b"* BYE Autologout")
    assert 1.5 < time.monotonic() - start < 5
    assert r.at_eof()
    # in IDLE as well (RFC 2177: the server may end an IDLE of 30 minutes)
    r = imap.raw("imapdidle")
    r.cmd("SELECT INBOX")
    r.send("i1 IDLE\r\n")
    assert r.line().startswith(b"+ ")
    assert r.line().startswith(b"* BYE Autologout")
    assert r.at_eof()


def test_big_fetch_streams_without_stalling_others(imap):
    big = b"Subject: big\n\n" + b"".join(b"line %07d of the big one\n" % i for i in range(150000))
    imap.deliver(big, MSG1)
    a = imap.raw()
    a.cmd("SELECT INBOX")
    # a asks for ~4 MB and does not read; b (same uid: same worker) goes on
    a.send("f1 FETCH 1 (BODY.PEEK[])\r\nf2 NOOP\r\n")
    time.sleep(0.3)
    b = imap.raw()
    b.cmd("SELECT INBOX")
    lines = b.cmd("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: first one" in lines[0]
    # now a reads all of it, then the pipelined NOOP's reply
    first = a.f.readline()
    m = re.match(rb"\* 1 FETCH \(BODY\[\] \{(\d+)\}\r\n", first)
    assert m and int(m.group(1)) == len(crlf(big)), first
    data = a.f.read(int(m.group(1)))
    assert data == crlf(big)
    assert a.f.readline() == b")\r\n"
    assert a.line().startswith(b"f1 OK")
    assert a.line().startswith(b"f2 OK")
    lines = a.cmd("FETCH 1 (BODY.PEEK[]<1000000.20> RFC822.SIZE)")
    assert b"BODY[]<1000000> {20}\r\n" + crlf(big)[1000000:1000020] in lines[0], lines[0][:200]


def test_reload_ends_sessions_at_a_command_boundary(imap):
    imap.deliver(MSG1)
    idle, busy = imap.raw(), imap.raw()
    idle.cmd("SELECT INBOX")
    idle.send("i1 IDLE\r\n")
    assert idle.line().startswith(b"+ ")
    imap.inst.reload()
    # an idling session and one between commands are told at once
    assert idle.line().startswith(b"* BYE")
    assert idle.at_eof()
    assert busy.line().startswith(b"* BYE")
    assert busy.at_eof()
    # new sessions are served by the new dispatcher
    r = imap.raw()
    assert tagged(r.cmd("NOOP")).startswith("t1 OK")


# ------------------------------------------------------------ through imapd-login
def _need_login(imap):
    if not (BUILD / "libexec" / "imapd-login").exists():
        pytest.skip("imapd-login not built")


def test_end_to_end_with_imaplib(imap):
    _need_login(imap)
    imap.deliver(MSG1, MSG2)
    m = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    typ, data = m.login(USER, PASSWORD)
    assert typ == "OK", data
    typ, data = m.capability()
    assert b"UIDPLUS" in data[0] and b"CONDSTORE" in data[0] and b"MOVE" in data[0]
    typ, data = m.select("INBOX")
    assert data == [b"2"]
    typ, data = m.fetch("1:2", "(UID ENVELOPE)")
    assert typ == "OK" and len(data) == 2
    typ, data = m.search(None, "FROM", "carol")
    assert data == [b"2"]
    typ, data = m.store("1", "+FLAGS", "(\\Seen)")
    assert typ == "OK"
    m.close()
    m.logout()
    # AUTHENTICATE PLAIN with an initial response (SASL-IR)
    m = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    typ, _ = m.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
    assert typ == "OK"
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    # a wrong password: NO from the login process, nothing from imapd
    m = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(USER, "wrong")
    m.shutdown()


def test_end_to_end_pipelined_after_login(imap):
    _need_login(imap)
    imap.deliver(MSG1)
    sock = socket.create_connection(("127.0.0.1", imap.port), timeout=10)
    r = Raw(sock)
    assert r.line().startswith(b"* OK")
    # LITERAL+ for the password, and commands right behind the LOGIN
    pw = PASSWORD.encode()
    r.send(b"a1 LOGIN " + USER.encode() + b" {%d+}\r\n" % len(pw) + pw
           + b"\r\na2 SELECT INBOX\r\na3 FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])\r\n")
    lines = r.until("a1")
    assert tagged(lines).startswith("a1 OK"), lines
    lines = r.until("a2")
    assert b"* 1 EXISTS\r\n" in lines and tagged(lines).startswith("a2 OK")
    lines = r.until("a3")
    assert b"Subject: first one" in lines[0]
    r.cmd("LOGOUT")

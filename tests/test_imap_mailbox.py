"""IMAP mailbox commands: CREATE, DELETE, RENAME (INBOX too), SUBSCRIBE,
UNSUBSCRIBE, LIST (wildcards, reference, LIST-EXTENDED, LIST-STATUS,
SPECIAL-USE, CHILDREN), LSUB, STATUS, NAMESPACE, modified UTF-7 names,
against a real instance (auth, imapd-login, imapd) with Python's imaplib
and a raw client; and the special-use folders a new user gets, from
imapd at the first login and from local-delivery when it makes a Maildir.

Sessions reach imapd through imapd-login on TCP when it is built, else
by a hand-over made here (a token from auth, the client's end of a
socketpair passed to imapd's socket with SCM_RIGHTS and a login tag, as
tests/test_imap.py does): either way through imapd's dispatcher and its
per-uid worker, as the mailbox owner.

The layout on disk is checked too: names are UTF-8 in the store
(".Äpfel"), subscriptions and special uses live in the root's
posthorn-subscriptions and posthorn-special-use.
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
from mailsuite import mail  # noqa: F401  (the fixture)

USER = "alice@example.test"
PASSWORD = "correct horse 9"
SPECIALS = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash", "Junk": "\\Junk"}


class Raw:
    """A tagged IMAP client on a raw socket: cmd() returns (untagged
    lines, tagged line), both as str."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)
        self.f = self.sock.makefile("rb")
        self.n = 0

    def line(self):
        got = self.f.readline(1 << 20)
        if not got:
            raise EOFError("connection closed")
        assert got.endswith(b"\r\n"), got
        return got[:-2].decode("utf-8", "replace")

    def cmd(self, text):
        self.n += 1
        tag = f"m{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        untagged = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = self.line()
            if got.startswith(tag + " "):
                return untagged, got[len(tag) + 1:]
            untagged.append(got)
        raise AssertionError(f"no tagged reply to {text}")

    def ok(self, text):
        untagged, tagged = self.cmd(text)
        assert tagged.startswith("OK"), (text, tagged, untagged)
        return untagged

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


LIST_RE = re.compile(r'^\* (LIST|LSUB) \(([^)]*)\) "(.)" "((?:[^"\\]|\\.)*)"(.*)$')


def parse_list(lines, verb="LIST"):
    """{name: (set of attributes, extended data text)} of LIST/LSUB lines"""
    out = {}
    for line in lines:
        if not line.startswith(f"* {verb} "):
            continue
        m = LIST_RE.match(line)
        assert m, line
        assert m.group(3) == "."
        name = re.sub(r"\\(.)", r"\1", m.group(4))
        out[name] = (set(m.group(2).split()) if m.group(2) else set(), m.group(5).strip())
    return out


class ImapInstance:
    """An instance with auth, imapd (and imapd-login when built), one user."""

    def __init__(self):
        mkinstance.service_accounts()
        self.inst = Instance(mail=True, mailboxes=[USER], commands="link",
                             main={"auth_failure_delay": "0"})
        self.port = free_port()
        self.mailroot = self.inst.layout.mailroot
        pw = pwd.getpwnam(self.inst.layout.vmail_owner)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        local, domain = USER.split("@")
        users = self.inst.etc / "users"
        users.write_text(f"{USER}:{mkinstance._sha512_crypt(PASSWORD)}:"  # pylint: disable=protected-access
                         f"{self.uid}:{self.gid}:{self.mailroot}/{domain}/{local}/:\n")
        res = subprocess.run([str(self.inst.layout.bin / "posthorn"), "-c", str(self.inst.etc),
                              "users", f"cdb:{users}"], capture_output=True, text=True,
                             timeout=60, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        self.inst.set_main(auth_user_maps=f"cdb:{users}.auth")
        libexec = self.inst.libexec
        self.tcp = (BUILD / "libexec" / "imapd-login").exists()
        login = f"127.0.0.1:{self.port} inet n - n - - {libexec}/imapd-login\n" if self.tcp else ""
        self.inst.write_master_cf(f"auth unix - - n - 1 {libexec}/auth\n" + login
                                  + f"imapd unix - n n - - {libexec}/imapd\n")

    @property
    def box(self):
        local, domain = USER.split("@")
        return self.mailroot / domain / local

    def deliver(self, *messages, folder=None):
        """Messages into new/ as local-delivery would."""
        box = self.box / f".{folder}" if folder else self.box
        for i, data in enumerate(messages):
            name = f"{int(time.time())}.M{i}P{os.getpid()}Q{secrets.token_hex(4)}.test"
            tmp = box / "tmp" / name
            tmp.write_bytes(data)
            if IS_ROOT:
                os.chown(tmp, self.uid, self.gid)
            os.rename(tmp, box / "new" / name)

    def hand_over(self, tag):
        """the client's end of a session handed to imapd (no imapd-login):
        a token from auth, the socket passed to imapd with the login tag"""
        sock, rd = phwire.connect(self.inst.queue / "private" / "auth", "auth")
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        sock.sendall(phwire.encode([("request", "auth"), ("service", "imap"),
                                    ("mechanism", "PLAIN"), ("client_address", "127.0.0.1"),
                                    ("response", plain)]))
        reply = rd.message_dict()
        sock.close()
        assert reply["status"] == "ok", reply
        mine, theirs = socket.socketpair()
        sock, rd = phwire.connect(self.inst.queue / "private" / "imapd", "login")
        socket.send_fds(sock, [b"F"], [theirs.fileno()])
        sock.sendall(phwire.encode([("token", reply["token"]), ("client_address", "192.0.2.1"),
                                    ("client_port", "1"), ("input", b""), ("login_tag", tag)]))
        assert rd.message_dict() == {"status": "ok"}
        sock.close()
        theirs.close()
        return mine

    def imaplib(self):
        if self.tcp:
            m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
            m.login(USER, PASSWORD)
            return m
        return HandedIMAP(self)

    def raw(self):
        if self.tcp:
            r = Raw(socket.create_connection(("127.0.0.1", self.port), timeout=10))
            assert r.line().startswith("* OK")
            r.ok(f'LOGIN "{USER}" "{PASSWORD}"')
            return r
        r = Raw(self.hand_over("a0"))
        line = r.line()
        assert line.startswith("a0 OK"), line
        return r


class _Greeted(io.RawIOBase):
    """a made-up greeting, then the socket (imaplib wants a greeting)"""

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
    """imaplib on a hand-over, in the authenticated state"""

    def __init__(self, imap):
        self._imap = imap
        super().__init__()

    def open(self, host="", port=0, timeout=None):
        self.host, self.port = host, port
        self.sock = self._imap.hand_over("z0")
        self.sock.settimeout(10)
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


# ------------------------------------------------------------ special use
def test_first_login_makes_special_use_folders(imap):
    m = imap.imaplib()
    typ, data = m.list()
    assert typ == "OK"
    lines = ["* LIST " + d.decode() for d in data]
    got = parse_list(lines)
    for name, attr in SPECIALS.items():
        assert attr in got[name][0], got
        assert "\\HasNoChildren" in got[name][0]
        assert (imap.box / f".{name}" / "cur").is_dir()
    assert "\\HasNoChildren" in got["INBOX"][0]
    typ, data = m.lsub()
    assert typ == "OK"
    assert set(parse_list(["* LSUB " + d.decode() for d in data], "LSUB")) == set(SPECIALS)
    assert (imap.box / "posthorn-special-use").read_text().startswith("posthorn-special-use 1\n")
    m.logout()
    # deleted by the user: not made again at the next login
    m = imap.imaplib()
    assert m.delete("Junk")[0] == "OK"
    m.logout()
    m = imap.imaplib()
    assert "Junk" not in parse_list(["* LIST " + d.decode() for d in m.list()[1]])
    m.logout()


def test_special_use_selection_and_create_use(imap):
    r = imap.raw()
    got = parse_list(r.ok('LIST (SPECIAL-USE) "" "*"'))
    assert set(got) == set(SPECIALS)
    assert got["Sent"][0] == {"\\Sent"}
    got = parse_list(r.ok('LIST "" "*" RETURN (SPECIAL-USE)'))
    assert "\\Trash" in got["Trash"][0] and got["INBOX"][0] == set()
    # extended syntax without RETURN (SPECIAL-USE): as Dovecot, no use attributes
    got = parse_list(r.ok('LIST () "" "Sent"'))
    assert got["Sent"][0] == set()
    r.ok("CREATE Arch (USE (\\Archive))")
    assert "\\Archive" in parse_list(r.ok('LIST "" "Arch"'))["Arch"][0]
    _, tagged = r.cmd("CREATE Bogus (USE (\\Bogus))")
    assert tagged.startswith("NO [USEATTR]"), tagged
    assert not (imap.box / ".Bogus").exists()
    r.close()


def test_new_maildir_from_local_delivery_has_special_folders(mail):
    box = mail.maildir(USER)
    shutil.rmtree(box)
    mail.start()
    mail.smtp_send("someone@remote.test", [USER], "Subject: first\r\n\r\nhello\r\n")
    mail.wait_maildir(USER, 1)
    # made right after the delivery (the special-use table last)
    deadline = time.monotonic() + 10
    while not (box / "posthorn-special-use").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in SPECIALS:
        assert (box / f".{name}" / "maildirfolder").is_file(), sorted(os.listdir(box))
    assert "\\Sent Sent" in (box / "posthorn-special-use").read_text()
    if IS_ROOT:
        st = (box / ".Sent").stat()
        assert (st.st_uid, st.st_gid) == ((box / "new").stat().st_uid, (box / "new").stat().st_gid)
    # an existing Maildir gets none
    other = mail.maildir("bob@example.test")
    mail.smtp_send("someone@remote.test", ["bob@example.test"], "Subject: x\r\n\r\nhi\r\n")
    mail.wait_maildir("bob@example.test", 1)
    assert not (other / ".Sent").exists()


# --------------------------------------------------------------- NAMESPACE
def test_namespace(imap):
    m = imap.imaplib()
    typ, data = m.namespace()
    assert typ == "OK" and data[0] == b'(("" ".")) NIL NIL', data
    m.logout()


# -------------------------------------------------- CREATE, DELETE, LIST
def test_create_list_delete(imap):
    r = imap.raw()
    r.ok("CREATE a.b.c")
    assert not (imap.box / ".a").exists()                       # no superiors (as Dovecot)
    assert (imap.box / ".a.b.c" / "cur").is_dir()
    r.ok('CREATE "x."')                                          # trailing delimiter
    assert (imap.box / ".x").is_dir()
    r.ok("CREATE a")
    r.ok("CREATE a.b")
    for cmd, code in (("CREATE a", "ALREADYEXISTS"), ("CREATE inbox", "ALREADYEXISTS"),
                      ("DELETE nope", "NONEXISTENT"),
                      ('CREATE "a..b"', "CANNOT"), ('CREATE "a/b"', "CANNOT"),
                      ('CREATE ""', "CANNOT")):
        _, tagged = r.cmd(cmd)
        assert tagged.startswith(f"NO [{code}]"), (cmd, tagged)
    _, tagged = r.cmd("DELETE INBOX")
    assert tagged.startswith("NO"), tagged
    got = parse_list(r.ok('LIST "" "%"'))
    assert set(got) == {"INBOX", "a", "x"} | set(SPECIALS)
    assert got["a"][0] == {"\\HasChildren"}
    assert got["x"][0] == {"\\HasNoChildren"}
    got = parse_list(r.ok('LIST "" "*"'))
    assert {"a", "a.b", "a.b.c"} <= set(got)
    assert got["a.b.c"][0] == {"\\HasNoChildren"}
    assert set(parse_list(r.ok('LIST "a." "%"'))) == {"a.b"}
    assert set(parse_list(r.ok('LIST "" "a.*"'))) == {"a.b", "a.b.c"}
    assert set(parse_list(r.ok('LIST "" "inbox"'))) == {"INBOX"}
    assert r.ok('LIST "" ""') == ['* LIST (\\Noselect) "." ""']
    # DELETE a parent: it goes, its children stay; the name is \Noselect
    r.ok("DELETE a")
    assert not (imap.box / ".a").exists() and (imap.box / ".a.b.c").is_dir()
    got = parse_list(r.ok('LIST "" "%"'))
    assert got["a"][0] == {"\\Noselect", "\\HasChildren"}
    got = parse_list(r.ok('LIST () "" "%" RETURN (CHILDREN)'))
    assert got["a"][0] == {"\\NonExistent", "\\HasChildren"}
    _, tagged = r.cmd("DELETE a")
    assert tagged.startswith("NO [NONEXISTENT]"), tagged
    _, tagged = r.cmd("SELECT a")
    assert tagged.startswith("NO"), tagged
    r.ok("DELETE a.b.c")
    assert parse_list(r.ok('LIST "" "a*"'))["a.b"][0] == {"\\HasNoChildren"}
    r.ok("DELETE a.b")
    assert "a" not in parse_list(r.ok('LIST "" "*"'))
    r.close()


def test_delete_or_rename_selected_mailbox_closes_it(imap):
    r = imap.raw()
    r.ok("CREATE f")
    r.ok("SELECT f")
    untagged = r.ok("DELETE f")
    assert any(u.startswith("* OK [CLOSED]") for u in untagged), untagged
    _, tagged = r.cmd("FETCH 1 FLAGS")
    assert tagged.startswith("BAD") or tagged.startswith("NO"), tagged
    # RENAME of the selected mailbox (or of a parent) closes it too
    r.ok("CREATE g.h")
    r.ok("SELECT g.h")
    untagged = r.ok("RENAME g k")
    assert any(u.startswith("* OK [CLOSED]") for u in untagged), untagged
    assert "* 0 EXISTS" in r.ok("SELECT k.h")
    r.close()


# ------------------------------------------------------- modified UTF-7
def test_modified_utf7_names(imap):
    r = imap.raw()
    r.ok('CREATE "&AMQ-pfel"')
    assert (imap.box / ".\u00c4pfel").is_dir()                  # UTF-8 in the store
    r.ok('CREATE "Entw&APw-rfe"')
    r.ok('CREATE "Entw&APw-rfe.&U,BTFw-"')
    assert (imap.box / ".Entw\u00fcrfe.\u53f0\u5317").is_dir()
    got = parse_list(r.ok('LIST "" "*"'))
    assert "&AMQ-pfel" in got and "Entw&APw-rfe.&U,BTFw-" in got
    assert set(parse_list(r.ok('LIST "" "Entw&APw-rfe.%"'))) == {"Entw&APw-rfe.&U,BTFw-"}
    for bad in ('"&AGE-"', '"&AMQ"', '"a&AMQ-&AMQ-"', '"&Jjo!"'):
        _, tagged = r.cmd(f"CREATE {bad}")
        assert tagged.startswith("NO Mailbox name is not valid modified UTF-7"), (bad, tagged)
    # raw 8-bit is not modified UTF-7
    r.sock.sendall(b'z1 CREATE "\xc3\x84x"\r\n')
    reply = r.line()
    assert reply.startswith("z1 NO") or reply.startswith("z1 BAD"), reply
    assert not (imap.box / ".\u00c4x").exists()
    m = imap.imaplib()
    assert m.status('"&AMQ-pfel"', "(MESSAGES)")[0] == "OK"
    m.logout()
    r.close()


# ----------------------------------------------------------------- RENAME
def test_rename_with_children_and_subscriptions(imap):
    r = imap.raw()
    r.ok("CREATE p")
    r.ok("CREATE p.q")
    r.ok("CREATE other")
    imap.deliver(b"Subject: in p\r\n\r\nx\r\n", folder="p")
    r.ok("SUBSCRIBE p.q")
    st_before = r.ok("STATUS p (MESSAGES UIDVALIDITY)")[0]
    _, tagged = r.cmd("RENAME p other")
    assert tagged.startswith("NO [ALREADYEXISTS]"), tagged
    _, tagged = r.cmd("RENAME p p.q.r")
    assert tagged.startswith("NO"), tagged
    _, tagged = r.cmd("RENAME nope n2")
    assert tagged.startswith("NO [NONEXISTENT]"), tagged
    r.ok("RENAME p z.y")
    assert not (imap.box / ".p").exists() and not (imap.box / ".z").exists()
    assert (imap.box / ".z.y.q" / "cur").is_dir()
    st_after = r.ok("STATUS z.y (MESSAGES UIDVALIDITY)")[0]
    assert st_after.split("(")[1] == st_before.split("(")[1]   # same messages, same UIDVALIDITY
    assert parse_list(r.ok('LIST "" "z"'))["z"][0] == {"\\Noselect", "\\HasChildren"}
    # subscriptions stay (RFC 3501 6.3.6; Dovecot does the same)
    lsub = parse_list(r.ok('LSUB "" "*"'), "LSUB")
    assert "p.q" in lsub and "z.y.q" not in lsub
    assert lsub["p.q"][0] == set()
    r.close()


def test_rename_inbox(imap):
    imap.deliver(b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n")
    r = imap.raw()
    untagged = r.ok("SELECT INBOX")
    assert "* 2 EXISTS" in untagged
    uids = r.ok("UID FETCH 1:* (UID)")
    r.ok("STORE 1 +FLAGS (\\Flagged)")
    r.ok("UNSELECT")
    r.ok("CREATE INBOX.kid")
    r.ok("RENAME INBOX Moved")
    got = parse_list(r.ok('LIST "" "*"'))
    assert "Moved" in got and "INBOX" in got and "INBOX.kid" in got
    assert "* 2 EXISTS" in r.ok("SELECT Moved")
    assert r.ok("UID FETCH 1:* (UID)") == uids                 # UIDs kept
    assert "\\Flagged" in " ".join(r.ok("FETCH 1 (FLAGS)"))
    assert "* 0 EXISTS" in r.ok("SELECT INBOX")
    r.close()
    assert (imap.box / ".INBOX.kid" / "cur").is_dir()


# ------------------------------------------------ SUBSCRIBE, LSUB, LIST-EXTENDED
def test_subscribe_lsub_and_list_extended(imap):
    r = imap.raw()
    r.ok("CREATE top.mid.leaf")
    r.ok("CREATE lone")
    r.ok("SUBSCRIBE top.mid.leaf")
    r.ok("SUBSCRIBE ghost")                                      # need not exist
    r.ok("SUBSCRIBE ghost")
    assert (imap.box / "posthorn-subscriptions").read_text().count("\nghost\n") == 1
    # LSUB "%": the unsubscribed parent of a subscribed name, \Noselect
    got = parse_list(r.ok('LSUB "" "%"'), "LSUB")
    assert got["top"][0] == {"\\Noselect"}
    assert "lone" not in got and "ghost" in got
    got = parse_list(r.ok('LSUB "" "*"'), "LSUB")
    assert "top" not in got and "top.mid.leaf" in got
    # LIST (SUBSCRIBED)
    got = parse_list(r.ok('LIST (SUBSCRIBED) "" "*"'))
    assert got["ghost"][0] == {"\\Subscribed", "\\NonExistent"}
    assert got["top.mid.leaf"][0] == {"\\Subscribed"}
    assert "lone" not in got and "top" not in got
    # RECURSIVEMATCH: parents with a subscribed child that is not shown
    got = parse_list(r.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert got["top"] == ({"\\NonExistent"}, '(CHILDINFO ("SUBSCRIBED"))'), got
    assert "lone" not in got
    got = parse_list(r.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"'))
    assert "top" not in got and got["top.mid.leaf"][1] == ""
    _, tagged = r.cmd('LIST (RECURSIVEMATCH) "" "*"')
    assert tagged.startswith("BAD"), tagged
    _, tagged = r.cmd('LIST (BOGUS) "" "*"')
    assert tagged.startswith("BAD"), tagged
    # RETURN (SUBSCRIBED CHILDREN), several patterns
    got = parse_list(r.ok('LIST "" ("lone" "top*") RETURN (SUBSCRIBED CHILDREN)'))
    assert set(got) == {"lone", "top", "top.mid", "top.mid.leaf"}
    assert got["top.mid.leaf"][0] == {"\\Subscribed", "\\HasNoChildren"}
    assert got["top"][0] == {"\\NonExistent", "\\HasChildren"}
    r.ok("UNSUBSCRIBE ghost")
    r.ok("UNSUBSCRIBE ghost")                                    # not subscribed: still OK
    assert "ghost" not in parse_list(r.ok('LSUB "" "*"'), "LSUB")
    r.close()


# ------------------------------------------------------ STATUS, LIST-STATUS
def test_status_and_list_status(imap):
    imap.deliver(b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n", b"Subject: c\r\n\r\nc\r\n")
    r = imap.raw()
    (line,) = r.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    m = re.match(r'\* STATUS "INBOX" \(MESSAGES (\d+) RECENT (\d+) UIDNEXT (\d+) '
                 r'UIDVALIDITY (\d+) UNSEEN (\d+) HIGHESTMODSEQ (\d+)\)$', line)
    assert m, line
    assert (m[1], m[2], m[3], m[5]) == ("3", "3", "4", "3")
    # STATUS took no \Recent: SELECT still has them
    assert "* 3 RECENT" in r.ok("SELECT INBOX")
    untagged, tagged = r.cmd("STATUS INBOX (RECENT MESSAGES)")
    assert untagged == ['* STATUS "INBOX" (MESSAGES 3 RECENT 3)'], untagged
    assert tagged.startswith("OK [CLIENTBUG]"), tagged
    r.ok("STORE 1 +FLAGS (\\Seen)")
    r.ok("UNSELECT")
    (line,) = r.ok("STATUS inbox (UNSEEN MESSAGES)")
    assert line == '* STATUS "INBOX" (MESSAGES 3 UNSEEN 2)', line
    _, tagged = r.cmd("STATUS nope (MESSAGES)")
    assert tagged.startswith("NO [NONEXISTENT]"), tagged
    _, tagged = r.cmd("STATUS INBOX (BOGUS)")
    assert tagged.startswith("BAD"), tagged
    r.ok("CREATE p.q")                                          # "p": \\NonExistent
    untagged = r.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))')
    names = [u for u in untagged if u.startswith("* LIST")]
    stats = [u for u in untagged if u.startswith("* STATUS")]
    assert '* STATUS "INBOX" (MESSAGES 3 UNSEEN 2)' in stats
    assert '* STATUS "Sent" (MESSAGES 0 UNSEEN 0)' in stats
    assert len(stats) == len(names) - 1                          # none for \NonExistent "p"
    # each STATUS follows its LIST line
    for i, u in enumerate(untagged):
        if u.startswith("* STATUS"):
            name = u.split('"')[1]
            assert untagged[i - 1].endswith(f'"{name}"'), untagged[i - 1:i + 1]
    m = imap.imaplib()
    typ, data = m.status("Trash", "(MESSAGES UIDNEXT)")
    assert typ == "OK" and data[0] == b'"Trash" (MESSAGES 0 UIDNEXT 1)', data
    m.logout()
    r.close()

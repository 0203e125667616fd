"""Independent conformance checks: differential tests against Dovecot.

The same scripted sessions go to a private Dovecot from Debian (the
reference, tests/dovecot.py) and to a posthorn instance (auth, pop3d-login,
pop3d; imapd-login and imapd when built), each serving its own copy of
the same Maildir (a corpus of awkward messages: dot lines, no final
newline, header-only, bare CR, 8-bit and NUL bytes, very long lines, a
large message). What legitimately differs is normalised away:

  POP3   the text after the status indicator and the RFC 3206 code of a
         reply (greeting, error texts), UIDL values (each distinct value
         is replaced by its order of first appearance, so "the same
         message has the same id across sessions" is still compared), the
         IMPLEMENTATION capability and SASL mechanisms only one side
         offers (posthorn adds SCRAM-SHA-256);
  IMAP   tags and untagged response texts, the capability lists, UIDVALIDITY
         values, the choice between quoted strings and literals (responses
         are parsed into trees first), the order of untagged data items.

Everything else must be equal: status, response codes, multi-line payloads
byte for byte (dot-stuffing included), sizes, message numbering, which
messages are left after QUIT, FETCH data (ENVELOPE, BODYSTRUCTURE,
BODY[section] bytes), SEARCH results, LIST results.

A difference that is a deliberate choice of posthorn is listed in
DELIBERATE below with its reason; every other one fails the test.

Also, where installed: imapflow (npm, a strict third-party IMAP parser)
parses posthorn's FETCH responses, and what it makes of them must equal
what it makes of Dovecot's.

Needs root (both servers drop privileges) and Dovecot (tools/install-deps.sh);
skips otherwise. Loopback only; every read has a deadline.
"""
import base64
import json
import os
import pathlib
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import dovecot
from conftest import BUILD, MASTER
from mailsuite import SERVICES, MailInstance, have

POP_DAEMONS = ("auth", "pop3d-login", "pop3d")
IMAP_DAEMONS = ("auth", "imapd-login", "imapd")
DOMAIN = "example.test"
POOL = 60                       # accounts; each test takes fresh ones
READ_TIMEOUT = 10


# ---------------------------------------------------------------- the corpus
def _msg(headers, body, nl=b"\n"):
    return nl.join(headers) + nl + nl + body


LONG_LINE = b"x" * 5000
BIG_BODY = b"".join(b"line %06d of a large message, with some padding text\n" % i
                    for i in range(4000))

# (subdirectory, flags, message bytes). Message n (1-based) gets mtime
# BASE + n and a name that sorts by n, so both servers number them alike.
CORPUS = [
    ("cur", "S", _msg([b"From: Alice <alice@example.test>", b"To: bob@example.test",
                       b"Subject: plain", b"Date: Mon, 7 Dec 2026 10:00:00 +0000",
                       b"Message-ID: <plain@example.test>"],
                      b"Hello.\nSecond line.\n")),
    ("cur", "", _msg([b"From: carol@example.test", b"Subject: dots"],
                     b".\n..\n.leading dot\n...\n. \nmiddle\n.\n")),
    ("cur", "", _msg([b"From: dave@example.test", b"Subject: no final newline"],
                     b"first\nlast line without newline")),
    ("cur", "", b"From: eve@example.test\nSubject: header only\nX-Extra: yes\n"),
    ("cur", "", b"From: frank@example.test\nSubject: empty body\n\n"),
    ("cur", "", _msg([b"From: grace@example.test", b"Subject: crlf stored"],
                     b"stored with\r\nCRLF line ends\r\n.dot\r\n", nl=b"\r\n")),
    ("cur", "F", _msg([b"From: heidi@example.test", b"Subject: 8bit and NUL",
                       b"Content-Type: text/plain; charset=iso-8859-1",
                       b"Content-Transfer-Encoding: 8bit"],
                      b"caf\xe9 na\xefve\nbare\rcr inside\nnul\x00byte\n")),
    ("cur", "", _msg([b"From: ivan@example.test", b"Subject: long line"],
                     LONG_LINE + b"\nshort\n")),
    ("cur", "", _msg([b"From: judy@example.test", b"Subject: blank lines"],
                     b"\n\n\nafter three blank lines\n\n")),
    ("new", "", _msg([b"From: mallory@example.test", b"Subject: large",
                      b"Received: from a\n\tby b; Mon, 7 Dec 2026 10:00:00 +0000"],
                     BIG_BODY)),
    ("new", "", _msg([b"From: oscar@example.test", b"Subject: body starts with dot"],
                     b".\n.. two\n")),
]
BASE_TIME = 1765000000


def fill_maildir(box, owner, corpus=CORPUS):
    """box gets exactly the corpus (anything else in it is removed)."""
    box = pathlib.Path(box)
    if box.exists():
        shutil.rmtree(box)
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(mode=0o700, parents=True)
    for n, (sub, flags, data) in enumerate(corpus, 1):
        when = BASE_TIME + n * 60
        name = f"{when}.M{n:03d}P4242.corpus.{DOMAIN},S={len(data)}"
        if sub == "cur":
            name += f":2,{flags}"
        path = box / sub / name
        path.write_bytes(data)
        os.utime(path, (when, when))
    for p in (box, *box.rglob("*")):
        os.lchown(p, owner.pw_uid, owner.pw_gid)
        if p.is_dir():
            p.chmod(0o700)
        else:
            p.chmod(0o600)


def maildir_contents(box):
    """The messages left in a Maildir (sorted bytes), whatever the names."""
    out = []
    for sub in ("cur", "new"):
        d = pathlib.Path(box) / sub
        if d.is_dir():
            out.extend(f.read_bytes() for f in d.iterdir() if f.is_file())
    return sorted(out)


# ---------------------------------------------------------------- the servers
class PosthornMail(MailInstance):
    """posthorn with auth, pop3d (and imapd when built), a pool of accounts
    with passwords, no failure delay."""

    def __init__(self, users):
        self.pop3_port = dovecot.free_port()
        self.imap_port = dovecot.free_port() if have("imapd-login") and have("imapd") else None
        ports = {"pop3": f"127.0.0.1:{self.pop3_port}"}
        services = SERVICES + ("auth", "pop3d")
        if self.imap_port:
            ports["imap"] = f"127.0.0.1:{self.imap_port}"
            services += ("imapd",)
        super().__init__(users=[u.split("@")[0] for u in users], services=services,
                         passwords=True, ports=ports,
                         main={"auth_failure_delay": "0", "auth_client_failure_limit": "100000",
                               "auth_user_failure_limit": "100000"})


# POSTHORN_CONFORMANCE_SELF=1: the side under test is a second Dovecot,
# not posthorn: a check of the harness itself (the normalisation must
# make two Dovecots equal), and a way to work on the IMAP scripts before
# imapd exists.
SELF = os.environ.get("POSTHORN_CONFORMANCE_SELF") == "1"


class Pair:
    """posthorn (or, with SELF, a second Dovecot) and Dovecot side by
    side, with a pool of accounts: take() gives a fresh account whose
    Maildir on both sides holds the corpus. .pop3_port/.imap_port and
    .box(user) are the side under test's."""

    def __init__(self, workdir):
        workdir = pathlib.Path(workdir)
        self.users = [f"alice@{DOMAIN}"] + [f"u{n:02d}@{DOMAIN}" for n in range(1, POOL)]
        self.ph = PosthornMail(self.users)
        self.owner = pwd.getpwnam(self.ph.vmail_owner)
        protocols = ("pop3", "imap") if dovecot.missing(("imap",)) is None else ("pop3",)
        self.dv = self._dovecot(workdir, "dovecot", protocols)
        self.self2 = self._dovecot(workdir, "dovecot2", protocols) if SELF else None
        if self.self2:
            self.pop3_port, self.imap_port = self.self2.pop3_port, self.self2.imap_port
        else:
            self.pop3_port, self.imap_port = self.ph.pop3_port, self.ph.imap_port
        self.next = 0

    def _dovecot(self, workdir, name, protocols):
        mailroot = workdir / f"{name}-mail"
        mailroot.mkdir(mode=0o755)
        boxes = {u: mailroot / u.split("@")[0] for u in self.users}
        # the hashes of posthorn's users file (users(5): address:hash:...)
        hashes = dict(line.split(":")[:2] for line in
                      (self.ph.etc / "users").read_text().splitlines()
                      if line and not line.startswith("#"))
        dv = dovecot.Dovecot(workdir / name, {u: (self.ph.passwords[u], boxes[u])
                                              for u in self.users}, self.owner,
                             protocols=protocols, settings=dovecot.NAMESPACE_SETTINGS,
                             hashes=hashes)
        dv.boxes = boxes
        return dv

    def start(self):
        self.ph.start()
        self.dv.start()
        if self.self2:
            self.self2.start()

    def box(self, user):
        return self.self2.boxes[user] if self.self2 else self.ph.maildir(user)

    def take(self, corpus=CORPUS):
        """(address, password) of an account not used before, both
        Maildirs filled with corpus."""
        assert self.next < len(self.users), "account pool exhausted: raise POOL"
        user = self.users[self.next]
        self.next += 1
        fill_maildir(self.box(user), self.owner, corpus)
        fill_maildir(self.dv.boxes[user], self.owner, corpus)
        return user, self.ph.passwords[user]

    def boxes(self, user):
        return self.box(user), self.dv.boxes[user]

    def close(self):
        try:
            self.dv.stop()
            if self.self2:
                self.self2.stop()
        finally:
            self.ph.cleanup()


@pytest.fixture(scope="module")
def pair():
    why = dovecot.missing(("pop3",))
    if why:
        pytest.skip(why)
    if not MASTER.exists() or not (BUILD / "bin" / "posthorn").exists():
        pytest.skip("master and posthorn must be built")
    if not all(have(p) for p in POP_DAEMONS):
        pytest.skip("needs " + ", ".join(POP_DAEMONS) + " built")
    work = pathlib.Path(tempfile.mkdtemp(prefix="posthorn-conformance-", dir="/tmp"))
    work.chmod(0o755)
    p = Pair(work)
    try:
        p.start()
        yield p
    finally:
        p.close()
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------ a raw client
class Wire:
    """A byte-exact client connection with deadlines."""

    def __init__(self, port, timeout=READ_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.eof = True

    def _fill(self):
        if self.eof:
            return False
        self.sock.settimeout(self.timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no answer within {self.timeout}s (have {self.buf[-300:]!r})")
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self):
        """One line with its CRLF, or None at EOF."""
        while b"\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    out, self.buf = self.buf, b""
                    return out
                return None
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def drain(self, wait=0.3):
        """Whatever else arrives within wait seconds (for stray output)."""
        self.sock.settimeout(wait)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.eof = True
                    break
                self.buf += data
        except (socket.timeout, OSError):
            pass
        out, self.buf = self.buf, b""
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- POP3
# A script is a list of steps; each step sends bytes (or nothing, for the
# greeting) and reads the replies of the commands in it, in order.
# Reply kinds: "line" (one line), "multi" (multi-line when +OK), "auth"
# (a SASL exchange line: "+ challenge", or a final +OK/-ERR).
MULTI_VERBS = {"CAPA", "LIST", "UIDL", "RETR", "TOP"}


def cmd(*lines):
    """A step: the given command lines sent in one write (pipelined)."""
    return [(line if isinstance(line, bytes) else line.encode()) for line in lines]


def reply_kind(line):
    words = line.split()
    verb = words[0].decode(errors="replace").upper() if words else ""
    if verb in ("LIST", "UIDL") and len(words) > 1:
        return verb, "line"
    if verb in MULTI_VERBS or (verb == "AUTH" and len(words) == 1):
        return verb, "multi"               # (AUTH alone: the mechanisms, RFC 1734's form)
    if verb == "AUTH":
        return verb, "auth"
    return verb, "line"


class PopTranscript:
    """The normalised replies of one server to a script, and the raw
    transcript for error messages."""

    def __init__(self):
        self.norm = []
        self.raw = []
        self.uidls = {}

    def uid(self, value):
        return self.uidls.setdefault(value, f"UIDL#{len(self.uidls) + 1}")


def normalise_pop(verb, args, first, payload, t, in_auth):
    """One reply as a comparable tuple."""
    if first is None:
        return ("EOF",)
    text = first.rstrip(b"\r\n")
    status = text.split(b" ", 1)[0]
    if status not in (b"+OK", b"-ERR", b"+"):
        return ("GARBAGE", text)
    if not first.endswith(b"\r\n"):
        return ("NO-CRLF", status)
    m = re.match(rb"^\S+ \[([^\]]*)\]", text)
    code = m.group(1).decode() if m else None
    out = (status.decode(), code)
    if status == b"+" or status == b"-ERR":
        return out
    rest = text.split(b" ")[1:]
    if verb == "STAT":
        return out + tuple(x.decode() for x in rest[:2])
    if verb == "LIST" and args:
        return out + tuple(x.decode() for x in rest[:2])
    if verb == "UIDL" and args:
        return out + (rest[0].decode(), t.uid(rest[1]) if len(rest) > 1 else None)
    if payload is None:
        return out
    if verb == "CAPA":
        caps = set()
        for line in payload.split(b"\r\n")[:-2]:
            words = line.decode(errors="replace").split()
            if not words or words[0].upper() in ("IMPLEMENTATION", "CAPA"):
                continue          # Dovecot lists "CAPA", which RFC 2449 does not define
            if words[0].upper() == "SASL":
                # posthorn also offers SCRAM-SHA-256; Dovecot is
                # configured with PLAIN and LOGIN
                caps.add("SASL " + " ".join(sorted(w.upper() for w in words[1:]
                                                  if w.upper() != "SCRAM-SHA-256")))
                continue
            caps.add(" ".join(w.upper() for w in words))
        return out + (tuple(sorted(caps)),)
    if verb == "AUTH":                     # posthorn also offers SCRAM-SHA-256
        mechs = {w.upper() for w in payload.decode(errors="replace").split()[:-1]}
        return out + (tuple(sorted(mechs - {"SCRAM-SHA-256"})),)
    if verb == "UIDL":
        lines = []
        for line in payload.split(b"\r\n")[:-2]:
            n, u = line.split(b" ", 1)
            lines.append((n.decode(), t.uid(u)))
        return out + (tuple(lines),)
    return out + (payload,)


def read_multi(w):
    """The rest of a multi-line reply, up to and including ".\r\n"."""
    parts = []
    while True:
        line = w.line()
        if line is None:
            parts.append(b"<EOF>")
            break
        parts.append(line)
        if line == b".\r\n":
            break
    return b"".join(parts)


def run_pop3(port, script, t=None):
    """Run a script against a POP3 server; a PopTranscript."""
    t = t or PopTranscript()
    w = Wire(port)
    in_auth = False
    try:
        for step in script:
            if step == "greeting":
                first = w.line()
                t.raw.append((b"", first))
                t.norm.append(("greeting",) + normalise_pop("", [], first, None, t, False)[:1])
                continue
            if isinstance(step, tuple) and step[0] == "sleep":
                time.sleep(step[1])
                continue
            w.send(b"".join(line + b"\r\n" for line in step))
            for line in step:
                if in_auth:
                    verb, kind, args = "AUTH", "auth", []
                else:
                    verb, kind = reply_kind(line)
                    args = line.split()[1:]
                first = w.line()
                payload = None
                if first is not None and kind == "multi" and first.startswith(b"+OK"):
                    payload = read_multi(w)
                in_auth = kind == "auth" and first is not None and first.startswith(b"+ ") \
                    or (kind == "auth" and first == b"+\r\n")
                t.raw.append((line, first if payload is None else first + payload))
                t.norm.append((line.decode(errors="replace")[:60],)
                              + normalise_pop(verb, args, first, payload, t, in_auth))
        t.raw.append((b"<end>", w.drain(0.2)))
    finally:
        w.close()
    return t


def show(t):
    out = []
    for sent, got in t.raw:
        got = got if got is not None else b"<EOF>"
        out.append(f"C: {sent[:80]!r}\nS: {got[:400]!r}{' ...' if len(got) > 400 else ''}")
    return "\n".join(out)


# Deliberate differences: (name, test(posthorn reply, dovecot reply),
# reason). A normalised reply pair that differs is accepted only when one
# of these matches it; each is a choice posthorn made on purpose.
NO_ARG_VERBS = ("NOOP", "STAT", "RSET", "CAPA")
DELIBERATE = [
    ("pop3-user-without-name",
     lambda a, b: a[0].upper() == "USER" and a[1] == "-ERR" and b[1] == "+OK",
     "USER takes a name (RFC 1939); Dovecot accepts an empty one"),
    ("pop3-extra-arguments",
     lambda a, b: a[0].split()[0].upper() in NO_ARG_VERBS and len(a[0].split()) > 1
     and a[1] == "-ERR" and b[1] == "+OK",
     "posthorn answers -ERR to arguments a command does not take (RFC 1939 defines "
     "none for NOOP, STAT, RSET, CAPA); Dovecot ignores them"),
    ("pop3-auth-unknown-mechanism",
     lambda a, b: a[0].upper().startswith("AUTH ") and a[1:] == ("-ERR", None)
     and b[1:] == ("-ERR", "AUTH"),
     "an unsupported SASL mechanism is not an authentication failure: posthorn "
     "answers a plain -ERR (RFC 5034 4: \"rejects the AUTH command with a negative "
     "response\"); Dovecot adds [AUTH], which RFC 3206 keeps for wrong credentials"),
]


def deliberate(a, b):
    for name, test, _reason in DELIBERATE:
        try:
            if a[0] == b[0] and test(a, b):
                return name
        except (IndexError, AttributeError):
            pass
    return None


def compare(ph, dv, what=""):
    """Assert both transcripts' normalised replies are equal, showing the
    first difference and both transcripts."""
    for i, (a, b) in enumerate(zip(ph.norm, dv.norm)):
        if a != b and not deliberate(a, b):
            raise AssertionError(
                f"{what}: reply {i} differs\n  posthorn: {str(a)[:600]}\n  dovecot:  "
                f"{str(b)[:600]}\n--- posthorn transcript\n{show(ph)}\n--- dovecot transcript\n"
                f"{show(dv)}")
    assert len(ph.norm) == len(dv.norm), (what, ph.norm[len(dv.norm):], dv.norm[len(ph.norm):])


def both_pop3(pair, script_of, sessions=1):
    """Take an account, run script_of(user, password) on both servers
    (sessions times, sharing the UIDL numbering), compare, and compare
    the Maildirs' messages afterwards. Returns (posthorn, dovecot)
    transcripts of the last session and the user."""
    user, pw = pair.take()
    tp, td = PopTranscript(), PopTranscript()
    for _ in range(sessions):
        script = script_of(user, pw)
        run_pop3(pair.pop3_port, script, tp)
        run_pop3(pair.dv.pop3_port, script, td)
        compare(tp, td, f"{user}")
    ph_box, dv_box = pair.boxes(user)
    settle(lambda: maildir_contents(ph_box) == maildir_contents(dv_box))
    assert maildir_contents(ph_box) == maildir_contents(dv_box), "the Maildirs differ afterwards"
    return tp, td, user


def settle(cond, timeout=3):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


def login(user, pw):
    return [cmd(f"USER {user}"), cmd(f"PASS {pw}")]


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


# ------------------------------------------------------------ POP3 tests
def test_pop3_authorization_state(pair):
    # (Dovecot closes a connection before login after its third bad
    # command: the bad ones are spread over sessions of at most two.)
    def script(user, pw):
        return ["greeting", cmd("CAPA"), cmd("NOOP"), cmd("STAT"), cmd("QUIT")]

    def script2(user, pw):
        return ["greeting", cmd("LIST"), cmd("RETR 1"), cmd("capa"), cmd("QUIT")]

    def script3(user, pw):
        return ["greeting", cmd("PASS nobody-said-user"), cmd("USER"), cmd("QUIT")]

    def script4(user, pw):
        return ["greeting", cmd("FOO bar"), cmd(f"USER {user}"), cmd("PASS wrong-password"),
                cmd(f"USER {user}"), cmd(f"PASS {pw}"), cmd("STAT"), cmd("QUIT")]
    for s in (script, script2, script3, script4):
        both_pop3(pair, s)


def test_pop3_transaction_commands(pair):
    n = len(CORPUS)

    def script(user, pw):
        steps = ["greeting"] + login(user, pw) + [cmd("STAT"), cmd("LIST"), cmd("UIDL"),
                                                  cmd("CAPA"), cmd("NOOP")]
        for i in range(1, n + 1):
            steps += [cmd(f"LIST {i}"), cmd(f"UIDL {i}"), cmd(f"RETR {i}")]
        steps += [cmd("stat"), cmd("list 1"), cmd("Retr 2"),
                  cmd("USER again"), cmd("PASS again"), cmd("QUIT")]
        return steps
    both_pop3(pair, script)


def test_pop3_bad_arguments(pair):
    def script(user, pw):
        return ["greeting"] + login(user, pw) + [
            cmd("LIST 0"), cmd("LIST 99"), cmd("LIST x"), cmd("LIST -1"), cmd("LIST 1x"),
            cmd("RETR"), cmd("RETR 0"), cmd("RETR 99"), cmd("RETR abc"),
            cmd("UIDL 0"), cmd("UIDL 99"), cmd("DELE"), cmd("DELE 0"), cmd("DELE 99"),
            cmd("LIST 99999999999999999999"), cmd("RETR 4294967297"),
            cmd("STAT"), cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_top_edge_cases(pair):
    n = len(CORPUS)

    def script(user, pw):
        steps = ["greeting"] + login(user, pw)
        for i in range(1, n + 1):
            for lines in (0, 1, 2, 3, 5, 1000):
                steps.append(cmd(f"TOP {i} {lines}"))
        steps += [cmd("TOP 1"), cmd("TOP"), cmd("TOP 0 1"), cmd("TOP 99 1"), cmd("TOP 1 -1"),
                  cmd("TOP 1 x"), cmd("TOP 1 99999999999999999999"), cmd("QUIT")]
        return steps
    both_pop3(pair, script)


def test_pop3_dele_rset_quit(pair):
    def first(user, pw):
        return ["greeting"] + login(user, pw) + [
            cmd("DELE 1"), cmd("DELE 1"), cmd("RETR 1"), cmd("TOP 1 0"), cmd("LIST 1"),
            cmd("UIDL 1"), cmd("LIST"), cmd("UIDL"), cmd("STAT"),
            cmd("RSET"), cmd("STAT"), cmd("LIST 1"),
            cmd("DELE 2"), cmd("DELE 3"), cmd("DELE 10"), cmd("STAT"), cmd("NOOP"), cmd("QUIT")]

    user, pw = pair.take()
    tp, td = PopTranscript(), PopTranscript()
    run_pop3(pair.pop3_port, first(user, pw), tp)
    run_pop3(pair.dv.pop3_port, first(user, pw), td)
    compare(tp, td, "deleting session")
    # the next session sees what is left, with the same UIDLs as before
    after = ["greeting"] + login(user, pw) + [cmd("STAT"), cmd("LIST"), cmd("UIDL"),
                                              cmd("RETR 1"), cmd("QUIT")]
    run_pop3(pair.pop3_port, after, tp)
    run_pop3(pair.dv.pop3_port, after, td)
    compare(tp, td, "the session after")
    ph_box, dv_box = pair.boxes(user)
    assert maildir_contents(ph_box) == maildir_contents(dv_box)
    assert len(maildir_contents(ph_box)) == len(CORPUS) - 3


def test_pop3_session_without_quit_deletes_nothing(pair):
    def script(user, pw):
        return ["greeting"] + login(user, pw) + [cmd("DELE 1"), cmd("DELE 2"), cmd("STAT")]

    def check(user, pw):
        return ["greeting"] + login(user, pw) + [cmd("STAT"), cmd("QUIT")]
    user, pw = pair.take()
    tp, td = PopTranscript(), PopTranscript()
    run_pop3(pair.pop3_port, script(user, pw), tp)
    run_pop3(pair.dv.pop3_port, script(user, pw), td)
    time.sleep(0.3)                    # the servers see the connection close
    for _ in range(20):                # posthorn's [IN-USE] lock lasts until its session ends
        t2 = run_pop3(pair.pop3_port, check(user, pw), PopTranscript())
        if "IN-USE" not in str(t2.norm):
            break
        time.sleep(0.1)
    run_pop3(pair.pop3_port, check(user, pw), tp)
    run_pop3(pair.dv.pop3_port, check(user, pw), td)
    compare(tp, td)
    assert len(maildir_contents(pair.boxes(user)[0])) == len(CORPUS)


def test_pop3_pipelining(pair):
    def script(user, pw):
        return ["greeting",
                cmd("CAPA", f"USER {user}", f"PASS {pw}", "STAT", "LIST", "RETR 2", "TOP 3 1",
                    "UIDL", "DELE 4", "LIST 4", "NOOP", "RETR 10", "UIDL 5", "RSET", "STAT"),
                cmd("LIST 1", "LIST 2", "LIST 3", "RETR 7", "RETR 8", "QUIT")]
    both_pop3(pair, script)


def test_pop3_pipelined_auth_plain(pair):
    def script(user, pw):
        ir = b64(f"\0{user}\0{pw}")
        return ["greeting", cmd(f"AUTH PLAIN {ir}", "STAT", "UIDL 1", "QUIT")]
    both_pop3(pair, script)


def test_pop3_auth_plain(pair):
    def script(user, pw):
        good = b64(f"\0{user}\0{pw}")
        return ["greeting",
                cmd("AUTH PLAIN " + b64(f"\0{user}\0wrong")),       # initial response, wrong
                cmd("AUTH PLAIN"), cmd("*"),                        # cancelled
                cmd("AUTH PLAIN"), cmd(good),                       # without initial response
                cmd("STAT"), cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_auth_plain_initial_response(pair):
    def script(user, pw):
        return ["greeting", cmd("AUTH PLAIN " + b64(f"\0{user}\0{pw}")), cmd("STAT"),
                cmd("LIST 1"), cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_auth_plain_with_authzid(pair):
    def script(user, pw):
        return ["greeting", cmd("AUTH PLAIN " + b64(f"{user}\0{user}\0{pw}")), cmd("STAT"),
                cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_auth_errors(pair):
    def script(user, pw):
        return ["greeting",
                cmd("AUTH NOSUCHMECH"),
                cmd("AUTH PLAIN !!!notbase64!!!"),
                cmd("AUTH PLAIN"), cmd("###"),
                cmd(f"USER {user}"), cmd(f"PASS {pw}"), cmd("STAT"), cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_auth_login(pair):
    def script(user, pw):
        return ["greeting", cmd("AUTH LOGIN"), cmd(b64(user)), cmd(b64(pw)), cmd("STAT"),
                cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_capa_before_and_after_login(pair):
    def script(user, pw):
        return ["greeting", cmd("CAPA")] + login(user, pw) + [cmd("CAPA"), cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_uidl_stable_across_sessions(pair):
    def script(user, pw):
        return ["greeting"] + login(user, pw) + [cmd("UIDL"), cmd("UIDL 3"), cmd("QUIT")]
    tp, _td, _user = both_pop3(pair, script, sessions=2)
    # the second session's ids are the first session's (the numbering is shared)
    assert len(tp.uidls) == len(CORPUS), tp.uidls


def test_pop3_in_use(pair):
    """Not differential: posthorn refuses a second session of a mailbox at
    once with -ERR [IN-USE] (RFC 2449 8.1.2), a deliberate choice
    (pop3d(8)); Dovecot by default lets both in, and with
    pop3_lock_session = yes makes the second one wait for the lock."""
    if SELF:
        pytest.skip("posthorn's own behaviour")
    user, pw = pair.take()
    first = Wire(pair.pop3_port)
    try:
        assert first.line().startswith(b"+OK")
        first.send(f"USER {user}\r\nPASS {pw}\r\n".encode())
        assert first.line().startswith(b"+OK")
        assert first.line().startswith(b"+OK")
        second = run_pop3(pair.pop3_port, ["greeting"] + login(user, pw) + [cmd("QUIT")])
        first.send(b"STAT\r\nQUIT\r\n")
        still = [first.line(), first.line()]
    finally:
        first.close()
    assert [n[1:3] for n in second.norm[2:3]] == [("-ERR", "IN-USE")], show(second)
    assert [x[:3] for x in still] == [b"+OK", b"+OK"], still


def test_pop3_empty_and_odd_lines(pair):
    def script(user, pw):
        return ["greeting", cmd(""), cmd("   "), cmd(f"USER {user}"), cmd(f"PASS {pw}"),
                cmd(""), cmd("STAT "), cmd("NOOP x"), cmd("LIST 1 2"), cmd("RETR 1 2"),
                cmd("DELE 1 x"), cmd("UIDL 1 2"), cmd("TOP 1 2 3"), cmd("RSET"), cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_auth_without_mechanism(pair):
    def script(user, pw):
        return ["greeting", cmd("AUTH"), cmd(f"USER {user}"), cmd(f"PASS {pw}"), cmd("QUIT")]
    both_pop3(pair, script)


def test_pop3_long_lines(pair):
    """Not differential: a 2,000-byte command line gets -ERR from posthorn
    (pop3d_line_limit), which goes on reading; Dovecot answers "Input
    buffer full" and closes."""
    if SELF:
        pytest.skip("posthorn's own behaviour")
    user, pw = pair.take()
    t = run_pop3(pair.pop3_port, ["greeting", cmd("USER " + "x" * 2000), cmd(f"USER {user}"),
                                  cmd(f"PASS {pw}"), cmd("LIST " + "1" * 2000), cmd("STAT"),
                                  cmd("QUIT")])
    assert [n[1] for n in t.norm] == ["+OK", "-ERR", "+OK", "+OK", "-ERR", "+OK", "+OK"], show(t)


def test_pop3_empty_mailbox(pair):
    user, pw = pair.take()
    for box in pair.boxes(user):
        fill_maildir(box, pair.owner, corpus=[])

    def script(user, pw):
        return ["greeting"] + login(user, pw) + [cmd("STAT"), cmd("LIST"), cmd("UIDL"),
                                                  cmd("LIST 1"), cmd("RETR 1"), cmd("TOP 1 0"),
                                                  cmd("DELE 1"), cmd("RSET"), cmd("QUIT")]
    tp = run_pop3(pair.pop3_port, script(user, pw))
    td = run_pop3(pair.dv.pop3_port, script(user, pw))
    compare(tp, td, "empty mailbox")


# ====================================================================== IMAP
# ---------------------------------------------------------- the parser
class Atom(str):
    """An IMAP atom (flags, keywords, item names: compared case-blind
    where IMAP says so, by the normalisers)."""


class ParseError(Exception):
    pass


ATOM_END = b" ()[]{\"\r\n"


class Parser:
    """A tolerant IMAP response parser over the bytes of one response
    (its literals inline, as they came over the wire): quoted strings and
    literals both become bytes, NIL None, numbers int, atoms Atom,
    parenthesised lists Python lists. A FETCH item name with a section
    (BODY[HEADER.FIELDS (A B)]<0>) is one Atom, its section text
    upper-cased and its spaces collapsed."""

    def __init__(self, data):
        self.d = data
        self.i = 0

    def peek(self):
        return self.d[self.i:self.i + 1]

    def skip_sp(self):
        while self.peek() == b" ":
            self.i += 1

    def at_end(self):
        return self.i >= len(self.d) or self.d[self.i:] in (b"\r\n", b"\n")

    def value(self):
        self.skip_sp()
        c = self.peek()
        if c == b"(":
            self.i += 1
            out = []
            while True:
                self.skip_sp()
                if self.peek() == b")":
                    self.i += 1
                    return out
                if self.at_end():
                    raise ParseError(f"unbalanced list at {self.i}")
                out.append(self.value())
        if c == b'"':
            return self.quoted()
        if c == b"{" or self.d[self.i:self.i + 2] == b"~{":
            return self.literal()
        return self.atom()

    def quoted(self):
        self.i += 1
        out = bytearray()
        while True:
            c = self.peek()
            if not c or c in (b"\r", b"\n"):
                raise ParseError("unterminated quoted string")
            self.i += 1
            if c == b"\\":
                out += self.peek()
                self.i += 1
            elif c == b'"':
                return bytes(out)
            else:
                out += c

    def literal(self):
        if self.peek() == b"~":
            self.i += 1
        m = re.match(rb"\{(\d+)\+?\}\r\n", self.d[self.i:])
        if not m:
            raise ParseError(f"bad literal at {self.i}: {self.d[self.i:self.i + 20]!r}")
        n = int(m.group(1))
        start = self.i + m.end()
        self.i = start + n
        return self.d[start:start + n]

    def atom(self):
        self.skip_sp()
        start = self.i
        while self.i < len(self.d) and self.d[self.i] not in ATOM_END:
            self.i += 1
        if self.peek() == b"[":                       # BODY[...], BINARY[...] etc.
            depth = 0
            while self.i < len(self.d):
                ch = self.d[self.i:self.i + 1]
                self.i += 1
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                    if depth == 0:
                        break
            if self.peek() == b"<":
                while self.i < len(self.d) and self.d[self.i:self.i + 1] != b">":
                    self.i += 1
                self.i += 1
            word = self.d[start:self.i].decode(errors="replace")
            head, _, rest = word.partition("[")
            sect, _, tail = rest.rpartition("]")
            sect = re.sub(r"\s+", " ", sect.upper()).replace("( ", "(").replace(" )", ")")
            return Atom(f"{head.upper()}[{sect}]{tail}")
        word = self.d[start:self.i]
        if not word:
            raise ParseError(f"empty atom at {self.i}: {self.d[self.i:self.i + 20]!r}")
        text = word.decode(errors="replace")
        if text.isdigit():
            return int(text)
        if text.upper() == "NIL":
            return None
        return Atom(text)

    def rest_values(self):
        out = []
        while True:
            self.skip_sp()
            if self.at_end():
                return out
            out.append(self.value())

    def code(self):
        """A response code [NAME args] after OK/NO/BAD/BYE, or None; the
        text after it is skipped (the i points at it)."""
        self.skip_sp()
        if self.peek() != b"[":
            return None
        end = self.d.find(b"]", self.i)
        inner = self.d[self.i + 1:end if end >= 0 else len(self.d)]
        self.i = end + 1 if end >= 0 else len(self.d)
        p = Parser(inner)
        name = p.atom()
        return (str(name).upper(), p.rest_values())


def read_response(w):
    """One IMAP response (a line with its literals inline), or None at EOF."""
    out = b""
    while True:
        line = w.line()
        if line is None:
            return out or None
        out += line
        m = re.search(rb"~?\{(\d+)\+?\}\r\n$", line)
        if not m:
            return out
        out += w.exact(int(m.group(1)))


# ---------------------------------------------------------- normalising
UIDVALIDITY_LIKE = {"UIDVALIDITY", "HIGHESTMODSEQ", "MODSEQ"}


def norm_value(v):
    """A parsed value made comparable: atoms upper-case (flags, NIL-like
    words and item names are case-blind), strings as bytes."""
    if isinstance(v, list):
        return tuple(norm_value(x) for x in v)
    if isinstance(v, Atom):
        return "@" + v.upper()
    return v


def norm_code(code):
    if code is None:
        return None
    name, args = code
    if name == "CAPABILITY":
        return (name,)
    if name in UIDVALIDITY_LIKE:
        return (name, "*")
    if name in ("APPENDUID", "COPYUID"):
        return (name, "*") + tuple(str(a) for a in args[1:])
    if name == "PERMANENTFLAGS":
        return (name, tuple(sorted(str(f).upper() for f in (args[0] if args else []))))
    return (name,) + tuple(norm_value(a) for a in args)


def imap_date_epoch(b):
    import email.utils
    s = b.decode() if isinstance(b, bytes) else str(b)
    day, mon, rest = s.strip().split("-", 2)
    return int(email.utils.mktime_tz(email.utils.parsedate_tz(f"{day} {mon} {rest}")))


def norm_params(p):
    """A body-fld-param list as sorted (lower-case name, value) pairs:
    neither the order nor the case of parameter names matters."""
    if not isinstance(p, list):
        return norm_value(p)
    pairs = [((k.lower() if isinstance(k, bytes) else k), v) for k, v in zip(p[0::2], p[1::2])]
    return tuple(sorted(pairs, key=repr))


def norm_body(b):
    """BODY/BODYSTRUCTURE with the case-blind parts made comparable: type,
    subtype, encoding and disposition type lower-case, parameters as
    sorted pairs (RFC 2045: all of these are case-insensitive)."""
    if not isinstance(b, list) or not b:
        return norm_value(b)
    low = lambda x: x.lower() if isinstance(x, bytes) else norm_value(x)  # noqa: E731
    if isinstance(b[0], list):                    # multipart: parts..., subtype, ext
        n = 0
        while n < len(b) and isinstance(b[n], list):
            n += 1
        out = [norm_body(x) for x in b[:n]]
        rest = b[n:]
        if rest:
            out.append(low(rest[0]))
        if len(rest) > 1:
            out.append(norm_params(rest[1]))
        if len(rest) > 2:
            out.append(norm_disposition(rest[2]))
        out.extend(norm_value(x) for x in rest[3:])
        return ("multipart",) + tuple(out)
    out = [low(b[0]), low(b[1]), norm_params(b[2])] + [norm_value(x) for x in b[3:5]]
    if len(b) > 5:
        out.append(low(b[5]))
    rest = b[6:]
    kind = (b[0] or b"").lower(), (b[1] or b"").lower()
    i = 0
    if kind == (b"message", b"rfc822") and len(rest) >= 4:
        out += [norm_value(rest[0]), norm_value(rest[1]), norm_body(rest[2]),
                norm_value(rest[3])]
        i = 4
    elif kind[0] == b"text" and len(rest) >= 2:
        out += [norm_value(rest[0]), norm_value(rest[1])]
        i = 2
    elif rest:
        out.append(norm_value(rest[0]))
        i = 1
    ext = rest[i:]
    if ext:
        out.append(norm_value(ext[0]))            # md5
    if len(ext) > 1:
        out.append(norm_disposition(ext[1]))
    out.extend(norm_value(x) for x in ext[2:])
    return tuple(out)


def norm_disposition(d):
    if isinstance(d, list) and len(d) == 2:
        return ((d[0] or b"").lower() if isinstance(d[0], bytes) else d[0], norm_params(d[1]))
    return norm_value(d)


def norm_fetch(items):
    out = {}
    for k, v in zip(items[0::2], items[1::2]):
        key = str(k).upper()
        if key in out:                                # an item sent twice
            out[f"DUPLICATE {key}"] = out.get(f"DUPLICATE {key}", 0) + 1
        if key == "FLAGS":
            v = tuple(sorted(str(f).upper() for f in v))
        elif key == "INTERNALDATE":
            v = imap_date_epoch(v)
        elif key == "MODSEQ":
            v = "*"
        elif key in ("BODY", "BODYSTRUCTURE"):
            v = norm_body(v)
        else:
            v = norm_value(v)
        out[key] = v
    return tuple(sorted(out.items()))


def norm_untagged(data):
    """One untagged response ("* ..." without the star) as a tuple, or None
    to ignore it (CAPABILITY, ID: they say who the server is)."""
    p = Parser(data)
    first = p.value()
    if isinstance(first, int):
        what = str(p.value()).upper()
        if what == "FETCH":
            return (what, first, norm_fetch(p.value()))
        return (what, first)
    word = str(first).upper()
    if word in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
        code = norm_code(p.code())
        if word == "OK" and code is None:
            return None                       # an informational text only
        return ("untagged", word, code)
    if word in ("CAPABILITY", "ID", "ENABLED"):
        return None
    if word in ("FLAGS",):
        return (word, tuple(sorted(str(f).upper() for f in p.value())))
    if word in ("SEARCH",):
        rest = p.rest_values()
        nums = sorted(x for x in rest if isinstance(x, int))
        return (word, tuple(nums), tuple(norm_value(x) for x in rest if not isinstance(x, int)))
    if word == "ESEARCH":
        rest = p.rest_values()
        if rest and isinstance(rest[0], list):          # (TAG "x"): the correlator
            rest = rest[1:]
        out = []
        for k, v in zip(rest[0::2], rest[1::2]):
            k = str(k).upper()
            if k in ("ALL",):
                v = tuple(expand_set(str(v)))
            elif k == "MODSEQ":
                v = "*"
            out.append((k, v))
        return (word, tuple(sorted(out, key=repr)))
    if word in ("LIST", "LSUB"):
        flags = tuple(sorted(str(f).upper() for f in p.value()))
        delim = p.value()
        name = p.value()
        name = name.encode() if isinstance(name, str) else name
        if name.upper() == b"INBOX":
            name = b"INBOX"
        ext = tuple(norm_value(x) for x in p.rest_values())
        return (word, flags, delim, name, ext)
    if word == "STATUS":
        name = p.value()
        name = name.encode() if isinstance(name, str) else name
        items = p.value()
        d = {str(k).upper(): ("*" if str(k).upper() in UIDVALIDITY_LIKE else v)
             for k, v in zip(items[0::2], items[1::2])}
        return (word, name, tuple(sorted(d.items())))
    return (word,) + tuple(norm_value(x) for x in p.rest_values())


def expand_set(text):
    """An IMAP sequence set of numbers ("1:3,7") as a sorted list."""
    out = set()
    for part in text.split(","):
        a, _, b = part.partition(":")
        lo, hi = int(a), int(b or a)
        out.update(range(min(lo, hi), max(lo, hi) + 1))
    return sorted(out)


def expunged_originals(seqs):
    """The sequence numbers, as they were before the first of them, of the
    messages that EXPUNGE responses in this order removed (servers may
    report the same removals in different orders)."""
    removed = set()
    for e in seqs:
        orig = cnt = 0
        while cnt < e:
            orig += 1
            if orig not in removed:
                cnt += 1
        removed.add(orig)
    return tuple(sorted(removed))


class ImapTranscript:
    def __init__(self):
        self.norm = []
        self.raw = []


class ImapWire(Wire):
    """An IMAP client: tagged commands, literals (synchronising: waits
    for the continuation), responses read up to the tagged one."""

    def __init__(self, port, timeout=READ_TIMEOUT):
        super().__init__(port, timeout)
        self.n = 0

    def command(self, parts):
        """parts: the command text (after the tag), or a list of pieces
        each ending with a literal announcement except the last: a piece
        is sent, the "+" continuation awaited, then the literal. Returns
        (untagged responses, tagged response, continuations)."""
        if isinstance(parts, (str, bytes)):
            parts = [parts]
        parts = [p.encode() if isinstance(p, str) else p for p in parts]
        self.n += 1
        tag = b"T%03d" % self.n
        untagged, conts = [], []
        self.send(tag + b" " + parts[0] + b"\r\n")
        for piece in parts[1:]:
            while True:
                resp = read_response(self)
                if resp is None:
                    return untagged, None, conts
                if resp.startswith(b"+"):
                    conts.append(resp)
                    break
                if resp.startswith(tag + b" "):
                    return untagged, resp, conts
                untagged.append(resp)
            self.send(piece + b"\r\n")
        while True:
            resp = read_response(self)
            if resp is None:
                return untagged, None, conts
            if resp.startswith(tag + b" "):
                return untagged, resp, conts
            if resp.startswith(b"+"):
                conts.append(resp)
                continue
            untagged.append(resp)


def norm_tagged(resp):
    if resp is None:
        return ("EOF",)
    p = Parser(resp)
    p.atom()
    status = str(p.atom()).upper()
    return ("tagged", status, norm_code(p.code()))


def run_imap(port, script, t=None, login=None):
    """Run IMAP commands (see ImapWire.command) after the greeting (and
    a LOGIN when login=(user, password)); an ImapTranscript of the
    normalised results, one per command: (command, sorted untagged
    tuples, tagged tuple)."""
    t = t or ImapTranscript()
    w = ImapWire(port)
    try:
        greeting = read_response(w)
        t.raw.append((b"<greeting>", greeting))
        if login:
            script = [f'LOGIN "{login[0]}" "{login[1]}"'] + list(script)
        for parts in script:
            untagged, tagged, _conts = w.command(parts)
            label = parts if isinstance(parts, (str, bytes)) else parts[0]
            label = label.decode(errors="replace") if isinstance(label, bytes) else label
            t.raw.append((label.encode(), b"".join(untagged) + (tagged or b"<EOF>")))
            norms = []
            expunges = []
            for u in untagged:
                m = re.match(rb"\* (\d+) EXPUNGE\r\n$", u, re.I)
                if m:
                    expunges.append(int(m.group(1)))
                    continue
                try:
                    n = norm_untagged(u[2:])
                except ParseError as e:
                    n = ("UNPARSABLE", str(e), u[:200])
                if n is not None:
                    norms.append(n)
            if expunges:
                norms.append(("EXPUNGED (sequence numbers before)", expunged_originals(expunges)))
            try:
                tn = norm_tagged(tagged)
            except ParseError as e:
                tn = ("UNPARSABLE", str(e))
            t.norm.append((label[:80], tuple(sorted(norms, key=repr)), tn))
            if tagged is None:
                break
    finally:
        w.close()
    return t


def show_imap(t, limit=3000):
    out = []
    for sent, got in t.raw:
        got = got or b"<EOF>"
        out.append(f"C: {sent[:100]!r}\nS: {got[:limit]!r}{' ...' if len(got) > limit else ''}")
    return "\n".join(out)


def relax(a, b):
    """posthorn's result a with the differences that are deliberate and
    harmless taken out where Dovecot's result b lacks them:
    - an untagged OK [HIGHESTMODSEQ] on SELECT/EXAMINE: RFC 7162 3.1.2.1
      asks a server that keeps mod-sequences for it on every SELECT;
      Dovecot sends it only once a client used CONDSTORE;
    - $Forwarded in FLAGS: posthorn keeps it as the Maildir flag P and
      announces it always; Dovecot lists the keywords the mailbox uses."""
    b_untagged = set(b[1])
    out = []
    for u in a[1]:
        if u == ("untagged", "OK", ("HIGHESTMODSEQ", "*")) and u not in b_untagged:
            continue
        if u[0] == "FLAGS" and "$FORWARDED" in u[1] and u not in b_untagged:
            u = ("FLAGS", tuple(f for f in u[1] if f != "$FORWARDED"))
        if u[:2] == ("untagged", "OK") and u[2] and u[2][0] == "PERMANENTFLAGS" \
                and "$FORWARDED" in u[2][1] and u not in b_untagged:
            u = u[:2] + (("PERMANENTFLAGS", tuple(f for f in u[2][1] if f != "$FORWARDED")),)
        out.append(u)
    a_untagged = set(out)
    # Dovecot announces QRESYNC, which makes it send [CLOSED] when a SELECT
    # replaces a selected mailbox (RFC 7162 3.2.11); posthorn does not
    # offer QRESYNC.
    theirs = tuple(u for u in b[1] if not (u == ("untagged", "OK", ("CLOSED",))
                                           and u not in a_untagged))
    # Dovecot registers a keyword a SEARCH names and announces new FLAGS
    if a[0].upper().startswith(("SEARCH", "UID SEARCH")):
        def no_flags(side):
            return tuple(u for u in side if u[0] != "FLAGS" and not (
                u[:2] == ("untagged", "OK") and u[2] and u[2][0] == "PERMANENTFLAGS"))
        out, theirs = no_flags(out), no_flags(theirs)
    out, theirs = relax_list_flags(out, theirs, CHILD_FLAGS)
    # LSUB of a subscribed name that is no mailbox (any more): posthorn
    # says \\Noselect (RFC 3501 6.3.9's example), Dovecot nothing
    out, theirs = relax_list_flags(out, theirs, {"\\NOSELECT"}, kinds=("LSUB",))
    if "SPECIAL-USE" not in a[0].upper():
        out, theirs = relax_list_flags(out, theirs, SPECIAL_FLAGS)
    tagged = a[2]
    # NO [BADCHARSET (charsets)]: RFC 3501 7.1 makes the list optional
    if tagged and len(tagged) > 2 and tagged[2] and tagged[2][0] == "BADCHARSET" \
            and b[2] == ("tagged", "NO", ("BADCHARSET",)):
        tagged = b[2]
    # an RFC 5530 code where Dovecot gives none (NO [NONEXISTENT] ...)
    if tagged and b[2] and len(tagged) > 2 and tagged[:2] == b[2][:2] and b[2][2] is None \
            and tagged[2] and tagged[2][0] in RFC5530_CODES:
        tagged = b[2]
    return ((a[0], tuple(sorted(out, key=repr)), tagged),
            (b[0], tuple(sorted(theirs, key=repr)), b[2]))


RFC5530_CODES = {"NONEXISTENT", "CANNOT", "ALREADYEXISTS", "NOPERM", "INUSE", "EXPUNGEISSUED",
                 "CORRUPTION", "SERVERBUG", "CLIENTBUG", "LIMIT", "OVERQUOTA", "UNAVAILABLE",
                 "AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED", "PRIVACYREQUIRED",
                 "CONTACTADMIN", "NOTSAVED", "HASCHILDREN", "ALREADYEXISTS"}
CHILD_FLAGS = {"\\HASCHILDREN", "\\HASNOCHILDREN"}
SPECIAL_FLAGS = {"\\DRAFTS", "\\SENT", "\\TRASH", "\\JUNK", "\\ALL", "\\ARCHIVE", "\\FLAGGED"}


def relax_list_flags(ours, theirs, optional, kinds=("LIST", "LSUB")):
    """LIST/LSUB entries: the attributes in optional are dropped where the
    other server's entry for the same name has none of them. For
    \\HasChildren/\\HasNoChildren (RFC 5258 4) and, unless the command
    asked for SPECIAL-USE, the special-use attributes (RFC 6154 2), a
    server may send them or not."""
    def key(u):
        return (u[0], u[3]) if u[0] in kinds else None
    mine = {key(u): u for u in ours if key(u)}
    other = {key(u): u for u in theirs if key(u)}

    def fix(side, against):
        out = []
        for u in side:
            k = key(u)
            if k and k in against and not optional & set(against[k][1]):
                u = (u[0], tuple(f for f in u[1] if f not in optional)) + u[2:]
            out.append(u)
        return tuple(out)
    return fix(ours, other), fix(theirs, mine)


def compare_imap(tp, td, what=""):
    """Every command whose normalised results differ (not only the first),
    with what only one side answered and both raw answers."""
    report = []
    for i, (a, b) in enumerate(zip(tp.norm, td.norm)):
        a, b = relax(a, b)
        if a != b and not deliberate_imap(a, b):
            report.append(
                f"--- command {i} ({a[0]!r}) differs{diff_detail(a, b)}\n"
                f"posthorn: {show_imap(_one(tp, i), 1200)}\n"
                f"dovecot:  {show_imap(_one(td, i), 1200)}")
    if len(tp.norm) != len(td.norm):
        report.append(f"--- {len(tp.norm)} results against {len(td.norm)}: "
                      f"{tp.norm[len(td.norm):]} / {td.norm[len(tp.norm):]}")
    if report:
        raise AssertionError(f"{what}: {len(report)} differences\n" + "\n".join(report))


def _one(t, i):
    x = ImapTranscript()
    x.raw = t.raw[i + 1:i + 2]
    return x


def diff_detail(a, b):
    """The untagged responses only one side sent, and the tagged ones."""
    only_a = [x for x in a[1] if x not in b[1]]
    only_b = [x for x in b[1] if x not in a[1]]
    out = ""
    for x in only_a:
        out += f"\n  only posthorn: {str(x)[:1000]}"
    for y in only_b:
        out += f"\n  only dovecot:  {str(y)[:1000]}"
    if a[2] != b[2]:
        out += f"\n  tagged: posthorn {a[2]}, dovecot {b[2]}"
    return out


# Deliberate IMAP differences, like DELIBERATE for POP3: (name, test on
# the two normalised command results, reason).
DELIBERATE_IMAP = [
    ("imap-partial-without-size",
     lambda a, b: re.search(r"\]<\d+>", a[0]) and a[2][:2] == ("tagged", "BAD")
     and b[2][:2] == ("tagged", "OK"),
     "BODY[...]<n> without a size is not in RFC 3501's FETCH syntax (<origin.size>, size "
     "non-zero): posthorn answers BAD; Dovecot takes it as 'from n to the end'"),
    ("imap-read-only-changes",
     lambda a, b: a[2] == ("tagged", "NO", ("READ-ONLY",)) and b[2] == ("tagged", "OK", None),
     "STORE/EXPUNGE in a mailbox opened with EXAMINE: posthorn refuses (NO [READ-ONLY], "
     "RFC 3501 6.3.2 allows no change); Dovecot answers OK and changes nothing"),
    ("imap-arguments-to-argumentless",
     lambda a, b: re.match(r"(EXPUNGE|CHECK|CLOSE|UNSELECT|NOOP|LOGOUT|CAPABILITY) \S", a[0])
     and a[2][:2] == ("tagged", "BAD") and b[2][:2] == ("tagged", "OK"),
     "an argument to a command that takes none (EXPUNGE x): posthorn answers BAD, as RFC "
     "3501's grammar has no argument there; Dovecot ignores it"),
]


def deliberate_imap(a, b):
    for name, test, _reason in DELIBERATE_IMAP:
        try:
            if test(a, b):
                return name
        except (IndexError, AttributeError, TypeError):
            pass
    return None


# ---------------------------------------------------------- the IMAP corpus
def _lines(*lines):
    return b"\n".join(x.encode() if isinstance(x, str) else x for x in lines) + b"\n"


IMAP_CORPUS = [
    # 1: a plain message with every envelope field, encoded words, a group
    ("cur", "S", _lines(
        "Return-Path: <alice@example.test>",
        "Received: from relay.example.test by mail.example.test; Mon, 7 Dec 2026 10:00:01 +0000",
        "Date: Mon, 7 Dec 2026 10:00:00 +0100",
        "From: =?UTF-8?Q?Alice_M=C3=BCller?= <alice@example.test>",
        "Sender: Secretary <sec@example.test>",
        "Reply-To: \"Last, First\" <first.last@example.test>",
        "To: bob@example.test, \"Carol (work)\" <carol@Example.Test>",
        "Cc: undisclosed-recipients:;",
        "Bcc: Hidden: dave@example.test, erin@example.test;",
        "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= and",
        "  a folded \"subject\" \\ line",
        "Message-ID: <one.1@example.test>",
        "In-Reply-To: <zero.0@example.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8; format=flowed",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Hello Bob,",
        "this is the zebra crossing of the corpus. \xc3\x84rger and caf\xc3\xa9.".encode("latin-1"),
        "-- ",
        "Alice")),
    # 2: multipart/mixed: text, html, a base64 attachment with RFC 2231 names
    ("cur", "", _lines(
        "From: Bob <bob@example.test>",
        "To: alice@example.test",
        "Subject: attachments",
        "Date: Tue, 8 Dec 2026 11:30:00 -0500",
        "Message-ID: <two.2@example.test>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"==outer==\"",
        "",
        "This is the preamble.",
        "--==outer==",
        "Content-Type: text/plain; charset=us-ascii",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "A hippo=",
        "potamus in quoted-printable, with a soft break =3D and caf=C3=A9.",
        "--==outer==",
        "Content-Type: text/html; charset=\"UTF-8\"",
        "Content-ID: <html.part@example.test>",
        "Content-Description: the HTML version",
        "",
        "<p>Hello <b>world</b></p>",
        "--==outer==",
        "Content-Type: application/octet-stream;",
        " name*=utf-8''na%C3%AFve%20file.bin",
        "Content-Disposition: attachment;",
        " filename*0*=utf-8''na%C3%AFve;",
        " filename*1=\" file.bin\"; size=9",
        "Content-Transfer-Encoding: base64",
        "Content-Language: en, de",
        "Content-Location: http://example.test/file.bin",
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
        "",
        "dGhlIG9rYXBpIGlzIGhlcmUK",
        "--==outer==--",
        "This is the epilogue.")),
    # 3: nested: mixed > (alternative > plain, html), message/rfc822 >
    #    (mixed > plain, image), and a trailing part
    ("cur", "F", _lines(
        "From: carol@example.test",
        "To: alice@example.test",
        "Subject: nested structure",
        "Date: Wed, 9 Dec 2026 09:15:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=b1",
        "",
        "--b1",
        "Content-Type: multipart/alternative; boundary=\"b2\"",
        "",
        "--b2",
        "Content-Type: text/plain",
        "",
        "plain alternative with the word walrus",
        "--b2",
        "Content-Type: text/html",
        "",
        "<i>html alternative</i>",
        "--b2--",
        "",
        "--b1",
        "Content-Type: message/rfc822",
        "Content-Disposition: inline",
        "",
        "From: Inner Sender <inner@example.test>",
        "To: someone@example.test",
        "Subject: the inner message",
        "Date: Thu, 1 Jan 2026 00:00:00 +0000",
        "Message-ID: <inner@example.test>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"inner-b\"",
        "",
        "--inner-b",
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "inner text with a narwhal, ca=E9",
        "--inner-b",
        "Content-Type: image/png; name=\"dot.png\"",
        "Content-Transfer-Encoding: base64",
        "",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw",
        "AAAABJRU5ErkJggg==",
        "--inner-b--",
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        "YSBiYXNlNjQgcGFydCB3aXRoIGEgcGVsaWNhbgo=",
        "--b1--")),
    # 4: a single message/rfc822 body (a forward), inner without MIME headers
    ("cur", "RS", _lines(
        "From: dave@example.test",
        "To: alice@example.test",
        "Subject: Fwd: forwarded",
        "MIME-Version: 1.0",
        "Content-Type: message/rfc822",
        "",
        "From: Original <orig@example.test>",
        "Subject: the original",
        "",
        "original body line 1",
        "original body line 2")),
    # 5: no Content-Type, no Date, 8-bit body, odd address forms
    ("cur", "", _lines(
        "From: user-without-domain",
        "To: <@route.example.test:routed@example.test>, \"quoted \\\" name\" <q@example.test>,",
        " plain@example.test (a comment)",
        "Subject: no content type",
        "",
        b"body with 8-bit \xe9 bytes",
        "and a second line")),
    # 6: RFC 2231 continuations and charsets in parameters, upper case types
    ("cur", "", _lines(
        "From: erin@example.test",
        "To: alice@example.test",
        "Subject: parameters",
        "Date: 10 Dec 2026 12:00 GMT",
        "MIME-Version: 1.0",
        "Content-Type: TEXT/PLAIN; CHARSET=\"US-ASCII\" (a comment); FORMAT=flowed;",
        " title*0*=us-ascii'en'This%20is%20;",
        " title*1*=%2A%2A%2Afun%2A%2A%2A; name*0=\"long\"; name*1=\"name.txt\"",
        "Content-Disposition: INLINE; filename=\"x.txt\"",
        "",
        "parameters body")),
    # 7: multipart without a final boundary, an empty part, a part without headers
    ("cur", "", _lines(
        "From: frank@example.test",
        "To: alice@example.test",
        "Subject: broken multipart",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"xx\"",
        "",
        "--xx",
        "",
        "a part without headers",
        "--xx",
        "Content-Type: text/plain",
        "",
        "--xx",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "last part, never closed")),
    # 8: multipart without a boundary parameter; stored with CRLF
    ("cur", "D", _lines(
        "From: grace@example.test",
        "Subject: no boundary",
        "Content-Type: multipart/mixed",
        "",
        "just text").replace(b"\n", b"\r\n")),
    # 9: large plain text (sizes, partial fetches), in new/
    ("new", "", _lines(
        "From: heidi@example.test",
        "To: alice@example.test",
        "Subject: large text",
        "Date: Fri, 11 Dec 2026 08:00:00 +0900",
        "",
        *[f"line {i:05d} of a large message, an ocelot appears at line 2500"
          if i == 2500 else f"line {i:05d} of a large message" for i in range(5000)])),
    # 10: header only, no body, no final newline
    ("new", "", b"From: ivan@example.test\nSubject: header only\nTo: alice@example.test"),
    # 11: an encoded-word in a display name of a group member, long header
    ("cur", "S", _lines(
        "From: =?utf-8?B?w4RyZ2VyIEdtYkg=?= <info@example.test>",
        "To: Team: =?utf-8?q?J=C3=BCrgen?= <j@example.test>, kim@example.test;",
        "Subject: " + "very long subject " * 20,
        "Date: Sat, 12 Dec 2026 23:59:59 -1200",
        "Message-ID: <eleven@example.test>",
        "References: <one.1@example.test> <two.2@example.test>",
        "Content-Type: text/plain; charset=\"utf-8\"",
        "Content-Transfer-Encoding: base64",
        "",
        "VGhlIGJvZHkgbWVudGlvbnMgYSBxdW9ra2EgYW5kIMOEcmdlci4K")),
]


# ------------------------------------------------------------ IMAP tests
@pytest.fixture(scope="module")
def ipair(pair):
    why = dovecot.missing(("imap",))
    if why:
        pytest.skip(why)
    if pair.imap_port is None:
        pytest.skip("needs " + ", ".join(IMAP_DAEMONS) + " built")
    return pair


def both_imap(pair, script, corpus=IMAP_CORPUS, select="SELECT INBOX", what="", user=None):
    """Run script (after LOGIN and select) on a fresh account (or user, a
    (name, password) already taken) on both servers; compare."""
    user, pw = user or pair.take(corpus)
    s = ([select] if select else []) + list(script)
    tp = run_imap(pair.imap_port, s, login=(user, pw))
    td = run_imap(pair.dv.imap_port, s, login=(user, pw))
    compare_imap(tp, td, what or user)
    return tp, td, (user, pw)


N_IMAP = len(IMAP_CORPUS)


def test_imap_select_examine_status(ipair):
    both_imap(ipair, ["NOOP", "CHECK", "EXAMINE INBOX", "SELECT inbox", "SELECT NoSuchBox",
                      "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
                      "SELECT INBOX", "UNSELECT", "EXAMINE INBOX", "CLOSE"], select=None)


def test_imap_fetch_envelope(ipair):
    both_imap(ipair, [f"FETCH {i} (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"
                      for i in range(1, N_IMAP + 1)], select="EXAMINE INBOX")


def test_imap_fetch_bodystructure(ipair):
    both_imap(ipair, [f"FETCH {i} BODYSTRUCTURE" for i in range(1, N_IMAP + 1)],
              select="EXAMINE INBOX")


def test_imap_fetch_body(ipair):
    both_imap(ipair, [f"FETCH {i} BODY" for i in range(1, N_IMAP + 1)], select="EXAMINE INBOX")


def test_imap_fetch_macros_and_ranges(ipair):
    both_imap(ipair, ["FETCH 1:* FAST", "FETCH 1:* ALL", "FETCH 1:* FULL", "FETCH * UID",
                      "FETCH 2,4:5 (FLAGS RFC822.SIZE)", "UID FETCH 1:* (FLAGS)",
                      "UID FETCH 3:* RFC822.SIZE", "UID FETCH 99:* UID", "FETCH 1:* (UID)",
                      "UID FETCH 1:* (UID FLAGS)", "UID FETCH 2 (FLAGS UID RFC822.SIZE)"],
              select="EXAMINE INBOX")


SECTIONS = ["", "HEADER", "TEXT", "MIME", "1", "1.MIME", "2", "2.MIME", "3", "3.MIME",
            "1.1", "1.2", "2.1", "2.2", "2.HEADER", "2.TEXT", "2.1.1", "2.1.2", "2.1.2.MIME",
            "2.2.1", "4", "9", "1.9",
            "HEADER.FIELDS (FROM SUBJECT)", "HEADER.FIELDS (subject To x-none)",
            "HEADER.FIELDS.NOT (RECEIVED RETURN-PATH MESSAGE-ID)", "1.HEADER",
            "2.HEADER.FIELDS (SUBJECT FROM)", "1.TEXT"]


@pytest.mark.parametrize("msg", range(1, N_IMAP + 1))
def test_imap_fetch_sections(ipair, msg):
    both_imap(ipair, [f"FETCH {msg} BODY.PEEK[{s}]" for s in SECTIONS],
              select="EXAMINE INBOX", what=f"message {msg}")


def test_imap_fetch_partial_and_rfc822(ipair):
    script = []
    for i in (1, 2, 3, 9, 10):
        script += [f"FETCH {i} BODY.PEEK[]<0.100>", f"FETCH {i} BODY.PEEK[TEXT]<10.20>",
                   f"FETCH {i} BODY.PEEK[1]<0.5>", f"FETCH {i} BODY.PEEK[]<100000.10>",
                   f"FETCH {i} BODY.PEEK[]<3>",
                   f"FETCH {i} (RFC822.HEADER RFC822.SIZE)", f"FETCH {i} RFC822.TEXT",
                   f"FETCH {i} RFC822"]
    both_imap(ipair, script, select="EXAMINE INBOX")


def test_imap_fetch_sets_seen(ipair):
    both_imap(ipair, ["FETCH 2 (FLAGS)", "FETCH 2 BODY[TEXT]", "FETCH 2 (FLAGS)",
                      "FETCH 3 BODY.PEEK[TEXT]", "FETCH 3 FLAGS", "FETCH 5 RFC822",
                      "FETCH 5 FLAGS", "FETCH 6 RFC822.TEXT", "FETCH 6 FLAGS",
                      "FETCH 7 RFC822.HEADER", "FETCH 7 FLAGS", "FETCH 1:* FLAGS"])


SEARCHES = [
    "ALL", "ANSWERED", "UNANSWERED", "DELETED", "UNDELETED", "DRAFT", "UNDRAFT", "FLAGGED",
    "UNFLAGGED", "SEEN", "UNSEEN", "NEW", "OLD", "RECENT",
    "FROM alice", "FROM ALICE", "FROM \"example.test\"", "FROM nobody-at-all", "TO carol",
    "CC undisclosed", "BCC dave", "SUBJECT attachments", "SUBJECT \"folded\"", "SUBJECT Fwd",
    "BODY zebra", "BODY ZEBRA", "BODY hippopotamus", "BODY okapi", "BODY narwhal",
    "BODY pelican", "BODY walrus", "BODY quokka", "BODY ocelot", "BODY \"original body\"",
    "TEXT Example.Test", "TEXT ocelot", "TEXT \"inner message\"", "TEXT boundary",
    "HEADER Message-ID eleven", "HEADER X-Missing \"\"", "HEADER References two.2",
    "HEADER Content-Type multipart", "HEADER SUBJECT \"\"",
    "LARGER 1000", "SMALLER 500", "LARGER 100000",
    "BEFORE 1-Jan-2020", "SINCE 1-Jan-2020", "ON 6-Dec-2025", "BEFORE 7-Dec-2025",
    "SENTBEFORE 9-Dec-2026", "SENTON 8-Dec-2026", "SENTSINCE 10-Dec-2026",
    "SENTON 12-Dec-2026", "SENTON 10-Dec-2026",
    "UID 2:4", "1,3,5:*", "2:4 UID 3:*", "*", "NOT SEEN", "OR FLAGGED SEEN",
    "NOT (FROM alice OR SUBJECT nested BODY pelican)", "OR OR DRAFT ANSWERED FLAGGED",
    "KEYWORD $Forwarded", "UNKEYWORD $Forwarded", "FROM bob SUBJECT attachments",
    "(SEEN UNFLAGGED)", "LARGER 1000 NOT LARGER 2000",
]


def test_imap_search(ipair):
    script = [f"SEARCH {k}" for k in SEARCHES]
    script += [f"UID SEARCH {k}" for k in ("ALL", "2:*", "UID 3:5", "BODY walrus")]
    both_imap(ipair, script, select="EXAMINE INBOX")


def test_imap_search_charset_utf8(ipair):
    def lit(key, text):
        data = text.encode()
        return [f"SEARCH CHARSET UTF-8 {key} {{{len(data)}}}".encode(), data]
    script = [lit("FROM", "Müller"), lit("SUBJECT", "grüße"), lit("SUBJECT", "GRÜSSE"),
              lit("BODY", "ärger"), lit("BODY", "ÄRGER"), lit("TEXT", "café"),
              lit("BODY", "ca\u0301fe"), lit("TO", "jürgen"), lit("FROM", "Ärger GmbH"),
              "SEARCH CHARSET UTF-8 BODY zebra", "SEARCH CHARSET US-ASCII BODY zebra",
              "SEARCH CHARSET KOI9-X BODY zebra"]
    both_imap(ipair, script, select="EXAMINE INBOX")


def test_imap_esearch(ipair):
    both_imap(ipair, ["SEARCH RETURN (MIN MAX COUNT ALL) ALL",
                      "SEARCH RETURN (COUNT) UNSEEN", "SEARCH RETURN () FLAGGED",
                      "UID SEARCH RETURN (MIN MAX) BODY walrus",
                      "SEARCH RETURN (MIN) FROM nobody-at-all"], select="EXAMINE INBOX")


def test_imap_store_copy_expunge(ipair):
    both_imap(ipair, [
        "STORE 1 +FLAGS (\\Flagged)", "STORE 2:3 FLAGS (\\Seen \\Answered)",
        "STORE 4 -FLAGS.SILENT (\\Seen)", "STORE 1 +FLAGS ($Forwarded custom)",
        "UID STORE 5 +FLAGS (\\Draft)", "FETCH 1:* FLAGS", "STORE 1 -FLAGS (custom)",
        "CREATE Archive", "COPY 1:2 Archive", "UID COPY 3,5 Archive", "COPY 1 NoSuchBox",
        "STATUS Archive (MESSAGES UIDNEXT UNSEEN)",
        "STORE 3,5 +FLAGS (\\Deleted)", "EXPUNGE", "FETCH 1:* (UID FLAGS)",
        "MOVE 1 Archive", "FETCH 1:* UID", "STORE 1:2 +FLAGS.SILENT (\\Deleted)",
        "UID EXPUNGE 2:3", "FETCH 1:* (UID FLAGS)", "SEARCH DELETED",
        # (no RFC822.SIZE here: Dovecot gives the LF size of a copy it
        # made from a file named ,S=<LF size>)
        "SELECT Archive", "FETCH 1:* (UID FLAGS ENVELOPE)",
        "STORE 1 +FLAGS (\\Deleted)", "CLOSE", "EXAMINE Archive", "FETCH 1:* UID",
        "STORE 1 +FLAGS (\\Seen)", "EXPUNGE"])


def test_imap_append(ipair):
    msg = (b"From: appender@example.test\r\nTo: alice@example.test\r\nSubject: appended\r\n"
           b"Date: Sun, 13 Dec 2026 10:00:00 +0000\r\n\r\nappended body\r\n.with a dot\r\n")
    n = len(msg)
    both_imap(ipair, [
        [f"APPEND INBOX (\\Seen \\Flagged) \"13-Dec-2025 10:00:00 +0100\" {{{n}}}".encode(), msg],
        [f"APPEND INBOX {{{n}}}".encode(), msg],
        [f"APPEND NoSuchBox {{{n}}}".encode(), msg],
        "NOOP",
        f"FETCH {N_IMAP + 1}:* (UID FLAGS RFC822.SIZE ENVELOPE BODY[])",
        f"FETCH {N_IMAP + 1} INTERNALDATE",       # (the second: "now", on each server)
        "CREATE Drafts2", [f"APPEND Drafts2 (\\Draft) {{{n}}}".encode(), msg],
        "STATUS Drafts2 (MESSAGES UIDNEXT)"])


def test_imap_list_and_folders(ipair):
    both_imap(ipair, [
        "CREATE Archive", "CREATE Archive.2024", "CREATE Work", "CREATE &AMQ-pfel",
        "CREATE Archive", "CREATE INBOX", "CREATE Deep", "CREATE Deep.Er",
        "CREATE Deep.Er.Still",
        "SUBSCRIBE Archive", "SUBSCRIBE Work",
        "LIST \"\" \"*\"", "LIST \"\" \"%\"", "LIST \"\" \"Archive.%\"", "LIST \"\" \"Archive*\"",
        "LIST \"\" \"\"", "LIST \"Archive.\" \"%\"", "LIST \"\" \"inbox\"", "LIST \"\" \"Deep.%\"",
        "LSUB \"\" \"*\"", "LIST (SUBSCRIBED) \"\" \"*\"",
        "LIST \"\" \"*\" RETURN (CHILDREN SPECIAL-USE)", "LIST (SPECIAL-USE) \"\" \"*\"",
        "LIST \"\" \"%\" RETURN (STATUS (MESSAGES UNSEEN))",
        "STATUS Archive (MESSAGES UIDNEXT UNSEEN RECENT)", "STATUS NoSuchBox (MESSAGES)",
        "DELETE Work", "DELETE Work", "DELETE Archive", "RENAME Archive.2024 Old2024",
        "RENAME Deep Shallow", "LIST \"\" \"*\"", "LSUB \"\" \"*\"", "UNSUBSCRIBE Work",
        "LSUB \"\" \"*\"", "RENAME NoSuchBox Other", "RENAME Old2024 Shallow",
        "DELETE INBOX", "NAMESPACE"], select=None)


def test_imap_rename_inbox(ipair):
    """Not differential: Dovecot's Maildir++ layout refuses RENAME INBOX
    (NO [CANNOT]); RFC 3501 6.3.5 defines it: INBOX's messages move to the
    new name and INBOX stays, empty."""
    if SELF:
        pytest.skip("posthorn's own behaviour")
    user, pw = ipair.take(IMAP_CORPUS)
    t = run_imap(ipair.imap_port, ["RENAME INBOX Moved", "LIST \"\" \"*\"", "SELECT Moved",
                                   "SELECT INBOX", "STATUS Moved (MESSAGES)"], login=(user, pw))
    res = {n[0]: n for n in t.norm}
    assert res["RENAME INBOX Moved"][2][:2] == ("tagged", "OK"), show_imap(t)
    names = {u[3] for u in res['LIST "" "*"'][1] if u[0] == "LIST"}
    assert {b"INBOX", b"Moved"} <= names, names
    assert ("EXISTS", N_IMAP) in res["SELECT Moved"][1], show_imap(t)
    assert ("EXISTS", 0) in res["SELECT INBOX"][1], show_imap(t)


def test_imap_bad_commands(ipair):
    # (few BADs per session: both servers end a session after a number of them)
    user = ipair.take(IMAP_CORPUS)
    both_imap(ipair, ["FOO", "FETCH 1 FLAGS", "SELECT", "LOGOUT"], select=None, user=user)
    both_imap(ipair, ["FETCH 1 (FLAGS", "FETCH 0 FLAGS", "FETCH 99 FLAGS", "NOOP"], user=user)
    both_imap(ipair, ["FETCH 1 BODY[1.2.3.4.5]", "FETCH 1 BODY[FOO]", "FETCH 1 NOSUCHITEM",
                      "NOOP"], user=user)
    both_imap(ipair, ["STORE 1 +FLAGS (\\Recent)", "STORE 1 FLAGZ (\\Seen)",
                      "UID FETCH 99 FLAGS", "SEARCH FOO", "NOOP"], user=user)
    both_imap(ipair, ["COPY 99 INBOX", "UID COPY 99 INBOX", "EXPUNGE x", "CREATE", "NOOP"],
              user=user)
    both_imap(ipair, ["LOGIN a b", "AUTHENTICATE PLAIN", "SELECT INBOX", "NOOP"], select=None,
              user=user)


def test_imap_pipelined_commands(ipair):
    """Seven commands in one write, LOGIN first. A server may interleave
    the untagged answers of pipelined commands (Dovecot runs some at
    once), so all untagged answers compare as one set, and the tagged
    ones by tag."""
    user, pw = ipair.take(IMAP_CORPUS)
    commands = [f"LOGIN {user} {pw}", "SELECT INBOX", "FETCH 1:3 (UID FLAGS)",
                "SEARCH BODY walrus", "STORE 2 +FLAGS (\\Flagged)", "FETCH 2 FLAGS", "LOGOUT"]
    out = []
    for port in (ipair.imap_port, ipair.dv.imap_port):
        t = ImapTranscript()
        w = ImapWire(port)
        untagged, tagged, raw = [], {}, b""
        try:
            read_response(w)
            w.send(b"".join(b"a%d %s\r\n" % (i, c.encode()) for i, c in enumerate(commands)))
            while len(tagged) < len(commands):
                r = read_response(w)
                if r is None:
                    break
                raw += r
                if r.startswith(b"* "):
                    n = norm_untagged(r[2:])
                    if n is not None:
                        untagged.append(n)
                else:
                    tagged[r.split(b" ")[0].decode()] = norm_tagged(r)
        finally:
            w.close()
        t.raw = [(b"<pipelined>", raw)]
        t.norm = [("pipelined", tuple(sorted(untagged, key=repr)),
                   tuple(sorted(tagged.items())))]
        out.append(t)
    t0, t1 = out
    t0.raw.insert(0, (b"", b""))
    t1.raw.insert(0, (b"", b""))
    compare_imap(t0, t1, "pipelined")


# ------------------------------------------------- a strict third-party parser
IMAPFLOW_SCRIPT = pathlib.Path(__file__).resolve().parent / "imapflow_dump.mjs"


def imapflow_dump(port, user, pw):
    node = shutil.which("node")
    res = subprocess.run([node, str(IMAPFLOW_SCRIPT), str(port), user, pw],
                         capture_output=True, timeout=90)
    assert res.returncode == 0, \
        f"imapflow failed on port {port} ({res.returncode}):\n{res.stderr.decode()[-3000:]}"
    return json.loads(res.stdout)


def test_imapflow_parses_the_same(ipair):
    """imapflow (npm), a strict client-side parser of its own, reads the
    corpus from both servers: it must parse posthorn's responses and make
    the same objects of them (ENVELOPE, BODYSTRUCTURE with RFC 2231
    parameters decoded, header blocks, body parts, flags, sizes, dates,
    LIST with special-use, SEARCH)."""
    if not shutil.which("node"):
        pytest.skip("node is not installed (tools/install-deps.sh)")
    if not (IMAPFLOW_SCRIPT.parent / "node_modules" / "imapflow").is_dir():
        pytest.skip("imapflow is not installed in tests/node_modules (tools/install-deps.sh)")
    user, pw = ipair.take(IMAP_CORPUS)
    got = imapflow_dump(ipair.imap_port, user, pw)
    ref = imapflow_dump(ipair.dv.imap_port, user, pw)
    assert len(ref["messages"]) == N_IMAP
    for field in ("flags", "permanentFlags"):     # (see relax: posthorn's $Forwarded)
        if "$Forwarded" not in ref["mailbox"].get(field, []):
            got["mailbox"][field] = [f for f in got["mailbox"].get(field, []) if f != "$Forwarded"]
    problems = []
    for key in ("list", "mailbox", "search"):
        if got[key] != ref[key]:
            problems.append(f"{key}:\n  posthorn {got[key]}\n  dovecot  {ref[key]}")
    for a, b in zip(got["messages"], ref["messages"]):
        for field in sorted(set(a) | set(b)):
            if a.get(field) != b.get(field):
                problems.append(f"message {b['seq']} {field}:\n  posthorn {a.get(field)}\n"
                                f"  dovecot  {b.get(field)}")
    if len(got["messages"]) != len(ref["messages"]):
        problems.append(f"{len(got['messages'])} messages, not {len(ref['messages'])}")
    assert not problems, "imapflow's view differs:\n" + "\n".join(p[:1500] for p in problems)

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
import os
import pathlib
import pwd
import re
import shutil
import socket
import tempfile
import time

import pytest

import dovecot
from conftest import BUILD, MASTER
from mailsuite import SERVICES, MailInstance, have

POP_DAEMONS = ("auth", "pop3d-login", "pop3d")
IMAP_DAEMONS = ("auth", "imapd-login", "imapd")
DOMAIN = "example.test"
POOL = 40                       # accounts; each test takes fresh ones
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
        super().__init__(users=[u.split("@")[0] for u in users], services=services, passwords=True, ports=ports,
                         main={"auth_failure_delay": "0", "auth_client_failure_limit": "100000",
                               "auth_user_failure_limit": "100000"})


class Pair:
    """posthorn and Dovecot side by side, with a pool of accounts: take()
    gives a fresh account whose Maildir on both sides holds the corpus."""

    def __init__(self, workdir):
        self.users = [f"alice@{DOMAIN}"] + [f"u{n:02d}@{DOMAIN}" for n in range(1, POOL)]
        self.ph = PosthornMail(self.users)
        self.owner = pwd.getpwnam(self.ph.vmail_owner)
        mailroot = pathlib.Path(workdir) / "mail"
        mailroot.mkdir(mode=0o755)
        self.dv_boxes = {u: mailroot / u.split("@")[0] for u in self.users}
        self.dv = dovecot.Dovecot(
            pathlib.Path(workdir) / "dovecot",
            {u: (self.ph.passwords[u], self.dv_boxes[u]) for u in self.users}, self.owner,
            protocols=("pop3", "imap") if dovecot.missing(("imap",)) is None else ("pop3",),
            settings="")
        self.next = 0

    def start(self):
        self.ph.start()
        self.dv.start()

    def take(self, corpus=CORPUS):
        """(address, password) of an account not used before, both
        Maildirs filled with corpus."""
        assert self.next < len(self.users), "account pool exhausted: raise POOL"
        user = self.users[self.next]
        self.next += 1
        fill_maildir(self.ph.maildir(user), self.owner, corpus)
        fill_maildir(self.dv_boxes[user], self.owner, corpus)
        return user, self.ph.passwords[user]

    def boxes(self, user):
        return self.ph.maildir(user), self.dv_boxes[user]

    def close(self):
        try:
            self.dv.stop()
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
    if verb in MULTI_VERBS:
        return verb, "multi"
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
        run_pop3(pair.ph.pop3_port, script, tp)
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
    run_pop3(pair.ph.pop3_port, first(user, pw), tp)
    run_pop3(pair.dv.pop3_port, first(user, pw), td)
    compare(tp, td, "deleting session")
    # the next session sees what is left, with the same UIDLs as before
    after = ["greeting"] + login(user, pw) + [cmd("STAT"), cmd("LIST"), cmd("UIDL"),
                                              cmd("RETR 1"), cmd("QUIT")]
    run_pop3(pair.ph.pop3_port, after, tp)
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
    run_pop3(pair.ph.pop3_port, script(user, pw), tp)
    run_pop3(pair.dv.pop3_port, script(user, pw), td)
    time.sleep(0.3)                    # the servers see the connection close
    for _ in range(20):                # posthorn's [IN-USE] lock lasts until its session ends
        t2 = run_pop3(pair.ph.pop3_port, check(user, pw), PopTranscript())
        if "IN-USE" not in str(t2.norm):
            break
        time.sleep(0.1)
    run_pop3(pair.ph.pop3_port, check(user, pw), tp)
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
    user, pw = pair.take()
    first = Wire(pair.ph.pop3_port)
    try:
        assert first.line().startswith(b"+OK")
        first.send(f"USER {user}\r\nPASS {pw}\r\n".encode())
        assert first.line().startswith(b"+OK")
        assert first.line().startswith(b"+OK")
        second = run_pop3(pair.ph.pop3_port, ["greeting"] + login(user, pw) + [cmd("QUIT")])
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


def test_pop3_empty_mailbox(pair):
    user, pw = pair.take()
    for box in pair.boxes(user):
        fill_maildir(box, pair.owner, corpus=[])

    def script(user, pw):
        return ["greeting"] + login(user, pw) + [cmd("STAT"), cmd("LIST"), cmd("UIDL"),
                                                  cmd("LIST 1"), cmd("RETR 1"), cmd("TOP 1 0"),
                                                  cmd("DELE 1"), cmd("RSET"), cmd("QUIT")]
    tp = run_pop3(pair.ph.pop3_port, script(user, pw))
    td = run_pop3(pair.dv.pop3_port, script(user, pw))
    compare(tp, td, "empty mailbox")

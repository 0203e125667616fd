"""POP3 with real clients against a full instance (tests/mailsuite.py):
mail arrives over SMTP, then Python's poplib, curl (pop3://), fetchmail
(keep, UIDL-based fetch-new-only, delete) and mutt (a pop:// folder and
<fetch-mail>, driven through a pseudo-terminal) read it back through
pop3d-login -> auth -> pop3d. Also: two clients on one mailbox
([IN-USE]), a delivery during a session that deletes (the new mail
survives QUIT), a damaged or lost mailbox index (all mail still listed,
UIDLs kept), and the sandbox (tools/sandbox.sh) answering on 2110 for
demo@example.test.

Loopback only; every client runs under a deadline. Skips cleanly when a
daemon is not built or a client program is not installed
(tools/install-deps.sh installs curl, fetchmail and mutt)."""
import email
import email.policy
import fcntl
import os
import pathlib
import poplib
import pty
import re
import select
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import tempfile
import termios
import time

import pytest

from conftest import BUILD, ROOT, free_port
from mailsuite import SERVICES, MailInstance, have, MASTER

POP_DAEMONS = ("smtpd", "cleanup", "qmgr", "local-delivery", "auth", "pop3d-login", "pop3d")
pytestmark = pytest.mark.skipif(
    not all(have(p) for p in POP_DAEMONS),
    reason="needs " + ", ".join(POP_DAEMONS) + " built")

ALICE = "alice@example.test"
BOB = "bob@example.test"
CLIENT_TIMEOUT = 30          # seconds for one client run


class PopInstance(MailInstance):
    """A MailInstance whose users have passwords, with auth, pop3d and
    pop3d-login on .pop3_port."""

    def __init__(self):
        self.pop3_port = free_port()
        super().__init__(services=SERVICES + ("auth", "pop3d"), passwords=True,
                         ports={"pop3": f"127.0.0.1:{self.pop3_port}"})

    def pop(self, address=ALICE, password=None, timeout=10):
        """A logged-in poplib.POP3 for address."""
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=timeout)
        p.user(address)
        p.pass_(password if password is not None else self.passwords[address])
        return p

    def deliver(self, subjects, rcpt=ALICE):
        """Send one message per subject over SMTP and wait until all of them
        are in rcpt's Maildir; the sent messages (bytes, CRLF) by subject."""
        before = len(self.maildir_messages(rcpt))
        sent = {}
        for s in subjects:
            msg = (f"From: sender@remote.example\r\nTo: {rcpt}\r\nSubject: {s}\r\n"
                   f"Message-ID: <{s}@remote.example>\r\n\r\nbody of {s}\r\n"
                   f".a line that starts with a dot\r\n\r\nlast line of {s}\r\n").encode()
            self.smtp_send("sender@remote.example", [rcpt], msg)
            sent[s] = msg
        self.wait_maildir(rcpt, before + len(subjects))
        return sent

    def stored(self, address=ALICE):
        """The messages in address's Maildir as a POP3 client sees them
        (CRLF line ends), by Subject."""
        out = {}
        for raw in self.maildir_messages(address):
            crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            out[subject(crlf)] = crlf
        return out


def subject(message):
    m = re.search(rb"^Subject: (.*?)\r?$", message, re.M)
    return m.group(1).decode() if m else None


@pytest.fixture
def pop():
    if not MASTER.exists() or not (BUILD / "bin" / "posthorn").exists():
        pytest.skip("master and posthorn must be built")
    inst = PopInstance()
    try:
        inst.start()
        yield inst
    finally:
        inst.cleanup()


def need(program):
    path = shutil.which(program)
    if not path:
        pytest.skip(f"{program} is not installed (tools/install-deps.sh)")
    return path


def work_dir(pop, name):
    """A scratch directory for a client, inside the instance directory
    (removed with it)."""
    d = pop.dir / name
    d.mkdir(mode=0o700)
    return d


def run(argv, timeout=CLIENT_TIMEOUT, **kw):
    return subprocess.run(argv, capture_output=True, timeout=timeout, **kw)


# ---------------------------------------------------------------- poplib
def test_poplib_login_stat_list_retr_dele(pop):
    sent = pop.deliver(["one", "two", "three"])
    stored = pop.stored()
    assert set(stored) == {"one", "two", "three"}
    p = pop.pop()
    try:
        count, octets = p.stat()
        assert count == 3
        assert octets == sum(len(m) for m in stored.values())
        resp, listing, _ = p.list()
        assert resp.startswith(b"+OK")
        sizes = {int(n): int(s) for n, s in (line.split() for line in listing)}
        assert sorted(sizes) == [1, 2, 3]
        got = {}
        for n, size in sizes.items():
            resp, lines, octets = p.retr(n)
            assert resp.startswith(b"+OK")
            text = b"".join(line + b"\r\n" for line in lines)
            assert len(text) == size, (n, size, len(text))
            got[subject(text)] = text
        assert got == stored                      # byte for byte, as delivered
        for s, msg in sent.items():               # and what the client sent is in it
            body = msg.split(b"\r\n\r\n", 1)[1]
            assert got[s].endswith(b"\r\n\r\n" + body), s
            assert b"\r\n.a line that starts with a dot\r\n" in got[s]
        uidls = {int(n): u for n, u in (line.split() for line in p.uidl()[1])}
        assert len(set(uidls.values())) == 3
        doomed = subject(b"".join(x + b"\r\n" for x in p.retr(2)[1]))
        assert p.dele(2).startswith(b"+OK")
        assert p.stat()[0] == 2                   # gone from the session's view
        assert len(pop.maildir_messages(ALICE)) == 3   # but not before QUIT
        assert p.quit().startswith(b"+OK")
    finally:
        p.close()
    left = pop.stored()
    assert len(left) == 2 and doomed not in left
    p = pop.pop()
    try:
        assert p.stat()[0] == 2
        again = {int(n): u for n, u in (line.split() for line in p.uidl()[1])}
        assert set(again.values()) == {uidls[1], uidls[3]}   # UIDLs kept across sessions
        p.quit()
    finally:
        p.close()


def test_poplib_wrong_password_and_other_mailbox(pop):
    pop.deliver(["for-alice"])
    with pytest.raises(poplib.error_proto) as err:
        pop.pop(ALICE, "not-the-password")
    assert err.value.args[0].startswith(b"-ERR")
    # bob logs in to his own, empty, mailbox: alice's mail is not there
    p = pop.pop(BOB)
    try:
        assert p.stat() == (0, 0)
        p.quit()
    finally:
        p.close()


# ------------------------------------------------------------------ curl
def test_curl_list_and_retrieve(pop):
    curl = need("curl")
    pop.deliver(["c1", "c2"])
    stored = pop.stored()
    auth = f"{ALICE}:{pop.passwords[ALICE]}"
    url = f"pop3://127.0.0.1:{pop.pop3_port}/"
    res = run([curl, "-sS", "--max-time", "20", url, "-u", auth])
    assert res.returncode == 0, res.stderr
    listing = dict(line.split() for line in res.stdout.decode().splitlines())
    assert sorted(listing) == ["1", "2"]
    assert sorted(int(v) for v in listing.values()) == sorted(len(m) for m in stored.values())
    got = {}
    for n in ("1", "2"):
        res = run([curl, "-sS", "--max-time", "20", url + n, "-u", auth])
        assert res.returncode == 0, res.stderr
        got[subject(res.stdout)] = res.stdout
    assert got == stored
    # a wrong password: curl reports the login failure (67)
    res = run([curl, "-sS", "--max-time", "20", url, "-u", f"{ALICE}:wrong"])
    assert res.returncode == 67, (res.returncode, res.stderr)
    # nothing was deleted
    assert len(pop.maildir_messages(ALICE)) == 2


# ------------------------------------------------------------- fetchmail
def fetchmail_rc(pop, d, keep=True, uidl=True):
    """A fetchmail run-control file that delivers each message into its
    own file in d/out through an MDA; the argv to run it."""
    out = d / "out"
    out.mkdir(exist_ok=True)
    rc = d / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "set invisible\n"          # no Received: line of its own: compare bytes
        f"poll 127.0.0.1 with proto POP3 port {pop.pop3_port}{' uidl' if uidl else ''}\n"
        f"  user \"{ALICE}\" there with password \"{pop.passwords[ALICE]}\" is \"root\" here\n"
        f"  options {'keep' if keep else 'no keep fetchall'} sslproto ''\n"
        f"  mda \"cat > {out}/msg.$$\"\n")
    rc.chmod(0o600)
    return [need("fetchmail"), "-f", str(rc), "-i", str(d / "fetchids"),
            "--pidfile", str(d / "fetchmail.pid"), "--nodetach"]


def fetched(d):
    out = {}
    for f in sorted((d / "out").iterdir()):
        raw = f.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out[subject(raw)] = raw
    return out


def test_fetchmail_keep_uidl_then_delete(pop):
    need("fetchmail")
    d = work_dir(pop, "fetchmail")
    env = dict(os.environ, HOME=str(d))
    pop.deliver(["f1", "f2"])
    argv = fetchmail_rc(pop, d, keep=True)
    res = run(argv, env=env)
    assert res.returncode == 0, res.stdout + res.stderr          # 0: mail was fetched
    assert fetched(d) == pop.stored()
    assert len(pop.maildir_messages(ALICE)) == 2                 # keep: left on the server
    ids = (d / "fetchids").read_text()
    assert len(ids.splitlines()) == 2, ids

    # A second run with the UIDL list fetches only what is new.
    pop.deliver(["f3"])
    for f in (d / "out").iterdir():
        f.unlink()
    res = run(argv, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    got = fetched(d)
    assert list(got) == ["f3"] and got["f3"] == pop.stored()["f3"]
    assert len((d / "fetchids").read_text().splitlines()) == 3
    # and a third finds nothing new (1: no mail)
    res = run(argv, env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert len(list((d / "out").iterdir())) == 1

    # Delete mode: everything is fetched and removed from the server.
    before = pop.stored()
    for f in (d / "out").iterdir():
        f.unlink()
    res = run(fetchmail_rc(pop, d, keep=False), env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert fetched(d) == before
    assert pop.maildir_messages(ALICE) == []
    p = pop.pop()
    try:
        assert p.stat() == (0, 0)
        p.quit()
    finally:
        p.close()


# ------------------------------------------------------------------ mutt
def run_pty(argv, env, timeout=CLIENT_TIMEOUT):
    """Run an interactive program on a pseudo-terminal (120x40) until it
    exits; (exit status, what it drew). Killed at the deadline."""
    pid, fd = pty.fork()
    if pid == 0:                                   # the child: exec or die
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    screen = b""
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pid = None
                raise AssertionError(f"{argv[0]} did not finish within {timeout}s; screen:\n"
                                     + screen[-3000:].decode(errors="replace"))
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:                     # EIO: the child closed the terminal
                    data = b""
                if not data:
                    break
                screen += data
        _, status = os.waitpid(pid, 0)
        pid = None
        return os.waitstatus_to_exitcode(status), screen
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        os.close(fd)


def muttrc(pop, d):
    rc = d / "muttrc"
    rc.write_text(
        f"set pop_user=\"{ALICE}\"\n"
        f"set pop_pass=\"{pop.passwords[ALICE]}\"\n"
        "set ssl_starttls=no\nset ssl_force_tls=no\n"
        "set confirmcreate=no\nset confirmappend=no\nset quit=yes\nset move=no\n"
        "set mbox_type=mbox\nset record=\"\"\nset header_cache=\"\"\n"
        "set message_cachedir=\"\"\nset pop_delete=no\n"
        "set timeout=5\n"
        # PLAIN (SASL), else USER/PASS. Left to itself mutt tries
        # SCRAM-SHA-256 first, which these accounts have no secret for:
        # each try is a failed login that auth answers after its failure
        # delay (and mutt logs in again at each mailbox check).
        "set pop_authenticators=\"plain:user\"\n"
        f"set folder=\"{d}\"\nset mbox=\"{d}/mbox\"\n")
    rc.chmod(0o600)
    return rc


def test_mutt_reads_a_pop3_folder_and_fetches(pop):
    mutt = need("mutt")
    d = work_dir(pop, "mutt")
    rc = muttrc(pop, d)
    pop.deliver(["m1", "m2", "m3"])
    stored = pop.stored()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d), "TERM": "vt100",
           "LANG": "C"}
    url = f"pop://{ALICE.replace('@', '%40')}@127.0.0.1:{pop.pop3_port}/"

    # The server as a folder: mutt lists every message on its index
    # screen, copies each one to an mbox and quits. ($folder must exist:
    # otherwise mutt first asks whether to create ~/Mail, and that
    # question eats the pushed keys.)
    copy = d / "copied.mbox"
    keys = f"<copy-message>{copy}<enter><next-entry>" * len(stored)
    status, screen = run_pty(
        [mutt, "-n", "-F", str(rc), "-f", url, "-e", f"push '{keys}<quit>'"], env)
    drawn = screen.decode(errors="replace")
    assert status == 0, drawn[-2000:]
    assert f"Msgs:{len(stored)}" in drawn, drawn[-2000:]
    got = mbox_messages(copy)
    assert sorted(got) == sorted(stored), drawn[-2000:]
    for s, msg in got.items():
        sent = email.message_from_bytes(stored[s], policy=email.policy.compat32)
        # (mbox ends each message with a blank line of its own)
        assert msg.get_payload(decode=True).replace(b"\r\n", b"\n").rstrip(b"\n") == \
            sent.get_payload(decode=True).replace(b"\r\n", b"\n").rstrip(b"\n")
        assert msg["Message-ID"] == sent["Message-ID"]
    assert len(pop.maildir_messages(ALICE)) == 3        # reading deletes nothing

    # <fetch-mail>: pop_host into the spool file, keeping the server's copy.
    spool = d / "spool.mbox"
    spool.write_bytes(b"")
    status, screen = run_pty(
        [mutt, "-n", "-F", str(rc), "-f", str(spool),
         "-e", f"set pop_host=pop://{ALICE.replace('@', '%40')}@127.0.0.1:{pop.pop3_port}",
         "-e", f"set spoolfile={spool}", "-e", "push '<fetch-mail><quit>'"], env)
    assert status == 0, screen[-2000:].decode(errors="replace")
    assert sorted(mbox_messages(spool)) == ["m1", "m2", "m3"], \
        screen[-2000:].decode(errors="replace")
    assert len(pop.maildir_messages(ALICE)) == 3        # pop_delete=no


def mbox_messages(path):
    out = {}
    chunks = re.split(rb"(?m)^From [^\n]*\n", path.read_bytes())
    for chunk in chunks:
        if chunk.strip():
            msg = email.message_from_bytes(chunk, policy=email.policy.compat32)
            out[msg["Subject"]] = msg
    return out


# ------------------------------------------------------- concurrency
def test_two_clients_on_one_mailbox(pop):
    pop.deliver(["shared"])
    first = pop.pop()
    try:
        assert first.stat()[0] == 1
        second = poplib.POP3("127.0.0.1", pop.pop3_port, timeout=10)
        try:
            second.user(ALICE)
            with pytest.raises(poplib.error_proto) as err:
                second.pass_(pop.passwords[ALICE])
            assert err.value.args[0].startswith(b"-ERR [IN-USE]"), err.value.args
        finally:
            second.close()
        assert first.noop().startswith(b"+OK")           # the first session goes on
        assert first.stat()[0] == 1
        first.quit()
    finally:
        first.close()
    # once the first has quit, the mailbox is free again
    deadline = time.monotonic() + 10
    while True:
        try:
            p = pop.pop()
            break
        except poplib.error_proto as e:
            if b"[IN-USE]" not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        assert p.stat()[0] == 1
        p.quit()
    finally:
        p.close()


def test_deletion_under_concurrent_delivery(pop):
    pop.deliver(["old1", "old2"])
    p = pop.pop()
    try:
        assert p.stat()[0] == 2
        assert p.dele(1).startswith(b"+OK")
        assert p.dele(2).startswith(b"+OK")
        # mail that arrives during the session is not in its list ...
        pop.deliver(["new1", "new2"])
        assert len(pop.maildir_messages(ALICE)) == 4
        assert p.stat()[0] == 0
        assert p.quit().startswith(b"+OK")               # ... and survives its QUIT
    finally:
        p.close()
    assert sorted(pop.stored()) == ["new1", "new2"]
    p = pop.pop()
    try:
        assert p.stat()[0] == 2
        got = sorted(subject(b"".join(x + b"\r\n" for x in p.retr(n)[1])) for n in (1, 2))
        assert got == ["new1", "new2"]
        p.quit()
    finally:
        p.close()


def uidl_map(pop):
    """{Subject: UIDL} of alice's mailbox, from one POP3 session."""
    p = pop.pop()
    try:
        out = {}
        for n, u in (line.split() for line in p.uidl()[1]):
            out[subject(b"".join(x + b"\r\n" for x in p.top(int(n), 0)[1]))] = u
        p.quit()
        return out
    finally:
        p.close()


# The mail store's files in the Maildir root (docs/mailstore.md): the
# index, rebuilt from the file names when it is damaged or lost, and the
# anchor that keeps UIDVALIDITY apart from it.
INDEX, ANCHOR = "posthorn-index", "posthorn-uidvalidity"


@pytest.mark.parametrize("damage", ["garbage", "empty", "removed", "index-and-anchor-removed"])
def test_damaged_index_is_rebuilt(pop, damage):
    pop.deliver(["i1", "i2", "i3"])
    before = uidl_map(pop)
    assert sorted(before) == ["i1", "i2", "i3"]
    box = pop.maildir(ALICE)
    index = box / INDEX
    assert index.is_file() and (box / ANCHOR).is_file(), sorted(os.listdir(box))
    mark = pop.log_mark()
    if damage == "garbage":
        index.write_bytes(os.urandom(max(index.stat().st_size, 64)))
    elif damage == "empty":
        index.write_bytes(b"")
    else:
        index.unlink()
        if damage == "index-and-anchor-removed":
            (box / ANCHOR).unlink()
    after = uidl_map(pop)
    assert sorted(after) == ["i1", "i2", "i3"]       # no mail lost
    assert len(set(after.values())) == 3
    if damage == "index-and-anchor-removed":
        # a new UIDVALIDITY, so new UIDLs: clients fetch again, lose nothing
        assert not set(after.values()) & set(before.values())
    else:
        assert after == before                       # UIDLs kept
    if damage in ("garbage", "empty"):
        pop.wait_log(r"index is damaged", since=mark)
    assert index.is_file()                           # written again
    # and new mail after the rebuild gets a new, distinct UIDL
    pop.deliver(["i4"])
    last = uidl_map(pop)
    assert {k: last[k] for k in after} == after
    assert last["i4"] not in after.values() and last["i4"] not in before.values()


# ---------------------------------------------------------------- sandbox
def port_free(port):
    """No listener on 127.0.0.1:port (SO_REUSEADDR: a connection of an
    earlier run in TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_sandbox_serves_pop3_on_2110():
    """tools/sandbox.sh with the real build: demo@example.test reads a
    message it was sent on 2525 over POP3 on 2110 with the password in
    run/demo.password."""
    ports = (2525, 2110)
    if not all(port_free(p) for p in ports):
        pytest.skip("port 2525 or 2110 is taken (a sandbox running?)")
    base = pathlib.Path(tempfile.mkdtemp(prefix="posthorn-popsandbox-", dir="/tmp"))
    base.chmod(0o755)
    run_dir = base / "run"
    env = dict(os.environ, POSTHORN_BUILD=str(BUILD), POSTHORN_SANDBOX_DIR=str(run_dir))
    env.pop("POSTHORN_CONFIG_DIR", None)
    env.pop("POSTHORN_SANDBOX_NO_START", None)
    out = open(base / "sandbox.out", "wb")
    proc = subprocess.Popen(["sh", str(ROOT / "tools" / "sandbox.sh")], env=env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    posthorn = BUILD / "bin" / "posthorn"
    try:
        deadline = time.monotonic() + 60
        while port_free(2110) or port_free(2525):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the sandbox did not listen on 2525 and 2110:\n"
                                     + (base / "sandbox.out").read_text(errors="replace"))
            time.sleep(0.1)
        text = (base / "sandbox.out").read_text(errors="replace")
        password = (run_dir / "demo.password").read_text().strip()
        assert "2110" in text and password in text
        assert "curl" in text and "fetchmail" in text and "mutt" in text   # how to read it
        msg = b"Subject: sandbox pop\r\n\r\nhello demo\r\n"
        with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as s:
            s.sendmail("someone@remote.example", ["demo@example.test"], msg)
        deadline = time.monotonic() + 20
        while True:
            p = poplib.POP3("127.0.0.1", 2110, timeout=10)
            try:
                p.user("demo@example.test")
                p.pass_(password)
                count = p.stat()[0]
                if count:
                    body = b"\r\n".join(p.retr(1)[1])
                    p.quit()
                    break
                p.quit()
            finally:
                p.close()
            assert time.monotonic() < deadline, "the message did not arrive"
            time.sleep(0.2)
        assert b"Subject: sandbox pop" in body and body.endswith(b"hello demo")
    finally:
        subprocess.run([str(posthorn), "-c", str(run_dir / "etc"), "stop"],
                       capture_output=True, timeout=30)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        out.close()
        # anything of the instance still running is ended
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(run_dir).encode() in cmd and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(base, ignore_errors=True)

"""sendmail, postdrop and pickup: options and exit codes, the maildrop
file sendmail and postdrop write (checked record by record), -t/-f/-i,
dot handling, -bs, mailq/newaliases, postdrop's checks, pickup against a
scripted cleanup server (so pickup is tested on its own), and end to end
with the full `mail` instance when cleanup, qmgr and local-delivery are
built: delivery, injection while the system is stopped, and the rate of
a shell loop."""
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import BUILD
from mailsuite import have, mail  # noqa: F401  (fixture)
from phwire import IpcReader, encode, hello, parse_records, record

SENDMAIL = BUILD / "bin" / "sendmail"
POSTDROP = BUILD / "bin" / "postdrop"
POSTHORN = BUILD / "bin" / "posthorn"
PICKUP = BUILD / "libexec" / "pickup"

EX_USAGE, EX_DATAERR, EX_TEMPFAIL = 64, 65, 75


# -- helpers ------------------------------------------------------------------
class Drop:
    """An instance with command_directory (sendmail, postdrop, posthorn,
    mailq, newaliases) and queue directories made by `posthorn check`."""

    def __init__(self, inst):
        self.inst = inst
        self.bin = inst.dir / "bin"
        self.bin.mkdir()
        for prog in (SENDMAIL, POSTDROP, POSTHORN):
            (self.bin / prog.name).symlink_to(prog)
        for alias in ("mailq", "newaliases"):
            (self.bin / alias).symlink_to(self.bin / "sendmail")
        (inst.etc / "aliases").write_text("postmaster: root\nabuse: postmaster\n")
        inst.set_main(command_directory=str(self.bin), myhostname="mail.example.test",
                      alias_maps=f"cdb:{inst.etc}/aliases")
        res = subprocess.run([str(POSTHORN), "-c", str(inst.etc), "check"],
                             capture_output=True, text=True, timeout=30)
        assert (inst.queue / "maildrop").is_dir(), res.stdout + res.stderr
        self.maildrop = inst.queue / "maildrop"

    def env(self):
        return dict(os.environ, POSTHORN_CONFIG_DIR=str(self.inst.etc))

    def run(self, *args, input=b"", name="sendmail", timeout=30):
        return subprocess.run([str(self.bin / name), *args], input=input, env=self.env(),
                              capture_output=True, timeout=timeout)

    def files(self):
        return sorted(self.maildrop.iterdir())

    def only_file(self):
        files = self.files()
        assert len(files) == 1, files
        return parse_records(files[0].read_bytes())

    def clear(self):
        for f in self.files():
            f.unlink()


@pytest.fixture
def drop(instance):
    for p in (SENDMAIL, POSTDROP, POSTHORN):
        if not p.exists():
            pytest.skip(f"{p} not built")
    return Drop(instance)


def content(recs):
    """The content lines of a record list."""
    i = [t for t, _ in recs].index("M")
    lines, cur = [], b""
    for t, d in recs[i + 1:]:
        if t == "C":
            cur += d
        elif t == "L":
            lines.append(cur + d)
            cur = b""
        else:
            break
    return lines


# -- sendmail and postdrop ---------------------------------------------------------
def test_usage_errors(drop):
    for args in (["-Z", "a@b"], [], ["-N", "sometimes", "a@b"], ["-R", "most", "a@b"],
                 ["-bz"], ["-f"], ["-V", "has space", "a@b"], ["-B", "binary", "a@b"]):
        res = drop.run(*args, input=b"x\n")
        assert res.returncode == EX_USAGE, (args, res)
        assert res.stderr.startswith(b"sendmail: fatal: "), res.stderr
    assert drop.files() == []


def test_maildrop_file_records(drop):
    res = drop.run("-f", "<joe@example.test>", "-N", "Delay, Failure", "-R", "hdrs", "-V", "env-1",
                   "-B", "8BITMIME", "bob@example.test", "Carl <carl@example.test>, dora@x.test",
                   input=b"Subject: hi\r\n\r\nbody\r\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"" and res.stderr == b""
    f = drop.files()[0]
    st = f.stat()
    assert st.st_uid == os.getuid() and (st.st_mode & 0o777) == 0o444
    recs = drop.only_file()
    assert recs[0] == ("V", b"posthorn-queue 1")
    assert recs[1] == ("S", b"joe@example.test")
    assert ("A", b"dsn_ret=hdrs") in recs and ("A", b"dsn_envid=env-1") in recs
    assert ("A", b"body=8bitmime") in recs
    assert not any(t == "A" and d.startswith(b"submit_uid") for t, d in recs)
    assert not any(t == "T" for t, _ in recs)
    rcpts = [d for t, d in recs if t == "R"]
    assert rcpts == [b"bob@example.test", b"carl@example.test", b"dora@x.test"]
    assert [d for t, d in recs if t == "N"] == [b"delay,failure"] * 3
    assert content(recs) == [b"Subject: hi", b"", b"body"]
    assert [t for t, _ in recs][-2:] == ["X", "E"]
    assert re.fullmatch(r"[0-9A-Za-z]{11,21}", f.name)


def test_default_sender_is_login_name(drop):
    import pwd
    assert drop.run("u@example.test", input=b"x\n").returncode == 0
    recs = drop.only_file()
    assert recs[1] == ("S", pwd.getpwuid(os.getuid()).pw_name.encode())
    drop.clear()
    assert drop.run("-f", "<>", "u@example.test", input=b"x\n").returncode == 0
    assert drop.only_file()[1] == ("S", b"")


def test_dot_and_line_endings(drop):
    msg = b"a\r\nb\n..c\n.\nafter\n"
    assert drop.run("u@x.test", input=msg).returncode == 0
    assert content(drop.only_file()) == [b"a", b"b", b"..c"]
    for flag in ("-i", "-oi"):
        drop.clear()
        assert drop.run(flag, "u@x.test", input=msg).returncode == 0
        assert content(drop.only_file()) == [b"a", b"b", b"..c", b".", b"after"]
    # a long line is kept whole (C records), a NUL byte too; no final newline
    drop.clear()
    long = b"x" * 10000
    assert drop.run("u@x.test", input=long + b"\n\x00y\r\nlast").returncode == 0
    recs = drop.only_file()
    assert any(t == "C" for t, _ in recs)
    assert content(recs) == [long, b"\x00y", b"last"]


def test_extract_recipients(drop):
    assert drop.run("-t", input=b"To: a@x.test\n\nhi\n").returncode == 0
    recs = drop.only_file()
    assert ("A", b"flags=extract") in recs
    assert not any(t == "R" for t, _ in recs)
    drop.clear()
    assert drop.run("-t", "extra@x.test", input=b"To: a@x.test\n\nhi\n").returncode == 0
    recs = drop.only_file()
    assert ("A", b"flags=extract") in recs and ("R", b"extra@x.test") in recs


def test_full_name_from_header(drop):
    assert drop.run("-F", 'Joe "J" User\r\nBcc: evil@x', "-f", "joe", "u@x.test",
                    input=b"Subject: s\n\nbody\n").returncode == 0
    lines = content(drop.only_file())
    assert lines[0] == b'From: "Joe \\"J\\" UserBcc: evil@x" <joe@mail.example.test>'
    assert lines[1:] == [b"Subject: s", b"", b"body"]
    drop.clear()
    assert drop.run("-F", "Joe", "u@x.test", input=b"From: me@x.test\n\nb\n").returncode == 0
    assert content(drop.only_file()) == [b"From: me@x.test", b"", b"b"]


def test_size_limit(drop):
    drop.inst.set_main(message_size_limit="1000")
    res = drop.run("u@x.test", input=b"x" * 2000 + b"\n")
    assert res.returncode == EX_DATAERR and b"too large" in res.stderr
    assert drop.files() == []
    assert drop.run("u@x.test", input=b"x" * 900 + b"\n").returncode == 0


def test_postdrop_rejects_untrusted_records(drop):
    good = (record("V", "posthorn-queue 1") + record("S", "a@x") + record("R", "b@x")
            + record("M") + record("L", "hi") + record("X") + record("E"))
    bad = {
        "attribute submit_uid not allowed": good.replace(record("R", "b@x"),
                                                          record("A", "submit_uid=0") + record("R", "b@x")),
        "unexpected record type 'T'": good.replace(record("S", "a@x"),
                                                   record("T", "1700000000") + record("S", "a@x")),
        "unexpected record type 'D'": good.replace(record("R", "b@x"), record("D", "b@x")),
        "premature end of file": good[:-5],
        "data after the end record": good + record("E"),
        "attribute sasl_username not allowed": good.replace(
            record("R", "b@x"), record("A", "sasl_username=bob") + record("R", "b@x")),
    }
    for why, data in bad.items():
        res = subprocess.run([str(POSTDROP), "-c", str(drop.inst.etc)], input=data,
                             capture_output=True, timeout=10)
        assert res.returncode == EX_DATAERR, (why, res)
        assert why.encode() in res.stderr, (why, res.stderr)
        assert os.listdir(drop.maildrop) == [], why      # temp file removed
    res = subprocess.run([str(POSTDROP), "-c", str(drop.inst.etc)], input=good,
                         capture_output=True, timeout=10)
    assert res.returncode == 0 and res.stdout == b""
    assert len(drop.files()) == 1
    # a relative or odd config directory is a usage error
    res = subprocess.run([str(POSTDROP), "-c", "etc"], input=good, capture_output=True, timeout=10)
    assert res.returncode == EX_USAGE


def test_postdrop_closed_stdio(drop):
    """postdrop started with fds 0-2 closed reopens them on /dev/null and
    fails cleanly (no input) instead of writing into a stray file."""
    res = subprocess.run(f"exec {POSTDROP} -c {drop.inst.etc} <&- >&- 2>&-", shell=True,
                         timeout=10)
    assert res.returncode == EX_DATAERR
    assert drop.files() == []


def reply_codes(res):
    """The -bs output and the codes of its final reply lines."""
    out = res.stdout.decode()
    return out, [l[:3] for l in out.split("\r\n") if l and l[3] == " "]


def test_smtp_mode(drop):
    dialogue = (b"EHLO client\r\nMAIL FROM:<s@x.test> RET=HDRS ENVID=e1\r\n"
                b"RCPT TO:<r@x.test> NOTIFY=SUCCESS\r\nRCPT TO:<local>\r\nRCPT TO:<bad@@x>\r\n"
                b"DATA\r\nSubject: t\r\n\r\n..dot\r\n.\r\nNOOP\r\nRSET\r\nDATA\r\nBOGUS\r\nQUIT\r\n")
    res = drop.run("-bs", input=dialogue)
    assert res.returncode == 0, res.stderr
    out, codes = reply_codes(res)
    assert codes == ["220", "250", "250", "250", "250", "501", "354", "250", "250", "250",
                     "503", "502", "221"], out
    assert "250-DSN" in out and "250-PIPELINING" in out
    recs = drop.only_file()
    assert recs[1] == ("S", b"s@x.test")
    assert ("A", b"dsn_ret=hdrs") in recs and ("A", b"dsn_envid=e1") in recs
    assert [d for t, d in recs if t == "R"] == [b"r@x.test", b"local"]
    assert ("N", b"success") in recs
    assert content(recs) == [b"Subject: t", b"", b".dot"]


@pytest.mark.parametrize("eod", [b"\n.\n", b"\n.\r\n", b"\r\n.\n"])
def test_smtp_mode_smuggling(drop, eod):
    """Audit issue 7 item 8: sendmail -bs ends DATA only at CR LF . CR LF
    (smtpd's rule, lib/mail/smtp_data.c): each smuggling sequence leaves
    one message whose body holds the would-be second message as text."""
    smuggled = (b"MAIL FROM:<admin@x.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nforged\r\n")
    dialogue = (b"EHLO client\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<r@x.test>\r\nDATA\r\n"
                b"Subject: one\r\n\r\nbody" + eod + smuggled + b".\r\nQUIT\r\n")
    res = drop.run("-bs", input=dialogue)
    assert res.returncode == 0, res.stderr
    out, codes = reply_codes(res)
    assert codes == ["220", "250", "250", "250", "354", "250", "221"], out
    recs = drop.only_file()
    assert [d for t, d in recs if t == "R"] == [b"r@x.test"]
    lines = content(recs)
    assert lines[:3] == [b"Subject: one", b"", b"body"]
    assert b"." in lines and b"Subject: smuggled" in lines and b"forged" in lines, lines
    assert all(b"\n" not in l and b"\r" not in l for l in lines), lines


def test_smtp_mode_bare_newline_reject(drop):
    """smtpd_forbid_bare_newline = reject applies to sendmail -bs too."""
    drop.inst.set_main(smtpd_forbid_bare_newline="reject")
    dialogue = (b"EHLO client\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<r@x.test>\r\nDATA\r\n"
                b"Subject: one\r\n\r\nbody\n.\nRSET\r\n.\r\nNOOP\r\n")
    res = drop.run("-bs", input=dialogue)
    out, codes = reply_codes(res)
    assert codes == ["220", "250", "250", "250", "354", "550"], out
    assert "550 5.5.2 Error: bare <LF> received" in out
    assert drop.files() == []


def test_smtp_mode_unqualified_name_with_at(drop):
    """A quoted unqualified name holding "@" is refused: later its "@"
    would be taken for the domain's (docs/addresses.md)."""
    dialogue = (b"EHLO client\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<\"x@evil.example\">\r\n"
                b"RCPT TO:<\"a b\">\r\nQUIT\r\n")
    res = drop.run("-bs", input=dialogue)
    out, codes = reply_codes(res)
    assert codes == ["220", "250", "250", "501", "250", "221"], out


def test_mailq_and_newaliases_names(drop):
    for args, name in (([], "mailq"), (["-bp"], "sendmail")):
        res = drop.run(*args, name=name)
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode().strip() == "Mail queue is empty"
    assert drop.run("u@x.test", input=b"x\n").returncode == 0
    res = drop.run(name="mailq")
    assert re.search(r"^[0-9A-Za-z]+ +\d+ .*  root$|^[0-9A-Za-z]+ +\d+ ", res.stdout.decode(), re.M)
    assert "u@x.test" in res.stdout.decode()
    cdb = drop.inst.etc / "aliases.cdb"
    for args, name in (([], "newaliases"), (["-bi"], "sendmail"), (["-I"], "sendmail")):
        if cdb.exists():
            cdb.unlink()
        res = drop.run(*args, name=name)
        assert res.returncode == 0, res.stderr
        assert cdb.exists()
    res = subprocess.run([str(POSTHORN), "map", "-q", "abuse", f"cdb:{drop.inst.etc}/aliases"],
                         capture_output=True, text=True)
    assert res.stdout.strip() == "postmaster", res
    (drop.inst.etc / "aliases").write_text("broken line without colon\n")
    res = drop.run(name="newaliases")
    assert res.returncode == EX_DATAERR and b"newaliases: fatal:" in res.stderr


def test_flush_without_qmgr(drop):
    res = drop.run("-q")
    assert res.returncode != 0 and b"cannot flush" in res.stderr


# -- pickup against a scripted cleanup --------------------------------------------
class FakeCleanup:
    """public/cleanup that records what pickup sends and answers with
    the given statuses, one per message."""

    def __init__(self, path, statuses):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(5)
        self.sock.settimeout(20)
        self.statuses = list(statuses)
        self.messages = []       # (request dict, [(type, data)])
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.statuses:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                r = IpcReader(conn)
                conn.sendall(hello("cleanup"))
                while self.statuses:
                    try:
                        req = r.message_dict()
                    except EOFError:
                        break
                    recs = []
                    while True:
                        try:
                            r.need(1)
                        except EOFError:
                            recs = None
                            break
                        t, data = r.record()
                        recs.append((t, data))
                        if t == "E":
                            break
                    if recs is None:
                        self.messages.append((req, "abandoned"))
                        break
                    self.messages.append((req, recs))
                    status = self.statuses.pop(0)
                    conn.sendall(encode(status=status,
                                        queue_id="1r31eq0W7E5BAN" if status == 0 else "",
                                        reason="ok" if status == 0 else "test failure"))
                    if status:
                        break

    def close(self):
        self.sock.close()


def run_pickup(drop):
    return subprocess.run([str(PICKUP), "-c", str(drop.inst.etc), "-S"], input=b"W",
                          capture_output=True, timeout=30)


@pytest.fixture
def pickup(drop):
    if not PICKUP.exists():
        pytest.skip("pickup not built")
    return drop


def test_pickup_feeds_cleanup(pickup):
    d = pickup
    assert d.run("-f", "s@x.test", "-R", "full", "r1@x.test", "r2@x.test",
                 input=b"Subject: a\n\nbody\n").returncode == 0
    assert d.run("-t", input=b"To: t@x.test\n\nb\n").returncode == 0
    mtimes = sorted(f.stat().st_mtime for f in d.files())
    fake = FakeCleanup(d.inst.queue / "public" / "cleanup", [0, 0])
    res = run_pickup(d)
    fake.close()
    assert res.returncode == 0, res.stderr
    assert d.files() == []                                 # both unlinked after status 0
    assert len(fake.messages) == 2
    (req1, recs1), (req2, recs2) = fake.messages
    assert req1 == {"flags": "3", "origin": "pickup"}       # LOCAL | UNTRUSTED
    assert req2 == {"flags": str(3 | 8), "origin": "pickup"}  # + EXTRACT
    types = [t for t, _ in recs1]
    assert types[:2] == ["T", "S"] and "V" not in types
    assert recs1[0][1].startswith(str(int(mtimes[0])).encode())   # arrival = file mtime
    assert recs1[1] == ("S", b"s@x.test")
    assert ("A", f"submit_uid={os.getuid()}".encode()) in recs1
    assert ("A", b"dsn_ret=full") in recs1
    assert [d_ for t, d_ in recs1 if t == "R"] == [b"r1@x.test", b"r2@x.test"]
    assert types[-2:] == ["X", "E"]
    assert not any(t == "A" and x.startswith(b"flags") for t, x in recs2)
    log = res.stderr.decode()
    assert re.search(rf"1r31eq0W7E5BAN: uid={os.getuid()} from=<s@x.test>", log), log


def test_pickup_bad_file_goes_to_corrupt(pickup):
    d = pickup
    bad = (record("V", "posthorn-queue 1") + record("S", "a@x") + record("A", "sasl_username=x")
           + record("R", "b@x") + record("M") + record("X") + record("E"))
    name = "1r31eq0W7E5BAN"
    p = d.maildrop / name
    p.write_bytes(bad)
    (d.maildrop / "odd name").write_text("x")
    fake = FakeCleanup(d.inst.queue / "public" / "cleanup", [0])
    res = run_pickup(d)
    fake.close()
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(d.inst.queue / "corrupt")) == [name, "odd name"]
    assert d.files() == []
    assert fake.messages == []       # cleanup never saw it (rejected before the request)
    assert b"attribute sasl_username not allowed at offset 29; moved to corrupt/" in res.stderr


def test_pickup_temporary_and_permanent_cleanup_errors(pickup):
    d = pickup
    assert d.run("r@x.test", input=b"x\n").returncode == 0
    name = d.files()[0].name
    fake = FakeCleanup(d.inst.queue / "public" / "cleanup", [2])      # WRITE: temporary
    res = run_pickup(d)
    fake.close()
    assert [f.name for f in d.files()] == [name]                      # left for later
    assert b"deferred: cleanup: test failure" in res.stderr
    (d.inst.queue / "public" / "cleanup").unlink()
    fake = FakeCleanup(d.inst.queue / "public" / "cleanup", [4])      # SIZE: permanent
    res = run_pickup(d)
    fake.close()
    assert d.files() == []
    assert os.listdir(d.inst.queue / "corrupt") == [name]
    assert b"rejected: cleanup: test failure (size)" in res.stderr
    # no cleanup at all: the file waits
    (d.inst.queue / "public" / "cleanup").unlink()
    assert d.run("r@x.test", input=b"x\n").returncode == 0
    res = run_pickup(d)
    assert len(d.files()) == 1 and b"deferred" in res.stderr


# -- end to end ---------------------------------------------------------------------
def need_daemons():
    for prog in ("pickup", "cleanup", "qmgr", "local-delivery"):
        if not have(prog):
            pytest.skip(f"{prog} not built yet: end-to-end sendmail tests need it")


def test_e2e_sendmail_delivers(mail):
    need_daemons()
    mail.start()
    res = mail.sendmail("-f", "root@mail.example.test", "alice@example.test",
                        input=b"Subject: via sendmail\n\nhello\n")
    assert res.returncode == 0, res.stderr
    msgs = mail.wait_maildir("alice@example.test", 1)
    assert b"Subject: via sendmail" in msgs[0] and b"hello" in msgs[0]
    assert re.search(r"pickup\[\d+\]: [0-9A-Za-z]+: uid=\d+ from=<root@mail.example.test>",
                     mail.log_text())
    res = mail.sendmail("-t", "-i", input=b"To: bob@example.test\nBcc: carol@example.test\n"
                                          b"Subject: t\n\n.\nline\n")
    assert res.returncode == 0, res.stderr
    bob = mail.wait_maildir("bob@example.test", 1)
    carol = mail.wait_maildir("carol@example.test", 1)
    assert b"\n.\n" in bob[0].replace(b"\r\n", b"\n") and b"Bcc:" not in carol[0]
    mail.wait_queue_empty()


def test_e2e_injection_while_stopped(mail):
    """With pickup's wakeup at 1s, mail dropped while the system was down
    is delivered right after the start."""
    need_daemons()
    text, n = re.subn(r"^(pickup\s+fifo(?:\s+\S+){3}\s+)60\b", r"\g<1>1",
                      mail.default_master_cf(), flags=re.M)
    assert n == 1, text
    mail.write_master_cf(text)
    inject_stopped_then_start(mail)


def test_e2e_injection_while_stopped_default_wakeup(mail):
    """With the default pickup wakeup (60 s) mail dropped while stopped goes out at
    once after start: master wakes trigger services when it starts them."""
    need_daemons()
    inject_stopped_then_start(mail)


def inject_stopped_then_start(mail):
    mail.posthorn("check", check=False)
    res = mail.sendmail("alice@example.test", input=b"Subject: while stopped\n\nx\n")
    assert res.returncode == 0, res.stderr           # the trigger fails quietly
    assert res.stderr == b""
    assert len(mail.queue_files("maildrop")) == 1
    mail.start()
    msgs = mail.wait_maildir("alice@example.test", 1)
    assert b"Subject: while stopped" in msgs[0]
    mail.wait_queue_empty()


def test_e2e_rate(mail, capsys):
    """The shell loop of the issue: for i in $(seq N); do echo hi | sendmail user; done.
    The rate is printed; the assertion is only a generous lower bound."""
    need_daemons()
    mail.start()
    sanitized = bool(os.environ.get("POSTHORN_SANITIZED"))
    n = 150 if sanitized else 500      # every process starts far more slowly
    elapsed = mail.sendmail_loop("alice@example.test", n)
    rate = n / elapsed
    with capsys.disabled():
        print(f"\nsendmail shell loop: {n} messages in {elapsed:.2f}s = {rate:.0f} msgs/s")
    # A floor that catches a broken fast path (a sleep of a second per
    # message), not a benchmark: on a machine shared with other builds one
    # fork and exec can take 10 ms and more (11-16 msgs/s seen under heavy
    # load). Sanitizer builds start every process far more slowly.
    assert rate >= (2 if sanitized else 5)
    mail.wait_maildir("alice@example.test", n, timeout=120)

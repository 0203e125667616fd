"""smtpd (the SMTP server) through real sockets.

Most tests run one smtpd session in -S mode on one end of a socketpair
(the client is then "localhost[127.0.0.1]") against a fake cleanup
service: a Python server on $queue_directory/public/cleanup that speaks
the cleanup protocol (mail_proto.h) and keeps every record it receives,
so the tests see exactly what smtpd would queue (DSN records, the
Received: header, dot-unstuffing, C/L pieces) and can make cleanup
answer with any status. Other tests start master with smtpd on an inet
port and talk to it with smtplib (and swaks when installed); the full
path into Maildirs is in test_smtpd_e2e.py.
"""
import pathlib
import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD
from phwire import IpcReader, encode, hello

SMTPD = BUILD / "libexec" / "smtpd"
POSTHORN = BUILD / "bin" / "posthorn"
QUEUE_ID = "1r31eq0W7E5BAN"

pytestmark = pytest.mark.skipif(not SMTPD.exists(), reason="smtpd not built")


class FakeCleanup:
    """A cleanup service that records messages (see the module docstring).
    status: the status to answer (0 = queued)."""

    def __init__(self, queue, status=0, reason=""):
        self.path = pathlib.Path(queue) / "public" / "cleanup"
        self.path.parent.mkdir(exist_ok=True)
        self.path.parent.chmod(0o755)
        if self.path.exists():
            self.path.unlink()
        self.status = status
        self.reason = reason
        self.messages = []          # dicts: flags, origin, records, complete
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.path.chmod(0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        conn.settimeout(20)
        r = IpcReader(conn)
        try:
            conn.sendall(hello("cleanup"))
            while True:
                head = dict(r.message_raw())
                msg = {"flags": int(head["flags"]), "origin": head["origin"].decode(),
                       "records": [], "complete": False}
                self.messages.append(msg)
                while True:
                    rtype, data = r.record()
                    msg["records"].append((rtype, data))
                    if rtype == "E":
                        break
                msg["complete"] = True
                conn.sendall(encode(status=self.status,
                                    queue_id=QUEUE_ID if self.status == 0 else "",
                                    reason=self.reason))
        except (EOFError, OSError, AssertionError, KeyError, ValueError):
            pass
        finally:
            conn.close()

    def complete(self):
        return [m for m in self.messages if m["complete"]]

    def wait_messages(self, count, timeout=5):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    def close(self):
        self.stop = True
        self.sock.close()
        self.thread.join(timeout=2)


def content_lines(msg):
    """Reassembled content lines (C pieces joined) of a recorded message."""
    lines, cur, inside = [], b"", False
    for rtype, data in msg["records"]:
        if rtype == "M":
            inside = True
        elif rtype == "X":
            inside = False
        elif inside and rtype == "C":
            cur += data
        elif inside and rtype == "L":
            lines.append(cur + data)
            cur = b""
    return lines


def envelope(msg):
    return [(t, d) for t, d in msg["records"] if t not in "LCXME"]


def attrs(msg):
    out = {}
    for t, d in msg["records"]:
        if t == "A":
            k, v = d.split(b"=", 1)
            out[k.decode()] = v.decode()
    return out


# -- an smtpd session on a socketpair ----------------------------------------------
class Session:
    """One smtpd -S process serving a socketpair; the test holds the other end."""

    def __init__(self, inst, *opts, timeout=10):
        self.inst = inst
        a, b = socket.socketpair()
        args = [str(SMTPD), "-c", str(inst.etc), "-S"]
        for o in opts:
            args += ["-o", o]
        self.proc = subprocess.Popen(args, stdin=b, stdout=b, stderr=subprocess.PIPE)
        b.close()
        self.sock = a
        self.sock.settimeout(timeout)
        self.r = IpcReader(a)
        self.timeout = timeout

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """(code, [texts]) of one (multi-line) reply; (None, []) at EOF."""
        texts = []
        while True:
            line = self.readline()
            if line is None:
                return None, texts
            m = re.match(rb"^(\d{3})([ -])(.*)$", line)
            assert m, f"bad reply line {line!r}"
            texts.append(m.group(3).decode(errors="replace"))
            if m.group(2) == b" ":
                return int(m.group(1)), texts

    def readline(self):
        while b"\r\n" not in self.r.buf:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"no reply within {self.timeout}s; have {self.r.buf!r}")
            if not data:
                return None
            self.r.buf += data
        line, self.r.buf = self.r.buf.split(b"\r\n", 1)
        return line

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code, pattern=None):
        got, texts = self.cmd(line)
        assert got == code, (f"{line!r}: got {got} {texts}, want {code}\n"
                             f"log:\n{self.inst.log_text()[-3000:]}")
        if pattern:
            assert re.search(pattern, texts[-1]), f"{line!r}: {texts[-1]!r} !~ {pattern!r}"
        return texts

    def start(self, helo="EHLO client.example"):
        code, texts = self.reply()
        assert code == 220, texts
        if helo:
            code, texts = self.cmd(helo)
            assert code == 250, texts
        return texts

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.readline() is None
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
        self.stderr = err.decode(errors="replace")
        return self.proc.returncode


@pytest.fixture
def smtp_env(instance):
    """An instance with address classes, tables and a fake cleanup."""
    if not POSTHORN.exists():
        pytest.skip("posthorn not built")
    etc = instance.etc
    (etc / "vmailbox").write_text("alice@example.test example.test/alice/\n"
                                  "bob@example.test example.test/bob/\n")
    (etc / "virtual").write_text("info@alias.test alice@example.test\n")
    for name in ("vmailbox", "virtual"):
        subprocess.run([str(POSTHORN), "-c", str(etc), "map", f"cdb:{etc}/{name}"],
                       check=True, capture_output=True, timeout=30)
    instance.set_main(
        myhostname="mail.example.test",
        mydomain="example.test",
        mydestination="$myhostname, localhost",
        virtual_mailbox_domains="example.test",
        virtual_mailbox_maps=f"cdb:{etc}/vmailbox",
        virtual_alias_domains="alias.test",
        virtual_alias_maps=f"cdb:{etc}/virtual",
        alias_maps="",
        relay_domains="relay.example",
        smtpd_error_sleep_time="0",
    )
    cleanup = FakeCleanup(instance.queue)
    instance.cleanup_service = cleanup
    sessions = []

    def session(*opts, **kw):
        s = Session(instance, *opts, **kw)
        sessions.append(s)
        return s
    instance.session = session
    yield instance
    for s in sessions:
        s.close()
    cleanup.close()


def send_message(s, sender="<sender@remote.example>", rcpts=("<alice@example.test>",),
                 body="Subject: test\r\n\r\nhello\r\n"):
    s.expect(f"MAIL FROM:{sender}", 250)
    for r in rcpts:
        s.expect(f"RCPT TO:{r}", 250)
    s.expect("DATA", 354)
    s.send(body + ".\r\n")
    return s.reply()


# -- tests ----------------------------------------------------------------------------
def test_greeting_and_ehlo_keywords(smtp_env):
    s = smtp_env.session()
    code, texts = s.reply()
    assert code == 220 and texts == ["mail.example.test ESMTP posthorn"]
    code, texts = s.cmd("EHLO client.example")
    assert code == 250
    assert texts[0] == "mail.example.test"
    kw = texts[1:]
    for want in ("PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
                 "DSN", "CHUNKING"):
        assert want in kw, kw
    assert not any(k.startswith(("STARTTLS", "AUTH")) for k in kw)
    code, texts = s.cmd("HELO client.example")
    assert (code, texts) == (250, ["mail.example.test"])
    s.expect("QUIT", 221, r"^2\.0\.0 Bye")
    assert s.at_eof()
    assert s.close() == 0
    log = smtp_env.log_text()
    assert "connect from localhost[127.0.0.1]" in log
    assert re.search(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 helo=1 quit=1 commands=3", log)


def test_message_records_dsn_and_received(smtp_env):
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<sender@remote.example> SIZE=300 BODY=8BITMIME RET=HDRS ENVID=env+2Bid", 250,
             r"^2\.1\.0")
    s.expect("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE "
             "ORCPT=rfc822;alice+2Btag@example.test", 250, r"^2\.1\.5")
    s.expect("RCPT TO:<bob@example.test> NOTIFY=NEVER", 250)
    s.expect("RCPT TO:<info@alias.test>", 250)
    s.expect("DATA", 354)
    s.send("Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.x\r\nplain\r\n.\r\n")
    code, texts = s.reply()
    assert code == 250 and texts[0] == f"2.0.0 Ok: queued as {QUEUE_ID}"
    s.expect("QUIT", 221)
    s.close()
    [msg] = smtp_env.cleanup_service.complete()
    # CLEANUP_FLAG_CLIENT_TRIGGER: smtpd wakes qmgr itself after its 250
    assert msg["flags"] == 32 and msg["origin"] == "smtpd"
    env = envelope(msg)
    assert env[0] == ("S", b"sender@remote.example")
    a = attrs(msg)
    assert a["client_name"] == "localhost" and a["client_address"] == "127.0.0.1"
    assert a["helo"] == "client.example" and a["protocol"] == "ESMTP"
    assert a["dsn_ret"] == "HDRS" and a["dsn_envid"] == "env+id"
    assert a["body"] == "8BITMIME" and a["size"] == "300"
    rc = [(t, d) for t, d in env if t in "ONR"]
    assert rc == [("O", b"rfc822;alice+tag@example.test"), ("N", b"success,failure"),
                  ("R", b"alice@example.test"), ("N", b"never"), ("R", b"bob@example.test"),
                  ("R", b"info@alias.test")]
    lines = content_lines(msg)
    assert lines[0] == b"Received: from client.example (localhost [127.0.0.1])"
    assert lines[1].startswith(b"\tby mail.example.test (posthorn) with ESMTP; ")
    assert re.match(rb"\tby .*; \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", lines[1])
    assert lines[2:] == [b"Subject: dots", b"", b".leading dot", b"..two", b"x", b"plain"]
    assert [t for t, _ in msg["records"]][-2:] == ["X", "E"]
    assert re.search(rf"{QUEUE_ID}: client=localhost\[127\.0\.0\.1\]", smtp_env.log_text())


def test_received_for_single_recipient(smtp_env):
    s = smtp_env.session()
    s.start()
    code, texts = send_message(s)
    assert code == 250
    lines = content_lines(smtp_env.cleanup_service.complete()[0])
    assert lines[1] == b"\tby mail.example.test (posthorn) with ESMTP"
    assert lines[2].startswith(b"\tfor <alice@example.test>; ")


def test_pipelining_one_group(smtp_env):
    s = smtp_env.session()
    s.start()
    s.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert s.reply()[0] == 250
    assert s.reply()[0] == 250
    code, texts = s.reply()
    assert code == 550 and texts[0].startswith("5.1.1 <nobody@example.test>")
    assert s.reply()[0] == 250
    assert s.reply()[0] == 354
    # the message, then more commands, in one write
    s.send("Subject: p\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    assert s.reply()[0] == 250
    assert s.reply()[0] == 250
    assert s.reply()[0] == 250
    assert s.reply()[0] == 221
    assert s.at_eof()
    [msg] = smtp_env.cleanup_service.complete()
    assert [d for t, d in envelope(msg) if t == "R"] == [b"alice@example.test", b"bob@example.test"]


def test_pipelined_replies_come_in_one_write(smtp_env):
    """Replies to a pipelined group are flushed together, not one by one."""
    s = smtp_env.session()
    s.start()
    s.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nRSET\r\n")
    time.sleep(0.3)
    data = s.sock.recv(65536)
    assert data.count(b"\r\n") == 3, data


def test_bad_sequences_and_syntax(smtp_env):
    s = smtp_env.session("smtpd_hard_error_limit=100")
    s.reply()
    s.expect("EHLO", 501, r"^5\.5\.4 Syntax: EHLO hostname")
    s.expect("HELO", 501, r"^5\.5\.4")
    s.expect("EHLO bad..name", 501, r"^5\.5\.2 <bad\.\.name>: Helo command rejected")
    s.expect("RCPT TO:<alice@example.test>", 503, r"^5\.5\.1 Error: need MAIL command")
    s.expect("DATA", 503, r"^5\.5\.1 Error: need MAIL command")
    s.expect("EHLO client.example", 250)
    s.expect("MAIL TO:<a@b.example>", 501, r"^5\.5\.4 Syntax: MAIL FROM:<address>")
    s.expect("MAIL FROM:a@b.example", 501, r"^5\.1\.7")
    s.expect("MAIL FROM:<a@b.example> FOO=bar", 555, r"^5\.5\.4")
    s.expect("MAIL FROM:<a@b.example> SIZE=abc", 501, r"^5\.5\.4")
    s.expect("MAIL FROM:<a@b.example>", 250)
    s.expect("MAIL FROM:<a@b.example>", 503, r"^5\.5\.1 Error: nested MAIL command")
    s.expect("RCPT alice@example.test", 501, r"^5\.5\.4 Syntax: RCPT TO:<address>")
    s.expect("DATA", 503, r"^5\.5\.1 Error: need RCPT command")
    s.expect("RCPT TO:<>", 501, r"^5\.1\.3")
    s.expect("RCPT TO:<nobody@example.test>", 550)
    s.expect("DATA", 554, r"^5\.5\.1 Error: no valid recipients")
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA extra", 501, r"^5\.5\.4 Syntax: DATA")
    s.send("BDAT 5\r\nhello")
    assert s.reply()[0] == 250
    s.expect("DATA", 503, r"^5\.5\.1 Error: DATA after BDAT")
    s.expect("RSET x", 501, r"^5\.5\.4")
    s.expect("RSET", 250, r"^2\.0\.0")
    s.expect("XYZZY", 500, r"^5\.5\.2 Error: command not recognized")
    s.expect("EXPN staff", 502, r"^5\.5\.1")
    s.expect("ETRN example.test", 502, r"^5\.5\.1")
    s.expect("STARTTLS", 502, r"^5\.5\.1")
    s.send("BDAT 3\r\nabc")
    code, texts = s.reply()
    assert code == 503 and "need MAIL" in texts[0]
    s.expect("NOOP", 250)             # the chunk was read and discarded
    s.expect("QUIT now", 501)
    s.expect("QUIT", 221)
    assert not smtp_env.cleanup_service.complete()


def test_helo_required(smtp_env):
    s = smtp_env.session("smtpd_helo_required=yes")
    s.reply()
    s.expect("MAIL FROM:<a@b.example>", 503, r"^5\.5\.1 Error: send HELO/EHLO first")
    s.expect("HELO client.example", 250)
    s.expect("MAIL FROM:<a@b.example>", 250)
    s.expect("MAIL FROM:<a@b.example> SIZE=10", 503)     # nested; and no ESMTP after HELO
    s.expect("RSET", 250)
    s.expect("MAIL FROM:<a@b.example> SIZE=10", 555, r"^5\.5\.4")


def test_long_command_lines(smtp_env):
    s = smtp_env.session()
    s.start()
    s.expect("NOOP " + "x" * 506, 500, r"^5\.5\.2 Error: line too long")
    s.expect("NOOP " + "x" * 505, 250)      # 4+1+505+2 = 512, the RFC maximum
    s.expect("HELP " + "y" * 5000, 500, r"^5\.5\.2 Error: line too long")
    s.expect("MAIL FROM:<a@b.example> " + "x" * 3000, 500, r"line too long")
    # MAIL and RCPT may pass 512 with parameters
    envid = "e" * 100
    orcpt = "rfc822;" + "o" * 50 + "@" + ("d" * 60 + ".") * 3 + "example"
    s.expect(f"MAIL FROM:<{'s' * 60}@{'d' * 60}.example> RET=FULL ENVID={envid} SIZE=100 "
             f"BODY=8BITMIME", 250)
    line = f"RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT={orcpt}"
    assert len(line) < 512 or True
    s.expect(line, 250)
    s.expect("NOOP", 250)


def test_long_data_lines_are_kept_whole(smtp_env):
    s = smtp_env.session("line_length_limit=100")
    s.start()
    long_line = ("0123456789" * 500)
    code, _ = send_message(s, body=f"Subject: long\r\n\r\n{long_line}\r\nshort\r\n")
    assert code == 250
    [msg] = smtp_env.cleanup_service.complete()
    assert content_lines(msg)[-2:] == [long_line.encode(), b"short"]
    pieces = [d for t, d in msg["records"] if t == "C"]
    assert len(pieces) == 49 and all(len(p) == 100 for p in pieces)


SMUGGLE = ("Subject: smuggle\r\n\r\nbefore\n.\nMAIL FROM:<evil@remote.example>\r\n"
           "after\r.\rRCPT TO:<x@y>\r\nthird\n.\r\nDATA\r\nfourth\r\n.\nQUIT\r\nlast\r\n")


def test_smuggling_normalize(smtp_env):
    """Non-standard end-of-data sequences are content, never the end."""
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 354)
    s.send(SMUGGLE)
    time.sleep(0.3)
    assert s.r.buf == b"" and not smtp_env.cleanup_service.complete()   # still in DATA
    s.send(".\r\n")
    code, texts = s.reply()
    assert code == 250
    s.expect("QUIT", 221)
    msgs = smtp_env.cleanup_service.complete()
    assert len(msgs) == 1
    lines = content_lines(msgs[0])
    body = lines[lines.index(b"") + 1:]
    assert body == [b"before", b".", b"MAIL FROM:<evil@remote.example>", b"after", b".",
                    b"RCPT TO:<x@y>", b"third", b".", b"DATA", b"fourth", b".", b"QUIT", b"last"]
    log = smtp_env.log_text()
    assert "possible SMTP smuggling attempt from localhost[127.0.0.1]" in log
    assert "normalized to CR LF" in log


def test_smuggling_reject(smtp_env):
    s = smtp_env.session("smtpd_forbid_bare_newline=reject",
                         "smtpd_forbid_bare_newline_exclusions=")
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 354)
    s.send(SMUGGLE + ".\r\n")
    code, texts = s.reply()
    assert code == 550 and texts[0] == "5.5.2 Error: bare <LF> received"
    assert s.at_eof()
    assert s.close() == 0
    assert not smtp_env.cleanup_service.complete()
    assert re.search(r"NOQUEUE: reject: DATA from localhost\[127\.0\.0\.1\]: 550 5\.5\.2",
                     smtp_env.log_text())


def test_bare_cr_reject_and_exclusions(smtp_env):
    s = smtp_env.session("smtpd_forbid_bare_newline=reject", "smtpd_forbid_bare_newline_exclusions=")
    s.start()
    code, texts = send_message(s, body="Subject: x\r\n\r\na\rb\r\n")
    assert code == 550 and texts[0] == "5.5.2 Error: bare <CR> received"
    # excluded clients ($mynetworks by default) get normalize
    s2 = smtp_env.session("smtpd_forbid_bare_newline=reject")
    s2.start()
    code, texts = send_message(s2, body="Subject: x\r\n\r\na\nb\r\n")
    assert code == 250
    assert content_lines(smtp_env.cleanup_service.complete()[0])[-2:] == [b"a", b"b"]


def test_bare_lf_command_reject(smtp_env):
    s = smtp_env.session("smtpd_forbid_bare_newline=reject", "smtpd_forbid_bare_newline_exclusions=")
    s.start()
    s.send("NOOP\n")
    code, texts = s.reply()
    assert code == 550 and "bare <LF>" in texts[0]
    assert s.at_eof()
    # normalize (default): a bare LF command is a command
    s2 = smtp_env.session()
    s2.start()
    s2.send("NOOP\n")
    assert s2.reply()[0] == 250


def test_bdat_chunks(smtp_env):
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    part1 = b"Subject: chunks\r\n\r\nline one\r"
    part2 = b"\n.line two\r\n"
    s.send(b"BDAT %d\r\n" % len(part1) + part1)
    code, texts = s.reply()
    assert code == 250 and texts[0] == f"2.0.0 Ok: {len(part1)} octets"
    s.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, texts = s.reply()
    assert code == 250 and "queued as" in texts[0]
    # BDAT 0 LAST finishes a message too; pipelined with the envelope
    s.send(b"MAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nBDAT 4\r\nab\r\nBDAT 0 LAST\r\n")
    assert [s.reply()[0] for _ in range(4)] == [250, 250, 250, 250]
    s.expect("QUIT", 221)
    m1, m2 = smtp_env.cleanup_service.complete()
    assert content_lines(m1)[3:] == [b"Subject: chunks", b"", b"line one", b".line two"]
    assert envelope(m2)[0] == ("S", b"")
    assert content_lines(m2)[3:] == [b"ab"]


def test_binarymime(smtp_env):
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example> BODY=BINARYMIME", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 503, r"BINARYMIME requires BDAT")
    data = b"Subject: bin\r\n\r\n\x00\x01\n\x02\r\x03\r\n"
    s.send(b"BDAT %d LAST\r\n" % len(data) + data)
    assert s.reply()[0] == 250
    [msg] = smtp_env.cleanup_service.complete()
    assert attrs(msg)["body"] == "BINARYMIME"
    # bare CR and LF are no error with BINARYMIME, but a queue record never
    # holds a line break (docs/smtpd.md): they end lines like CR LF
    assert content_lines(msg)[-3:] == [b"\x00\x01", b"\x02", b"\x03"]
    assert not any(b"\n" in d or b"\r" in d for t, d in msg["records"] if t in "LC")


def test_size_limits(smtp_env):
    s = smtp_env.session("message_size_limit=1000")
    s.start()
    code, texts = s.cmd("EHLO client.example")
    assert "SIZE 1000" in texts
    s.expect("MAIL FROM:<a@remote.example> SIZE=1001", 552, r"^5\.3\.4")
    s.expect("MAIL FROM:<a@remote.example> SIZE=1000", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 354)
    s.send("Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 30 + ".\r\n")
    code, texts = s.reply()
    assert code == 552 and texts[0].startswith("5.3.4")
    s.expect("NOOP", 250)                          # the session goes on
    # BDAT: the chunk that passes the limit and every later one get 552
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.send(b"BDAT 600\r\n" + b"y" * 600)
    assert s.reply()[0] == 250
    s.send(b"BDAT 600\r\n" + b"y" * 600)
    assert s.reply()[0] == 552
    s.send(b"BDAT 10 LAST\r\n" + b"y" * 10)
    assert s.reply()[0] == 552
    s.expect("MAIL FROM:<a@remote.example>", 250)   # the transaction ended
    s.expect("QUIT", 221)
    assert not smtp_env.cleanup_service.complete()
    assert len(smtp_env.cleanup_service.wait_messages(2)) == 2    # both abandoned before E
    assert re.search(r"NOQUEUE: reject: MAIL from .*: 552 5\.3\.4", smtp_env.log_text())


def test_recipient_limit(smtp_env):
    s = smtp_env.session("smtpd_recipient_limit=2")
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("RCPT TO:<bob@example.test>", 250)
    s.expect("RCPT TO:<info@alias.test>", 452, r"^4\.5\.3 Error: too many recipients")


def test_hard_error_limit(smtp_env):
    s = smtp_env.session("smtpd_hard_error_limit=4")
    s.start()
    for _ in range(3):
        s.expect("BOGUS", 500)
    s.send("BOGUS\r\n")
    assert s.reply()[0] == 500
    code, texts = s.reply()
    assert code == 421 and texts[0] == "4.7.0 mail.example.test Error: too many errors"
    assert s.at_eof()
    assert "too many errors after UNKNOWN from localhost[127.0.0.1]" in smtp_env.log_text()


def test_soft_error_limit_delays(smtp_env):
    s = smtp_env.session("smtpd_soft_error_limit=2", "smtpd_error_sleep_time=1")
    s.start()
    t0 = time.monotonic()
    s.expect("BOGUS", 500)
    s.expect("BOGUS", 500)
    assert time.monotonic() - t0 < 0.9
    t1 = time.monotonic()
    s.expect("BOGUS", 500)
    assert time.monotonic() - t1 >= 0.9
    s.expect("NOOP", 250)


def test_idle_timeout(smtp_env):
    s = smtp_env.session("smtpd_timeout=1")
    s.start()
    t0 = time.monotonic()
    code, texts = s.reply()
    assert code == 421 and texts[0] == "4.4.2 mail.example.test Error: timeout exceeded"
    assert 0.8 <= time.monotonic() - t0 < 5
    assert s.at_eof()
    assert "timeout after EHLO from localhost[127.0.0.1]" in smtp_env.log_text()


def test_timeout_in_data_queues_nothing(smtp_env):
    s = smtp_env.session("smtpd_timeout=1")
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 354)
    s.send("Subject: slow\r\n\r\npartial line without end")
    code, texts = s.reply()
    assert code == 421
    assert s.at_eof()
    assert s.close() == 0
    assert not smtp_env.cleanup_service.complete()
    assert re.search(r"timeout after DATA \(\d+ bytes\) from", smtp_env.log_text())


def test_lost_connection_in_data(smtp_env):
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 354)
    s.send("Subject: gone\r\n\r\nbody\r\n")
    s.sock.shutdown(socket.SHUT_WR)
    assert s.at_eof()
    assert s.close() == 0
    assert not smtp_env.cleanup_service.complete()
    assert "lost connection after DATA" in smtp_env.log_text()


def test_relay_policy_untrusted_client(smtp_env):
    s = smtp_env.session("mynetworks=192.0.2.0/24")
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<x@foreign.example>", 554,
             r"^5\.7\.1 <x@foreign\.example>: Relay access denied")
    s.expect("RCPT TO:<x%foreign.example@example.test>", 554, r"Relay access denied")
    s.expect("RCPT TO:<foreign.example!x@example.test>", 554, r"Relay access denied")
    s.expect("RCPT TO:<@foreign.example:alice@example.test>", 554, r"Relay access denied")
    s.expect("RCPT TO:<@mail.example.test:alice@example.test>", 250)
    s.expect("RCPT TO:<x@relay.example>", 250)                  # relay_domains
    s.expect("RCPT TO:<alice@example.test>", 250)               # ours
    s.expect("RCPT TO:<alice@EXAMPLE.TEST>", 250)
    s.expect("RCPT TO:<postmaster>", 250)
    s.expect("RCPT TO:<x@[192.0.2.99]>", 554, r"Relay access denied")
    log = smtp_env.log_text()
    assert re.search(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 "
                     r"<x@foreign\.example>: Relay access denied; from=<a@remote\.example> "
                     r"to=<x@foreign\.example> proto=ESMTP helo=<client\.example>", log)


def test_relay_trusted_client(smtp_env):
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<x@foreign.example>", 250)
    s.expect("RCPT TO:<x%foreign.example@example.test>", 550)   # relay ok; no such user here


def test_unknown_recipients(smtp_env):
    s = smtp_env.session("mynetworks=192.0.2.0/24")
    s.start()
    s.expect("MAIL FROM:<>", 250)                                 # null sender
    s.expect("RCPT TO:<carol@example.test>", 550,
             r"^5\.1\.1 <carol@example\.test>: Recipient address rejected: "
             r"User unknown in virtual mailbox table")
    s.expect("RCPT TO:<nobody@alias.test>", 550, r"User unknown in virtual alias table")
    s.expect("RCPT TO:<no-such-user-xyz@mail.example.test>", 550,
             r"User unknown in local recipient table")
    s.expect("RCPT TO:<root@mail.example.test>", 250)
    s.expect("RCPT TO:<root@localhost>", 250)
    s.expect("RCPT TO:<info@alias.test>", 250)
    s.expect("RCPT TO:<alice+tag@example.test>", 250)


def test_smtputf8(smtp_env):
    s = smtp_env.session("mynetworks=192.0.2.0/24")
    s.start()
    code, texts = s.cmd("MAIL FROM:<j\u00f6rg@remote.example>")
    assert code in (553, 501, 555) and texts[0].startswith("5."), texts
    s.expect("MAIL FROM:<j\u00f6rg@remote.example> SMTPUTF8", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 354)
    s.send("Subject: utf8\r\n\r\nhi\r\n.\r\n")
    assert s.reply()[0] == 250
    [msg] = smtp_env.cleanup_service.complete()
    assert envelope(msg)[0] == ("S", "j\u00f6rg@remote.example".encode())
    a = attrs(msg)
    assert a["smtputf8"] == "yes" and a["protocol"] == "UTF8SMTP"
    assert b"with UTF8SMTP" in content_lines(msg)[1]
    # without SMTPUTF8 a UTF-8 recipient is refused
    s.expect("MAIL FROM:<a@remote.example>", 250)
    code, texts = s.cmd("RCPT TO:<\u00fcser@example.test>")
    assert code >= 500


def test_vrfy_help_noop(smtp_env):
    s = smtp_env.session()
    s.start()
    s.expect("VRFY alice", 252, r"^2\.5\.2 Cannot VRFY user")
    s.expect("VRFY", 501)
    s.expect("HELP", 214, r"^2\.0\.0")
    s.expect("NOOP anything", 250)
    s2 = smtp_env.session("disable_vrfy_command=yes")
    s2.start()
    s2.expect("VRFY alice", 502, r"^5\.5\.1")
    s3 = smtp_env.session("smtpd_vrfy_reply=550 5.1.1 No")
    s3.start()
    s3.expect("VRFY alice", 550, r"^5\.1\.1 No$")


def test_bad_vrfy_reply_parameter_is_fatal(smtp_env):
    res = subprocess.run([str(SMTPD), "-c", str(smtp_env.etc), "-S", "-o",
                          "smtpd_vrfy_reply=hello"], input=b"", capture_output=True, timeout=10)
    assert res.returncode != 0
    assert b"smtpd_vrfy_reply" in res.stderr
    res = subprocess.run([str(SMTPD), "-c", str(smtp_env.etc), "-S", "-o",
                          "mynetworks=127.0.0.1/8"], input=b"", capture_output=True, timeout=10)
    assert res.returncode != 0 and b"host bits" in res.stderr


def test_non_smtp_command(smtp_env):
    s = smtp_env.session()
    s.reply()
    code, texts = s.cmd("GET / HTTP/1.0")
    assert code == 221 and texts[0].startswith("2.7.0")
    assert s.at_eof()
    assert "non-SMTP command from localhost[127.0.0.1]: GET / HTTP/1.0" in smtp_env.log_text()


def test_cleanup_unreachable(smtp_env):
    smtp_env.cleanup_service.close()
    (smtp_env.queue / "public" / "cleanup").unlink()
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("DATA", 451, r"^4\.3\.0")
    s.send(b"BDAT 3 LAST\r\nabc")
    assert s.reply()[0] == 451
    s.expect("NOOP", 250)


@pytest.mark.parametrize("status,code,dsn", [(4, 552, "5.3.4"), (2, 451, "4.3.0"),
                                             (2 | 4, 451, "4.3.0"), (16, 554, "5.4.6")])
def test_cleanup_status_mapping(smtp_env, status, code, dsn):
    smtp_env.cleanup_service.status = status
    smtp_env.cleanup_service.reason = "test reason"
    s = smtp_env.session()
    s.start()
    got, texts = send_message(s)
    assert got == code and texts[0].startswith(dsn)
    s.expect("NOOP", 250)


class FakeLocal:
    """private/local answering verify requests: over_quota for bob."""

    def __init__(self, queue):
        path = pathlib.Path(queue) / "private" / "local"
        path.parent.mkdir(exist_ok=True)
        path.parent.chmod(0o755)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        path.chmod(0o666)
        self.sock.listen(8)
        self.requests = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                conn.sendall(hello("deliver"))
                req = dict(IpcReader(conn).message_raw())
                self.requests.append(req)
                rcpt = req["rcpt_address"].decode()
                status = "over_quota" if rcpt.startswith("bob@") else "ok"
                conn.sendall(encode(rcpt_status=status,
                                    rcpt_dsn="5.2.2" if status != "ok" else "2.0.0",
                                    rcpt_reason="mailbox full" if status != "ok" else ""))
            except (OSError, EOFError):
                pass
            finally:
                conn.close()


def test_quota_check(smtp_env):
    # a quota can apply: the agent is asked (without one it is not: below)
    smtp_env.set_main(virtual_mailbox_limit="100000000")
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example> SIZE=1234", 250)
    s.expect("RCPT TO:<bob@example.test>", 250)       # no agent: accepted
    local = FakeLocal(smtp_env.queue)
    s.expect("RCPT TO:<bob@example.test>", 552,
             r"^5\.2\.2 <bob@example\.test>: Recipient address rejected: Mailbox full")
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.expect("RCPT TO:<x@foreign.example>", 250)      # not ours: no verify
    assert [r["request"] for r in local.requests] == [b"verify", b"verify"]
    assert local.requests[0]["size"] == b"1234"
    local.sock.close()


def test_quota_check_only_when_a_quota_applies(smtp_env):
    """No quota= and no virtual_mailbox_limit: no verify round trip."""
    local = FakeLocal(smtp_env.queue)
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<bob@example.test>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    assert local.requests == []
    local.sock.close()


# -- through master, with real clients -----------------------------------------------
@pytest.fixture
def smtpd_master(smtp_env):
    port = smtp_env.free_port()
    smtp_env.write_master_cf(f"127.0.0.1:{port} inet n - n - - smtpd\n")
    smtp_env.smtp_port = port
    smtp_env.start()
    yield smtp_env


def test_smtplib_through_master(smtpd_master):
    inst = smtpd_master
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as c:
        code, text = c.ehlo("client.example")
        assert code == 250 and b"PIPELINING" in text and b"CHUNKING" in text
        assert c.has_extn("size") and c.has_extn("dsn") and c.has_extn("smtputf8")
        refused = c.sendmail("a@remote.example", ["alice@example.test", "bob@example.test"],
                             b"Subject: smtplib\r\n\r\nhello\r\n.dot\r\n",
                             mail_options=["BODY=8BITMIME"],
                             rcpt_options=["NOTIFY=FAILURE"])
        assert refused == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
            c.sendmail("a@remote.example", ["carol@example.test"], b"Subject: x\r\n\r\nx\r\n")
        assert ei.value.recipients["carol@example.test"][0] == 550
    [msg] = inst.cleanup_service.complete()
    lines = content_lines(msg)
    assert lines[0] == b"Received: from client.example ([127.0.0.1])"
    assert lines[-2:] == [b"hello", b".dot"]
    assert [d for t, d in envelope(msg) if t == "N"] == [b"failure", b"failure"]
    inst.wait_log(r"disconnect from unknown\[127\.0\.0\.1\]")
    assert "connect from unknown[127.0.0.1]" in inst.log_text()


def test_relay_denied_through_master(smtp_env):
    port = smtp_env.free_port()
    smtp_env.write_master_cf(f"127.0.0.1:{port} inet n - n - - smtpd -o mynetworks=192.0.2.0/24\n")
    smtp_env.start()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.example")
        c.mail("a@remote.example")
        code, text = c.rcpt("x@foreign.example")
        assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text
        code, _ = c.rcpt("alice@example.test")
        assert code == 250
    smtp_env.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1")


def test_bdat_with_smtplib_socket_through_master(smtpd_master):
    """A raw-socket client pipelining BDAT chunks over TCP."""
    inst = smtpd_master
    with socket.create_connection(("127.0.0.1", inst.smtp_port), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220 ")
        data = b"Subject: raw\r\n\r\n" + b"z" * 100000 + b"\r\n"
        sock.sendall(b"EHLO c.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        sock.sendall(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\n"
                     + b"BDAT %d\r\n" % 50000 + data[:50000]
                     + b"BDAT %d LAST\r\n" % (len(data) - 50000) + data[50000:] + b"QUIT\r\n")
        replies = [f.readline() for _ in range(5)]
        assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"250", b"221"], replies
    [msg] = inst.cleanup_service.complete()
    assert content_lines(msg)[-1] == b"z" * 100000


def test_swaks(smtpd_master):
    swaks = shutil.which("swaks")
    if not swaks:
        pytest.skip("swaks not installed")
    inst = smtpd_master
    res = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(inst.smtp_port),
                          "--from", "a@remote.example", "--to", "alice@example.test",
                          "--pipeline", "--body", "swaks body", "--timeout", "10"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"queued as {QUEUE_ID}" in res.stdout
    res = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(inst.smtp_port),
                          "--from", "a@remote.example", "--to", "nobody@example.test",
                          "--timeout", "10"], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "550 5.1.1" in res.stdout


def test_peername_lookup_through_master(smtp_env):
    try:
        names = socket.gethostbyaddr("127.0.0.1")
    except OSError:
        pytest.skip("no reverse name for 127.0.0.1 here")
    name = names[0]
    port = smtp_env.free_port()
    smtp_env.write_master_cf(f"127.0.0.1:{port} inet n - n - - smtpd -o smtpd_peername_lookup=yes\n")
    smtp_env.start()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.example")
    m = smtp_env.wait_log(r"connect from (\S+)\[127\.0\.0\.1\]")
    # the name is used only if it resolves back to the address
    try:
        confirmed = "127.0.0.1" in socket.gethostbyname_ex(name)[2]
    except OSError:
        confirmed = False
    assert m.group(1) == (name if confirmed else "unknown")


# -- audit issue 7 ---------------------------------------------------------------------
def test_8bit_bytes_never_echoed(smtp_env):
    """Bytes of 0x80 and above from the client are '?' in replies; log
    lines keep valid UTF-8 and show the rest as '?'."""
    s = smtp_env.session("smtpd_hard_error_limit=100")
    s.start()
    s.send(b"EHLO \xff\xfe.example\r\n")
    line = s.readline()
    assert line.startswith(b"501 5.5.2 <??.example>: Helo command rejected"), line
    s.send("EHLO caf\u00e9.example\r\n".encode())   # accepted: a U-label
    code, texts = s.reply()
    assert code == 250 and texts[0] == "mail.example.test", texts
    s.expect("MAIL FROM:<j\u00f6rg@remote.example> SMTPUTF8", 250)
    s.send("RCPT TO:<n\u00f6body@example.test>\r\n".encode())
    line = s.readline()
    assert line.startswith(b"550 5.1.1 <n??body@example.test>"), line
    s.expect("QUIT", 221)
    s.close()
    log = smtp_env.maillog.read_bytes()
    assert b"\xff" not in log and b"\xfe" not in log
    assert b"reject: EHLO from localhost[127.0.0.1]: 501 5.5.2 <??.example>" in log
    # the log keeps valid UTF-8 (the sender and recipient as parsed)
    assert ("from=<j\u00f6rg@remote.example> to=<n\u00f6body@example.test> proto=UTF8SMTP "
            "helo=<caf\u00e9.example>").encode() in log


def test_bdat_size_with_leading_zeros(smtp_env):
    """RFC 3030 allows leading zeros: the 14 chunk bytes are content, not
    commands."""
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.send(b"BDAT 0000000000000000000014 LAST\r\nRSET\r\nVRFY x\r\n")
    code, texts = s.reply()
    assert code == 250 and "queued as" in texts[0], texts
    s.expect("QUIT", 221)
    [msg] = smtp_env.cleanup_service.complete()
    assert content_lines(msg)[-2:] == [b"RSET", b"VRFY x"]


@pytest.mark.parametrize("cmd", [b"BDAT 14x LAST", b"BDAT 99999999999999999999999 LAST",
                                 b"BDAT -14 LAST", b"BDAT 14 LAST junk",
                                 b"BDAT 14 " + b"0" * 600])
def test_bdat_unfollowable_size_ends_session(smtp_env, cmd):
    """A BDAT whose size cannot be honoured ends the session: otherwise the
    chunk bytes would run as commands."""
    s = smtp_env.session()
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<alice@example.test>", 250)
    s.send(cmd + b"\r\nRSET\r\nVRFY x\r\n")
    code, texts = s.reply()
    assert code == 421 and texts[0].startswith("4.5.4 "), (code, texts)
    assert s.at_eof()
    assert not smtp_env.cleanup_service.complete()


def test_recipient_overshoot_pipelined(smtp_env):
    """1,100 pipelined RCPTs with the limit at 1000: 452 for the last 100,
    no disconnect, and the transaction with 1000 recipients is queued."""
    s = smtp_env.session()
    s.start()
    rcpts = b"".join(b"RCPT TO:<alice@example.test>\r\n" for _ in range(1100))
    s.send(b"MAIL FROM:<a@remote.example>\r\n" + rcpts + b"DATA\r\n")
    codes = [s.reply()[0] for _ in range(1102)]
    assert codes[0] == 250
    assert codes[1:1001] == [250] * 1000
    assert codes[1001:1101] == [452] * 100
    assert codes[1101] == 354
    s.send(b"Subject: many\r\n\r\nhi\r\n.\r\n")
    code, texts = s.reply()
    assert code == 250 and "queued as" in texts[0], (code, texts)
    s.expect("QUIT", 221)
    [msg] = smtp_env.cleanup_service.complete()
    assert sum(1 for t, _ in msg["records"] if t == "R") == 1000


def test_recipient_overshoot_limit(smtp_env):
    """Past smtpd_recipient_overshoot_limit, excess RCPTs count as errors."""
    s = smtp_env.session("smtpd_recipient_limit=2", "smtpd_recipient_overshoot_limit=3",
                         "smtpd_hard_error_limit=2")
    s.start()
    s.expect("MAIL FROM:<a@remote.example>", 250)
    for _ in range(2):
        s.expect("RCPT TO:<alice@example.test>", 250)
    for _ in range(3):
        s.expect("RCPT TO:<alice@example.test>", 452, r"^4\.5\.3")
    s.expect("RCPT TO:<alice@example.test>", 452)   # error 1
    s.send("RCPT TO:<alice@example.test>\r\n")        # error 2
    assert s.reply()[0] == 452
    code, texts = s.reply()
    assert code == 421 and "too many errors" in texts[0]


def test_address_literal_with_at_refused(smtp_env):
    """An "@" inside an address literal is refused (501 5.1.3): the domain
    of an address is what follows its last "@", everywhere."""
    s = smtp_env.session("mynetworks=127.0.0.0/8")
    s.start()
    s.expect("MAIL FROM:<a@[t:b@localhost]>", 501, r"^5\.1\.7 Bad address syntax: invalid address literal")
    s.expect("MAIL FROM:<a@remote.example>", 250)
    s.expect("RCPT TO:<x@[t:y@localhost]>", 501, r"^5\.1\.3 Bad address syntax: invalid address literal")
    s.expect("RCPT TO:<\"x@y\"@example.test>", 550)      # local part "x@y", domain ours
    s.expect("QUIT", 221)

"""smtpd's client limits (the client-limits service, limits_proto.h),
against a full instance (tests/mailsuite.py) with mynetworks =
127.0.0.1/32 and a plain smtpd service (no front): the attacker is
127.0.0.2, the legitimate client 127.0.0.1 (loopback: every 127.0.0.x is
local on Linux, so a client socket is bound to its source address).

  - slowloris: 150 idle connections from 127.0.0.2 (connect, send
    nothing); the 51st and every later one gets 421 4.7.0 and the log
    line naming smtpd_client_connection_count_limit; a client from
    127.0.0.1 then gets its 220 and has its message queued within 1 s
  - every way a session ends releases its count (the limit would lock
    the client out otherwise)
  - the connection rate, message rate (swaks and smtplib), recipient
    rate, failed-AUTH rate and new-TLS-session rate limits, each hit and
    logged once per refusal; TLS resumptions are not counted
  - exceptions: 127.0.0.1 ($mynetworks) and an explicit list are never
    refused
  - fail open: with client-limits gone from master.cf, no client is
    refused

Every client has a deadline; every loop is bounded."""
import json
import re
import selectors
import smtplib
import socket
import ssl
import time

import pytest

from conftest import proc_cmdline
from mailsuite import SERVICES, MailInstance, have, MASTER
from tlsca import tls_ca  # noqa: F401  (the fixture)

DAEMONS = ("smtpd", "cleanup", "qmgr", "local-delivery", "client-limits")
pytestmark = pytest.mark.skipif(not all(have(p) for p in DAEMONS) or not MASTER.exists(),
                                reason="needs " + ", ".join(DAEMONS) + " built")

ATTACKER = "127.0.0.2"
LEGIT = "127.0.0.1"
ALICE = "alice@example.test"
BOB = "bob@example.test"
HOST = "mail.example.test"          # myhostname of the instance (mkinstance)
TIMEOUT = 10
MESSAGE = b"Subject: limits\r\n\r\nhello\r\n"


class LimitsInstance(MailInstance):
    """A MailInstance with client-limits, mynetworks = 127.0.0.1/32 and
    the given main.cf parameters; extra smtpd services (name -> -o
    overrides) get ports in .port."""

    def __init__(self, main=None, services=None, **kw):
        params = {"mynetworks": "127.0.0.1/32", **(main or {})}
        # SERVICES has client-limits; smtpd on the port itself (no front)
        super().__init__(services=kw.pop("daemons", SERVICES), main=params, front=False, **kw)
        self.port = {}
        lines = []
        for name, opts in (services or {}).items():
            self.port[name] = self.free_port()
            lines.append(f"127.0.0.1:{self.port[name]} inet n - n - - smtpd\n")
            lines.extend(f"  -o {o}\n" for o in opts)
        if lines:
            self.write_master_cf(self.default_master_cf() + "".join(lines))
        self.service = f"{self.smtp_host}:{self.smtp_port}"


@pytest.fixture
def limited():
    """A factory: limited(main={...}) -> a started LimitsInstance."""
    made = []

    def make(main=None, services=None, **kw):
        inst = LimitsInstance(main=main, services=services, **kw)
        made.append(inst)
        inst.start()
        return inst
    try:
        yield make
    finally:
        for inst in made:
            inst.cleanup()


def connect_from(source, port, timeout=TIMEOUT):
    """A TCP connection from source (127.0.0.x) to 127.0.0.1:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def readline(sock, timeout=TIMEOUT):
    """One line (without CRLF) from sock; b"" at EOF."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no line within {timeout}s (have {buf!r})")
        sock.settimeout(left)
        data = sock.recv(1)
        if not data:
            break
        buf += data
    return buf.rstrip(b"\r\n")


def read_first_lines(socks, timeout=30):
    """The first line each socket receives (b"" for EOF), read from all
    at once with one deadline."""
    sel = selectors.DefaultSelector()
    bufs = {s: b"" for s in socks}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    pending = set(socks)
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(pending)} of {len(socks)} sockets got no line in {timeout}s")
        for key, _ in sel.select(left):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            bufs[s] += data
            if not data or b"\n" in bufs[s]:
                sel.unregister(s)
                pending.discard(s)
    sel.close()
    for s in socks:
        s.setblocking(True)
    return [bufs[s].split(b"\n", 1)[0].rstrip(b"\r") for s in socks]


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def refusal_re(what, figure, who, service, param, limit):
    """The log line of one refusal."""
    return (rf"warning: {what} limit exceeded: {figure} from {who} for service "
            rf"{re.escape(service)} \({param} = {limit}\)")


def wait_count(inst, regex, count, since=0, timeout=10):
    """The number of log lines matching regex once it reached count (or
    the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        n = inst.count_log(regex, since=since)
        if n >= count or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def too_many_connections(addr):
    return f"421 4.7.0 {HOST} Error: too many connections from {addr}".encode()


def send_legit(port, source=LEGIT, rcpts=(ALICE,)):
    """A message from source with smtplib; the queue ID."""
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT, source_address=(source, 0)) as c:
        c.ehlo("client.example")
        refused = c.sendmail("someone@remote.example", list(rcpts), MESSAGE)
        assert not refused, refused


# ---------------------------------------------------------------- slowloris
def test_slowloris_from_one_address_leaves_the_service_to_others(limited):
    """150 idle connections from 127.0.0.2 against the default limit of
    50: the first 50 each hold an smtpd process (220, then silence), the
    51st and every later one is refused at once with 421 4.7.0 and one
    log line; a client from 127.0.0.1 is then served within 1 s (without
    the limit all 100 processes wait on the attacker for smtpd_timeout)."""
    inst = limited()
    port = inst.smtp_port
    held, refused = [], []
    try:
        for i in range(50):
            s = connect_from(ATTACKER, port)
            held.append(s)
            assert readline(s).startswith(b"220 "), i
        mark = inst.log_mark()
        s = connect_from(ATTACKER, port)
        refused.append(s)
        assert readline(s) == too_many_connections(ATTACKER)
        assert readline(s) == b""                       # and closed
        inst.wait_log(refusal_re("Connection count", 51, r"\[127\.0\.0\.2\]", inst.service,
                                 "smtpd_client_connection_count_limit", 50), since=mark)
        # the other 99 at once
        more = [connect_from(ATTACKER, port) for _ in range(99)]
        refused.extend(more)
        lines = read_first_lines(more)
        assert lines == [too_many_connections(ATTACKER)] * 99, set(lines)
        assert wait_count(inst, r"Connection count limit exceeded: \d+ from \[127\.0\.0\.2\]",
                          100, since=mark) == 100
        # no log line for the refused but that one (no connect/disconnect)
        assert inst.count_log(r"connect from unknown\[127\.0\.0\.2\]", since=mark) == 0

        # the legitimate client: greeting and message queued within 1 s
        start = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=5, source_address=(LEGIT, 0)) as c:
            greeted = time.monotonic() - start
            c.ehlo("legit.example")
            assert not c.sendmail("someone@remote.example", [ALICE], MESSAGE)
            queued = time.monotonic() - start
        print(f"legitimate client: 220 after {greeted * 1000:.0f} ms, "
              f"message queued after {queued * 1000:.0f} ms")
        assert queued < 1.0, queued
        assert b"hello" in inst.wait_maildir(ALICE, 1)[0]
        # the held connections are still open and silent (their processes wait)
        for s in held[:3]:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
    finally:
        close_all(held + refused)


def until_eof(sock, timeout=TIMEOUT):
    """Read sock to its end: the lines. smtpd releases a session's count
    before it closes the connection, so after EOF the count is down."""
    lines = []
    while True:
        line = readline(sock, timeout)
        if not line:
            return lines
        lines.append(line)


def test_every_way_a_session_ends_releases_its_count(limited):
    """With a count limit of 2, sessions from 127.0.0.2 that end by QUIT,
    by the client vanishing, by a non-SMTP command, by the error limit,
    by a refusal and by the timeout: afterwards 2 connections are held
    again (a leaked count would refuse them)."""
    inst = limited(main={"smtpd_client_connection_count_limit": "2",
                         "smtpd_hard_error_limit": "2", "smtpd_timeout": "3s"})
    port = inst.smtp_port
    socks = []

    def session(send, want):
        s = connect_from(ATTACKER, port)
        socks.append(s)
        assert readline(s).startswith(b"220 ")
        if send is None:
            s.close()
            return
        s.sendall(send)
        got = [line[:3] for line in until_eof(s)]
        assert got == want, (send, got)

    try:
        for _ in range(3):
            session(b"QUIT\r\n", [b"221"])
            mark = inst.log_mark()
            session(None, None)                          # the client vanishes
            inst.wait_log(r"disconnect from unknown\[127\.0\.0\.2\]", since=mark)
            session(b"GET / HTTP/1.0\r\n", [b"221"])
            session(b"BOGUS\r\nBOGUS\r\nBOGUS\r\n", [b"500", b"500", b"421"])
        # two held (b 1.5 s after a, so that a times out first), the third refused
        a = connect_from(ATTACKER, port)
        socks.append(a)
        assert readline(a).startswith(b"220 ")
        time.sleep(1.5)
        b = connect_from(ATTACKER, port)
        socks.append(b)
        assert readline(b).startswith(b"220 ")
        c = connect_from(ATTACKER, port)
        socks.append(c)
        assert until_eof(c) == [too_many_connections(ATTACKER)]
        # the timeout (smtpd_timeout = 3s) ends a: room for one more
        assert [line[:9] for line in until_eof(a)] == [b"421 4.4.2"]
        b.sendall(b"NOOP\r\n")
        assert readline(b).startswith(b"250 ")
        d = connect_from(ATTACKER, port)
        socks.append(d)
        assert readline(d).startswith(b"220 ")
        e = connect_from(ATTACKER, port)
        socks.append(e)
        assert until_eof(e) == [too_many_connections(ATTACKER)]
        # both leave by QUIT: two are held again
        for s in (b, d):
            s.sendall(b"QUIT\r\n")
            assert [line[:3] for line in until_eof(s)] == [b"221"]
        f, g = connect_from(ATTACKER, port), connect_from(ATTACKER, port)
        socks += [f, g]
        assert readline(f).startswith(b"220 ") and readline(g).startswith(b"220 ")
    finally:
        close_all(socks)


# ---------------------------------------------------------------- rates
def test_connection_rate_limit(limited):
    """smtpd_client_connection_rate_limit = 3: the 4th connection of
    127.0.0.2 in the time unit gets 421 4.7.0 (swaks sees it too), with
    one log line per refusal; 127.0.0.1 ($mynetworks) is not refused."""
    inst = limited(main={"smtpd_client_connection_rate_limit": "3"})
    port = inst.smtp_port
    for i in range(3):
        s = connect_from(ATTACKER, port)
        assert readline(s).startswith(b"220 "), i
        s.sendall(b"QUIT\r\n")
        readline(s)
        s.close()
    mark = inst.log_mark()
    s = connect_from(ATTACKER, port)
    assert readline(s) == too_many_connections(ATTACKER)
    s.close()
    inst.wait_log(refusal_re("Connection rate", 4, r"\[127\.0\.0\.2\]", inst.service,
                             "smtpd_client_connection_rate_limit", 3), since=mark)
    r = swaks_or_skip("--server", f"127.0.0.1:{port}", "--local-interface", ATTACKER,
                      "--from", "someone@remote.example", "--to", ALICE)
    assert r.returncode != 0
    assert "421 4.7.0 " + HOST + " Error: too many connections from 127.0.0.2" in r.stdout
    inst.wait_log(refusal_re("Connection rate", 5, r"\[127\.0\.0\.2\]", inst.service,
                             "smtpd_client_connection_rate_limit", 3), since=mark)
    assert inst.count_log(r"Connection rate limit exceeded", since=mark) == 2
    for _ in range(6):          # the exception
        send_legit(port)
    inst.wait_maildir(ALICE, 6)


def swaks_or_skip(*args):
    import shutil
    import subprocess
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed (tools/install-deps.sh)")
    return subprocess.run(["swaks", "--timeout", "20", *args], capture_output=True, text=True,
                          timeout=60)


def test_message_rate_limit(limited):
    """smtpd_client_message_rate_limit = 2: two messages from 127.0.0.2
    (separate sessions: the rate is per client, not per session), then
    MAIL FROM gets 450 4.7.1 Error: too much mail from 127.0.0.2."""
    inst = limited(main={"smtpd_client_message_rate_limit": "2"})
    port = inst.smtp_port
    r = swaks_or_skip("--server", f"127.0.0.1:{port}", "--local-interface", ATTACKER,
                      "--from", "someone@remote.example", "--to", ALICE)
    assert r.returncode == 0, r.stdout + r.stderr
    send_legit(port, source=ATTACKER)
    mark = inst.log_mark()
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT, source_address=(ATTACKER, 0)) as c:
        c.ehlo("client.example")
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("someone@remote.example", [ALICE], MESSAGE)
        assert (e.value.smtp_code, e.value.smtp_error) == (
            450, b"4.7.1 Error: too much mail from 127.0.0.2")
        c.rset()
        assert c.mail("other@remote.example")[0] == 450       # still over
    inst.wait_log(refusal_re("Message delivery request rate", 3, r"unknown\[127\.0\.0\.2\]",
                             inst.service, "smtpd_client_message_rate_limit", 2), since=mark)
    inst.wait_log(refusal_re("Message delivery request rate", 4, r"unknown\[127\.0\.0\.2\]",
                             inst.service, "smtpd_client_message_rate_limit", 2), since=mark)
    assert inst.count_log(r"Message delivery request rate limit exceeded", since=mark) == 2
    assert len(inst.wait_maildir(ALICE, 2)) == 2
    for _ in range(4):          # 127.0.0.1 is an exception
        send_legit(port)
    inst.wait_maildir(ALICE, 6)


def test_recipient_rate_limit(limited):
    """smtpd_client_recipient_rate_limit = 3: of five RCPTs from
    127.0.0.2 the last two get 450 4.7.1 Error: too many recipients;
    the message goes to the first three."""
    inst = limited(main={"smtpd_client_recipient_rate_limit": "3"})
    port = inst.smtp_port
    rcpts = [ALICE, BOB, "carol@example.test", "info@alias.test", "postmaster"]
    mark = inst.log_mark()
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT, source_address=(ATTACKER, 0)) as c:
        c.ehlo("client.example")
        refused = c.sendmail("someone@remote.example", rcpts, MESSAGE)
    assert refused == {"info@alias.test": (450, b"4.7.1 Error: too many recipients from 127.0.0.2"),
                       "postmaster": (450, b"4.7.1 Error: too many recipients from 127.0.0.2")}
    for n in (4, 5):
        inst.wait_log(refusal_re("Recipient address rate", n, r"unknown\[127\.0\.0\.2\]",
                                 inst.service, "smtpd_client_recipient_rate_limit", 3),
                      since=mark)
    assert inst.count_log(r"Recipient address rate limit exceeded", since=mark) == 2
    inst.wait_maildir(BOB, 1)
    inst.wait_maildir("carol@example.test", 1)
    assert len(inst.wait_maildir(ALICE, 1)) == 1


# ---------------------------------------------------------------- AUTH
def b64(text):
    import base64
    return base64.b64encode(text.encode()).decode()


def test_auth_failure_rate_limit():
    """smtpd_client_auth_rate_limit = 2: two failed AUTHs from 127.0.0.2,
    then AUTH gets 450 4.7.1 Error: too many AUTH commands (the right
    password is not even tried), in this session and the next; 127.0.0.1
    ($mynetworks) fails as often and still logs in."""
    if not have("auth"):
        pytest.skip("auth is not built")
    inst = LimitsInstance(daemons=SERVICES + ("auth",), passwords=True,
                          main={"smtpd_client_auth_rate_limit": "2", "auth_failure_delay": "20",
                                "auth_failure_delay_max": "100"},
                          services={"sub": ("smtpd_sasl_auth_enable=yes",
                                            "smtpd_tls_auth_only=no")})
    try:
        inst.start()
        port = inst.port["sub"]
        service = f"127.0.0.1:{port}"
        good = "PLAIN " + b64(f"\0{ALICE}\0{inst.passwords[ALICE]}")
        bad = "PLAIN " + b64(f"\0{ALICE}\0wrong")
        mark = inst.log_mark()
        with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT, source_address=(ATTACKER, 0)) as c:
            c.ehlo("client.example")
            assert c.docmd("AUTH", bad)[0] == 535
            assert c.docmd("AUTH", bad)[0] == 535
            assert c.docmd("AUTH", good) == (450, b"4.7.1 Error: too many AUTH commands from "
                                                  b"127.0.0.2")
        with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT, source_address=(ATTACKER, 0)) as c:
            c.ehlo("client.example")
            assert c.docmd("AUTH", good)[0] == 450
        line = refusal_re("AUTH failure rate", 3, r"unknown\[127\.0\.0\.2\]", service,
                          "smtpd_client_auth_rate_limit", 2)
        assert wait_count(inst, line, 2, since=mark) == 2
        assert inst.count_log("AUTH failure rate limit exceeded", since=mark) == 2
        assert inst.count_log(r"unknown\[127\.0\.0\.2\]: SASL PLAIN authentication failed",
                              since=mark) == 2
        # the exception
        with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT, source_address=(LEGIT, 0)) as c:
            c.ehlo("client.example")
            for _ in range(3):
                assert c.docmd("AUTH", bad)[0] == 535
            assert c.docmd("AUTH", good)[0] == 235
    finally:
        inst.cleanup()


# ---------------------------------------------------------------- TLS
class Tls:
    """STARTTLS and wrapper-mode sessions with Python's ssl module."""

    def __init__(self, ca):
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3

    def starttls(self, source, port, session=None):
        """(the first line inside TLS after EHLO or the 421, the socket)"""
        s = connect_from(source, port)
        assert readline(s).startswith(b"220 ")
        s.sendall(b"STARTTLS\r\n")
        line = readline(s)
        if not line.startswith(b"220 "):
            s.close()
            return line, None
        t = self.ctx.wrap_socket(s, server_hostname="localhost", session=session)
        t.sendall(b"NOOP\r\n")          # TLS 1.3: the ticket comes after the handshake
        return readline(t), t

    def wrapper(self, source, port):
        t = self.ctx.wrap_socket(connect_from(source, port), server_hostname="localhost")
        return readline(t), t


@pytest.fixture
def tls_limited(limited, tls_ca):  # noqa: F811
    inst = limited(main={"smtpd_client_new_tls_session_rate_limit": "2",
                         "smtpd_tls_chain_files": f"{tls_ca.rsa.chain}"},
                   services={"smtps": ("smtpd_tls_wrappermode=yes",)})
    inst.tls = Tls(tls_ca.ca)
    return inst


def test_new_tls_session_rate_limit(tls_limited):
    """smtpd_client_new_tls_session_rate_limit = 2: two STARTTLS sessions
    of 127.0.0.2, the third gets 421 4.7.0 inside TLS after its handshake,
    the fourth 454 4.7.0 to STARTTLS (no handshake); on the wrapper-mode
    port the client (127.0.0.3) gets 421 instead of the greeting."""
    inst, tls = tls_limited, tls_limited.tls
    port = inst.smtp_port
    for _ in range(2):
        line, t = tls.starttls(ATTACKER, port)
        assert line.startswith(b"250 "), line
        t.close()
    mark = inst.log_mark()
    line, t = tls.starttls(ATTACKER, port)
    assert line == f"421 4.7.0 {HOST} Error: too many new TLS sessions from 127.0.0.2".encode()
    assert readline(t) == b""
    t.close()
    line, t = tls.starttls(ATTACKER, port)
    assert line == b"454 4.7.0 Error: too many new TLS sessions from 127.0.0.2"
    inst.wait_log(refusal_re("New TLS session rate", 3, r"unknown\[127\.0\.0\.2\]",
                             inst.service, "smtpd_client_new_tls_session_rate_limit", 2),
                  since=mark)
    assert inst.count_log("New TLS session rate limit exceeded", since=mark) == 2
    # wrapper mode
    sport = inst.port["smtps"]
    for _ in range(2):
        line, t = tls.wrapper("127.0.0.3", sport)
        assert line.startswith(b"220 "), line
        t.close()
    line, t = tls.wrapper("127.0.0.3", sport)
    assert line == f"421 4.7.0 {HOST} Error: too many new TLS sessions from 127.0.0.3".encode()
    t.close()
    inst.wait_log(refusal_re("New TLS session rate", 3, r"unknown\[127\.0\.0\.3\]",
                             f"127.0.0.1:{sport}", "smtpd_client_new_tls_session_rate_limit", 2))
    # the exception: 127.0.0.1
    for _ in range(4):
        line, t = tls.starttls(LEGIT, port)
        assert line.startswith(b"250 "), line
        t.close()


def test_resumed_tls_sessions_are_not_new(tls_limited):
    """A session resumed from a ticket costs no handshake and is not
    counted: after one full handshake, four resumptions and a second full
    handshake pass; the third full handshake is over the limit of 2."""
    inst, tls = tls_limited, tls_limited.tls
    port = inst.smtp_port
    line, t = tls.starttls(ATTACKER, port)
    assert line.startswith(b"250 ")
    session = t.session
    t.close()
    for i in range(4):
        line, t = tls.starttls(ATTACKER, port, session=session)
        assert line.startswith(b"250 "), (i, line)
        assert t.session_reused, i
        session = t.session
        t.close()
    line, t = tls.starttls(ATTACKER, port)
    assert line.startswith(b"250 ") and not t.session_reused
    t.close()
    line, t = tls.starttls(ATTACKER, port)
    assert line.startswith(b"421 4.7.0 "), line
    t.close()


# ---------------------------------------------------------------- exceptions
def test_exceptions_are_never_refused_nor_counted(limited):
    """Count and rate limits of 1: 127.0.0.1 ($mynetworks) and 127.0.0.3
    (added to smtpd_client_event_limit_exceptions) hold three
    connections each and send mail; 127.0.0.2 is refused its second.
    Only 127.0.0.2 is in client-limits' table: an exempt client's events
    are not reported (no limit can refuse it; decision 54)."""
    inst = limited(main={"smtpd_client_connection_count_limit": "1",
                         "smtpd_client_connection_rate_limit": "1",
                         "smtpd_client_message_rate_limit": "1",
                         "smtpd_client_event_limit_exceptions": "$mynetworks 127.0.0.3/32"})
    port = inst.smtp_port
    socks = []
    try:
        for source in (LEGIT, "127.0.0.3"):
            held = [connect_from(source, port) for _ in range(3)]
            socks += held
            assert [readline(s)[:4] for s in held] == [b"220 "] * 3, source
            for _ in range(2):
                send_legit(port, source=source)
        s = connect_from(ATTACKER, port)
        socks.append(s)
        assert readline(s).startswith(b"220 ")
        t = connect_from(ATTACKER, port)
        socks.append(t)
        assert readline(t) == too_many_connections(ATTACKER)
        inst.wait_maildir(ALICE, 4)
        assert inst.count_log(r"limit exceeded: \d+ from \S*\[127\.0\.0\.[13]\]") == 0
        # the exempt clients cost client-limits nothing: not in its table
        deadline = time.monotonic() + 5
        while True:
            entries = json.loads(inst.posthorn("limits", "--json").stdout)
            figures = {e["client_address"]: (e["count"], e["conn_rate"], e["message_rate"])
                       for e in entries if e["service"] == inst.service}
            want = {ATTACKER: (1, 2, 0)}
            if figures == want or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert figures == want, entries
    finally:
        close_all(socks)


# ---------------------------------------------------------------- fail open
def test_fail_open_without_client_limits(limited):
    """A count limit of 1 refuses 127.0.0.2's second connection; with the
    client-limits service taken out of master.cf (reload), nobody is
    refused: smtpd logs a warning and serves."""
    inst = limited(main={"smtpd_client_connection_count_limit": "1"})
    port = inst.smtp_port
    socks = []
    try:
        a = connect_from(ATTACKER, port)
        socks.append(a)
        assert readline(a).startswith(b"220 ")
        b = connect_from(ATTACKER, port)
        socks.append(b)
        assert readline(b) == too_many_connections(ATTACKER)
        a.close()
        text = "".join(line for line in inst.default_master_cf().splitlines(keepends=True)
                       if not line.startswith("client-limits"))
        inst.write_master_cf(text)
        mark = inst.reload()
        deadline = time.monotonic() + 10
        while [p for p in inst.processes()
               if any(b"client-limits" in a for a in proc_cmdline(p))]:
            assert time.monotonic() < deadline, "client-limits still runs"
            time.sleep(0.1)
        held = [connect_from(ATTACKER, port) for _ in range(3)]
        socks += held
        assert [readline(s)[:4] for s in held] == [b"220 "] * 3
        send_legit(port, source=ATTACKER)
        inst.wait_maildir(ALICE, 1)
        inst.wait_log(r"warning: .*client-limits", since=mark)
        assert inst.count_log(r"limit exceeded", since=mark) == 0
    finally:
        close_all(socks)

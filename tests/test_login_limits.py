"""Client limits in the login processes (issue 14): pop3d-login and
imapd-login ask client-limits (limits_proto.h) at every connection, after
every full TLS handshake and around every login attempt, and refuse a
client over login_client_connection_count_limit, ..._connection_rate_limit,
..._new_tls_session_rate_limit or ..._auth_rate_limit with the protocol's
"try later" (RFC 2449 [SYS/TEMP], RFC 5530 [UNAVAILABLE]) and one log line
naming the parameter. Clients in login_client_event_limit_exceptions
(default $mynetworks) are counted but never refused; with client-limits
down the login processes serve everyone (fail open), and a client the
login process handed to pop3d/imapd is no longer counted.

The instance has mynetworks = 127.0.0.1/32: the "attacker" connects from
127.0.0.2 (not exempt), the operator's own client from 127.0.0.1
(exempt). Real clients: poplib, imaplib (with a source address), ssl and
raw sockets. Every loop here is bounded in count and time."""
import imaplib
import os
import poplib
import shutil
import signal
import socket
import ssl
import time

import pytest

import phwire
from conftest import BUILD, MASTER, proc_cmdline
from test_pop3 import PASSWORD, USER, Pop3Instance
from tlsca import tls_ca  # noqa: F401  (the fixture)

ATTACKER = "127.0.0.2"
OPERATOR = "127.0.0.1"


# ------------------------------------------------------------ clients
class Raw:
    """A line-oriented client on a raw socket from a chosen address."""

    def __init__(self, port, source=ATTACKER, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.f = self.sock.makefile("rb")

    def line(self):
        got = self.f.readline(65536)
        if not got:
            raise EOFError("connection closed")
        assert got.endswith(b"\r\n"), got
        return got[:-2].decode()

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def starttls(self, ctx, session=None):
        self.f.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost", session=session)
        self.f = self.sock.makefile("rb")

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.f.read(1) == b""
        except OSError:
            return True

    def close(self):
        self.f.close()
        self.sock.close()


def wrapped(port, ctx, source=ATTACKER, session=None):
    """A Raw speaking TLS from the first byte (POP3S, IMAPS)."""
    r = Raw(port, source)
    r.starttls(ctx, session)
    return r


class FromSource:
    """Mixin for poplib/imaplib classes: connect from a chosen source
    address (the attacker's, unless told)."""

    def __init__(self, port, source=ATTACKER, **kw):
        self.source = source
        super().__init__("127.0.0.1", port, timeout=10, **kw)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


class Pop3From(FromSource, poplib.POP3):
    """poplib from a chosen source address"""


class Pop3SslFrom(FromSource, poplib.POP3_SSL):
    """poplib over implicit TLS from a chosen source address"""

    def __init__(self, port, ctx, source=ATTACKER):
        super().__init__(port, source, context=ctx)

    def _create_socket(self, timeout):
        return self.context.wrap_socket(super()._create_socket(timeout),
                                        server_hostname="localhost")


class Imap4From(FromSource, imaplib.IMAP4):
    """imaplib from a chosen source address"""


# ------------------------------------------------------------ instance
class LimitsInstance(Pop3Instance):
    """test_pop3's instance (auth, pop3d, users, cleartext logins from
    127.0.0.0/8) plus imapd, client-limits and one login service per
    limit (each -o sets only its own limit; count limit 50 elsewhere):
      pop_count / imap_count   login_client_connection_count_limit=3
      pop_rate                 login_client_connection_rate_limit=3
      pop_auth / imap_auth     login_client_auth_rate_limit=2
      pops / imaps             wrapper mode, new TLS session rate 2
      pop_stls / imap_stls     STLS/STARTTLS, new TLS session rate 2
      pop_one / pops_one       count limit 1 (hand-over release)
    mynetworks = 127.0.0.1/32."""

    SERVICES = {
        "pop_count": ("pop3d-login", "-o login_client_connection_count_limit=3"),
        "imap_count": ("imapd-login", "-o login_client_connection_count_limit=3"),
        "pop_rate": ("pop3d-login", "-o login_client_connection_rate_limit=3"),
        "pop_auth": ("pop3d-login", "-o login_client_auth_rate_limit=2"),
        "imap_auth": ("imapd-login", "-o login_client_auth_rate_limit=2"),
        "pops": ("pop3d-login", "-o pop3d_tls_wrappermode=yes"
                 " -o login_client_new_tls_session_rate_limit=2"),
        "imaps": ("imapd-login", "-o imapd_tls_wrappermode=yes"
                  " -o login_client_new_tls_session_rate_limit=2"),
        "pop_stls": ("pop3d-login", "-o login_client_new_tls_session_rate_limit=2"),
        "imap_stls": ("imapd-login", "-o login_client_new_tls_session_rate_limit=2"),
        "pop_one": ("pop3d-login", "-o login_client_connection_count_limit=1"),
        "pops_one": ("pop3d-login", "-o login_client_connection_count_limit=1"
                     " -o pop3d_tls_wrappermode=yes"),
    }

    def __init__(self, ca):
        super().__init__()
        self.ca = ca
        self.ports = {name: self.inst.free_port() for name in self.SERVICES}
        self.inst.write_master_cf(self.master_cf())
        self.inst.set_main(mynetworks="127.0.0.1/32",
                           pop3d_tls_chain_files=f"{ca.ecdsa.chain}",
                           imapd_tls_chain_files=f"{ca.ecdsa.chain}")

    def master_cf(self, limits=True):
        libexec = self.inst.libexec
        text = (f"auth unix - - n - 1 {libexec}/auth\n"
                f"pop3d unix - n n - - {libexec}/pop3d\n"
                f"imapd unix - n n - - {libexec}/imapd\n")
        if limits:
            text += f"client-limits unix - - n - 1 {libexec}/client-limits\n"
        for name, (prog, opts) in self.SERVICES.items():
            text += (f"127.0.0.1:{self.ports[name]} inet n - n - 1 {libexec}/{prog}\n"
                     f"  {opts}\n")
        return text

    def service(self, name):
        """the client-limits key of a login service: its master.cf name"""
        return f"127.0.0.1:{self.ports[name]}"

    def ctx(self):
        return ssl.create_default_context(cafile=self.ca.ca)

    def lookup(self, name, addr=ATTACKER):
        """client-limits' figures of (service, addr), asked over its socket"""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect(str(self.inst.queue / "private" / "client-limits"))
            reader = phwire.IpcReader(sock)
            hello = reader.message_dict()
            assert hello.get("proto") == "limits", hello
            sock.sendall(phwire.encode(request="lookup", service=self.service(name),
                                       client_address=addr))
            reply = reader.message_dict()
        finally:
            sock.close()
        assert reply.get("status") == "ok", reply
        return {k: int(v) for k, v in reply.items() if k != "status"}

    def wait_count(self, name, want, addr=ATTACKER, timeout=5):
        """wait (bounded) until client-limits counts want connections"""
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.lookup(name, addr)["count"]
            if got == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"count of {addr} at {name}: {got}, wanted {want}")

    def limits_pid(self):
        for pid in self.inst.children("client-limits"):
            if proc_cmdline(pid)[0].endswith(b"client-limits"):
                return pid
        return None


@pytest.fixture
def lim(tls_ca):
    for prog in ("auth", "pop3d", "pop3d-login", "imapd", "imapd-login", "client-limits"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    li = LimitsInstance(tls_ca)
    li.inst.start()
    try:
        yield li
    finally:
        li.inst.stop(timeout=15)
        shutil.rmtree(li.inst.dir, ignore_errors=True)


POP_CONN = "-ERR [SYS/TEMP] Too many connections from your address"
IMAP_CONN = "* BYE [UNAVAILABLE] Too many connections from your address"
POP_TLS = "-ERR [SYS/TEMP] Too many TLS sessions from your address"
IMAP_TLS = "* BYE [UNAVAILABLE] Too many TLS sessions from your address"
POP_AUTH = "-ERR [SYS/TEMP] Too many failed logins from your address"


def log_re(limit, value, service, param, n):
    return (rf"warning: {limit} limit exceeded: {value} from \[{ATTACKER}\] for service "
            rf"{service} \({param} = {n}\)")


# ------------------------------------------------------- connection count
@pytest.mark.parametrize("proto", ["pop", "imap"])
def test_connection_count_limit(lim, proto):
    name = f"{proto}_count"
    port = lim.ports[name]
    greeting, refusal = ("+OK", POP_CONN) if proto == "pop" else ("* OK", IMAP_CONN)
    held = [Raw(port) for _ in range(3)]
    for r in held:
        assert r.line().startswith(greeting)
    mark = lim.inst.log_mark()
    fourth = Raw(port)
    assert fourth.line() == refusal
    assert fourth.at_eof()
    fourth.close()
    lim.inst.wait_log(log_re("Connection count", 4, lim.service(name),
                             "login_client_connection_count_limit", 3), since=mark)
    assert lim.inst.count_log("limit exceeded", since=mark) == 1
    lim.wait_count(name, 3)
    # one leaves: a new one is welcome again
    held.pop().close()
    lim.wait_count(name, 2)
    again = Raw(port)
    assert again.line().startswith(greeting)
    held.append(again)
    # the operator's own address (mynetworks) is counted, never refused
    mine = [Raw(port, OPERATOR) for _ in range(5)]
    for r in mine:
        assert r.line().startswith(greeting)
    lim.wait_count(name, 5, addr=OPERATOR)
    for r in held + mine:
        r.close()
    lim.wait_count(name, 0)
    lim.wait_count(name, 0, addr=OPERATOR)


# -------------------------------------------------------- connection rate
def test_connection_rate_limit(lim):
    port = lim.ports["pop_rate"]
    for _ in range(3):
        p = Pop3From(port)
        assert p.getwelcome().startswith(b"+OK")
        p.quit()
    mark = lim.inst.log_mark()
    with pytest.raises(poplib.error_proto) as e:
        Pop3From(port)
    assert e.value.args[0].decode() == POP_CONN
    lim.inst.wait_log(log_re("Connection rate", 4, lim.service("pop_rate"),
                             "login_client_connection_rate_limit", 3), since=mark)
    assert lim.lookup("pop_rate")["conn_rate"] == 4
    # not a count: nothing is held
    lim.wait_count("pop_rate", 0)
    # exempt: the operator's client may come as often as it likes
    for _ in range(6):
        p = Pop3From(port, OPERATOR)
        assert p.getwelcome().startswith(b"+OK")
        p.quit()
    assert lim.lookup("pop_rate", OPERATOR)["conn_rate"] == 6


# ---------------------------------------------------------- failed logins
def test_pop3_failed_login_limit(lim):
    port = lim.ports["pop_auth"]
    p = Pop3From(port)
    for _ in range(2):
        p.user(USER)
        with pytest.raises(poplib.error_proto) as e:
            p.pass_("wrong password")
        assert b"[AUTH] Authentication failed" in e.value.args[0]
    mark = lim.inst.log_mark()
    p.user(USER)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(PASSWORD)			# even the right one: checked first
    assert e.value.args[0].decode() == POP_AUTH
    assert p.sock.recv(1) == b""		# closed
    p.close()
    lim.inst.wait_log(log_re("Failed login rate", 2, lim.service("pop_auth"),
                             "login_client_auth_rate_limit", 2), since=mark)
    assert lim.lookup("pop_auth")["auth_rate"] == 2
    # a new connection from the same address: refused at its first try
    # (AUTH PLAIN this time)
    r = Raw(port)
    assert r.line().startswith("+OK")
    assert r.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB4") == POP_AUTH
    assert r.at_eof()
    r.close()
    # the operator's address is exempt: logs in
    p = Pop3From(port, OPERATOR)
    p.user(USER)
    with pytest.raises(poplib.error_proto):
        p.pass_("wrong again")
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
    assert lim.lookup("pop_auth", OPERATOR)["auth_rate"] == 1


def test_imap_failed_login_limit(lim):
    port = lim.ports["imap_auth"]
    m = Imap4From(port)
    for _ in range(2):
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.login(USER, "wrong password")
        assert "AUTHENTICATIONFAILED" in str(e.value)
    mark = lim.inst.log_mark()
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(USER, PASSWORD)
    assert "[UNAVAILABLE] Too many failed logins" in str(e.value)
    m.shutdown()
    lim.inst.wait_log(log_re("Failed login rate", 2, lim.service("imap_auth"),
                             "login_client_auth_rate_limit", 2), since=mark)
    # the exact answer, raw: tagged NO, then BYE, then the close
    # (AUTHENTICATE counts as a login attempt too)
    r = Raw(port)
    assert r.line().startswith("* OK")
    assert r.cmd("a1 AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB4") == \
        "a1 NO [UNAVAILABLE] Too many failed logins"
    assert r.line() == "* BYE [UNAVAILABLE] Too many failed logins from your address"
    assert r.at_eof()
    r.close()
    m = Imap4From(port, OPERATOR)
    assert m.login(USER, PASSWORD)[0] == "OK"
    m.logout()


# ------------------------------------------------------------ TLS sessions
def test_pop3s_new_tls_session_limit(lim):
    port = lim.ports["pops"]
    ctx = lim.ctx()
    first = wrapped(port, ctx)
    assert first.line().startswith("+OK")
    assert first.cmd("CAPA").startswith("+OK")	# the ticket has come by now
    session = first.sock.session
    first.close()
    # resumed sessions are not new ones: not counted
    for _ in range(3):
        r = wrapped(port, ctx, session=session)
        assert r.line().startswith("+OK")
        assert r.sock.session_reused
        r.close()
    assert lim.lookup("pops")["tls_rate"] == 1
    second = Pop3SslFrom(port, ctx)			# poplib
    assert second.getwelcome().startswith(b"+OK")
    second.quit()
    assert lim.lookup("pops")["tls_rate"] == 2
    mark = lim.inst.log_mark()
    with pytest.raises(poplib.error_proto) as e:
        Pop3SslFrom(port, ctx)
    assert e.value.args[0].decode() == POP_TLS
    third = wrapped(port, ctx)
    assert third.line() == POP_TLS
    assert third.at_eof()
    third.close()
    lim.inst.wait_log(log_re("New TLS session rate", 4, lim.service("pops"),
                             "login_client_new_tls_session_rate_limit", 2), since=mark)
    # exempt
    for _ in range(4):
        r = wrapped(port, ctx, OPERATOR)
        assert r.line().startswith("+OK")
        r.close()


def test_stls_starttls_and_imaps_new_tls_session_limit(lim):
    ctx = lim.ctx()
    # POP3 STLS
    port = lim.ports["pop_stls"]
    for i in range(3):
        r = Raw(port)
        assert r.line().startswith("+OK")
        assert r.cmd("STLS") == "+OK Begin TLS negotiation"
        r.starttls(ctx)
        if i < 2:
            assert r.cmd("CAPA").startswith("+OK")
        else:
            assert r.line() == POP_TLS
            assert r.at_eof()
        r.close()
    # IMAP STARTTLS
    port = lim.ports["imap_stls"]
    for i in range(3):
        r = Raw(port)
        assert r.line().startswith("* OK")
        assert r.cmd("s STARTTLS") == "s OK Begin TLS negotiation now"
        r.starttls(ctx)
        if i < 2:
            assert r.cmd("c NOOP") == "c OK NOOP completed"
        else:
            assert r.line() == IMAP_TLS
            assert r.at_eof()
        r.close()
    # IMAPS: imaplib twice, the third gets the BYE instead of a greeting
    port = lim.ports["imaps"]
    for _ in range(2):
        r = wrapped(port, ctx)
        assert r.line().startswith("* OK")
        r.close()
    r = wrapped(port, ctx)
    assert r.line() == IMAP_TLS
    r.close()
    assert lim.inst.count_log(r"New TLS session rate limit exceeded: 3 from "
                              rf"\[{ATTACKER}\]") == 3


def test_count_limit_in_wrapper_mode_answers_over_tls(lim):
    """POP3S: the refusal at connect comes after the handshake, over TLS"""
    port = lim.ports["pops_one"]
    ctx = lim.ctx()
    first = wrapped(port, ctx)
    assert first.line().startswith("+OK")
    second = wrapped(port, ctx)
    assert second.line() == POP_CONN
    assert second.at_eof()
    second.close()
    lim.inst.wait_log(log_re("Connection count", 2, lim.service("pops_one"),
                             "login_client_connection_count_limit", 1))
    first.close()
    lim.wait_count("pops_one", 0)


# ------------------------------------------------------------- hand-over
def test_counts_released_after_handover(lim):
    """A logged-in client belongs to pop3d: the login service's count
    goes back to 0 while the session goes on (also for a TLS client
    whose session the login process relays), so a count limit of 1 lets
    the same address connect again at once."""
    for name in ("pop_one", "pops_one"):
        port = lim.ports[name]
        tls = name == "pops_one"
        p = Pop3SslFrom(port, lim.ctx()) if tls else Pop3From(port)
        lim.wait_count(name, 1)
        p.user(USER)
        assert p.pass_(PASSWORD).startswith(b"+OK")
        lim.wait_count(name, 0)
        assert p.stat()[0] >= 0			# the session goes on
        q = Pop3SslFrom(port, lim.ctx()) if tls else Pop3From(port)
        assert q.getwelcome().startswith(b"+OK")	# within the limit of 1
        lim.wait_count(name, 1)
        q.quit()
        assert p.stat()[0] >= 0
        p.quit()
        lim.wait_count(name, 0)


# ------------------------------------------------------------- fail open
def test_fail_open_when_client_limits_is_stopped(lim):
    """client-limits stopped (SIGSTOP): a client over the count limit
    waits for the answer without blocking the others (the exempt client
    is greeted at once), a client that leaves meanwhile is cleaned up,
    and when the request times out everyone is served."""
    port = lim.ports["pop_one"]
    first = Raw(port)
    assert first.line().startswith("+OK")
    lim.wait_count("pop_one", 1)
    pid = lim.limits_pid()
    assert pid, "client-limits not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        waiting = Raw(port)			# would be refused: count 2
        leaver = Raw(port)
        leaver.close()				# leaves while its connect is pending
        t0 = time.monotonic()
        mine = Raw(port, OPERATOR)		# exempt: no wait
        assert mine.line().startswith("+OK")
        assert time.monotonic() - t0 < 1.0
        mine.close()
        time.sleep(0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    # client-limits answers now: the waiting client is over the limit
    assert waiting.line() == POP_CONN
    waiting.close()
    lim.wait_count("pop_one", 1)		# the leaver's connect undone
    first.close()
    lim.wait_count("pop_one", 0)

    # client-limits gone (taken out of master.cf): everybody is served,
    # and the login process says so (the warning is rate-limited)
    lim.inst.write_master_cf(lim.master_cf(limits=False))
    mark = lim.inst.log_mark()
    lim.inst.reload()
    deadline = time.monotonic() + 10
    while lim.limits_pid() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lim.limits_pid() is None
    held = []
    for _ in range(3):
        r = Raw(lim.ports["pop_one"])
        assert r.line().startswith("+OK")
        held.append(r)
    r = Raw(lim.ports["imap_count"])
    assert r.line().startswith("* OK")
    held.append(r)
    lim.inst.wait_log(r"pop3d-login.*warning: .*client-limits", since=mark)
    for r in held:
        r.close()
    assert lim.inst.count_log("limit exceeded", since=mark) == 0

"""POP3 over TLS (issue 13): STLS (RFC 2595) and implicit TLS (POP3S,
pop3d_tls_wrappermode) in pop3d-login, the cleartext-login policy
(pop3d_cleartext_login_networks), the discard of bytes pipelined after
STLS, and the TLS proxy that pop3d-login stays as after a TLS client's
login (docs/login-split.md): a big message through it, many sessions at
once, a client that vanishes, a reload while sessions are relayed.

Real clients: Python poplib (stls(), POP3_SSL), openssl s_client
(-starttls pop3 and implicit), curl (pop3:// --ssl-reqd, pop3s://) and
fetchmail (ssl, sslcertck). Certificates: tests/tlsca.py."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BUILD, MASTER, pid_alive, proc_cmdline
from test_pop3 import PASSWORD, USER, Pop3Instance, Raw, crlf
from tlsca import tls_ca  # noqa: F401  (the fixture)

# the certificate parameter of pop3d-login (lib/tls: $prefix_tls_chain_files)
CHAIN_PARAM = "pop3d_tls_chain_files"


def need(prog):
    path = shutil.which(prog)
    if path is None:
        pytest.skip(f"{prog} not installed (tools/install-deps.sh)")
    return path


class TlsPop3(Pop3Instance):
    """test_pop3's instance (auth, pop3d, two users), with these
    pop3d-login services, none of which allows cleartext logins:
      port       STLS offered (a certificate is configured)
      wrap_port  implicit TLS (pop3d_tls_wrappermode=yes)
      small_port STLS, a proxy buffer of 16 KiB (back-pressure)
      limit_port implicit TLS, one process relaying at most one session
    """

    def __init__(self, ca):
        super().__init__()
        self.ca = ca
        self.wrap_port = self.inst.free_port()
        self.small_port = self.inst.free_port()
        self.limit_port = self.inst.free_port()
        libexec = self.inst.libexec
        nocl = "  -o pop3d_cleartext_login_networks=\n"
        self.inst.write_master_cf(
            f"auth unix - - n - 1 {libexec}/auth\n"
            f"127.0.0.1:{self.port} inet n - n - - {libexec}/pop3d-login\n{nocl}"
            f"pop3d unix - n n - - {libexec}/pop3d\n"
            f"127.0.0.1:{self.wrap_port} inet n - n - - {libexec}/pop3d-login\n{nocl}"
            f"  -o pop3d_tls_wrappermode=yes\n"
            f"127.0.0.1:{self.small_port} inet n - n - - {libexec}/pop3d-login\n{nocl}"
            f"  -o login_proxy_buffer=16384\n"
            f"127.0.0.1:{self.limit_port} inet n - n - 1 {libexec}/pop3d-login\n{nocl}"
            f"  -o pop3d_tls_wrappermode=yes -o login_proxy_limit=1\n")
        self.inst.set_main(**{CHAIN_PARAM: f"{ca.rsa.chain}, {ca.ecdsa.chain}"})

    def ctx(self):
        c = ssl.create_default_context(cafile=self.ca.ca)
        return c

    def pop_ssl(self, port=None):
        return poplib_ssl(port or self.wrap_port, self.ctx())

    def login_pids(self, port):
        return [pid for pid in self.inst.children(f"127.0.0.1:{port}")
                if proc_cmdline(pid)[0].endswith(b"pop3d-login")]


def poplib_ssl(port, ctx):
    import poplib
    return poplib.POP3_SSL("127.0.0.1", port, timeout=20, context=ctx)


class TlsRaw(Raw):
    """Raw, switched to TLS on demand."""

    def starttls(self, ctx):
        self.f.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.f = self.sock.makefile("rb")


@pytest.fixture
def tpop(tls_ca):
    for prog in ("auth", "pop3d", "pop3d-login"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    p = TlsPop3(tls_ca)
    p.inst.start()
    try:
        yield p
    finally:
        p.inst.stop(timeout=15)
        shutil.rmtree(p.inst.dir, ignore_errors=True)


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ------------------------------------------------------------------ STLS
def test_capa_before_and_after_stls_and_cleartext_refused(tpop):
    r = TlsRaw(tpop.port)
    assert r.line().startswith("+OK")
    assert r.cmd("CAPA").startswith("+OK")
    caps = r.multi().decode().split("\r\n")
    assert "STLS" in caps
    assert "USER" not in caps and not any(c.startswith("SASL") for c in caps)
    # no password before TLS: RFC 2595 section 4, [AUTH] of RFC 3206
    assert r.cmd(f"USER {USER}").startswith("-ERR [AUTH] Plaintext authentication disallowed")
    assert r.cmd(f"PASS {PASSWORD}").startswith("-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN AGFsaWNlAHg=").startswith("-ERR [AUTH]")
    assert r.cmd("STLS") == "+OK Begin TLS negotiation"
    r.starttls(tpop.ctx())
    assert r.cmd("CAPA").startswith("+OK")
    caps = r.multi().decode().split("\r\n")
    assert "STLS" not in caps and "USER" in caps and "SASL PLAIN LOGIN SCRAM-SHA-256" in caps
    assert r.cmd("STLS") == "-ERR Command not permitted when TLS active"
    assert r.cmd(f"USER {USER}").startswith("+OK")
    assert r.cmd(f"PASS {PASSWORD}").startswith("+OK Logged in")
    assert r.cmd("STAT").startswith("+OK 0 ")
    assert r.cmd("QUIT").startswith("+OK")
    r.close()
    # pop3d logs the session with the TLS protocol and cipher
    tpop.inst.wait_log(r'pop3d.*session: user=<alice@example.test>.*tls="TLSv1\.[23] with cipher')


def test_poplib_stls_and_pop3_ssl(tpop):
    import poplib
    tpop.deliver(b"Subject: s1\n\nhello over stls\n")
    p = poplib.POP3("127.0.0.1", tpop.port, timeout=20)
    assert "STLS" in p.capa()
    p.stls(tpop.ctx())
    assert "STLS" not in p.capa()
    p.user(USER)
    p.pass_(PASSWORD)
    resp, lines, _ = p.retr(1)
    assert b"hello over stls" in lines
    p.quit()
    s = tpop.pop_ssl()
    assert "STLS" not in s.capa()       # implicit TLS: nothing to start
    s.user(USER)
    s.pass_(PASSWORD)
    assert s.stat()[0] == 1
    s.quit()


def test_injection_after_stls_is_discarded(tpop):
    r = TlsRaw(tpop.port)
    assert r.line().startswith("+OK")
    mark = tpop.inst.log_mark()
    r.send("STLS\r\nCAPA\r\n")                 # one write: CAPA is plaintext injection
    assert r.line() == "+OK Begin TLS negotiation"
    r.starttls(tpop.ctx())
    # the injected CAPA must not be answered inside the TLS session
    r.sock.settimeout(1.0)
    with pytest.raises((socket.timeout, TimeoutError, ssl.SSLError)):
        r.sock.recv(1)
    r.sock.settimeout(10)
    assert r.cmd("NOOP").startswith("-ERR Log in first")    # our first answer in TLS
    tpop.inst.wait_log(r"discarding 6 bytes sent before the TLS handshake", since=mark)
    r.close()


def test_implicit_tls_greets_only_after_the_handshake(tpop):
    s = socket.create_connection(("127.0.0.1", tpop.wrap_port), timeout=10)
    s.settimeout(1.0)
    with pytest.raises((socket.timeout, TimeoutError)):
        s.recv(1)                                  # no cleartext greeting
    s.close()
    s = tpop.ctx().wrap_socket(socket.create_connection(("127.0.0.1", tpop.wrap_port),
                                                        timeout=10), server_hostname="localhost")
    assert s.recv(100).startswith(b"+OK")
    s.close()


def test_cleartext_client_that_sends_garbage_instead_of_tls(tpop):
    r = TlsRaw(tpop.port)
    assert r.line().startswith("+OK")
    assert r.cmd("STLS").startswith("+OK")
    mark = tpop.inst.log_mark()
    r.send("USER alice\r\n")                    # not a ClientHello
    r.sock.settimeout(10)
    try:
        rest = r.f.read()                       # a TLS alert at most, then EOF
    except ConnectionResetError:
        rest = b""                              # or a reset
    assert b"+OK" not in rest and b"-ERR" not in rest, rest
    tpop.inst.wait_log(r"TLS handshake failed: client=\[127\.0\.0\.1\]", since=mark)
    r.close()


# ------------------------------------------------------------- real clients
def test_openssl_s_client_starttls_and_implicit(tpop):
    openssl = need("openssl")
    script = f"USER {USER}\nPASS {PASSWORD}\nSTAT\nQUIT\n"
    for args in (["-starttls", "pop3", "-connect", f"127.0.0.1:{tpop.port}"],
                 ["-connect", f"127.0.0.1:{tpop.wrap_port}"]):
        res = subprocess.run([openssl, "s_client", *args, "-CAfile", tpop.ca.ca, "-crlf",
                              "-quiet", "-verify_return_error", "-ign_eof"],
                             input=script, capture_output=True, text=True, timeout=30,
                             check=False)
        assert "+OK Logged in" in res.stdout, res.stdout + res.stderr
        assert "+OK 0 0" in res.stdout, res.stdout + res.stderr


def test_curl_pop3_ssl_reqd_and_pop3s(tpop):
    curl = need("curl")
    tpop.deliver(b"Subject: c1\n\ncurl body\n")
    for url in (f"pop3://127.0.0.1:{tpop.port}/1", f"pop3s://127.0.0.1:{tpop.wrap_port}/1"):
        res = subprocess.run([curl, "-sS", "--ssl-reqd", "--cacert", tpop.ca.ca,
                              "-u", f"{USER}:{PASSWORD}", url],
                             capture_output=True, timeout=30, check=False)
        assert res.returncode == 0, res.stderr
        assert b"curl body" in res.stdout
    # curl without TLS: refused before the password is sent
    res = subprocess.run([curl, "-sS", "-u", f"{USER}:{PASSWORD}",
                          f"pop3://127.0.0.1:{tpop.port}/"],
                         capture_output=True, timeout=30, check=False)
    assert res.returncode != 0


def test_fetchmail_over_stls_and_pop3s(tpop, tmp_path):
    fetchmail = need("fetchmail")
    tpop.deliver(b"Subject: f1\n\nfetch one\n", b"Subject: f2\n\nfetch two\n")
    for name, opts, port in (("stls", "sslproto 'tls1.2+'", tpop.port),
                             ("pop3s", "ssl", tpop.wrap_port)):
        d = tmp_path / name
        (d / "out").mkdir(parents=True)
        rc = d / "fetchmailrc"
        rc.write_text(
            "set no syslog\nset invisible\n"
            f"poll 127.0.0.1 with proto POP3 port {port}\n"
            f"  user \"{USER}\" there with password \"{PASSWORD}\" is \"root\" here\n"
            f"  options keep {opts} sslcertck sslcertfile \"{tpop.ca.ca}\"\n"
            f"  sslcommonname localhost\n"
            f"  mda \"cat > {d}/out/msg.$$\"\n")
        rc.chmod(0o600)
        res = subprocess.run([fetchmail, "-f", str(rc), "-i", str(d / "ids"), "--pidfile",
                              str(d / "pid"), "--nodetach"],
                             env=dict(os.environ, HOME=str(d)), capture_output=True,
                             text=True, timeout=60, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        bodies = b"".join(f.read_bytes() for f in (d / "out").iterdir())
        assert b"fetch one" in bodies and b"fetch two" in bodies


# ------------------------------------------------------------------ proxy
def big_message(mib=6):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/\n"
    body = line * (mib * 1024 * 1024 // len(line))
    return b"Subject: big\n\n" + body


@pytest.mark.parametrize("which", ["wrap_port", "small_port"])
def test_big_message_through_the_proxy(tpop, which):
    msg = big_message(6)
    tpop.deliver(msg)
    if which == "wrap_port":
        p = tpop.pop_ssl()
    else:
        import poplib
        p = poplib.POP3("127.0.0.1", tpop.small_port, timeout=30)
        p.stls(tpop.ctx())
    p.user(USER)
    p.pass_(PASSWORD)
    t0 = time.monotonic()
    _, lines, octets = p.retr(1)
    took = time.monotonic() - t0
    got = b"\r\n".join(lines) + b"\r\n"
    assert octets == len(crlf(msg))
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(crlf(msg)).hexdigest()
    p.quit()
    print(f"RETR of {len(msg) / 2**20:.1f} MiB through the TLS proxy ({which}): {took:.2f}s")


def test_many_concurrent_tls_sessions(tpop):
    tpop.deliver(b"Subject: m\n\n" + (b"x" * 999 + b"\n") * 21)
    tpop.deliver(b"Subject: m\n\n" + (b"y" * 999 + b"\n") * 21, addr="bob@example.test")
    errors = []
    in_use = [0]
    n = 60

    def one(i):
        import poplib
        user, password = (USER, PASSWORD) if i % 2 else ("bob@example.test", "bobs-secret")
        deadline = time.monotonic() + 60
        try:
            while True:
                if i % 3:
                    p = tpop.pop_ssl()
                else:
                    p = poplib.POP3("127.0.0.1", tpop.port, timeout=30)
                    p.stls(tpop.ctx())
                p.user(user)
                try:
                    p.pass_(password)
                except poplib.error_proto as e:
                    # POP3 locks a mailbox per session: wait for the other one
                    assert b"[IN-USE]" in e.args[0] and time.monotonic() < deadline, e
                    in_use[0] += 1
                    p.close()
                    time.sleep(0.02)
                    continue
                _, lines, _ = p.retr(1)
                assert len(b"".join(lines)) > 20000
                p.quit()
                return
        except Exception as e:                 # pylint: disable=broad-except
            errors.append(f"{i}: {e!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors[:5]
    print(f"{n} TLS sessions, 60 threads on two mailboxes: {time.monotonic() - t0:.2f}s, "
          f"{in_use[0]} waits for [IN-USE]")


def test_vanishing_client_is_cleaned_up(tpop):
    tpop.deliver(big_message(4))
    # a first session makes sure the login process of wrap_port runs
    s = tpop.pop_ssl()
    s.quit()
    [pid] = tpop.login_pids(tpop.wrap_port)
    base = fds(pid)
    for _ in range(5):
        p = tpop.pop_ssl()
        p.user(USER)
        p.pass_(PASSWORD)
        p._putcmd("RETR 1")          # pylint: disable=protected-access
        p.sock.recv(1000)            # the reply has started
        p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        p.file.close()
        p.sock.close()               # RST, mid-RETR, no close_notify
    deadline = time.monotonic() + 10
    while fds(pid) > base and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fds(pid) == base, os.listdir(f"/proc/{pid}/fd")
    # the mailbox is free again: pop3d saw the end of each session
    s = tpop.pop_ssl()
    s.user(USER)
    s.pass_(PASSWORD)
    s.quit()


def test_half_close_gets_the_answers(tpop):
    """The client sends its commands and close_notify at once (TLS
    half-close): the answers still come."""
    tpop.deliver(b"Subject: h\n\nhalf close\n")
    s = tpop.ctx().wrap_socket(socket.create_connection(("127.0.0.1", tpop.wrap_port),
                                                        timeout=10), server_hostname="localhost")
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK Logged in")
    s.sendall(b"RETR 1\r\nQUIT\r\n")
    # FIN after the commands (socket.socket's shutdown: SSLSocket's own
    # would leave TLS)
    socket.socket.shutdown(s, socket.SHUT_WR)
    rest = f.read()
    assert b"half close" in rest, rest[-300:]
    assert rest.splitlines()[-1].startswith(b"+OK"), rest[-300:]   # QUIT's answer


def test_reload_keeps_proxied_sessions(tpop):
    tpop.deliver(b"Subject: r\n\nreload\n")
    p = tpop.pop_ssl()
    p.user(USER)
    p.pass_(PASSWORD)
    [pid] = tpop.login_pids(tpop.wrap_port)
    tpop.inst.reload()
    time.sleep(1.0)
    assert pid_alive(pid)                      # still relaying our session
    assert p.stat()[0] == 1
    _, lines, _ = p.retr(1)
    assert b"reload" in lines
    p.quit()
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)                  # and gone once it ended


def test_proxy_limit_is_separate_from_the_client_limit(tpop):
    import poplib
    a = poplib_ssl(tpop.limit_port, tpop.ctx())
    a.user(USER)
    a.pass_(PASSWORD)                          # relayed: the one allowed
    b = poplib_ssl(tpop.limit_port, tpop.ctx())  # a client before login is still welcome
    b.user("bob@example.test")
    with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
        b.pass_("bobs-secret")                 # but a second relayed session is not
    tpop.inst.wait_log(r"login_proxy_limit reached")
    a.quit()
    c = poplib_ssl(tpop.limit_port, tpop.ctx())
    c.user("bob@example.test")
    deadline = time.monotonic() + 5
    while True:                                # the first session's end is seen soon
        try:
            c.pass_("bobs-secret")
            break
        except poplib.error_proto:
            assert time.monotonic() < deadline
            time.sleep(0.1)
            c = poplib_ssl(tpop.limit_port, tpop.ctx())
            c.user("bob@example.test")
    c.quit()


# ------------------------------------------------------------------ defaults

def test_pop3d_inherits_smtpds_separate_certificate_and_key(tls_ca):
    """A site that gives smtpd its certificate and key as two files
    (smtpd_tls_cert_file, smtpd_tls_key_file) and nothing for POP3 gets
    STLS with that pair: pop3d_tls_key_file defaults to smtpd's key, not
    to pop3d's certificate file (which holds no key)."""
    for prog in ("auth", "pop3d", "pop3d-login"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    p = TlsPop3(tls_ca)
    p.inst.set_main(**{CHAIN_PARAM: "", "smtpd_tls_chain_files": "",
                       "smtpd_tls_cert_file": tls_ca.rsa.cert,
                       "smtpd_tls_key_file": tls_ca.rsa.key})
    p.inst.start()
    try:
        r = TlsRaw(p.port)
        assert r.line().startswith("+OK")
        assert r.cmd("CAPA").startswith("+OK")
        assert "STLS" in r.multi().decode().split("\r\n")
        assert r.cmd("STLS") == "+OK Begin TLS negotiation"
        r.starttls(p.ctx())
        assert r.cmd(f"USER {USER}").startswith("+OK")
        assert r.cmd(f"PASS {PASSWORD}").startswith("+OK Logged in")
        assert r.cmd("QUIT").startswith("+OK")
        r.close()
    finally:
        p.inst.stop(timeout=15)
        shutil.rmtree(p.inst.dir, ignore_errors=True)

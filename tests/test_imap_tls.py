"""IMAP over TLS (issue 13): STARTTLS and implicit TLS (IMAPS,
imapd_tls_wrappermode) in imapd-login, LOGINDISABLED and NO
[PRIVACYREQUIRED] before TLS (imapd_cleartext_login_networks), the
discard of bytes pipelined after STARTTLS, and the TLS proxy after the
login (docs/login-split.md): a big message fetched through it, many
sessions at once, a client that vanishes in the middle of a FETCH.

Real clients: Python imaplib (starttls(), IMAP4_SSL), openssl s_client
(-starttls imap and implicit), curl (imap:// --ssl-reqd, imaps://) and
mbsync (SSLType STARTTLS and IMAPS, CertificateFile = the test CA).
Certificates: tests/tlsca.py."""
import hashlib
import imaplib
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BUILD, IS_ROOT, MASTER, proc_cmdline
from test_imap_login import PASSWORD, USER, ImapLoginInstance
from tlsca import tls_ca  # noqa: F401  (the fixture)

CHAIN_PARAM = "imapd_tls_chain_files"


def need(prog):
    path = shutil.which(prog)
    if path is None:
        pytest.skip(f"{prog} not installed (tools/install-deps.sh)")
    return path


class TlsImap(ImapLoginInstance):
    """auth, imapd and two imapd-login services without cleartext
    logins: port (STARTTLS) and wrap_port (implicit TLS)."""

    def __init__(self, ca):
        super().__init__()
        self.ca = ca
        self.wrap_port = self.inst.free_port()
        libexec = self.inst.libexec
        nocl = "  -o imapd_cleartext_login_networks=\n"
        self.inst.write_master_cf(
            f"auth unix - - n - 1 {libexec}/auth\n"
            f"127.0.0.1:{self.port} inet n - n - - {libexec}/imapd-login\n{nocl}"
            f"127.0.0.1:{self.wrap_port} inet n - n - - {libexec}/imapd-login\n{nocl}"
            f"  -o imapd_tls_wrappermode=yes\n"
            f"imapd unix - n n - - {libexec}/imapd\n")
        self.inst.set_main(**{CHAIN_PARAM: f"{ca.ecdsa.chain}, {ca.rsa.chain}"})

    def ctx(self):
        return ssl.create_default_context(cafile=self.ca.ca)

    def deliver(self, *messages):
        box = self.maildir()
        for i, data in enumerate(messages):
            name = f"{int(time.time())}.M{i}P{os.getpid()}Q{secrets.token_hex(4)}.test"
            tmp = box / "tmp" / name
            tmp.parent.mkdir(parents=True, exist_ok=True)
            (box / "new").mkdir(exist_ok=True)
            tmp.write_bytes(data)
            if IS_ROOT:
                os.chown(tmp, self.uid, self.gid)
            os.rename(tmp, box / "new" / name)

    def login_pids(self, port):
        return [pid for pid in self.inst.children(f"127.0.0.1:{port}")
                if proc_cmdline(pid)[0].endswith(b"imapd-login")]


@pytest.fixture
def timap(tls_ca):
    for prog in ("auth", "imapd", "imapd-login"):
        if not (BUILD / "libexec" / prog).exists():
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip("master not built")
    i = TlsImap(tls_ca)
    i.inst.start()
    try:
        yield i
    finally:
        i.inst.stop(timeout=15)
        shutil.rmtree(i.inst.dir, ignore_errors=True)


class Lines:
    """a socket read by lines, switched to TLS on demand"""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def line(self):
        got = self.f.readline(65536)
        if not got:
            raise EOFError("closed")
        return got.decode().rstrip("\r\n")

    def cmd(self, tag, text):
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        out = []
        while True:
            got = self.line()
            out.append(got)
            if got.startswith(tag + " "):
                return out

    def starttls(self, ctx):
        self.f.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()


def test_logindisabled_privacyrequired_then_starttls(timap):
    c = Lines(timap.port)
    greeting = c.line()
    assert "STARTTLS" in greeting and "LOGINDISABLED" in greeting
    assert "AUTH=" not in greeting
    caps = c.cmd("a", "CAPABILITY")
    assert "STARTTLS" in caps[0] and "LOGINDISABLED" in caps[0] and "AUTH=" not in caps[0]
    r = c.cmd("b", f'LOGIN "{USER}" "{PASSWORD}"')
    assert r[-1].startswith("b NO [PRIVACYREQUIRED]"), r
    r = c.cmd("c", "AUTHENTICATE PLAIN AGNhcm9sAHg=")
    assert r[-1].startswith("c NO [PRIVACYREQUIRED]"), r
    assert c.cmd("d", "STARTTLS") == ["d OK Begin TLS negotiation now"]
    c.starttls(timap.ctx())
    caps = c.cmd("e", "CAPABILITY")
    assert "STARTTLS" not in caps[0] and "LOGINDISABLED" not in caps[0]
    assert "AUTH=PLAIN" in caps[0]
    assert c.cmd("f", "STARTTLS")[-1].startswith("f BAD")
    r = c.cmd("g", f'LOGIN "{USER}" "{PASSWORD}"')
    assert r[-1].startswith("g OK"), r
    r = c.cmd("h", "SELECT INBOX")
    assert r[-1].startswith("h OK"), r
    c.cmd("i", "LOGOUT")
    c.close()
    timap.inst.wait_log(r'imapd.*login: user=carol@example.test .*tls="TLSv1\.[23] with cipher')


def test_injection_after_starttls_is_discarded(timap):
    c = Lines(timap.port)
    c.line()
    mark = timap.inst.log_mark()
    c.sock.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")      # one write
    assert c.line() == "a OK Begin TLS negotiation now"
    c.starttls(timap.ctx())
    c.sock.settimeout(1.0)
    with pytest.raises((socket.timeout, TimeoutError, ssl.SSLError)):
        c.sock.recv(1)
    c.sock.settimeout(10)
    r = c.cmd("z", "NOOP")
    assert r == ["z OK NOOP completed"], r          # nothing tagged b
    timap.inst.wait_log(r"discarding 14 bytes sent before the TLS handshake", since=mark)
    c.close()


def test_imaplib_starttls_and_imap4_ssl(timap):
    timap.deliver(b"Subject: one\r\n\r\nimaplib over tls\r\n")
    m = imaplib.IMAP4("127.0.0.1", timap.port, timeout=20)
    assert "LOGINDISABLED" in m.capabilities
    m.starttls(timap.ctx())
    assert "LOGINDISABLED" not in m.capabilities
    m.login(USER, PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY[])")
    assert typ == "OK" and b"imaplib over tls" in data[0][1]
    m.logout()
    s = imaplib.IMAP4_SSL("127.0.0.1", timap.wrap_port, ssl_context=timap.ctx(), timeout=20)
    assert "STARTTLS" not in s.capabilities and "LOGINDISABLED" not in s.capabilities
    s.login(USER, PASSWORD)
    typ, data = s.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    s.logout()


def test_openssl_s_client_starttls_and_implicit(timap):
    openssl = need("openssl")
    script = f'a LOGIN "{USER}" "{PASSWORD}"\nb SELECT INBOX\nc LOGOUT\n'
    for args in (["-starttls", "imap", "-connect", f"127.0.0.1:{timap.port}"],
                 ["-connect", f"127.0.0.1:{timap.wrap_port}"]):
        res = subprocess.run([openssl, "s_client", *args, "-CAfile", timap.ca.ca, "-crlf",
                              "-quiet", "-verify_return_error", "-ign_eof"],
                             input=script, capture_output=True, text=True, timeout=30,
                             check=False)
        assert "a OK" in res.stdout and "b OK" in res.stdout and "c OK" in res.stdout, \
            res.stdout + res.stderr


def test_curl_imap_ssl_reqd_and_imaps(timap):
    curl = need("curl")
    timap.deliver(b"Subject: c\r\n\r\ncurl imap body\r\n")
    for url in (f"imap://127.0.0.1:{timap.port}/INBOX;UID=1",
                f"imaps://127.0.0.1:{timap.wrap_port}/INBOX;UID=1"):
        res = subprocess.run([curl, "-sS", "--ssl-reqd", "--cacert", timap.ca.ca,
                              "-u", f"{USER}:{PASSWORD}", url],
                             capture_output=True, timeout=30, check=False)
        assert res.returncode == 0, res.stderr
        assert b"curl imap body" in res.stdout


def test_mbsync_starttls_and_imaps(timap, tmp_path):
    mbsync = need("mbsync")
    timap.deliver(b"Subject: m1\r\n\r\nmbsync one\r\n", b"Subject: m2\r\n\r\nmbsync two\r\n")
    for name, ssltype, port in (("starttls", "STARTTLS", timap.port),
                                ("imaps", "IMAPS", timap.wrap_port)):
        d = tmp_path / name
        local = d / "mail"
        local.mkdir(parents=True)
        rc = d / "mbsyncrc"
        rc.write_text(
            f"IMAPAccount remote\nHost localhost\nPort {port}\nUser {USER}\n"
            f"Pass \"{PASSWORD}\"\nSSLType {ssltype}\nCertificateFile {timap.ca.ca}\n"
            "AuthMechs PLAIN LOGIN\nTimeout 20\n\nIMAPStore remote\nAccount remote\n\n"
            f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\n\n"
            "Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n"
            "SyncState *\nSync Pull\n")
        rc.chmod(0o600)
        res = subprocess.run([mbsync, "-c", str(rc), "-a"], env=dict(os.environ, HOME=str(d)),
                             capture_output=True, timeout=60, check=False)
        assert res.returncode == 0, (res.stdout + res.stderr).decode()[-2000:]
        got = b"".join(f.read_bytes() for sub in ("new", "cur")
                       for f in (local / "INBOX" / sub).iterdir())
        assert b"mbsync one" in got and b"mbsync two" in got


def test_big_message_fetched_through_the_proxy(timap):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/\r\n"
    msg = b"Subject: big\r\n\r\n" + line * (6 * 1024 * 1024 // len(line))
    timap.deliver(msg)
    s = imaplib.IMAP4_SSL("127.0.0.1", timap.wrap_port, ssl_context=timap.ctx(), timeout=30)
    s.login(USER, PASSWORD)
    s.select("INBOX")
    t0 = time.monotonic()
    typ, data = s.fetch("1", "(BODY.PEEK[])")
    took = time.monotonic() - t0
    assert typ == "OK"
    assert hashlib.sha256(data[0][1]).hexdigest() == hashlib.sha256(msg).hexdigest()
    # and APPEND of the same through the proxy the other way
    typ, _ = s.append("INBOX", None, None, msg)
    assert typ == "OK"
    typ, data = s.fetch("2", "(RFC822.SIZE)")
    assert f"RFC822.SIZE {len(msg)}".encode() in data[0]
    s.logout()
    print(f"FETCH of 6 MiB through the TLS proxy: {took:.2f}s")


def test_many_concurrent_tls_sessions(timap):
    timap.deliver(b"Subject: x\r\n\r\nshared\r\n")
    errors = []
    n = 60

    def one(i):
        try:
            if i % 2:
                m = imaplib.IMAP4_SSL("127.0.0.1", timap.wrap_port, ssl_context=timap.ctx(),
                                      timeout=30)
            else:
                m = imaplib.IMAP4("127.0.0.1", timap.port, timeout=30)
                m.starttls(timap.ctx())
            m.login(USER, PASSWORD)
            typ, data = m.select("INBOX", readonly=True)
            assert typ == "OK", data
            typ, data = m.fetch("1", "(BODY.PEEK[])")
            assert b"shared" in data[0][1]
            m.logout()
        except Exception as e:                 # pylint: disable=broad-except
            errors.append(f"{i}: {e!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors[:5]
    print(f"{n} concurrent IMAP TLS sessions: {time.monotonic() - t0:.2f}s")


def test_vanishing_client_is_cleaned_up(timap):
    line = b"y" * 998 + b"\r\n"
    timap.deliver(b"Subject: v\r\n\r\n" + line * 4000)
    s = imaplib.IMAP4_SSL("127.0.0.1", timap.wrap_port, ssl_context=timap.ctx(), timeout=20)
    s.logout()
    [pid] = timap.login_pids(timap.wrap_port)
    base = len(os.listdir(f"/proc/{pid}/fd"))
    for _ in range(5):
        m = imaplib.IMAP4_SSL("127.0.0.1", timap.wrap_port, ssl_context=timap.ctx(), timeout=20)
        m.login(USER, PASSWORD)
        m.select("INBOX")
        m.send(b"f FETCH 1 (BODY.PEEK[])\r\n")
        m.sock.recv(100)
        m.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        m.file.close()
        m.sock.close()                                   # RST mid-FETCH
    deadline = time.monotonic() + 10
    while len(os.listdir(f"/proc/{pid}/fd")) > base and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(os.listdir(f"/proc/{pid}/fd")) == base

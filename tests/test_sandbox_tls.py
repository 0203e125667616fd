"""The sandbox (tools/sandbox.sh, `make run`) over TLS with real clients:
openssl s_client on each of its seven ports, swaks with --tls and --tlsc
and AUTH on submission (2587) and smtps (2465), curl --ssl-reqd for smtp,
pop3 and imap, Python's ssl (smtplib, poplib, imaplib) and fetchmail; the
self-signed RSA and ECDSA certificates it made, their printed
fingerprints, session resumption across connections, and what must be
refused (AUTH before STARTTLS on 2587, mail from an address the login
does not own).

One sandbox, started once for the module from the real build in a
temporary directory (POSTHORN_SANDBOX_DIR). A port whose line the sandbox
had to comment out (this build's daemon cannot serve it yet) makes the
tests of that port skip, never pass."""
import hashlib
import imaplib
import os
import pathlib
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("POSTHORN_BUILD", "build")
POSTHORN = BUILD / "bin" / "posthorn"
USER = "demo@example.test"
PORTS = (2525, 2587, 2465, 2110, 2995, 2143, 2993)
# a parameter that tells whether this build's daemon speaks TLS on a port
# (the sandbox comments out the TLS-only ports of a build without it; the
# plain ones it serves anyway)
TLS_PARAM = {2525: "smtpd_tls_security_level", 2587: "smtpd_tls_security_level",
             2465: "smtpd_tls_wrappermode", 2110: "pop3d_tls_wrappermode",
             2995: "pop3d_tls_wrappermode", 2143: "imapd_tls_wrappermode",
             2993: "imapd_tls_wrappermode"}

pytestmark = pytest.mark.skipif(not (BUILD / "libexec" / "master").exists(),
                                reason=f"{BUILD} not built")


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Sandbox:
    def __init__(self, base):
        self.base = base
        self.run = base / "run"
        self.etc = self.run / "etc"
        self.trust = self.etc / "tls" / "trust.pem"
        self.out = base / "sandbox.out"
        self.proc = None
        self.password = None
        self.text = ""
        self.master_cf = ""
        self.known = set()

    def served(self, port):
        """Skip unless master.cf serves port (not commented out) with a
        daemon of this build that speaks TLS there."""
        if not re.search(rf"^{port}\s", self.master_cf, re.M):
            why = re.search(rf"^# {port}: (.*)$", self.master_cf, re.M)
            pytest.skip(f"port {port} is commented out in the sandbox's master.cf"
                        + (f" ({why.group(1)})" if why else " (daemon not built)"))
        if TLS_PARAM[port] not in self.known:
            pytest.skip(f"port {port}: this build has no {TLS_PARAM[port]} (no TLS there yet)")

    def context(self):
        ctx = ssl.create_default_context(cafile=str(self.trust))
        return ctx

    def maildir_count(self):
        new = self.run / "mail" / "example.test" / "demo" / "new"
        return len(os.listdir(new)) if new.is_dir() else 0

    def wait_delivered(self, before, timeout=20):
        deadline = time.monotonic() + timeout
        while self.maildir_count() <= before:
            assert time.monotonic() < deadline, "the message did not arrive in the Maildir"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def sandbox():
    busy = [p for p in PORTS if not port_free(p)]
    if busy:
        pytest.skip(f"ports {busy} are taken (a sandbox running?)")
    base = pathlib.Path(tempfile.mkdtemp(prefix="posthorn-tlssandbox-", dir="/tmp"))
    base.chmod(0o755)
    sb = Sandbox(base)
    env = dict(os.environ, POSTHORN_BUILD=str(BUILD), POSTHORN_SANDBOX_DIR=str(sb.run))
    env.pop("POSTHORN_CONFIG_DIR", None)
    env.pop("POSTHORN_SANDBOX_NO_START", None)
    out = open(sb.out, "wb")
    sb.proc = subprocess.Popen(["sh", str(ROOT / "tools" / "sandbox.sh")], env=env,
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            text = sb.out.read_text(errors="replace")
            if sb.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the sandbox did not start:\n" + text)
            if "starting posthorn" in text and listening(2525):
                break
            time.sleep(0.1)
        sb.master_cf = (sb.etc / "master.cf").read_text()
        conf = subprocess.run([str(POSTHORN), "-c", str(sb.etc), "conf", "-d"],
                              capture_output=True, text=True, timeout=60, check=True).stdout
        sb.known = {line.split("=", 1)[0].strip() for line in conf.splitlines() if "=" in line}
        # every port master.cf serves is listening
        for port in PORTS:
            if re.search(rf"^{port}\s", sb.master_cf, re.M):
                while not listening(port):
                    assert time.monotonic() < deadline, f"port {port} does not listen"
                    time.sleep(0.1)
        sb.text = sb.out.read_text(errors="replace")
        sb.password = (sb.run / "demo.password").read_text().strip()
        yield sb
    finally:
        subprocess.run([str(POSTHORN), "-c", str(sb.etc), "stop"], capture_output=True,
                       timeout=30)
        try:
            sb.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(sb.proc.pid, signal.SIGKILL)
            sb.proc.wait(timeout=5)
        out.close()
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(sb.run).encode() in cmd and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(base, ignore_errors=True)


def need(*programs):
    for p in programs:
        if shutil.which(p) is None:
            pytest.skip(f"{p} is not installed (sh tools/install-deps.sh)")


def fingerprint(path):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(path)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return out.strip().split("=", 1)[1]


def der_fingerprint(der):
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


# ------------------------------------------------------------ certificates
def test_certificates_and_printed_fingerprints(sandbox):
    tls = sandbox.etc / "tls"
    for cert in ("cert.pem", "eccert.pem"):
        assert f"SHA256 {fingerprint(tls / cert)}" in sandbox.text
    assert "cleartext logins" in sandbox.text and "loopback" in sandbox.text
    assert str(sandbox.trust) in sandbox.text
    if os.geteuid() == 0:
        for key in ("key.pem", "eckey.pem"):
            st = (tls / key).stat()
            assert st.st_uid == 0 and st.st_mode & 0o077 == 0


# (port, s_client -starttls protocol or None for implicit TLS)
S_CLIENT = [(2525, "smtp"), (2587, "smtp"), (2465, None), (2110, "pop3"), (2995, None),
            (2143, "imap"), (2993, None)]


@pytest.mark.parametrize("port,starttls", S_CLIENT, ids=[str(p) for p, _ in S_CLIENT])
def test_openssl_s_client_verifies_each_port(sandbox, port, starttls):
    """openssl s_client: the handshake verifies against trust.pem for the
    name localhost, TLS 1.3 by default; the RSA or the ECDSA certificate
    as the client's signature algorithms ask."""
    need("openssl")
    sandbox.served(port)
    seen = {}
    for kind, sigalgs in (("RSA", "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"),
                          ("ECDSA", "ecdsa_secp256r1_sha256")):
        cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile",
               str(sandbox.trust), "-verify_hostname", "localhost", "-verify_return_error",
               "-sigalgs", sigalgs, "-servername", "localhost"]
        if starttls:
            cmd += ["-starttls", starttls]
        res = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=30)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        assert "Verify return code: 0 (ok)" in out, out
        assert "TLSv1.3" in out, out
        m = re.search(r"^Server public key is (\d+) bit", out, re.M)
        assert m, out
        seen[kind] = int(m.group(1))
    assert seen == {"RSA": 2048, "ECDSA": 256}


def test_a_wrong_name_does_not_verify(sandbox):
    need("openssl")
    sandbox.served(2465)
    res = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:2465", "-CAfile",
                          str(sandbox.trust), "-verify_hostname", "mail.other.example",
                          "-verify_return_error"], input="", capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0
    assert "hostname mismatch" in res.stdout + res.stderr


# ------------------------------------------------------------------- SMTP
def swaks(sandbox, *args):
    return subprocess.run(["swaks", "--from", USER, "--to", USER, "--auth", "PLAIN",
                           "-au", USER, "-ap", sandbox.password, "--timeout", "20",
                           "--header", "Subject: sandbox tls", *args],
                          capture_output=True, text=True, timeout=60)


def test_swaks_submission_starttls_auth(sandbox):
    need("swaks")
    sandbox.served(2587)
    before = sandbox.maildir_count()
    res = swaks(sandbox, "--server", "127.0.0.1:2587", "--tls")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "STARTTLS" in res.stdout and "235 " in res.stdout
    sandbox.wait_delivered(before)


def test_swaks_smtps_auth(sandbox):
    need("swaks")
    sandbox.served(2465)
    before = sandbox.maildir_count()
    res = swaks(sandbox, "--server", "127.0.0.1:2465", "--tlsc")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "235 " in res.stdout
    sandbox.wait_delivered(before)


def test_submission_wants_tls_then_auth(sandbox):
    """2587 without STARTTLS: no AUTH offered, MAIL refused (530); after
    STARTTLS without AUTH: MAIL refused; a sender the login does not own:
    553 5.7.1."""
    sandbox.served(2587)
    with smtplib.SMTP("127.0.0.1", 2587, timeout=20) as s:
        s.ehlo()
        assert not s.has_extn("auth")
        code, _ = s.mail(USER)
        assert code == 530
    with smtplib.SMTP("127.0.0.1", 2587, timeout=20) as s:
        s.starttls(context=sandbox.context())
        s.ehlo()
        assert s.has_extn("auth")
        code, _ = s.mail(USER)
        assert code == 530
    with smtplib.SMTP("127.0.0.1", 2587, timeout=20) as s:
        s.starttls(context=sandbox.context())
        s.login(USER, sandbox.password)
        code, msg = s.mail("someone.else@example.test")
        assert code == 553 and b"5.7.1" in msg


def test_swaks_auth_over_cleartext_is_refused(sandbox):
    need("swaks")
    sandbox.served(2587)
    res = swaks(sandbox, "--server", "127.0.0.1:2587")
    assert res.returncode != 0


def test_curl_smtp_ssl_reqd(sandbox, tmp_path):
    need("curl")
    sandbox.served(2587)
    msg = tmp_path / "msg.eml"
    msg.write_bytes(b"From: <demo@example.test>\r\nSubject: curl over tls\r\n\r\nhello\r\n")
    before = sandbox.maildir_count()
    res = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", str(sandbox.trust),
                          "smtp://localhost:2587", "-u", f"{USER}:{sandbox.password}",
                          "--mail-from", USER, "--mail-rcpt", USER, "-T", str(msg)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    sandbox.wait_delivered(before)


def test_python_smtplib_over_implicit_tls(sandbox):
    sandbox.served(2465)
    before = sandbox.maildir_count()
    with smtplib.SMTP_SSL("localhost", 2465, context=sandbox.context(), timeout=20) as s:
        s.login(USER, sandbox.password)
        s.sendmail(USER, [USER], b"Subject: smtplib tls\r\n\r\nhello\r\n")
        cipher = s.sock.cipher()
    assert cipher[1] == "TLSv1.3"
    sandbox.wait_delivered(before)


# ------------------------------------------------------------- POP3, IMAP
def test_curl_pop3_and_imap(sandbox):
    need("curl")
    cred = f"{USER}:{sandbox.password}"
    for port, url, reqd in ((2110, "pop3://localhost:2110/", True),
                            (2995, "pop3s://localhost:2995/", False),
                            (2143, "imap://localhost:2143/", True),
                            (2993, "imaps://localhost:2993/", False)):
        sandbox.served(port)
        cmd = ["curl", "-sS", "--cacert", str(sandbox.trust), url, "-u", cred]
        if reqd:
            cmd.insert(2, "--ssl-reqd")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, (url, res.stderr)
        if url.startswith("imap"):
            assert "INBOX" in res.stdout


def test_python_pop3_and_imap(sandbox):
    ctx = sandbox.context()
    sandbox.served(2995)
    p = poplib.POP3_SSL("localhost", 2995, context=ctx, timeout=20)
    try:
        p.user(USER)
        p.pass_(sandbox.password)
        p.stat()
    finally:
        p.quit()
    sandbox.served(2110)
    p = poplib.POP3("127.0.0.1", 2110, timeout=20)
    try:
        p.stls(context=ctx)
        p.user(USER)
        p.pass_(sandbox.password)
        p.stat()
    finally:
        p.quit()
    sandbox.served(2993)
    m = imaplib.IMAP4_SSL("localhost", 2993, ssl_context=ctx, timeout=20)
    try:
        m.login(USER, sandbox.password)
        typ, _ = m.select("INBOX")
        assert typ == "OK"
    finally:
        m.logout()
    sandbox.served(2143)
    m = imaplib.IMAP4("127.0.0.1", 2143, timeout=20)
    try:
        m.starttls(ssl_context=ctx)
        m.login(USER, sandbox.password)
        typ, _ = m.select("INBOX")
        assert typ == "OK"
    finally:
        m.logout()


def test_fetchmail_pop3s(sandbox, tmp_path):
    need("fetchmail")
    sandbox.served(2995)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f'poll localhost proto POP3 port 2995 user "{USER}" password '
                  f'"{sandbox.password}" ssl sslcertck sslcertfile "{sandbox.trust}" '
                  f'keep mda "cat >> {tmp_path}/mbox"\n')
    rc.chmod(0o600)
    res = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--pidfile",
                          str(tmp_path / "pid")], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, HOME=str(tmp_path)))
    # 0: messages fetched, 1: none waiting; both mean the TLS login worked
    assert res.returncode in (0, 1), res.stdout + res.stderr


def test_sessions_resume_across_connections(sandbox):
    """A second connection offering the first one's session resumes it
    (session tickets whose keys all processes share)."""
    for port in (2465, 2993):
        sandbox.served(port)
        ctx = sandbox.context()
        session = None
        reused = []
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as t:
                    t.recv(200)            # the greeting (the tickets come before it)
                    reused.append(t.session_reused)
                    session = t.session
        assert reused[0] is False and reused[1:] == [True, True], (port, reused)


def test_served_certificate_is_the_printed_one(sandbox):
    sandbox.served(2993)
    ctx = sandbox.context()
    with socket.create_connection(("127.0.0.1", 2993), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            der = t.getpeercert(binary_form=True)
    assert f"SHA256 {der_fingerprint(der)}" in sandbox.text

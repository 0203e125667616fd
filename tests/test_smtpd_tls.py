"""smtpd TLS: STARTTLS (RFC 3207) on an MTA port and a submission port,
implicit TLS (RFC 8314) on an smtps port, with real clients: swaks
(--tls, --tlsc, --auth), openssl s_client (-starttls smtp and implicit),
curl --ssl-reqd (smtp:// with STARTTLS, smtps://), Python's smtplib
(starttls(), SMTP_SSL, login()). And the failures: commands before
STARTTLS under smtpd_tls_security_level = encrypt (530 5.7.0), AUTH over
cleartext, STARTTLS syntax and repetition, plaintext pipelined behind
STARTTLS discarded (CVE-2011-0411), the session reset after STARTTLS,
a wrapper-mode port spoken to in plaintext.

Certificates come from tests/tlsca.py (a throwaway CA; clients trust
it). Loopback only; every client has a deadline."""
import base64
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import free_port
from mailsuite import MASTER, have
from test_smtpd_auth import ALICE, BOB, SubInstance, Session, swaks
from tlsca import tls_ca  # noqa: F401  (the fixture)

DAEMONS = ("smtpd", "cleanup", "qmgr", "local-delivery", "auth", "posthorn-tls.so")
pytestmark = pytest.mark.skipif(not all(have(p) for p in DAEMONS) or not MASTER.exists(),
                                reason="needs " + ", ".join(DAEMONS) + " built")

AUTH_OPTS = ("smtpd_sasl_auth_enable=yes",
             "smtpd_client_restrictions=permit_sasl_authenticated,reject",
             "smtpd_sender_restrictions=reject_sender_login_mismatch",
             "mynetworks=192.0.2.0/24")
TIMEOUT = 30


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def tls(tls_ca):  # noqa: F811
    """smtp (STARTTLS offered: a certificate is configured), submission
    (encrypt + AUTH), smtps (wrapper + AUTH), notls (level none),
    mayauth (may + AUTH: AUTH only after STARTTLS), nokey and nokeywrap
    (a certificate file that is not there)."""
    inst = SubInstance({"submission": ("syslog_name=posthorn/submission",
                                       "smtpd_tls_security_level=encrypt") + AUTH_OPTS,
                        "smtps": ("syslog_name=posthorn/smtps",
                                  "smtpd_tls_wrappermode=yes") + AUTH_OPTS,
                        "notls": ("smtpd_tls_security_level=none",),
                        "mayauth": ("smtpd_tls_security_level=may",) + AUTH_OPTS,
                        "nokey": ("smtpd_tls_security_level=may",
                                  f"smtpd_tls_chain_files={tls_ca.dir}/missing.pem"),
                        "nokeywrap": ("smtpd_tls_wrappermode=yes",
                                      f"smtpd_tls_chain_files={tls_ca.dir}/missing.pem")},
                       main={"smtpd_tls_chain_files": f"{tls_ca.rsa.chain}, {tls_ca.ecdsa.chain}"})
    inst.ca = tls_ca.ca
    try:
        inst.start()
        yield inst
    finally:
        inst.cleanup()


def client_ctx(inst):
    ctx = ssl.create_default_context(cafile=inst.ca)
    ctx.check_hostname = True
    return ctx


class TlsSession(Session):
    """A Session that can switch to TLS."""

    def starttls(self, inst):
        code, lines = self.cmd("STARTTLS")
        assert (code, lines[0]) == (220, "2.0.0 Ready to start TLS"), lines
        self.wrap(inst)

    def wrap(self, inst):
        self.sock = client_ctx(inst).wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")


def run(args, input=None, timeout=TIMEOUT):
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} is not installed (tools/install-deps.sh)")
    return subprocess.run(args, input=input, capture_output=True, timeout=timeout)


# ------------------------------------------------------------ real clients
def test_swaks_starttls_on_the_mta_port(tls):
    r = swaks("--server", f"127.0.0.1:{tls.smtp_port}", "--from", "someone@remote.example",
              "--to", BOB, "--tls", "--tls-verify", "--tls-ca-path", tls.ca,
              "--header", "Subject: over STARTTLS")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "220 2.0.0 Ready to start TLS" in r.stdout
    msg = tls.wait_maildir(BOB, 1)[0].decode()
    assert re.search(r"\(using TLSv1\.3 with cipher TLS_\S+ \(\d+/\d+ bits\)\)", msg), msg
    assert "with ESMTPS" in msg
    assert tls.wait_log(r"Anonymous TLS connection established from \S+: TLSv1\.3 with cipher")


def test_swaks_submission_starttls_and_smtps_with_auth(tls):
    r = swaks("--server", f"127.0.0.1:{tls.port['submission']}", "--from", ALICE, "--to", BOB,
              "--tls", "--auth", "PLAIN", "--auth-user", ALICE,
              "--auth-password", tls.passwords[ALICE], "--header", "Subject: submission")
    assert r.returncode == 0, r.stdout + r.stderr
    r = swaks("--server", f"127.0.0.1:{tls.port['smtps']}", "--from", ALICE, "--to", BOB,
              "--tlsc", "--auth", "LOGIN", "--auth-user", ALICE,
              "--auth-password", tls.passwords[ALICE], "--header", "Subject: smtps")
    assert r.returncode == 0, r.stdout + r.stderr
    msgs = [m.decode() for m in tls.wait_maildir(BOB, 2)]
    assert all("with ESMTPSA" in m and "(using TLSv1.3" in m for m in msgs), msgs
    # authenticated relay over submission
    r = swaks("--server", f"127.0.0.1:{tls.port['submission']}", "--from", ALICE,
              "--to", "friend@remote.example", "--tls", "--auth", "PLAIN", "--auth-user", ALICE,
              "--auth-password", tls.passwords[ALICE])
    assert r.returncode == 0, r.stdout + r.stderr
    # and a submission client without AUTH
    r = swaks("--server", f"127.0.0.1:{tls.port['submission']}", "--from", ALICE, "--to", BOB,
              "--tls")
    assert r.returncode != 0 and "530 5.7.0 Authentication required" in r.stdout, r.stdout


def test_openssl_s_client_starttls_and_implicit(tls):
    script = b"EHLO client.example\nQUIT\n"      # -crlf adds the CRs
    for port, extra in ((tls.port["submission"], ["-starttls", "smtp"]),
                        (tls.port["smtps"], [])):
        r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra, "-CAfile",
                 tls.ca, "-verify_return_error", "-verify_hostname", "localhost", "-crlf",
                 "-ign_eof"], input=script)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, out + r.stderr.decode(errors="replace")
        assert "Verify return code: 0 (ok)" in out
        # the EHLO inside TLS: AUTH, no STARTTLS (s_client's own EHLO
        # before STARTTLS is not printed)
        ehlo = out[out.index("250-"):out.index("221 2.0.0 Bye")]
        assert "250 AUTH PLAIN LOGIN SCRAM-SHA-256" in ehlo and "STARTTLS" not in ehlo, ehlo


def test_curl_ssl_reqd(tls, tmp_path):
    msg = tmp_path / "msg"
    msg.write_bytes(b"From: alice@example.test\r\nSubject: curl\r\n\r\nvia curl\r\n")
    for url in (f"smtp://127.0.0.1:{tls.port['submission']}",
                f"smtps://127.0.0.1:{tls.port['smtps']}"):
        r = run(["curl", "-sS", "--max-time", "20", "--ssl-reqd", "--cacert", tls.ca, url,
                 "--mail-from", ALICE, "--mail-rcpt", BOB, "-u",
                 f"{ALICE}:{tls.passwords[ALICE]}", "-T", str(msg)])
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert len(tls.wait_maildir(BOB, 2)) == 2


def test_smtplib_starttls_and_smtp_ssl(tls):
    with smtplib.SMTP("127.0.0.1", tls.port["submission"], timeout=TIMEOUT) as c:
        c.ehlo("client.example")
        assert c.has_extn("starttls") and not c.has_extn("auth")
        c.starttls(context=client_ctx(tls))
        c.ehlo("client.example")
        assert not c.has_extn("starttls") and "PLAIN" in c.esmtp_features["auth"]
        c.login(ALICE, tls.passwords[ALICE])
        c.sendmail(ALICE, [BOB], b"Subject: smtplib\r\n\r\nhi\r\n")
    with smtplib.SMTP_SSL("127.0.0.1", tls.port["smtps"], timeout=TIMEOUT,
                          context=client_ctx(tls)) as c:
        c.ehlo("client.example")
        assert not c.has_extn("starttls")
        c.login(ALICE, tls.passwords[ALICE])
        c.sendmail(ALICE, [BOB], b"Subject: smtp_ssl\r\n\r\nhi\r\n")
    assert len(tls.wait_maildir(BOB, 2)) == 2


# ------------------------------------------------------------ failures
def test_encrypt_requires_starttls(tls):
    s = TlsSession(tls.port["submission"])
    lines = s.ehlo()
    assert "STARTTLS" in lines and not [l for l in lines if l.startswith("AUTH")]
    for cmd in (f"MAIL FROM:<{ALICE}>", "AUTH PLAIN " + b64(f"\0{ALICE}\0x"), "VRFY bob"):
        code, lines = s.cmd(cmd)
        assert (code, lines[0]) == (530, "5.7.0 Must issue a STARTTLS command first"), cmd
    assert s.cmd("NOOP")[0] == 250
    s.starttls(tls)
    lines = s.ehlo()
    assert "STARTTLS" not in lines and "AUTH PLAIN LOGIN SCRAM-SHA-256" in lines
    code, lines = s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{tls.passwords[ALICE]}"))
    assert code == 235, lines
    s.close()


def test_auth_over_cleartext_refused(tls):
    s = TlsSession(tls.port["mayauth"])
    lines = s.ehlo()
    assert "STARTTLS" in lines and not [l for l in lines if l.startswith("AUTH")]
    code, lines = s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{tls.passwords[ALICE]}"))
    assert (code, lines[0][:6]) == (538, "5.7.11")
    code, lines = s.cmd(f"MAIL FROM:<{ALICE}>")
    assert (code, lines[0]) == (530, "5.7.0 Must issue a STARTTLS command first")
    s.starttls(tls)
    assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in s.ehlo()
    s.close()


def test_starttls_syntax_twice_and_not_offered(tls):
    s = TlsSession(tls.smtp_port)
    s.ehlo()
    code, lines = s.cmd("STARTTLS now")
    assert (code, lines[0][:5]) == (501, "5.5.4")
    s.starttls(tls)
    code, lines = s.cmd("STARTTLS")
    assert (code, lines[0][:5]) == (503, "5.5.1")
    s.close()
    s = TlsSession(tls.port["notls"])
    assert "STARTTLS" not in s.ehlo()
    assert s.cmd("STARTTLS")[0] == 502
    s.close()


def test_session_reset_after_starttls(tls):
    s = TlsSession(tls.smtp_port)
    s.ehlo()
    assert s.cmd("MAIL FROM:<someone@remote.example>")[0] == 250
    s.starttls(tls)
    # the transaction is gone (and so is the EHLO: ESMTP parameters are refused)
    code, lines = s.cmd(f"RCPT TO:<{BOB}>")
    assert (code, lines[0][:5]) == (503, "5.5.1"), lines
    assert s.cmd("MAIL FROM:<someone@remote.example> BODY=8BITMIME")[0] == 555
    s.ehlo()
    assert s.cmd("MAIL FROM:<someone@remote.example> BODY=8BITMIME")[0] == 250
    s.close()


def test_pipelined_after_starttls_is_discarded(tls):
    """CVE-2011-0411: "STARTTLS\\r\\nRSET\\r\\n" in one write; the RSET
    must not be answered inside TLS."""
    s = TlsSession(tls.smtp_port)
    s.ehlo()
    mark = tls.log_mark()
    s.sock.sendall(b"STARTTLS\r\nRSET\r\n")
    code, lines = s.reply()
    assert code == 220
    s.wrap(tls)
    s.sock.settimeout(1.0)
    with pytest.raises((socket.timeout, TimeoutError)):
        extra = s.file.readline()
        pytest.fail(f"the injected RSET was answered: {extra!r}")
    s.sock.settimeout(TIMEOUT)
    s.file = s.sock.makefile("rb")
    code, lines = s.cmd("NOOP")
    assert (code, lines[0]) == (250, "2.0.0 Ok")
    s.close()
    assert tls.wait_log(r"improper command pipelining after STARTTLS from \S+: "
                        r"6 bytes discarded", since=mark)


def test_wrapper_port_spoken_to_in_plaintext(tls):
    sock = socket.create_connection(("127.0.0.1", tls.port["smtps"]), timeout=TIMEOUT)
    sock.sendall(b"EHLO client.example\r\n")
    data = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    sock.close()
    assert b"220 " not in data and b"250" not in data
    assert tls.wait_log(r"SSL_accept error from \S+")


def test_tls_not_available(tls):
    """A key that cannot be loaded: logged; STARTTLS is not offered and
    gets 454 4.7.0; a wrapper-mode port closes the connection."""
    s = TlsSession(tls.port["nokey"])
    assert "STARTTLS" not in s.ehlo()
    code, lines = s.cmd("STARTTLS")
    assert (code, lines[0]) == (454, "4.7.0 TLS not available due to local problem")
    assert s.cmd("NOOP")[0] == 250
    s.close()
    assert tls.wait_log(r"warning: TLS is not available: .*missing\.pem")
    sock = socket.create_connection(("127.0.0.1", tls.port["nokeywrap"]), timeout=TIMEOUT)
    try:
        assert sock.recv(100) == b""
    except ConnectionResetError:
        pass
    sock.close()
    assert tls.wait_log(r"wrapper mode, but TLS is not available: closing")

"""smtpd AUTH (RFC 4954) and submission rules (RFC 6409), against a full
instance (tests/mailsuite.py) whose users have passwords, with the auth
service: PLAIN and LOGIN with swaks and Python's smtplib, SCRAM-SHA-256
with a client written here (RFC 5802/7677), the protocol's error
replies (cancel, bad base64, twice, unknown mechanism, no EHLO),
submission without AUTH refused (530 5.7.0), the sender-login table
(553 5.7.1), authenticated relaying, bad passwords slowed by auth and
then refused (454) and the session ended by smtpd's error limit, and
AUTH over cleartext refused while smtpd_tls_auth_only = yes.

These services allow AUTH without TLS (smtpd_tls_auth_only = no) so the
SASL part is tested apart from TLS; tests/test_smtpd_tls.py runs AUTH
inside STARTTLS and wrapper-mode sessions. Loopback only; every client
has a deadline. swaks comes from tools/install-deps.sh."""
import base64
import hashlib
import hmac
import re
import secrets
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

import mkinstance
from conftest import BUILD, free_port
from mailsuite import SERVICES, MailInstance, have, MASTER

DAEMONS = ("smtpd", "cleanup", "qmgr", "local-delivery", "auth")
pytestmark = pytest.mark.skipif(not all(have(p) for p in DAEMONS) or not MASTER.exists(),
                                reason="needs " + ", ".join(DAEMONS) + " built")

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def unb64(text):
    return base64.b64decode(text)


# Submission as in master.cf, without the TLS requirement (see the module
# comment); mynetworks excludes loopback so that only AUTH lets a client
# relay.
SUBMISSION_OPTS = ("syslog_name=posthorn/submission", "smtpd_sasl_auth_enable=yes",
                   "smtpd_tls_auth_only=no",
                   "smtpd_client_restrictions=permit_sasl_authenticated,reject",
                   "smtpd_sender_restrictions=reject_sender_login_mismatch",
                   "mynetworks=192.0.2.0/24")


class SubInstance(MailInstance):
    """A MailInstance with passwords, auth, and extra smtpd services:
    .port[name] for each of services (name -> -o overrides)."""

    def __init__(self, services, main=None, scram_users=(ALICE,)):
        params = {"auth_failure_delay": "20", "auth_failure_delay_max": "200",
                  "smtpd_sender_login_maps": "",
                  **(main or {})}
        super().__init__(services=SERVICES + ("auth",), passwords=True, main=params)
        self.port = {}
        lines = []
        for name, opts in services.items():
            self.port[name] = free_port()
            lines.append(f"127.0.0.1:{self.port[name]} inet n - n - - smtpd\n")
            lines.extend(f"  -o {o}\n" for o in opts)
        self.write_master_cf(self.default_master_cf() + "".join(lines))
        if scram_users:
            self.add_scram(scram_users)

    def add_scram(self, users):
        """Give users a SCRAM-SHA-256 secret (users(5) field 7)."""
        table = self.etc / "users"
        out = []
        for line in table.read_text().splitlines(keepends=True):
            fields = line.rstrip("\n").split(":")
            if not line.startswith("#") and fields[0] in users:
                res = subprocess.run([str(BUILD / "bin" / "posthorn"), "-c", str(self.etc), "pw",
                                      "-s"], input=self.passwords[fields[0]] + "\n",
                                     capture_output=True, text=True, timeout=60, check=True)
                hashed, _, secret = res.stdout.strip().partition("\n")
                fields = fields[:6] + [""] * (6 - len(fields[:6]))
                fields[1] = hashed
                line = ":".join(fields[:6] + [secret]) + "\n"
            out.append(line)
        table.write_text("".join(out))
        self.posthorn("users", f"cdb:{table}")

    def senders(self, lines):
        """smtpd_sender_login_maps = cdb:ETC/senders with lines."""
        (self.etc / "senders").write_text("".join(f"{l}\n" for l in lines))
        mkinstance.build_map(BUILD / "bin" / "posthorn", self.etc, "senders", force=True)
        self.set_main(smtpd_sender_login_maps=f"cdb:{self.etc}/senders")


SENDERS = ["team@example.test alice@example.test, bob@example.test",
           "@alias.test carol@example.test"]


@pytest.fixture
def sub():
    inst = SubInstance({"submission": SUBMISSION_OPTS,
                        "cleartext": ("smtpd_sasl_auth_enable=yes",)})
    try:
        inst.senders(SENDERS)
        inst.start()
        yield inst
    finally:
        inst.cleanup()


class Session:
    """A raw SMTP session (replies as (code, [lines]))."""

    def __init__(self, port, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self):
        lines = []
        while True:
            line = self.file.readline(4096)
            if not line:
                raise EOFError("connection closed; got %r" % lines)
            text = line.decode().rstrip("\r\n")
            lines.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), lines

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def ehlo(self):
        code, lines = self.cmd("EHLO client.example")
        assert code == 250
        return lines

    def close(self):
        self.sock.close()


def scram(s, user, password, tamper=False):
    """SCRAM-SHA-256 over SMTP AUTH (RFC 5802, RFC 7677): the final reply."""
    cnonce = secrets.token_urlsafe(18)
    first_bare = f"n={user},r={cnonce}"
    code, lines = s.cmd("AUTH SCRAM-SHA-256 " + b64("n,," + first_bare))
    if code != 334:
        return code, lines
    server_first = unb64(lines[0]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce) and int(attrs["i"]) >= 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), unb64(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    proof = bytes(a ^ b for a, b in zip(client_key,
                                        hmac.new(stored, auth_msg, "sha256").digest()))
    if tamper:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    code, lines = s.cmd(b64(f"{without_proof},p={b64(proof)}"))
    if code != 334:
        return code, lines
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    assert unb64(lines[0]).decode() == "v=" + b64(hmac.new(server_key, auth_msg,
                                                            "sha256").digest())
    return s.cmd("")


def swaks(*args, timeout=60):
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed (tools/install-deps.sh)")
    return subprocess.run(["swaks", "--timeout", "20", *args], capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------- tests
def test_ehlo_offers_auth_only_where_enabled(sub):
    s = Session(sub.port["submission"])
    assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in s.ehlo()
    s.close()
    # the default service (port 25): no AUTH
    s = Session(sub.smtp_port)
    assert not [l for l in s.ehlo() if l.startswith("AUTH")]
    assert s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0x"))[0] == 503
    s.close()
    # AUTH enabled but smtpd_tls_auth_only = yes: not over cleartext
    s = Session(sub.port["cleartext"])
    assert not [l for l in s.ehlo() if l.startswith("AUTH")]
    code, lines = s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{sub.passwords[ALICE]}"))
    assert (code, lines[0][:6]) == (538, "5.7.11"), lines
    s.close()


def test_swaks_plain_and_login_submit(sub):
    for mech in ("PLAIN", "LOGIN"):
        r = swaks("--server", f"127.0.0.1:{sub.port['submission']}", "--from", ALICE,
                  "--to", BOB, "--auth", mech, "--auth-user", ALICE,
                  "--auth-password", sub.passwords[ALICE], "--header", f"Subject: via {mech}")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "235 2.7.0" in r.stdout
    msgs = sub.wait_maildir(BOB, 2)
    text = b"".join(msgs).decode(errors="replace")
    assert "with ESMTPA" in text
    assert "Authenticated sender" not in text       # smtpd_sasl_authenticated_header = no
    assert sub.wait_log(r"sasl_method=LOGIN, sasl_username=alice@example.test")


def test_swaks_wrong_password(sub):
    r = swaks("--server", f"127.0.0.1:{sub.port['submission']}", "--from", ALICE, "--to", BOB,
              "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", "wrong")
    assert r.returncode != 0
    assert "535 5.7.8" in r.stdout


def test_smtplib_login_and_authenticated_relay(sub):
    with smtplib.SMTP("127.0.0.1", sub.port["submission"], timeout=20) as c:
        c.ehlo("client.example")
        assert c.login(ALICE, sub.passwords[ALICE])[0] == 235
        # RFC 4954 5: the AUTH parameter of MAIL
        assert c.mail(ALICE, ["AUTH=" + ALICE])[0] == 250
        # relaying to a domain that is not ours: allowed for the authenticated
        assert c.rcpt("someone@remote.example")[0] == 250
        code, text = c.data(b"Subject: relay\r\n\r\nout\r\n")
        assert code == 250 and b"queued as" in text
        # AUTH once per session
        code, text = c.docmd("AUTH", "PLAIN " + b64(f"\0{ALICE}\0{sub.passwords[ALICE]}"))
        assert (code, text[:5]) == (503, b"5.5.1")


def test_scram_sha_256(sub):
    s = Session(sub.port["submission"])
    s.ehlo()
    code, lines = scram(s, ALICE, "wrong password")
    assert (code, lines[0][:5]) == (535, "5.7.8"), lines
    code, lines = scram(s, ALICE, sub.passwords[ALICE], tamper=True)
    assert code == 535
    code, lines = scram(s, ALICE, sub.passwords[ALICE])
    assert (code, lines[0][:5]) == (235, "2.7.0"), lines
    assert s.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250
    assert s.cmd(f"RCPT TO:<{BOB}>")[0] == 250
    s.close()
    assert sub.wait_log(r"sasl_method=SCRAM-SHA-256, sasl_username=alice@example.test")


def test_protocol_errors(sub):
    s = Session(sub.port["submission"])
    # before EHLO
    assert s.cmd("AUTH PLAIN")[0] == 503
    s.ehlo()
    # unknown mechanism, no mechanism
    assert s.cmd("AUTH CRAM-MD5")[:1] == (504,)
    assert s.cmd("AUTH")[0] == 501
    # bad base64, as initial response and as response
    code, lines = s.cmd("AUTH PLAIN !!!notbase64")
    assert (code, lines[0][:5]) == (501, "5.5.2")
    code, lines = s.cmd("AUTH LOGIN")
    assert code == 334 and unb64(lines[0]) == b"Username:", lines
    code, lines = s.cmd("@@@")
    assert (code, lines[0][:5]) == (501, "5.5.2")
    # cancel
    assert s.cmd("AUTH PLAIN")[0] == 334
    code, lines = s.cmd("*")
    assert (code, lines[0][:5]) == (501, "5.7.0")
    # a too long response line
    assert s.cmd("AUTH PLAIN")[0] == 334
    code, lines = s.cmd("A" * 9000)
    assert (code, lines[0][:5]) == (500, "5.5.6")
    # the session still works, and LOGIN step by step
    assert s.cmd("AUTH LOGIN")[0] == 334
    assert s.cmd(b64(ALICE))[0] == 334
    code, lines = s.cmd(b64(sub.passwords[ALICE]))
    assert code == 235, lines
    assert s.cmd("AUTH LOGIN")[0] == 503
    s.close()


def test_submission_requires_auth(sub):
    s = Session(sub.port["submission"])
    s.ehlo()
    code, lines = s.cmd(f"MAIL FROM:<{ALICE}>")
    assert (code, lines[0]) == (530, "5.7.0 Authentication required")
    s.close()
    assert sub.wait_log(r"NOQUEUE: reject: MAIL from \S+: 530 5.7.0 Authentication required")


def test_sender_login_mismatch(sub):
    s = Session(sub.port["submission"])
    s.ehlo()
    assert s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{sub.passwords[ALICE]}"))[0] == 235
    code, lines = s.cmd(f"MAIL FROM:<{BOB}>")
    assert code == 553 and lines[0] == \
        "5.7.1 <bob@example.test>: Sender address rejected: not owned by user alice@example.test"
    assert s.cmd("MAIL FROM:<info@alias.test>")[0] == 553    # carol's domain
    assert s.cmd("MAIL FROM:<team@example.test>")[0] == 250  # listed
    assert s.cmd("RSET")[0] == 250
    assert s.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250           # unlisted: her own name
    assert s.cmd("RSET")[0] == 250
    assert s.cmd("MAIL FROM:<>")[0] == 250                   # bounces are not refused
    s.close()
    assert sub.wait_log(r"reject: MAIL from \S+: 553 5.7.1 <bob@example.test>")


def test_bad_passwords_slowed_then_refused():
    """auth doubles its delay with each failure of the client address and
    refuses (454) past auth_client_failure_limit; smtpd counts each
    failure as an error and ends the session at smtpd_hard_error_limit."""
    inst = SubInstance({"submission": SUBMISSION_OPTS + ("smtpd_hard_error_limit=5",)},
                       main={"auth_failure_delay": "150", "auth_failure_delay_max": "5000",
                             "auth_client_failure_limit": "3"}, scram_users=())
    try:
        inst.start()
        s = Session(inst.port["submission"])
        s.ehlo()
        times, codes = [], []
        for _ in range(4):
            t0 = time.monotonic()
            code, lines = s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0guess{_}"))
            times.append(time.monotonic() - t0)
            codes.append((code, lines[0][:5]))
        assert codes == [(535, "5.7.8")] * 3 + [(454, "4.7.0")], codes
        # 150 ms, 300 ms, 600 ms: slowed, and more each time (the first
        # one also pays for starting auth, so it is only a lower bound)
        assert times[0] >= 0.12 and times[1] >= 0.25 and times[2] >= 0.5, times
        assert times[2] > times[1] + 0.2, times
        # fifth error: smtpd's limit ends the session
        code, lines = s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0guess"))
        assert code == 454
        code, lines = s.reply()
        assert (code, lines[0][:5]) == (421, "4.7.0"), lines
        s.close()
        # the right password is refused too while the address is over the limit
        s = Session(inst.port["submission"])
        s.ehlo()
        code, _ = s.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{inst.passwords[ALICE]}"))
        assert code == 454
        s.close()
        assert inst.wait_log(r"too many errors after AUTH from")
    finally:
        inst.cleanup()

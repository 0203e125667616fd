"""smtp-front(8), the port-25 front (the role of Postfix's postscreen),
with real clients: the greeting pause and its pregreet refusal, the
access list and the cache of clients that passed, the hand-over of the
first command (pipelined input intact, STARTTLS after it), the QUIT
answered by the front itself, the per-client count limit, the
hand-over timeout when every smtpd is busy, and many idle connections
from many addresses held cheaply while a legitimate client is served.

The instance's mynetworks (and so smtp_front_access_list and the limit
exceptions) is 127.0.0.1/32: clients from 127.0.0.2 and up are
strangers. Loopback only; every wait is bounded."""
import json
import re
import resource
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import MASTER, Client
from mailsuite import SERVICES, MailInstance, have
from test_smtpd_auth import swaks
from tlsca import tls_ca  # noqa: F401  (the fixture)

DAEMONS = ("smtp-front", "smtpd", "cleanup", "qmgr", "local-delivery")
pytestmark = pytest.mark.skipif(not all(have(p) for p in DAEMONS) or not MASTER.exists(),
                                reason="needs " + ", ".join(DAEMONS) + " built")

ALICE = "alice@example.test"
BASE = {"mynetworks": "127.0.0.1/32", "smtp_front_greet_wait": "2s",
        "smtp_front_handover_timeout": "3s"}


class Front(MailInstance):
    def __init__(self, main=None):
        super().__init__(services=SERVICES + ("client-limits",), main={**BASE, **(main or {})})
        assert "smtp-front" in self.default_master_cf(), self.default_master_cf()

    def front_pid(self, timeout=5):
        """The smtp-front process (master starts it at the first client)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self._front_pid()
            if pid:
                return pid
            time.sleep(0.05)
        return None

    def _front_pid(self):
        for pid in self.children():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[0].endswith(b"/smtp-front"):
                        return pid
            except OSError:
                pass
        return None


@pytest.fixture
def front_factory():
    made = []

    def make(main=None, start=True, master_edit=None):
        inst = Front(main)
        made.append(inst)
        if master_edit:
            inst.write_master_cf(master_edit(inst.default_master_cf()))
        if start:
            inst.start()
        return inst
    yield make
    for inst in made:
        inst.cleanup()


@pytest.fixture
def front(front_factory):
    return front_factory()


def connect(inst, src="127.0.0.1", timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", inst.smtp_port))
    return s


class Lines(Client):
    """CRLF lines from a socket, with a deadline per line (conftest's
    Client), and whole SMTP replies."""

    def __init__(self, sock):
        super().__init__(sock, timeout=10)

    def line(self, timeout=10):
        return self.readline(timeout)

    def reply(self, timeout=10):
        """One whole (multi-line) reply: its lines."""
        out = [self.line(timeout)]
        while re.match(r"^\d{3}-", out[-1]):
            out.append(self.line(timeout))
        return out


def smtpd_saw(inst, addr, since=0):
    """smtpd logged a connection from addr."""
    return re.search(rf"smtpd\[\d+\]: connect from \S*\[{re.escape(addr)}\]",
                     inst.log_text()[since:]) is not None


# ---------------------------------------------------------------- greeting
def test_pregreet_client_refused_logged_never_reaches_smtpd(front):
    s = connect(front, "127.0.0.2")
    r = Lines(s)
    first = r.line()
    assert first.startswith("220-"), first            # the pause has begun
    s.sendall(b"EHLO spambot.example\r\n")              # talks before the end
    assert r.line() == "521 5.5.1 Protocol error"
    assert r.line(timeout=5) == ""                      # closed
    s.close()
    front.wait_log(r"PREGREET 22 after \d+\.\d from \[127\.0\.0\.2\]:\d+: "
                   r"EHLO spambot\.example\\r\\n")
    time.sleep(0.5)
    assert not smtpd_saw(front, "127.0.0.2")
    assert "PASS NEW [127.0.0.2]" not in front.log_text()


def test_access_list_client_greeted_at_once_and_served(front):
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", front.smtp_port, timeout=10) as c:
        greet = time.monotonic() - t0
        assert c.ehlo("client.example")[0] == 250
        c.sendmail("someone@remote.test", [ALICE], b"Subject: at once\r\n\r\nhi\r\n")
    assert greet < 1.0, greet
    front.wait_maildir(ALICE, 1)
    front.wait_log(r"CONNECT from \[127\.0\.0\.1\]:\d+")
    assert smtpd_saw(front, "127.0.0.1")
    assert "PREGREET" not in front.log_text()


def test_stranger_passes_after_the_pause_then_is_cached(front):
    s = connect(front, "127.0.0.3")
    r = Lines(s)
    t0 = time.monotonic()
    assert r.line().startswith("220-")
    final = r.line(timeout=10)
    waited = time.monotonic() - t0
    assert final.startswith("220 ") and "ESMTP" in final, final
    assert 1.5 <= waited < 4, waited                    # smtp_front_greet_wait = 2s
    s.sendall(b"EHLO client.example\r\n")
    lines = r.reply()
    assert lines[0].startswith("250-") and lines[-1].startswith("250 "), lines
    s.sendall(b"QUIT\r\n")
    assert r.line().startswith("221")
    s.close()
    front.wait_log(r"PASS NEW \[127\.0\.0\.3\]:\d+")
    assert smtpd_saw(front, "127.0.0.3")

    # the second time: no pause
    s = connect(front, "127.0.0.3")
    r = Lines(s)
    t0 = time.monotonic()
    first = r.line()
    assert first.startswith("220 "), first
    assert time.monotonic() - t0 < 1.0
    s.close()
    front.wait_log(r"PASS OLD \[127\.0\.0\.3\]:\d+")


def greet_paused(inst, addr):
    """Connect from addr: False if greeted at once (cached); True if it
    had the pause, which it then sits out and so passes (PASS NEW)."""
    mark = inst.log_mark()
    s = connect(inst, addr)
    r = Lines(s)
    first = r.line()
    if first.startswith("220 "):
        s.close()
        inst.wait_log(r"PASS OLD \[%s\]:\d+" % re.escape(addr), since=mark)
        return False
    assert first.startswith("220-"), first
    assert r.line(timeout=10).startswith("220 ")
    s.close()
    inst.wait_log(r"PASS NEW \[%s\]:\d+" % re.escape(addr), since=mark)
    return True


def test_cache_evicts_oldest_at_limit_and_expires(front_factory):
    inst = front_factory({"smtp_front_greet_wait": "1s",
                          "smtp_front_cache_limit": "2",
                          "smtp_front_cache_ttl": "5s"})
    assert greet_paused(inst, "127.0.0.5")
    assert greet_paused(inst, "127.0.0.6")
    assert greet_paused(inst, "127.0.0.7")     # full: .5, the oldest, goes
    assert not greet_paused(inst, "127.0.0.7")
    assert not greet_paused(inst, "127.0.0.6")
    assert greet_paused(inst, "127.0.0.5")     # evicted; back in, .6 goes
    t5 = time.monotonic()
    assert greet_paused(inst, "127.0.0.6")     # evicted by .5; .7 goes
    assert not greet_paused(inst, "127.0.0.5")
    time.sleep(max(0.0, t5 + 5.5 - time.monotonic()))
    assert greet_paused(inst, "127.0.0.5")     # past smtp_front_cache_ttl


def test_quit_only_client_answered_by_the_front(front):
    mark = front.log_mark()
    s = connect(front, "127.0.0.1")
    r = Lines(s)
    assert r.line().startswith("220 ")
    s.sendall(b"QUIT\r\n")
    assert r.line() == "221 2.0.0 Bye"
    assert r.line(timeout=5) == ""
    s.close()
    time.sleep(0.5)
    assert not smtpd_saw(front, "127.0.0.1", mark)


def test_silent_client_hangup_logged(front):
    s = connect(front, "127.0.0.4")
    assert Lines(s).line().startswith("220-")
    s.close()
    front.wait_log(r"HANGUP after \d+\.\d from \[127\.0\.0\.4\]:\d+")


def test_overlong_first_line_refused(front):
    s = connect(front, "127.0.0.1")
    r = Lines(s)
    assert r.line().startswith("220 ")
    s.sendall(b"X" * 9000)
    assert r.line() == "500 5.5.2 Error: line too long"
    s.close()


# ---------------------------------------------------------------- hand-over
def test_pipelined_first_input_handed_over_intact(front):
    s = connect(front, "127.0.0.1")
    r = Lines(s)
    assert r.line().startswith("220 ")
    # one packet: the front reads it all and hands every byte over
    s.sendall(b"EHLO client.example\r\nMAIL FROM:<someone@remote.test>\r\n"
              b"RCPT TO:<" + ALICE.encode() + b">\r\nDATA\r\n")
    ehlo = r.reply()
    assert ehlo[0].startswith("250-") and any("PIPELINING" in l for l in ehlo), ehlo
    assert r.line().startswith("250 2.1.0"), "MAIL"
    assert r.line().startswith("250 2.1.5"), "RCPT"
    assert r.line().startswith("354"), "DATA"
    s.sendall(b"Subject: pipelined\r\n\r\nintact\r\n.\r\nQUIT\r\n")
    assert r.line().startswith("250 2.0.0"), "end of data"
    assert r.line().startswith("221")
    s.close()
    msg = front.wait_maildir(ALICE, 1)[0]
    assert b"Subject: pipelined" in msg and b"intact" in msg


def test_starttls_after_the_hand_over_with_swaks(front_factory, tls_ca):  # noqa: F811
    inst = front_factory(main={"smtpd_tls_chain_files": f"{tls_ca.rsa.chain}",
                               "smtpd_tls_security_level": "may"})
    r = swaks("--server", f"127.0.0.1:{inst.smtp_port}", "--from", "someone@remote.test",
              "--to", ALICE, "--tls", "--tls-verify", "--tls-ca-path", tls_ca.ca,
              "--header", "Subject: TLS behind the front")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "220 2.0.0 Ready to start TLS" in r.stdout
    msg = inst.wait_maildir(ALICE, 1)[0].decode()
    assert "with ESMTPS" in msg, msg
    assert inst.count_log(r"CONNECT from \[127\.0\.0\.1\]") == 1


def test_all_smtpd_busy_handover_timeout_421(front_factory):
    def one_smtpd(text):
        out = re.sub(r"^(smtpd\s+pass\s+\S+\s+\S+\s+\S+\s+\S+\s+)\S+", r"\g<1>1", text,
                     flags=re.M)
        assert out != text, text
        return out
    inst = front_factory(main={"smtp_front_handover_timeout": "1s"}, master_edit=one_smtpd)
    busy = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10)
    assert busy.ehlo("busy.example")[0] == 250          # the one smtpd is taken
    try:
        s = connect(inst, "127.0.0.1")
        r = Lines(s)
        assert r.line().startswith("220 ")
        t0 = time.monotonic()
        s.sendall(b"EHLO second.example\r\n")
        assert r.line(timeout=10) == "421 4.3.2 Service currently unavailable"
        assert 0.8 < time.monotonic() - t0 < 5
        s.close()
        inst.wait_log(r"hand-over of \[127\.0\.0\.1\]:\d+ to private/smtpd failed: timeout")
    finally:
        busy.close()
    # The front sends the descriptor right after its connect, so it still
    # waits in the pass socket's queue: when the smtpd process is free and
    # takes that connection, the front is gone, and the client (told 421)
    # must not be served.
    inst.wait_log(r"smtpd\[\d+\]: warning: pass service \S+: bad hand-over: .* -- connection closed")
    time.sleep(0.5)
    assert inst.count_log(r"smtpd\[\d+\]: connect from ") == 1, inst.log_text()[-3000:]


# ---------------------------------------------------------------- limits
def test_count_limit_at_the_front(front_factory):
    if "client-limits" not in front_factory(start=False).default_master_cf():
        pytest.skip("client-limits is not built")
    inst = front_factory(main={"smtp_front_client_connection_count_limit": "2"})
    held = [connect(inst, "127.0.0.5") for _ in range(2)]
    try:
        for h in held:
            assert Lines(h).line().startswith("220-")
        s = connect(inst, "127.0.0.5")
        assert Lines(s).line() == ("421 4.7.0 mail.example.test Error: too many connections "
                                   "from 127.0.0.5")
        s.close()
        inst.wait_log(r"warning: Connection count limit exceeded: 3 from \[127\.0\.0\.5\]:\d+ "
                      r"for service \S+ \(smtp_front_client_connection_count_limit = 2\)")
        # another address is not affected
        o = connect(inst, "127.0.0.6")
        assert Lines(o).line().startswith("220-")
        o.close()
    finally:
        for h in held:
            h.close()


def test_exempt_client_not_counted_stranger_counted(front_factory):
    """Only what a limit can refuse goes to client-limits (decision 54):
    127.0.0.1 (mynetworks, so exempt) holds two connections and is not
    in the table; 127.0.0.5 holds two and is counted for the service."""
    if "client-limits" not in front_factory(start=False).default_master_cf():
        pytest.skip("client-limits is not built")
    inst = front_factory(main={"smtp_front_client_connection_count_limit": "5"})
    held = [connect(inst, a) for a in ("127.0.0.1", "127.0.0.1", "127.0.0.5", "127.0.0.5")]
    try:
        for h in held:
            assert Lines(h).line().startswith("220")
        deadline = time.monotonic() + 5
        while True:
            r = inst.posthorn("limits", "--json")
            figures = {e["client_address"]: e["count"] for e in json.loads(r.stdout or "[]")}
            if figures == {"127.0.0.5": 2} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert figures == {"127.0.0.5": 2}, r.stdout
    finally:
        for h in held:
            h.close()


# ---------------------------------------------------------------- slowloris
def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def test_many_address_slowloris_held_legit_client_served(front_factory):
    n_addr, per_addr = 20, 50
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n_addr * per_addr + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    inst = front_factory(main={"smtp_front_greet_wait": "1s"})
    pid = None
    deadline = time.monotonic() + 10
    idle = []
    try:
        before = None
        for i in range(n_addr):
            for _ in range(per_addr):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(True)
                s.settimeout(10)
                s.bind((f"127.0.0.{2 + i}", 0))
                s.connect(("127.0.0.1", inst.smtp_port))
                idle.append(s)
            if before is None:
                pid = inst.front_pid()
                assert pid, "no smtp-front process"
                before = pss_kib(pid)
        assert time.monotonic() < deadline + 60
        # every idle connection got its greeting pause, nobody else spoke
        inst.wait_log(r"PASS NEW \[127\.0\.0\.21\]", timeout=20)
        held_pss = pss_kib(pid)
        t0 = time.monotonic()
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as c:
            c.ehlo("legit.example")
            c.sendmail("someone@remote.test", [ALICE], b"Subject: legit\r\n\r\nserved\r\n")
        served = time.monotonic() - t0
        assert served < 1.0, served
        assert inst.wait_maildir(ALICE, 1)
        # the idle ones never reached an smtpd process
        assert not smtpd_saw(inst, "127.0.0.2")
        assert inst.count_log(r"CONNECT from \[127\.0\.0\.(?:[2-9]|1\d|2[01])\]") == \
            n_addr * per_addr
        print(f"\nsmtp-front PSS: {before} KiB with {per_addr} idle, {held_pss} KiB with "
              f"{n_addr * per_addr} idle ({(held_pss - before) * 1024 / (len(idle) - per_addr):.0f}"
              f" bytes per connection); legit client served in {served:.3f}s")
        assert held_pss - before < 10 * 1024, (before, held_pss)   # < ~10 KiB per connection
    finally:
        for s in idle:
            s.close()


# ------------------------------------------------------------------ reload
def test_reload_while_front_holds_clients_port_stays_served(front):
    """After a reload the old front finishes the clients it holds; it must
    not keep the port's only process slot (maxproc 1) while it does: a new
    client is greeted by a fresh front at once."""
    held = []
    for _ in range(3):                      # idle: waiting for a first command
        s = connect(front)
        assert Lines(s).reply()[-1].startswith("220 ")
        held.append(s)
    front.reload()
    t0 = time.monotonic()
    s = connect(front)
    r = Lines(s)
    assert r.reply(timeout=5)[-1].startswith("220 ")
    s.sendall(b"EHLO fresh.example\r\n")
    assert r.reply(timeout=5)[-1].startswith("250 ")
    assert time.monotonic() - t0 < 2, time.monotonic() - t0
    s.sendall(b"QUIT\r\n")
    s.close()
    # the old front still serves the clients it held
    held[0].sendall(b"EHLO held.example\r\n")
    assert Lines(held[0]).reply(timeout=5)[-1].startswith("250 ")
    for h in held:
        h.close()

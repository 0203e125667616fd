"""client-limits: the counting service (limits_proto.h) driven over
private/client-limits with tests/phwire.py attribute lists, and through
the real client library (lib/mail/limits_client.c, both flavours) with
tests/bin/ph-limits; `posthorn limits`.
Each test starts an instance whose master.cf has only client-limits.

Covered: counts up and down; every rate; connects released when the
client connection that made them closes (also when the client process
is killed); the rate window rolling over (client_limits_rate_time_unit
= 2s); the bound on entries under a flood of 20,000 addresses against
client_limits_max_entries = 1000 (entries and memory stay bounded, a
known client keeps correct counts, a table full of busy entries answers
as if new and logs a warning); bad requests answered status=error and
the connection closed; the periodic statistics log; a client that never reads its replies;
the library's blocking and pipelined calls, release when its process
is killed, and failing open with one warning; `posthorn limits`
(table, --json, address filter, service down)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import BUILD, pid_alive
import phwire

POSTHORN = BUILD / "bin" / "posthorn"
MASTER_CF = "client-limits unix - - n - 1 client-limits\n"
FIGURES = ("count", "conn_rate", "message_rate", "recipient_rate", "tls_rate", "auth_rate")

pytestmark = pytest.mark.skipif(not (BUILD / "libexec" / "client-limits").exists(),
                                reason="client-limits not built")


class Limits:
    """One connection to private/client-limits."""

    def __init__(self, inst, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(inst.queue / "private" / "client-limits"))
        self.reader = phwire.IpcReader(self.sock)
        assert self.reader.message() == [("proto", "limits"), ("version", "1")]

    def send(self, **attrs):
        self.sock.sendall(phwire.encode(**attrs))

    def reply(self):
        return self.reader.message()

    def call(self, request, service="smtp", addr="192.0.2.1"):
        """One request; the six figures as a dict of ints (status ok)."""
        self.send(request=request, service=service, client_address=addr)
        got = self.reply()
        assert [k for k, _ in got] == ["status", *FIGURES], got
        assert got[0] == ("status", "ok"), got
        return {k: int(v) for k, v in got[1:]}

    def list(self, max_entries=10000):
        self.send(request="list", max=max_entries)
        got = self.reply()
        assert got[0] == ("status", "ok") and got[1][0] == "entries", got[:2]
        n = int(got[1][1])
        rows = []
        for i in range(n):
            part = got[2 + 8 * i: 2 + 8 * i + 8]
            assert [k for k, _ in part] == ["service", "client_address", *FIGURES], part
            rows.append({k: (v if k in ("service", "client_address") else int(v))
                         for k, v in part})
        assert len(got) == 2 + 8 * n
        return rows

    def close(self):
        self.sock.close()


def counts(**kw):
    base = dict.fromkeys(FIGURES, 0)
    base.update(kw)
    return base


def start(inst, **main):
    params = {"client_limits_rate_time_unit": "60s"}
    params.update(main)
    inst.set_main(**params)
    inst.write_master_cf(MASTER_CF)
    inst.start()


def limits_pid(inst):
    """The client-limits process (master starts it at the first client)."""
    return inst.wait_children(1, "client-limits")[0]


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_counts_up_and_down(instance):
    start(instance)
    c = Limits(instance)
    assert c.call("lookup") == counts()
    assert c.call("connect") == counts(count=1, conn_rate=1)
    assert c.call("connect") == counts(count=2, conn_rate=2)
    assert c.call("message") == counts(count=2, conn_rate=2, message_rate=1)
    assert c.call("recipient") == counts(count=2, conn_rate=2, message_rate=1, recipient_rate=1)
    assert c.call("newtls")["tls_rate"] == 1
    assert c.call("authfail")["auth_rate"] == 1
    assert c.call("disconnect") == counts(count=1, conn_rate=2, message_rate=1,
                                          recipient_rate=1, tls_rate=1, auth_rate=1)
    assert c.call("disconnect")["count"] == 0
    assert c.call("disconnect")["count"] == 0            # never below 0
    # keys are (service, address): others are separate
    assert c.call("connect", service="submission")["count"] == 1
    assert c.call("connect", addr="2001:db8::1") == counts(count=1, conn_rate=1)
    assert c.call("lookup", addr="192.0.2.1") == counts(count=0, conn_rate=2, message_rate=1,
                                                          recipient_rate=1, tls_rate=1,
                                                          auth_rate=1)
    # pipelined: replies in order
    c.sock.sendall(b"".join(phwire.encode(request="connect", service="pop3",
                                          client_address="198.51.100.7") for _ in range(50)))
    got = [int(dict(c.reply())["count"]) for _ in range(50)]
    assert got == list(range(1, 51))
    c.close()


def test_release_when_connection_closes(instance):
    start(instance)
    a, b = Limits(instance), Limits(instance)
    for _ in range(3):
        a.call("connect")
    assert b.call("connect")["count"] == 4
    # a disconnect on another connection takes back only its own connects
    assert b.call("disconnect")["count"] == 3
    assert b.call("disconnect")["count"] == 3
    a.close()
    deadline = time.monotonic() + 5
    while b.call("lookup")["count"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.call("lookup") == counts(conn_rate=4)
    b.close()


KILLED_CLIENT = r"""
import socket, sys, time
sys.path.insert(0, sys.argv[2])
import phwire
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
r = phwire.IpcReader(s)
r.message()
for _ in range(5):
    s.sendall(phwire.encode(request="connect", service="smtp", client_address="203.0.113.9"))
    r.message()
print("connected", flush=True)
time.sleep(60)
"""


def test_release_when_client_process_is_killed(instance):
    start(instance)
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT,
                             str(instance.queue / "private" / "client-limits"), tests_dir],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "connected"
        c = Limits(instance)
        assert c.call("lookup", addr="203.0.113.9")["count"] == 5
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while c.call("lookup", addr="203.0.113.9")["count"] != 0:
            assert time.monotonic() < deadline, "connects of the killed client not released"
            time.sleep(0.05)
        assert c.call("lookup", addr="203.0.113.9") == counts(conn_rate=5)
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_rate_window_rolls_over(instance):
    start(instance, client_limits_rate_time_unit="2s")
    c = Limits(instance)
    first = c.call("connect")
    assert first == counts(count=1, conn_rate=1)
    c.call("message")
    c.call("recipient")
    assert c.call("connect") == counts(count=2, conn_rate=2, message_rate=1, recipient_rate=1)
    time.sleep(2.3)
    # the window ended: rates start again; the concurrent count stays
    assert c.call("lookup") == counts(count=2)
    assert c.call("message") == counts(count=2, message_rate=1)
    assert c.call("connect") == counts(count=3, conn_rate=1, message_rate=1)
    c.close()


def test_idle_entries_expire(instance):
    start(instance, client_limits_rate_time_unit="1s")
    c = Limits(instance)
    for i in range(200):
        c.call("authfail", addr=f"10.1.0.{i}")
    assert len(c.list()) == 200
    deadline = time.monotonic() + 6
    while c.list() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.list() == []
    c.close()


def test_flood_of_addresses_is_bounded(instance):
    start(instance, client_limits_max_entries="1000")
    known = Limits(instance)
    pid = limits_pid(instance)
    for _ in range(3):
        known.call("connect", addr="192.0.2.55")
    known.call("message", addr="192.0.2.55")
    flood = Limits(instance)

    def burst(first, n, request_pairs):
        batch = []
        for i in range(first, first + n):
            addr = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            for req in request_pairs:
                batch.append(phwire.encode(request=req, service="smtp", client_address=addr))
        # pipelined, 250 at a time: a client that sends without reading
        # its replies would stall on a full socket buffer
        for at in range(0, len(batch), 250):
            part = batch[at:at + 250]
            flood.sock.sendall(b"".join(part))
            for _ in range(len(part)):
                flood.reply()

    burst(0, 2000, ("connect", "disconnect"))
    rss_2k = rss_kib(pid)
    for first in range(2000, 20000, 2000):
        burst(first, 2000, ("connect", "disconnect"))
    rows = known.list()
    assert len(rows) == 1000, len(rows)
    if not os.environ.get("POSTHORN_SANITIZED"):      # ASan keeps freed memory
        assert rss_kib(pid) - rss_2k < 2048, (rss_2k, rss_kib(pid))
    # the known client, busy with 3 connections, was never dropped
    assert known.call("lookup", addr="192.0.2.55") == counts(count=3, conn_rate=3, message_rate=1)
    assert rows[0]["client_address"] == "192.0.2.55" and rows[0]["count"] == 3
    assert known.call("connect", addr="192.0.2.55")["count"] == 4
    instance.wait_log(r"client-limits.*warning: client-limits: \d+ entries \(client_limits_max_entries = 1000\): forgetting idle")
    # now fill the table with busy entries: a new client is answered as
    # if new (not refused, not stored) and a warning is logged
    burst(100000, 1000, ("connect",))
    fresh = known.call("connect", addr="198.51.100.200")
    assert fresh == counts(count=1, conn_rate=1)
    assert known.call("connect", addr="198.51.100.200") == counts(count=1, conn_rate=1)
    assert known.call("lookup", addr="192.0.2.55")["count"] == 4
    assert len(known.list()) == 1000
    instance.wait_log(r"warning: client-limits: all 1000 entries have open connections")
    # the flood's connection closes: its 1000 connects are released
    flood.close()
    deadline = time.monotonic() + 5
    while known.list()[1]["count"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert known.call("connect", addr="198.51.100.200") == counts(count=1, conn_rate=1)
    assert known.call("connect", addr="198.51.100.200") == counts(count=2, conn_rate=2)
    known.close()


@pytest.mark.parametrize("message,reason", [
    (dict(request="frobnicate", service="smtp", client_address="192.0.2.1"), "unknown request"),
    (dict(request="connect", service="smtp"), 'missing attribute "client_address"'),
    (dict(request="connect", client_address="192.0.2.1"), 'missing attribute "service"'),
    (dict(service="smtp", client_address="192.0.2.1"), 'missing attribute "request"'),
    (dict(request="connect", service="smtp", client_address="192.0.2.1", colour="red"),
     'unexpected attribute "colour"'),
    (dict(request="connect", service="smtp", client_address="a b"), "bad client address"),
    (dict(request="connect", service="", client_address="192.0.2.1"), "bad service name"),
    (dict(request="connect", service="smtp", client_address="1" * 65), "bad client address"),
    (dict(request="list", max=0), "bad max value"),
    (dict(request="list", max=10001), "max value above 10000"),
    (dict(request="list", max="12x"), "bad max value"),
])
def test_bad_requests_answered_error(instance, message, reason):
    start(instance)
    c = Limits(instance)
    assert c.call("connect")["count"] == 1
    c.send(**message)
    assert c.reply() == [("status", "error"), ("reason", reason)]
    with pytest.raises(EOFError):
        c.reply()                                   # then closed ...
    c.close()
    d = Limits(instance)                            # ... releasing its connect
    deadline = time.monotonic() + 5
    while d.call("lookup")["count"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    instance.wait_log(r"warning: client-limits: bad request: " + reason.replace('"', '.'))
    d.close()


def test_duplicate_attribute_and_garbage(instance):
    start(instance)
    c = Limits(instance)
    c.sock.sendall(phwire.encode([("request", "connect"), ("request", "connect"),
                                  ("service", "smtp"), ("client_address", "192.0.2.1")]))
    assert c.reply() == [("status", "error"), ("reason", 'duplicate attribute "request"')]
    c.close()
    c = Limits(instance)
    c.sock.sendall(b"7:request,x")                  # malformed netstring
    with pytest.raises((EOFError, ConnectionResetError)):
        c.reply()
    c.close()
    assert Limits(instance).call("lookup") == counts()


def test_statistics_logged(instance):
    start(instance, client_limits_status_update_time="1s")
    c = Limits(instance)
    for _ in range(4):
        c.call("connect", addr="192.0.2.77")
    c.call("message", addr="192.0.2.77")
    mark = 0
    m = instance.wait_log(r"client-limits\[\d+\]: statistics: max connection count 4 for "
                          r"\(smtp:192\.0\.2\.77\) at (\w{3} [ \d]\d \d\d:\d\d:\d\d)",
                          timeout=5, since=mark)
    # the time stamp is the wall clock's (local time), not the monotonic
    # clock the table counts windows with
    now = time.time()
    stamps = {time.strftime("%b %e %H:%M:%S", time.localtime(now - d)) for d in range(0, 30)}
    assert m.group(1) in stamps, m.group(0)
    instance.wait_log(r"statistics: max connection rate 4/60s for \(smtp:192\.0\.2\.77\)")
    instance.wait_log(r"statistics: max message rate 1/60s for \(smtp:192\.0\.2\.77\)")
    instance.wait_log(r"statistics: max cache size 1 at ")
    c.close()


def run_limits(inst, *args):
    return subprocess.run([str(POSTHORN), "-c", str(inst.etc), "limits", *args],
                          capture_output=True, text=True, timeout=30)


def test_posthorn_limits(instance):
    start(instance)
    c = Limits(instance)
    for _ in range(3):
        c.call("connect", addr="192.0.2.10")
    c.call("message", addr="192.0.2.10")
    c.call("recipient", addr="192.0.2.10")
    c.call("connect", service="pop3", addr="2001:db8::7")
    c.call("authfail", service="pop3", addr="2001:db8::7")
    res = run_limits(instance)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "CLIENT", "CONN", "CONN/60s", "MSG/60s",
                                "RCPT/60s", "TLS/60s", "AUTH/60s"], lines
    assert lines[1].split() == ["smtp", "192.0.2.10", "3", "3", "1", "1", "0", "0"]
    assert lines[2].split() == ["pop3", "2001:db8::7", "1", "1", "0", "0", "0", "1"]
    assert len(lines) == 3
    res = run_limits(instance, "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows == [
        {"service": "smtp", "client_address": "192.0.2.10", "count": 3, "conn_rate": 3,
         "message_rate": 1, "recipient_rate": 1, "tls_rate": 0, "auth_rate": 0},
        {"service": "pop3", "client_address": "2001:db8::7", "count": 1, "conn_rate": 1,
         "message_rate": 0, "recipient_rate": 0, "tls_rate": 0, "auth_rate": 1}]
    res = run_limits(instance, "2001:db8::7")
    assert res.returncode == 0
    assert [l.split()[1] for l in res.stdout.splitlines()[1:]] == ["2001:db8::7"]
    res = run_limits(instance, "192.0.2.99")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 1
    res = run_limits(instance, "192.0.2.0/24", "10.0.0.1")
    assert [l.split()[1] for l in res.stdout.splitlines()[1:]] == ["192.0.2.10"]
    assert run_limits(instance, "--bogus").returncode == 2
    res = run_limits(instance, "not-an-address")
    assert res.returncode == 2 and "posthorn: error:" in res.stderr
    c.close()
    instance.stop()
    res = run_limits(instance)
    assert res.returncode == 1
    assert "client-limits" in res.stderr


def test_client_that_never_reads_is_disconnected(instance):
    """A client that pipelines without reading its replies stalls the
    process at most about a second at a time, then is disconnected (its
    connects released); the others are served."""
    import threading
    start(instance)
    good = Limits(instance)
    bad = Limits(instance)
    one = phwire.encode(request="connect", service="smtp", client_address="203.0.113.66")
    errors = []

    def flood():
        try:
            bad.sock.settimeout(20)
            bad.sock.sendall(one * 20000)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=flood)
    t.start()
    try:
        deadline = time.monotonic() + 15
        released = False
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            n = good.call("lookup", addr="203.0.113.66")["count"]
            assert time.monotonic() - t0 < 2.5
            if n == 0 and not t.is_alive():
                released = True
                break
            time.sleep(0.1)
        assert released, "the non-reading client was not disconnected"
        assert good.call("connect")["count"] == 1
    finally:
        bad.close()
        t.join(timeout=20)


# ------------------------------------------ the C client library, for real

PH_LIMITS = BUILD / "testbin" / "ph-limits"


def ph_limits(inst, *args, timeout=30):
    return subprocess.run([str(PH_LIMITS), str(inst.queue / "private" / "client-limits"), *args],
                          capture_output=True, text=True, timeout=timeout)


def wait_count(c, want, addr, timeout=5):
    deadline = time.monotonic() + timeout
    while (got := c.call("lookup", addr=addr)["count"]) != want:
        assert time.monotonic() < deadline, (got, want)
        time.sleep(0.05)


def test_library_blocking_calls(instance):
    start(instance)
    res = ph_limits(instance, "call", "connect", "smtp", "192.0.2.30",
                    "connect", "smtp", "192.0.2.30", "message", "smtp", "192.0.2.30",
                    "disconnect", "smtp", "192.0.2.30", "authfail", "submission", "192.0.2.30",
                    "lookup", "smtp", "192.0.2.30")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["ok 1 1 0 0 0 0", "ok 2 2 0 0 0 0", "ok 2 2 1 0 0 0",
                                       "ok 1 2 1 0 0 0", "ok 0 0 0 0 0 1", "ok 1 2 1 0 0 0"]
    assert res.stderr == ""
    # the process exited: its connection closed, its connect released
    c = Limits(instance)
    wait_count(c, 0, "192.0.2.30")
    c.close()


def test_library_async_pipelined(instance):
    start(instance)
    res = ph_limits(instance, "async", "100", "pop3", "192.0.2.31")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines == [f"{i} ok {i} {i} 0 0 0 0" for i in range(1, 101)] + ["101 ok 100 100 0 0 0 0"]
    c = Limits(instance)
    wait_count(c, 0, "192.0.2.31")
    c.close()


def test_library_connects_released_when_killed(instance):
    start(instance)
    proc = subprocess.Popen([str(PH_LIMITS), str(instance.queue / "private" / "client-limits"),
                             "hold", "7", "smtp", "192.0.2.32"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held 7"
        c = Limits(instance)
        assert c.call("lookup", addr="192.0.2.32")["count"] == 7
        proc.kill()
        proc.wait(timeout=5)
        wait_count(c, 0, "192.0.2.32")
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_library_fails_open_with_one_warning(instance):
    start(instance)
    instance.stop()
    res = ph_limits(instance, "call", "connect", "smtp", "192.0.2.33",
                    "connect", "smtp", "192.0.2.33", "message", "smtp", "192.0.2.33")
    assert res.returncode == 0
    assert [l.strip() for l in res.stdout.splitlines()] == ["fail"] * 3
    assert res.stderr.count("warning:") == 1, res.stderr
    assert "client limits not enforced (fail open)" in res.stderr
    res = ph_limits(instance, "async", "3", "smtp", "192.0.2.33")
    lines = res.stdout.splitlines()
    assert [l.split()[:2] for l in lines] == [[str(i), "fail"] for i in range(1, 5)], lines
    assert "client-limits" in lines[0] and "private/client-limits" in lines[0]


def test_reload_starts_empty_and_clients_reconnect(instance):
    start(instance)
    c = Limits(instance)
    c.call("connect", addr="192.0.2.40")
    old = limits_pid(instance)
    mark = instance.reload()
    # the old process closes its idle clients at once and logs its figures
    with pytest.raises((EOFError, ConnectionResetError)):
        c.reply()
    instance.wait_log(r"statistics: max connection count 1 for \(smtp:192\.0\.2\.40\)", since=mark)
    deadline = time.monotonic() + 5
    while pid_alive(old):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    d = Limits(instance)
    assert d.call("lookup", addr="192.0.2.40") == counts()
    res = ph_limits(instance, "call", "connect", "smtp", "192.0.2.40")
    assert res.stdout.splitlines() == ["ok 1 1 0 0 0 0"], res
    d.close()

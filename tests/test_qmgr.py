"""qmgr: queue states and commit points, routing, per-recipient results,
deferral with backoff, flush, expiry, notices, recovery, corrupt files
and concurrency, against fake delivery agents.

Each test runs a real master with only the qmgr service on a throwaway
instance (tests/conftest.py). Queue files are written by the test in
the queue file format (docs/queue-file.md). The delivery agent
(private/local) and the bounce service (private/bounce) are Python
threads that speak the deliver and bounce protocols (lib/mail/
mail_proto.h, netstring IPC framing from docs/ipc.md) and answer as the
test decides, so qmgr is tested before and independently of the real
local-delivery and bounce daemons. Every test stays well under 20 s."""
import os
import pathlib
import pwd
import re
import socket
import stat
import threading
import time

import pytest

import phwire
from conftest import IS_ROOT
from phwire import IpcReader, encode, hello, parse_records_at, write_queue_file

QUEUE_DIRS = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt",
              "defer", "bounce", "private", "public")


# -- queue files -------------------------------------------------------------
def queue_file(sender, rcpts, body="Subject: test\n\nhello\n", arrival=None, attrs=()):
    """Bytes of a queue file. rcpts: addresses, or dicts with address,
    notify, orcpt, orig, done."""
    arrival = time.time() if arrival is None else arrival
    lines = body.split("\n")[:-1] if body.endswith("\n") else body.split("\n")
    return phwire.queue_file(sender, rcpts, lines, arrival="%.6f" % arrival, attrs=attrs)


def records(data):
    """[(offset, type, data)] of a queue file."""
    return [(off, t, d.decode(errors="replace")) for off, t, d in parse_records_at(data)]


# -- fakes ---------------------------------------------------------------------
# what a deliver reply ends with (mail_proto.h, version 3): the next hop answered;
# version 5: the session's TLS
DEST_OK = [("dest_status", "ok"), ("dest_reason", ""), ("conn_use", "0"), ("tls", "")]


class FakeServer:
    """A unix-socket server speaking one protocol: handshake, then for
    every request answer(attrs) -> reply attrs (or None: close without
    answering). Records requests; counts concurrent requests."""

    def __init__(self, path, proto, answer, owner_uid=None):
        self.path = str(path)
        self.proto = proto
        self.answer = answer
        self.requests = []
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.connections = 0
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        if owner_uid is not None:
            os.chown(self.path, owner_uid, -1)
        self.sock.listen(64)
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            conn.sendall(hello(self.proto))
            reader = IpcReader(conn)
            while True:
                attrs = reader.message()
                with self.lock:
                    self.requests.append(attrs)
                    self.inflight += 1
                    self.max_inflight = max(self.max_inflight, self.inflight)
                try:
                    reply = self.answer(attrs)
                finally:
                    with self.lock:
                        self.inflight -= 1
                if reply is None:
                    break
                if self.proto == "deliver" and not any(k == "dest_status" for k, _ in reply):
                    reply = list(reply) + DEST_OK    # deliver protocol v3
                conn.sendall(encode(reply))
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


def rcpts_of(attrs):
    """Per-recipient dicts of a deliver request."""
    out = []
    for name, value in attrs:
        if name == "rcpt_address":
            out.append({})
        if name.startswith("rcpt_"):
            out[-1][name] = value
    return out


def agent_answer(policy, delay=0.0):
    """An answer function: policy(address) -> (status, dsn, reason)."""
    def answer(attrs):
        if delay:
            time.sleep(delay)       # a slow agent (not a wait for qmgr)
        reply = []
        for r in rcpts_of(attrs):
            res = policy(r["rcpt_address"])
            if res is None:
                return None
            status, dsn, reason = res
            reply += [("rcpt_offset", r["rcpt_offset"]), ("rcpt_status", status),
                      ("rcpt_dsn", dsn), ("rcpt_reason", reason), ("relay", "local")]
        return reply
    return answer


def bounce_answer(attrs):
    return [("status", 0), ("queue_id", ""), ("reason", "")]


class Q:
    """An instance with qmgr under master, fakes at private/, helpers."""

    def __init__(self, instance, **main):
        self.inst = instance
        self.queue = instance.queue
        self.uid = pwd.getpwnam(instance.mail_owner).pw_uid if IS_ROOT else os.getuid()
        self.gid = pwd.getpwnam(instance.mail_owner).pw_gid if IS_ROOT else os.getgid()
        for d in QUEUE_DIRS:
            p = self.queue / d
            p.mkdir(mode=0o700, exist_ok=True)
            if IS_ROOT:
                os.chown(p, self.uid, self.gid)
        (self.queue / "public").chmod(0o755)
        params = dict(mydestination="example.test, localhost", myhostname="mx.example.test",
                      minimal_backoff_time="300s", maximal_backoff_time="4000s",
                      qmgr_incoming_scan_delay="1s", alias_maps="",
                      virtual_alias_maps="", virtual_mailbox_maps="")
        params.update(main)
        instance.set_main(**params)
        instance.write_master_cf("qmgr unix n - n 300 1 qmgr\n")
        self.fakes = []

    def agent(self, name, policy, delay=0.0):
        f = FakeServer(self.queue / "private" / name, "deliver", agent_answer(policy, delay),
                       self.uid if IS_ROOT else None)
        self.fakes.append(f)
        return f

    def bounce(self, answer=bounce_answer):
        f = FakeServer(self.queue / "private" / "bounce", "bounce", answer,
                       self.uid if IS_ROOT else None)
        self.fakes.append(f)
        return f

    def start(self):
        self.inst.start()
        self.wait_socket()

    def wait_socket(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.queue / "public" / "qmgr").exists():
                return
            time.sleep(0.05)
        raise AssertionError("public/qmgr did not appear")

    def trigger(self, what=b"I"):
        phwire.trigger(self.queue / "public" / "qmgr", what)

    def put(self, data, where="incoming", trigger=True):
        """Write a queue file the way cleanup does; returns its ID."""
        qid = write_queue_file(self.queue / where, data, self.uid if IS_ROOT else None,
                               self.gid)
        if trigger and where == "incoming":
            self.trigger(b"I")
        return qid

    def put_in_progress(self, data):
        """A file in incoming/ as cleanup leaves it while still writing it:
        named by its ID, mode 0200; no trigger. Returns its ID."""
        return write_queue_file(self.queue / "incoming", data, self.uid if IS_ROOT else None,
                                self.gid, mode=0o200)

    def where(self, qid):
        return [d for d in ("incoming", "active", "deferred", "hold", "corrupt")
                if (self.queue / d / qid).exists()]

    def wait_where(self, qid, want, timeout=8):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.where(qid) == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"{qid} is in {self.where(qid)}, want {want}; log:\n"
                             + self.inst.log_text()[-3000:])

    def stop(self):
        for f in self.fakes:
            f.stop()


@pytest.fixture
def q(instance):
    if not (pathlib.Path(instance.libexec) / "qmgr").exists():
        pytest.skip("qmgr not built")
    qm = Q(instance)
    yield qm
    qm.stop()


def sent_all(address):
    return ("sent", "2.0.0", "delivered to maildir")


def deliver_probe(q, rcpt="probe@example.test", timeout=10):
    """A barrier: one more message through qmgr (trigger "I"), waited for
    until it is removed. What qmgr was asked to do before (a scan, a
    flush, a recovery at start, answers already on its sockets) it has
    done by then: qmgr runs one event loop and handles all of that before
    or together with the probe's trigger, and the probe still needs an
    agent's answer after it. Returns the probe's queue ID."""
    qid = q.put(queue_file("a@example.org", [rcpt]))
    q.inst.wait_log(rf"{qid}: removed", timeout=timeout)
    return qid


def wait_agent_idle(agent, timeout=5):
    """Wait until the fake agent has no request in hand (its answers are
    written, or about to be)."""
    deadline = time.monotonic() + timeout
    while agent.inflight > 0:
        assert time.monotonic() < deadline, "the agent still has requests in hand"
        time.sleep(0.02)


# -- tests ---------------------------------------------------------------------
def test_delivers_and_removes(q):
    """incoming -> active -> delivered: done marks, log lines, file gone;
    one request per local recipient (local_destination_recipient_limit 1)."""
    agent = q.agent("local", sent_all)
    q.start()
    data = queue_file("alice@example.org", ["bob@example.test",
                                             {"address": "carol@example.test",
                                              "orig": "info@example.test"}])
    qid = q.put(data)
    q.inst.wait_log(rf"{qid}: removed")
    log = q.inst.log_text()
    assert re.search(rf"{qid}: from=<alice@example.org>, size=21, nrcpt=2 \(queue active\)", log)
    assert re.search(rf"{qid}: to=<bob@example.test>, relay=local, delay=[0-9.]+, "
                     rf"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2.0.0, "
                     rf"status=sent \(delivered to maildir\)", log)
    assert re.search(rf"{qid}: to=<carol@example.test>, orig_to=<info@example.test>, "
                     rf"relay=local, .*status=sent", log)
    q.wait_where(qid, [])           # removed by qmgr's removal thread
    assert not (q.queue / "defer" / qid).exists()
    assert len(agent.requests) == 2
    req = dict(agent.requests[0])
    assert req["request"] == "deliver"
    assert req["queue_id"] == qid
    assert req["queue_file"] == f"active/{qid}"
    assert req["sender"] == "alice@example.org"
    assert req["nexthop"] == "example.test"
    offsets = {r[1]: r[0] for r in [(o, d) for o, t, d in records(data) if t == "R"]}
    m_offset = [o for o, t, d in records(data) if t == "M"][0]
    assert int(req["data_offset"]) == m_offset
    got = {r["rcpt_address"]: int(r["rcpt_offset"])
           for a in agent.requests for r in rcpts_of(a)}
    assert got == offsets


def test_defer_then_flush(q):
    """A deferred recipient: defer/ID reason, D mark for the sent one,
    deferred/ with mtime = next retry; "F" brings it back and finishes."""
    state = {"bob": ("defer", "4.2.2", "mailbox full")}
    q.agent("local", lambda a: state.get(a.split("@")[0], ("sent", "2.0.0", "ok")))
    q.start()
    qid = q.put(queue_file("alice@example.org", ["bob@example.test", "carol@example.test"]))
    q.wait_where(qid, ["deferred"])
    t0 = time.time()
    st = os.stat(q.queue / "deferred" / qid)
    assert t0 + 250 < st.st_mtime <= t0 + 301, "next retry = now + minimal_backoff_time"
    recs = records((q.queue / "deferred" / qid).read_bytes())
    kinds = {d: t for o, t, d in recs if t in "RD"}
    assert kinds == {"bob@example.test": "R", "carol@example.test": "D"}
    assert "rcpt=bob@example.test, dsn=4.2.2, reason=mailbox full" in \
        (q.queue / "defer" / qid).read_text()
    log = q.inst.log_text()
    assert re.search(rf"{qid}: to=<bob@example.test>, .*dsn=4.2.2, status=deferred \(mailbox full\)", log)
    # a normal incoming scan does not touch it before its time: the probe
    # is taken by such a scan, and by its removal the scan is over
    deliver_probe(q, rcpt="dave@example.test")
    assert q.where(qid) == ["deferred"]
    assert q.inst.count_log(rf"{qid}: to=<bob@example.test>.*status=deferred") == 1, \
        "tried again before its time"
    state.clear()
    mark = q.inst.log_mark()
    q.trigger(b"F")
    q.inst.wait_log(rf"{qid}: removed", since=mark)
    assert q.inst.count_log(rf"{qid}: to=<carol@example.test>.*status=sent", since=mark) == 0
    assert q.inst.count_log(rf"{qid}: to=<bob@example.test>.*status=sent", since=mark) == 1
    q.wait_where(qid, [])           # removed by qmgr's removal thread, defer log first
    assert not (q.queue / "defer" / qid).exists()


def test_bounce_asks_bounce_service(q):
    """A bounce result asks private/bounce for a failure notice, then
    marks done; NOTIFY=NEVER gets no notice; NOTIFY=SUCCESS gets a
    success notice after delivery."""
    q.agent("local", lambda a: ("bounce", "5.1.1", "unknown user") if a.startswith("nobody")
            else ("sent", "2.0.0", "ok"))
    bounce = q.bounce()
    q.start()
    qid = q.put(queue_file("alice@example.org", [
        "nobody@example.test", {"address": "nobody2@example.test", "notify": "never"},
        {"address": "bob@example.test", "notify": "success", "orcpt": "rfc822;bob@example.test"}],
        attrs=["dsn_envid=ENV42", "dsn_ret=HDRS"]))
    q.inst.wait_log(rf"{qid}: removed")
    log = q.inst.log_text()
    assert re.search(rf"{qid}: to=<nobody@example.test>, .*dsn=5.1.1, status=bounced \(unknown user\)", log)
    assert re.search(rf"{qid}: to=<nobody2@example.test>, .*status=bounced", log)
    reqs = [dict(r) for r in bounce.requests]
    failure = [r for r in reqs if r["request"] == "failure"]
    success = [r for r in reqs if r["request"] == "success"]
    assert len(failure) == 1 and len(success) == 1
    f = failure[0]
    assert f["queue_id"] == qid and f["sender"] == "alice@example.org"
    assert f["dsn_envid"] == "ENV42" and f["dsn_ret"] == "HDRS"
    assert [v for n, v in bounce.requests[reqs.index(f)] if n == "rcpt_address"] == \
        ["nobody@example.test"]
    assert f["rcpt_action"] == "failed" and f["rcpt_dsn"] == "5.1.1"
    assert success[0]["rcpt_address"] == "bob@example.test"
    assert success[0]["rcpt_action"] == "delivered"
    assert success[0]["rcpt_orcpt"] == "rfc822;bob@example.test"


def test_bounce_service_down_defers(q):
    """No bounce service: the bounced recipient is deferred, not lost."""
    q.agent("local", lambda a: ("bounce", "5.1.1", "unknown user"))
    q.start()
    qid = q.put(queue_file("alice@example.org", ["nobody@example.test"]))
    q.wait_where(qid, ["deferred"])
    assert "R" in [t for o, t, d in records((q.queue / "deferred" / qid).read_bytes())]
    assert q.inst.count_log(rf"{qid}: to=<nobody@example.test>.*status=deferred "
                            rf"\(bounce or notification service failure") == 1


def test_transport_unavailable_defers(q):
    """Remote mail while there is no smtp agent: deferred, never lost."""
    q.start()
    qid = q.put(queue_file("alice@example.test", ["someone@remote.example"]))
    q.wait_where(qid, ["deferred"])
    q.inst.wait_log(rf"{qid}: to=<someone@remote.example>, relay=none, .*dsn=4.3.0, "
                    rf"status=deferred \(mail transport unavailable\)")
    assert "rcpt=someone@remote.example, dsn=4.3.0, reason=mail transport unavailable" in \
        (q.queue / "defer" / qid).read_text()


def test_agent_dies_mid_request(q):
    """An agent that closes without answering: deferred."""
    q.agent("local", lambda a: None)
    q.start()
    qid = q.put(queue_file("alice@example.org", ["bob@example.test"]))
    q.wait_where(qid, ["deferred"])
    q.inst.wait_log(rf"{qid}: to=<bob@example.test>.*status=deferred \(mail transport unavailable\)")


def test_expired_returned(instance):
    """Past maximal_queue_lifetime a deferral becomes a bounce (expired)."""
    q = Q(instance, maximal_queue_lifetime="1d")
    try:
        bounce = q.bounce()
        q.start()
        qid = q.put(queue_file("alice@example.test", ["someone@remote.example"],
                               arrival=time.time() - 2 * 86400))
        q.inst.wait_log(rf"{qid}: removed")
        log = q.inst.log_text()
        assert re.search(rf"{qid}: to=<someone@remote.example>, .*dsn=4.3.0, "
                         rf"status=expired \(mail transport unavailable\)", log)
        assert re.search(rf"{qid}: from=<alice@example.test>, status=expired, returned to sender", log)
        assert dict(bounce.requests[0])["request"] == "failure"
    finally:
        q.stop()


def test_delay_warning_once(instance):
    """delay_warning_time: one delay notice, recorded in defer/ID."""
    q = Q(instance, delay_warning_time="1h")
    try:
        bounce = q.bounce()
        q.start()
        qid = q.put(queue_file("alice@example.test", ["someone@remote.example"],
                               arrival=time.time() - 7200))
        q.wait_where(qid, ["deferred"])
        q.inst.wait_log(rf"{qid}: sender delay notification sent")
        assert "delay_warning=sent" in (q.queue / "defer" / qid).read_text()
        mark = q.inst.log_mark()
        q.trigger(b"F")
        q.inst.wait_log(rf"{qid}: to=<someone@remote.example>.*status=deferred", since=mark)
        # back in deferred/: a second delay notice, had qmgr asked for one,
        # would have been taken by bounce before the move (the message
        # waits for the notice), so no sleep is needed to see that none was
        q.wait_where(qid, ["deferred"])
        assert [dict(r)["request"] for r in bounce.requests] == ["delay"]
        assert dict(bounce.requests[0])["rcpt_action"] == "delayed"
    finally:
        q.stop()


def test_recovery_corrupt_temp_hold(q):
    """At start: active/ files are delivered; a corrupt file goes to
    corrupt/; temp files in incoming/ and files in hold/ stay."""
    q.agent("local", sent_all)
    left = q.put(queue_file("a@example.test", ["bob@example.test"]), where="active")
    bad = q.put(queue_file("a@example.test", ["bob@example.test"])[:-5], trigger=False)
    held = q.put(queue_file("a@example.test", ["bob@example.test"]), where="hold")
    tmp = q.queue / "incoming" / "tmp.1.2.3"
    tmp.write_bytes(b"half written")
    done = q.put(queue_file("a@example.test", [{"address": "bob@example.test", "done": True}]),
                 where="active")
    q.start()
    q.trigger(b"W")         # as master's wake-up: master starts qmgr on demand
    q.inst.wait_log(rf"{left}: removed")
    q.inst.wait_log(rf"{done}: removed")
    q.inst.wait_log(rf"{bad}: corrupt queue file: .*moved to corrupt/")
    assert q.where(bad) == ["corrupt"]
    assert q.where(held) == ["hold"]
    assert tmp.exists()
    assert q.inst.count_log(rf"{done}: to=") == 0


def test_concurrency_limits(q):
    """local: at most 2 parallel deliveries per recipient, but different
    recipients in parallel; a slow agent does not hold up the others."""
    agent = q.agent("local", sent_all, delay=0.4)
    q.start()
    ids = [q.put(queue_file("a@example.org", ["same@example.test"]), trigger=False)
           for _ in range(6)]
    q.trigger(b"I")
    for qid in ids:
        q.inst.wait_log(rf"{qid}: removed", timeout=10)
    assert agent.max_inflight == 2
    agent.max_inflight = 0
    ids = [q.put(queue_file("a@example.org", [f"user{i}@example.test"]), trigger=False)
           for i in range(6)]
    t0 = time.monotonic()
    q.trigger(b"I")
    for qid in ids:
        q.inst.wait_log(rf"{qid}: removed", timeout=10)
    assert agent.max_inflight >= 5
    assert time.monotonic() - t0 < 2.0


def test_safety_scan_without_trigger(q):
    """A lost trigger only delays: the incoming/ timer finds the file."""
    q.agent("local", sent_all)
    q.start()
    deliver_probe(q)                # qmgr runs, its start-up scans are over
    qid = q.put(queue_file("a@example.org", ["bob@example.test"]), trigger=False)
    q.inst.wait_log(rf"{qid}: removed", timeout=5)


def test_in_progress_file_is_not_taken(q):
    """A file in incoming/ whose owner may not read it (mode 0200) is still
    being written by cleanup: qmgr takes it neither when a trigger names
    it nor when it scans incoming/. Once it is 0600 (cleanup's commit) the
    trigger takes it (architecture.md decision 51)."""
    q.agent("local", sent_all)
    q.start()
    deliver_probe(q)
    qid = q.put_in_progress(queue_file("a@example.org", ["bob@example.test"]))
    path = q.queue / "incoming" / qid
    q.trigger(f"I{qid}\n".encode())            # the trigger names it
    q.trigger(b"I")                             # and a scan
    time.sleep(1.5)                             # the 1 s safety-net scan, too
    deliver_probe(q)                            # a barrier: all that is done
    assert q.where(qid) == ["incoming"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o200
    assert q.inst.count_log(rf"qmgr\[\d+\]: {qid}: ") == 0
    path.chmod(0o600)
    q.trigger(f"I{qid}\n".encode())
    q.inst.wait_log(rf"{qid}: removed")
    assert q.where(qid) == []


def test_stale_in_progress_file_is_removed(q):
    """What a cleanup that died while writing left (mode 0200) is removed
    by the sweep of the deferred scan once older than twice
    daemon_timeout (18000 s), with a log line; a fresh one stays; neither
    is ever delivered."""
    q.agent("local", sent_all)
    old = q.put_in_progress(queue_file("a@example.org", ["old@example.test"]))
    fresh = q.put_in_progress(queue_file("a@example.org", ["fresh@example.test"]))
    then = time.time() - 2 * 18000 - 600
    os.utime(q.queue / "incoming" / old, (then, then))
    q.start()
    q.trigger(b"F")                             # a flush runs the deferred scan now
    q.inst.wait_log(rf"qmgr\[\d+\]: warning: {old}: removed stale incomplete queue file "
                    rf"incoming/{old} \(mode 0200")
    deliver_probe(q)
    assert q.where(old) == []
    assert q.where(fresh) == ["incoming"]
    assert q.inst.count_log(r"(old|fresh)@example.test") == 0


def start_three_in_flight(q, agent):
    """Start qmgr with three one-recipient messages and wait until all
    three deliveries are in flight at the (slow) agent; their queue IDs."""
    q.start()
    ids = [q.put(queue_file("a@example.org", [f"user{i}@example.test"]), trigger=False)
           for i in range(3)]
    q.trigger(b"I")
    deadline = time.monotonic() + 5
    while agent.inflight < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert agent.inflight == 3
    return ids


def test_reload_finishes_deliveries_in_flight(q):
    """On a reload master sends qmgr SIGHUP. qmgr starts nothing new but
    lets the deliveries in flight finish and records them before it exits,
    so its successor does not make them again: each recipient gets one
    delivery request, and every message is removed."""
    agent = q.agent("local", sent_all, delay=1.5)
    ids = start_three_in_flight(q, agent)
    mark = q.inst.reload()
    q.inst.wait_log(r"finishing 3 deliveries in progress before exit", since=mark)
    for qid in ids:
        q.inst.wait_log(rf"{qid}: removed", timeout=10)
    for qid in ids:
        q.wait_where(qid, [])
    probe = deliver_probe(q)        # the successor runs: its recovery of active/ is over
    assert [dict(r)["queue_id"] for r in agent.requests].count(probe) == 1
    assert len(agent.requests) == 4, agent.requests
    assert q.inst.count_log(r"exiting with work still in progress") == 0


def test_reload_that_changes_qmgr_service_runs_one_qmgr(q):
    """A reload that changes qmgr's master.cf entry (unix -> fifo) makes
    master start a new qmgr while the old one still finishes its
    deliveries; the new one waits for the old one's lock on active/
    before it recovers active/, so nothing is delivered twice."""
    agent = q.agent("local", sent_all, delay=2.0)
    ids = start_three_in_flight(q, agent)
    q.inst.write_master_cf("qmgr fifo n - n 300 1 qmgr\n")
    mark = q.inst.reload()
    q.inst.wait_log(r"waiting for the previous qmgr to finish its deliveries", since=mark)
    for qid in ids:
        q.inst.wait_log(rf"{qid}: removed", timeout=10)
    for qid in ids:
        q.wait_where(qid, [])
    probe = deliver_probe(q)        # through the fifo: the new qmgr has recovered active/
    assert [dict(r)["queue_id"] for r in agent.requests].count(probe) == 1
    assert len(agent.requests) == 4, agent.requests
    assert q.inst.count_log(r"disappeared while active") == 0


# -- non-regular files in the queue (audit issue 7, item 13) -------------------
def make_fifo(q, where):
    """A FIFO under a valid queue ID in queue/where; returns the ID."""
    now = time.time_ns() // 1000
    qid = phwire.queue_id(now // 1000000, now % 1000000, 4242 + now % 1000)
    path = q.queue / where / qid
    os.mkfifo(path, 0o600)
    if IS_ROOT:
        os.chown(path, q.uid, q.gid)
    return qid


def assert_fifo_set_aside(q, fid):
    q.inst.wait_log(rf"{fid}: not a regular file; moved to corrupt/")
    assert q.where(fid) == ["corrupt"]
    assert stat.S_ISFIFO(os.lstat(q.queue / "corrupt" / fid).st_mode)


@pytest.mark.parametrize("where,trigger", [("incoming", b"I"), ("deferred", b"F")])
def test_fifo_in_queue_does_not_stop_qmgr(q, where, trigger):
    """A FIFO named like a queue file in incoming/ (met by a scan) or
    deferred/ (met by a flush): qmgr must not block in open(2) on it; it
    goes to corrupt/ and other mail still moves."""
    q.agent("local", sent_all)
    q.start()
    fid = make_fifo(q, where)
    q.trigger(trigger)
    q.inst.wait_log(rf"{fid}: not a regular file; moved to corrupt/")
    qid = q.put(queue_file("a@example.org", ["bob@example.test"]))
    q.inst.wait_log(rf"{qid}: removed", timeout=5)
    assert_fifo_set_aside(q, fid)


def test_fifo_in_active_at_recovery(q):
    """A FIFO left in active/: the recovery at start must not block on it
    (a restarted qmgr used to block again, for good)."""
    q.agent("local", sent_all)
    fid = make_fifo(q, "active")
    left = q.put(queue_file("a@example.org", ["bob@example.test"]), where="active")
    q.start()
    q.trigger(b"W")
    q.inst.wait_log(rf"{left}: removed", timeout=5)
    qid = q.put(queue_file("a@example.org", ["carol@example.test"]))
    q.inst.wait_log(rf"{qid}: removed", timeout=5)
    assert_fifo_set_aside(q, fid)


# -- posthorn queue delete in every state (audit issue 7, item 16) -------------
def ph_queue(q, *args):
    import subprocess
    from conftest import BUILD
    return subprocess.run([str(BUILD / "bin" / "posthorn"), "-c", str(q.inst.etc), "queue",
                           *args], capture_output=True, text=True, timeout=30)


def assert_deleted(q, qid, mark):
    """After a barrier (deliver_probe): qid left no trace and was logged
    removed once."""
    assert q.where(qid) == []
    assert not (q.queue / "defer" / qid).exists(), "orphan defer log"
    assert not (q.queue / "bounce" / qid).exists()
    assert q.inst.count_log(rf"{qid}: removed", since=mark) == 1
    assert q.inst.count_log(rf"{qid}: .*(cannot open|status=deferred)",
                            since=mark) == 0, q.inst.log_text()[-3000:]


def test_delete_active_message_in_flight(q):
    """`posthorn queue delete` of a message whose delivery is in flight:
    qmgr is told, drops it, ignores the agent's late answer, leaves no
    defer/ log and logs "removed" once; other mail moves on."""
    def answer_defer_if_gone(attrs):
        time.sleep(1.0)             # a slow agent: the delete comes meanwhile
        d = dict(attrs)
        gone = not (q.queue / d["queue_file"]).exists()
        reply = []
        for r in rcpts_of(attrs):
            st = ("defer", "4.3.0", "cannot open queue file") if gone else \
                ("sent", "2.0.0", "ok")
            reply += [("rcpt_offset", r["rcpt_offset"]), ("rcpt_status", st[0]),
                      ("rcpt_dsn", st[1]), ("rcpt_reason", st[2]), ("relay", "local")]
        return reply
    agent = FakeServer(q.queue / "private" / "local", "deliver", answer_defer_if_gone,
                       q.uid if IS_ROOT else None)
    q.fakes.append(agent)
    q.start()
    qid = q.put(queue_file("a@example.org", [f"u{i}@example.test" for i in range(5)]))
    deadline = time.monotonic() + 5
    while agent.inflight < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert agent.inflight >= 1
    mark = q.inst.log_mark()
    res = ph_queue(q, "delete", qid)
    assert res.returncode == 0 and f"{qid}: removed" in res.stdout, res.stderr
    q.inst.wait_log(rf"{qid}: removed", since=mark)
    wait_agent_idle(agent)          # the answers in flight are on their way back
    requests = len(agent.requests)
    q.trigger(b"F")
    deliver_probe(q, rcpt="bob@example.test")   # qmgr has read those answers by now
    assert_deleted(q, qid, mark)
    assert q.inst.count_log(rf"{qid}: .*status=", since=mark) == 0
    assert len(agent.requests) == requests + 1     # nothing more for the deleted one


def test_active_file_vanished_without_being_told(q):
    """A queue file that vanishes from active/ without a word to qmgr (the
    trigger lost, or removed by hand): qmgr treats it as deleted when the
    agent cannot open it: logged once, no defer/ log, no retries."""
    def answer(attrs):
        time.sleep(0.8)             # a slow agent: the file vanishes meanwhile
        d = dict(attrs)
        gone = not (q.queue / d["queue_file"]).exists()
        st = ("defer", "4.3.0", "cannot open queue file") if gone else ("sent", "2.0.0", "ok")
        return [x for r in rcpts_of(attrs) for x in
                (("rcpt_offset", r["rcpt_offset"]), ("rcpt_status", st[0]), ("rcpt_dsn", st[1]),
                 ("rcpt_reason", st[2]), ("relay", "local"))]
    agent = FakeServer(q.queue / "private" / "local", "deliver", answer,
                       q.uid if IS_ROOT else None)
    q.fakes.append(agent)
    q.start()
    qid = q.put(queue_file("a@example.org", ["u1@example.test", "u2@example.test"]))
    deadline = time.monotonic() + 5
    while agent.inflight < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    mark = q.inst.log_mark()
    os.unlink(q.queue / "active" / qid)
    q.inst.wait_log(rf"{qid}: queue file vanished from active/: taken as deleted", since=mark)
    q.inst.wait_log(rf"{qid}: removed", since=mark)
    wait_agent_idle(agent)          # the other answer is on its way back
    deliver_probe(q)                # qmgr has read it by now
    assert q.where(qid) == []
    assert not (q.queue / "defer" / qid).exists(), "orphan defer log"
    assert q.inst.count_log(rf"{qid}: .*status=deferred", since=mark) == 0
    assert q.inst.count_log(rf"{qid}: removed", since=mark) == 1


@pytest.mark.parametrize("state", ["incoming", "deferred", "hold", "corrupt"])
def test_delete_in_other_states(instance, state):
    """delete of a message in incoming/, deferred/, hold/ or corrupt/ while
    qmgr runs: the file and its defer/ log go, qmgr never delivers it.
    (No timed incoming/ scan during the test: with the usual 1 s, a slow
    run, e.g. under the sanitizers, let qmgr deliver the message first.)"""
    if not (pathlib.Path(instance.libexec) / "qmgr").exists():
        pytest.skip("qmgr not built")
    q = Q(instance, qmgr_incoming_scan_delay="3600s")
    try:
        check_delete_in_state(q, state)
    finally:
        q.stop()


def check_delete_in_state(q, state):
    agent = q.agent("local", sent_all)
    q.start()
    # qmgr is up and past its start-up scan once a probe has gone through
    probe = q.put(queue_file("a@example.org", ["probe@example.test"]))
    q.wait_where(probe, [])
    data = queue_file("a@example.org", ["bob@example.test"])
    qid = write_queue_file(q.queue / state, data, q.uid if IS_ROOT else None, q.gid)
    if state == "deferred":
        os.utime(q.queue / state / qid, (time.time() + 3600, time.time() + 3600))
    (q.queue / "defer" / qid).write_text("rcpt=bob@example.test, dsn=4.2.2, reason=full\n")
    res = ph_queue(q, "delete", qid)
    assert res.returncode == 0 and f"{qid}: removed" in res.stdout, res.stderr
    assert q.where(qid) == []
    assert not (q.queue / "defer" / qid).exists()
    q.trigger(b"F")
    deliver_probe(q)                # the flush's scan is over
    assert all(dict(r)["queue_id"] != qid for r in agent.requests)
    assert any(dict(r)["queue_id"] == probe for r in agent.requests)


# -- recipients in bounded slices (audit issue 7, item 15) ---------------------
def big_queue_file(n, sender="a@example.org", domain="remote.example"):
    """A queue file with n recipients, built fast (phwire's record format)."""
    recs = [phwire.record("V", "posthorn-queue 1"), phwire.record("T", "%.6f" % time.time()),
            phwire.record("S", sender)]
    recs += [phwire.record("R", f"u{i}@{domain}") for i in range(n)]
    recs += [phwire.record("M"), phwire.record("L", "Subject: many"), phwire.record("L", ""),
             phwire.record("L", "hello"), phwire.record("X"), phwire.record("E")]
    return b"".join(recs)


def qmgr_pid(q):
    pids = q.inst.children("qmgr")
    assert len(pids) == 1, pids
    return pids[0]


def vm_hwm_kb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_recipients_read_in_slices_each_delivered_once(instance):
    """5000 recipients, qmgr_message_recipient_limit 100: every recipient
    is delivered exactly once; the deferred ones (every 7th) stay R in the
    deferred file, the rest D, and a flush delivers each of them once."""
    q = Q(instance, qmgr_message_recipient_limit="100", smtp_destination_recipient_limit="50")
    try:
        deferring = {"on": True}

        def policy(address):
            i = int(address[1:].split("@")[0])
            if deferring["on"] and i % 7 == 0:
                return ("defer", "4.2.0", "try later")
            return ("sent", "2.0.0", "ok")
        agent = q.agent("smtp", policy)
        q.start()
        n = 5000
        qid = q.put(big_queue_file(n))
        q.wait_where(qid, ["deferred"], timeout=60)
        sent = [r["rcpt_address"] for a in agent.requests for r in rcpts_of(a)]
        assert len(sent) == n and len(set(sent)) == n       # each tried once
        recs = records((q.queue / "deferred" / qid).read_bytes())
        pending = sorted(d for o, t, d in recs if t == "R")
        want = sorted(f"u{i}@remote.example" for i in range(n) if i % 7 == 0)
        assert pending == want
        assert sum(1 for o, t, d in recs if t == "D") == n - len(want)
        assert max(len(rcpts_of(a)) for a in agent.requests) <= 50
        deferring["on"] = False
        before = len(agent.requests)
        mark = q.inst.log_mark()
        q.trigger(b"F")
        q.inst.wait_log(rf"{qid}: removed", since=mark, timeout=60)
        again = [r["rcpt_address"] for a in agent.requests[before:] for r in rcpts_of(a)]
        assert sorted(again) == want                         # only the deferred ones
        assert q.inst.count_log(rf"{qid}: from=<a@example.org>, size=\d+, nrcpt={n} ",
                                since=0) >= 1
        q.wait_where(qid, [])
        assert not (q.queue / "defer" / qid).exists()
    finally:
        q.stop()


def test_qmgr_memory_bounded_with_many_recipients(instance):
    """200,000 recipients in one message: qmgr's peak RSS (VmHWM) stays
    small because it holds only qmgr_message_recipient_limit (1000) of
    them at a time. Without slicing it grew with the count."""
    if os.environ.get("POSTHORN_SANITIZED"):
        pytest.skip("peak RSS means nothing under AddressSanitizer (shadow memory, quarantine)")
    q = Q(instance, qmgr_message_recipient_limit="1000",
          smtp_destination_recipient_limit="1000")
    try:
        agent = q.agent("smtp", sent_all)
        q.start()
        q.trigger(b"W")
        q.inst.wait_children(1, "qmgr")
        base = vm_hwm_kb(qmgr_pid(q))
        n = 200000
        qid = q.put(big_queue_file(n))
        q.inst.wait_log(rf"{qid}: removed", timeout=120)
        peak = vm_hwm_kb(qmgr_pid(q))
        print(f"qmgr VmHWM: {base} kB at start, {peak} kB after {n} recipients")
        assert len(agent.requests) == n // 1000
        assert peak - base < 12 * 1024, (base, peak)
    finally:
        q.stop()


def test_slices_keep_recipient_attributes_and_trailer(instance):
    """qmgr_message_recipient_limit 2 on a file whose recipients carry
    their own records (A rcpt_orig, O, N) and continue in the trailer
    after the content: each slice resumes at the first record of the
    next recipient's group, and the trailer's recipients are read too."""
    q = Q(instance, qmgr_message_recipient_limit="2")
    try:
        agent = q.agent("smtp", sent_all)
        q.start()
        R = phwire.record

        def group(i):
            return (R("A", f"rcpt_orig=alias{i}@example.test") + R("O", f"rfc822;o{i}@x.test")
                    + R("N", "never") + R("R", f"u{i}@remote.example"))
        data = (R("V", "posthorn-queue 1") + R("T", "%.6f" % time.time()) + R("S", "a@example.org")
                + b"".join(group(i) for i in range(5)) + R("M") + R("L", "Subject: t") + R("L", "")
                + R("L", "hi") + R("X") + b"".join(group(i) for i in range(5, 8)) + R("E"))
        qid = q.put(data)
        q.inst.wait_log(rf"{qid}: removed", timeout=10)
        got = {r["rcpt_address"]: (r["rcpt_orig"], r["rcpt_orcpt"], r["rcpt_notify"])
               for a in agent.requests for r in rcpts_of(a)}
        assert got == {f"u{i}@remote.example": (f"alias{i}@example.test", f"rfc822;o{i}@x.test",
                                                "never") for i in range(8)}
        assert sum(len(rcpts_of(a)) for a in agent.requests) == 8
        assert q.inst.count_log(rf"{qid}: from=<a@example.org>, size=\d+, nrcpt=8 ") == 1
    finally:
        q.stop()


def test_fifo_that_cannot_be_moved_is_removed(q):
    """A non-regular entry that cannot go to corrupt/ (the name is taken
    there by a non-empty directory) is removed, with a log line, so that
    it is not met again and again."""
    q.agent("local", sent_all)
    q.start()
    fid = make_fifo(q, "incoming")
    (q.queue / "corrupt" / fid).mkdir()
    (q.queue / "corrupt" / fid / "x").write_text("taken")
    q.trigger(b"I")
    q.inst.wait_log(rf"{fid}: not a regular file; cannot move it to corrupt/ .*: removed")
    assert not os.path.lexists(q.queue / "incoming" / fid)
    assert not os.path.lexists(q.queue / "active" / fid)
    qid = q.put(queue_file("a@example.org", ["bob@example.test"]))
    q.inst.wait_log(rf"{qid}: removed", timeout=5)

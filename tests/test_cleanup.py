"""cleanup: a real cleanup daemon under master, driven by a small Python
client that speaks the IPC framing (netstrings, docs/ipc.md) and the
queue-file records (docs/queue-file.md) of the cleanup protocol
(lib/mail/mail_proto.h). Checks the queue files it leaves in incoming/."""
import os
import re
import socket
import struct
import subprocess
import time

import pytest

from conftest import BUILD
from phwire import connect, encode, parse_records, record

QUEUE_SUBDIRS = ("incoming", "active", "deferred", "hold", "corrupt", "defer",
                 "bounce", "maildrop", "private", "public")

# CLEANUP_FLAG_* and CLEANUP_STAT_* (mail_proto.h, cleanup_stat.h)
FLAG_LOCAL, FLAG_UNTRUSTED, FLAG_BOUNCE, FLAG_EXTRACT, FLAG_NO_ALIAS = 1, 2, 4, 8, 16
FLAG_CLIENT_TRIGGER = 32
STAT_BAD, STAT_WRITE, STAT_SIZE, STAT_CONT, STAT_HOPS, STAT_RCPT = 1, 2, 4, 8, 16, 32
STAT_DEFER, STAT_NOPERM = 128, 256

ID_RE = re.compile(r"^[0-9A-Za-z]{11,21}$")


# ---- the wire ---------------------------------------------------------------

class CleanupClient:
    """One connection to public/cleanup."""

    def __init__(self, path, timeout=10):
        self.sock, self.reader = connect(path, "cleanup", timeout)

    def read_message(self):
        return self.reader.message_dict()

    def send(self, data):
        self.sock.sendall(data)

    def message(self, records, flags=0, origin="test"):
        """Send one message; return the reply {status, queue_id, reason}."""
        self.send(encode([("flags", flags), ("origin", origin)]) + records)
        reply = self.read_message()
        reply["status"] = int(reply["status"])
        return reply

    def close(self):
        self.sock.close()


def simple_message(sender="alice@example.test", rcpts=("bob@example.test",),
                   headers=("Subject: test",), body=("hello",), trailer=b""):
    out = record("S", sender)
    for r in rcpts:
        out += record("R", r)
    out += record("M")
    for line in list(headers) + [""] + list(body):
        out += record("L", line)
    return out + record("X") + trailer + record("E")


def read_queue_file(path):
    """[(type, bytes)] of a queue file."""
    return parse_records(path.read_bytes())


def content_lines(recs):
    lines, cur = [], b""
    for t, d in recs:
        if t == "C":
            cur += d
        elif t == "L":
            lines.append((cur + d).decode(errors="replace"))
            cur = b""
    return lines


def segment(recs, start, end):
    types = [t for t, _ in recs]
    return recs[types.index(start) + 1:types.index(end)]


# ---- the instance -------------------------------------------------------------

@pytest.fixture
def cleanup(instance):
    """An instance running only cleanup; yields a helper namespace."""
    if not (BUILD / "libexec" / "cleanup").exists():
        pytest.skip("cleanup not built")
    for sub in QUEUE_SUBDIRS:
        (instance.queue / sub).mkdir(mode=0o755, exist_ok=True)
    virtual = instance.etc / "virtual"
    virtual.write_text(
        "info@example.test alice@example.test, bob@example.test\n"
        "self@example.test self@example.test, copy@example.test\n"
        "loop1@example.test loop2@example.test\n"
        "loop2@example.test loop1@example.test, end@example.test\n")
    res = subprocess.run([str(BUILD / "bin" / "posthorn"), "-c", str(instance.etc), "map",
                          f"cdb:{virtual}"], capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        # posthorn map reads main.cf; fall back to a direct build when the
        # tool is missing in this build
        pytest.skip(f"posthorn map failed: {res.stderr}")
    instance.set_main(myhostname="host.example.test", mydomain="example.test",
                      myorigin="origin.example.test", mydestination="localhost",
                      virtual_alias_domains="", virtual_alias_maps=f"cdb:{virtual}",
                      alias_maps="")
    instance.write_master_cf("cleanup unix n - n - 0 cleanup\n")
    instance.start()

    class H:
        inst = instance
        sock = instance.queue / "public" / "cleanup"

        @staticmethod
        def client():
            deadline = time.monotonic() + 5
            while not H.sock.exists():
                assert time.monotonic() < deadline, "no public/cleanup socket"
                time.sleep(0.05)
            return CleanupClient(H.sock)

        @staticmethod
        def incoming():
            """Queue files and temp files, not the group-commit state."""
            return sorted(p.name for p in (instance.queue / "incoming").iterdir()
                          if p.name != ".group-sync")

    yield H
    instance.stop()


# ---- tests ----------------------------------------------------------------

def test_queue_file_complete_with_message_id_and_date(cleanup):
    c = cleanup.client()
    orcpt = record("O", "rfc822;bob@example.test") + record("N", "success,failure")
    recs = (record("S", "alice@example.test") + orcpt + record("R", "bob@Example.TEST.")
            + record("R", "carol@remote.test") + record("A", "helo=client.example")
            + record("M") + record("L", "Subject: test") + record("L", "")
            + record("L", "hello") + record("L", "b\x00in") + record("X") + record("E"))
    mark = cleanup.inst.log_mark()
    reply = c.message(recs)
    c.close()
    assert reply["status"] == 0, reply
    qid = reply["queue_id"]
    assert ID_RE.match(qid)
    assert cleanup.incoming() == [qid]         # no temp file left beside it
    path = cleanup.inst.queue / "incoming" / qid
    assert path.stat().st_mode & 0o777 == 0o600
    recs = read_queue_file(path)
    types = "".join(t for t, _ in recs)
    assert types[0] == "V" and types[1] == "T" and types[-1] == "E"
    assert re.fullmatch(r"VTA?SONRRAML+XE", types), types
    assert recs[0][1] == b"posthorn-queue 1"
    assert re.fullmatch(rb"\d+\.\d{6}", recs[1][1])
    env = dict((t, d) for t, d in segment(recs, "V", "M") if t in "SON")
    assert env["S"] == b"alice@example.test"
    assert env["O"] == b"rfc822;bob@example.test" and env["N"] == b"success,failure"
    rcpts = [d for t, d in recs if t == "R"]
    assert rcpts == [b"bob@example.test", b"carol@remote.test"]   # domain canonical
    assert ("A", b"helo=client.example") in recs
    lines = content_lines(segment(recs, "M", "X"))
    assert lines[0] == "Subject: test"
    msgid = [ln for ln in lines if ln.startswith("Message-Id: ")]
    assert len(msgid) == 1
    assert re.fullmatch(r"Message-Id: <%s\.\d+@host\.example\.test>" % qid, msgid[0])
    assert any(re.fullmatch(r"Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", ln)
               for ln in lines)
    assert not any(ln.startswith("From:") for ln in lines)    # not a local submission
    # the added headers go at the end of the header block, before the body
    assert lines.index("") > lines.index(msgid[0])
    assert lines[-2:] == ["hello", "b\x00in"]
    cleanup.inst.wait_log(r"cleanup\[\d+\]: %s: message-id=<%s\.\d+@host\.example\.test>"
                          % (qid, qid), since=mark)


def test_existing_headers_kept_and_local_from_added(cleanup):
    c = cleanup.client()
    mark = cleanup.inst.log_mark()
    reply = c.message(simple_message(sender="user", headers=(
        "Message-ID: <abc.123@client.example>", "Date: Mon, 1 Jan 2024 00:00:00 +0000",
        "Subject: x")), flags=FLAG_LOCAL)
    c.close()
    assert reply["status"] == 0, reply
    recs = read_queue_file(cleanup.inst.queue / "incoming" / reply["queue_id"])
    lines = content_lines(recs)
    assert sum(ln.lower().startswith("message-id:") for ln in lines) == 1
    assert sum(ln.startswith("Date:") for ln in lines) == 1
    # local submission: unqualified sender gets $myorigin; From: added
    assert ("S", b"user@origin.example.test") in recs
    assert "From: user@origin.example.test" in lines
    cleanup.inst.wait_log(r"%s: message-id=<abc\.123@client\.example>" % reply["queue_id"],
                          since=mark)


def test_virtual_alias_expansion(cleanup):
    c = cleanup.client()
    reply = c.message(simple_message(rcpts=("info@example.test", "alice@example.test",
                                            "self@example.test", "loop1@example.test")))
    c.close()
    assert reply["status"] == 0, reply
    recs = read_queue_file(cleanup.inst.queue / "incoming" / reply["queue_id"])
    env = [(t, d.decode()) for t, d in segment(recs, "V", "M") if t in "AR"]
    env = [x for x in env if not x[1].startswith("origin=")]
    assert env == [
        ("A", "rcpt_orig=info@example.test"), ("R", "alice@example.test"),
        ("A", "rcpt_orig=info@example.test"), ("R", "bob@example.test"),
        # alice@ again: a duplicate, dropped
        ("A", "rcpt_orig=self@example.test"), ("R", "self@example.test"),
        ("A", "rcpt_orig=self@example.test"), ("R", "copy@example.test"),
        # loop1 -> loop2 -> loop1 is cut; end@ survives
        ("A", "rcpt_orig=loop1@example.test"), ("R", "end@example.test"),
    ]
    assert cleanup.inst.count_log(r"virtual alias loop: loop2@example\.test -> "
                                  r"loop1@example\.test cut") == 1


def test_no_alias_flag_and_trailer_recipients(cleanup):
    c = cleanup.client()
    reply = c.message(simple_message(rcpts=("info@example.test",),
                                     trailer=record("R", "late@example.test")),
                      flags=FLAG_NO_ALIAS)
    c.close()
    assert reply["status"] == 0, reply
    recs = read_queue_file(cleanup.inst.queue / "incoming" / reply["queue_id"])
    assert [d for t, d in recs if t == "R"] == [b"info@example.test", b"late@example.test"]
    types = "".join(t for t, _ in recs)
    assert types.endswith("XRE")


def test_extract_recipients_and_bcc_removed(cleanup):
    c = cleanup.client()
    reply = c.message(simple_message(rcpts=(), headers=(
        'To: "Doe, John" <john@example.test>, group: a@example.test,',
        " b@example.test;",
        "Cc: carol (comment) @remote.test, localuser",
        "Bcc: hidden@example.test",
        "Subject: extract")), flags=FLAG_EXTRACT | FLAG_LOCAL)
    c.close()
    assert reply["status"] == 0, reply
    recs = read_queue_file(cleanup.inst.queue / "incoming" / reply["queue_id"])
    trailer = segment(recs, "X", "E")
    assert [d.decode() for t, d in trailer if t == "R"] == [
        "john@example.test", "a@example.test", "b@example.test", "carol@remote.test",
        "localuser@origin.example.test", "hidden@example.test"]
    lines = content_lines(recs)
    assert not any(ln.lower().startswith("bcc:") for ln in lines)
    assert " b@example.test;" in lines             # folded To: kept as it was


def test_untrusted_records_refused(cleanup):
    def envelope(*extra):
        return record("T", "1700000000.5") + record("S", "a@example.test") + \
            record("A", "submit_uid=1000") + b"".join(extra) + record("R", "b@example.test")

    body = record("M") + record("L", "x") + record("X")
    refused = [
        envelope(record("A", "sasl_username=admin")) + body + record("E"),
        envelope(record("A", "client_address=192.0.2.1")) + body + record("E"),
        envelope(record("A", "rcpt_orig=x@example.test")) + body + record("E"),
        envelope(record("A", "helo=client.example")) + body + record("E"),
        envelope(record("A", "bounce_notice=1")) + body + record("E"),
        envelope() + body + record("A", "dsn_ret=FULL") + record("E"),
        envelope() + record("D", "done@example.test") + body + record("E"),
    ]
    for recs in refused:
        c = cleanup.client()
        reply = c.message(recs, flags=FLAG_UNTRUSTED | FLAG_LOCAL)
        assert reply["status"] & STAT_NOPERM or reply["status"] == STAT_BAD, (recs, reply)
        assert reply["queue_id"] == ""
        c.close()
    assert cleanup.incoming() == []
    # what pickup sends (T, S, submit_uid, DSN attributes) is accepted
    c = cleanup.client()
    reply = c.message(envelope(record("A", "dsn_envid=xyz")) + body + record("E"),
                      flags=FLAG_UNTRUSTED | FLAG_LOCAL, origin="pickup")
    assert reply["status"] == 0, reply
    c.close()
    recs = read_queue_file(cleanup.inst.queue / "incoming" / reply["queue_id"])
    assert recs[1] == ("T", b"1700000000.500000")
    assert ("A", b"submit_uid=1000") in recs and ("A", b"origin=pickup") in recs
    # the refused records from a trusted client are fine
    for recs in refused[:5]:
        c = cleanup.client()
        reply = c.message(recs)
        assert reply["status"] == 0, reply
        c.close()
    # origin is cleanup's own: no client writes it
    c = cleanup.client()
    reply = c.message(envelope(record("A", "origin=smtpd")) + body + record("E"))
    assert reply["status"] == STAT_BAD and "origin" in reply["reason"], reply
    c.close()


def test_malformed_requests(cleanup):
    cases = [
        record("R", "b@example.test") + record("M") + record("X") + record("E"),  # no S
        record("S", "a@x") + record("S", "b@x") + record("R", "c@x") + record("M")
        + record("X") + record("E"),
        record("S", "a@x") + record("R", "evil\nline@x") + record("M") + record("X")
        + record("E"),
        record("S", "a@x") + record("O", "rfc822;x@y") + record("M") + record("X")
        + record("E"),
        record("S", "a@x") + record("R", "b@x") + record("L", "early") + record("M")
        + record("X") + record("E"),
        record("S", "a@x") + record("R", "b@x") + record("M") + record("C", "half")
        + record("X") + record("E"),
        record("S", "a@x") + record("N", "success,success") + record("R", "b@x")
        + record("M") + record("X") + record("E"),
    ]
    for recs in cases:
        c = cleanup.client()
        reply = c.message(recs)
        assert reply["status"] == STAT_BAD, (recs, reply)
        c.close()
    # garbage framing: an unknown record type
    c = cleanup.client()
    reply = c.message(record("S", "a@x") + b"Q\x00\x00\x00\x00")
    assert reply["status"] == STAT_BAD
    c.close()
    # no recipients at all
    c = cleanup.client()
    reply = c.message(simple_message(rcpts=()))
    assert reply["status"] == STAT_RCPT
    c.close()
    assert cleanup.incoming() == []


def test_size_limit(cleanup):
    cleanup.inst.set_main(message_size_limit=2000)
    cleanup.inst.reload()
    c = cleanup.client()
    reply = c.message(simple_message(body=["x" * 100] * 30))
    assert reply["status"] == STAT_SIZE, reply
    c.close()
    c = cleanup.client()
    reply = c.message(simple_message(body=["x" * 100] * 10))
    assert reply["status"] == 0, reply
    c.close()
    assert cleanup.incoming() == [reply["queue_id"]]


def test_hopcount_limit(cleanup):
    c = cleanup.client()
    reply = c.message(simple_message(headers=["Received: from x by y"] * 51))
    assert reply["status"] == STAT_HOPS, reply
    reply = c.message(simple_message(headers=["Received: from x by y"] * 50))
    assert reply["status"] == 0, reply
    c.close()
    assert cleanup.incoming() == [reply["queue_id"]]


def test_line_break_inside_content_record_refused(cleanup):
    """Audit issue 7 item 1: a content record never holds a line feed.
    Headers hidden behind one would escape the hop count, Bcc removal and
    the Delivered-To loop check; the request is refused."""
    hidden = "X-A: 1" + "\nReceived: from x by y" * 60
    for recs in (simple_message(headers=[hidden]),
                 simple_message(headers=["Subject: a\nBcc: hidden@example.test"]),
                 simple_message(body=["hello\nFrom evil@attacker.example Thu Jan  1 00:00:00 2026"]),
                 simple_message(body=[]).replace(record("X"), record("C", "a\nb") + record("L", "c")
                                                 + record("X"))):
        c = cleanup.client()
        reply = c.message(recs, flags=FLAG_LOCAL)
        assert reply["status"] == STAT_BAD, (recs, reply)
        c.close()
    assert cleanup.incoming() == []
    # a bare CR is not a line break: kept (sendmail passes it on)
    c = cleanup.client()
    reply = c.message(simple_message(body=["a\rb"]))
    assert reply["status"] == 0, reply
    c.close()


def test_oversized_header_passed_on_unparsed(cleanup):
    cleanup.inst.set_main(header_size_limit=2000)
    cleanup.inst.reload()
    c = cleanup.client()
    long_to = "To: " + ", ".join(f"user{i}@example.test" for i in range(300))
    reply = c.message(simple_message(headers=["Subject: big", long_to,
                                              " folded@example.test", "X-After: 1"],
                                     body=["body"]))
    c.close()
    assert reply["status"] == 0, reply
    lines = content_lines(read_queue_file(cleanup.inst.queue / "incoming" / reply["queue_id"]))
    assert lines[:4] == ["Subject: big", long_to, " folded@example.test", "X-After: 1"]
    assert lines[-1] == "body"
    assert cleanup.inst.count_log(r"header longer than header_size_limit") == 1


def test_abandoned_message_leaves_nothing(cleanup):
    c = cleanup.client()
    mark = cleanup.inst.log_mark()
    c.send(encode([("flags", 0), ("origin", "test")]) + record("S", "a@example.test")
           + record("R", "b@example.test") + record("M") + record("L", "Subject: x"))
    time.sleep(0.2)
    c.close()
    cleanup.inst.wait_log(r"lost connection before the end of the message: nothing queued",
                          since=mark)
    assert cleanup.incoming() == []


def test_two_messages_one_connection_and_qmgr_trigger(cleanup):
    qmgr = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = cleanup.inst.queue / "public" / "qmgr"
    qmgr.bind(str(path))
    os.chmod(path, 0o666)           # as master makes public sockets
    qmgr.listen(5)
    qmgr.settimeout(5)
    try:
        c = cleanup.client()
        r1 = c.message(simple_message())
        try:
            conn, _ = qmgr.accept()
        except socket.timeout:
            raise AssertionError("no qmgr trigger; log:\n" + cleanup.inst.log_text())
        conn.settimeout(5)
        # "I", the queue ID, a newline: qmgr takes incoming/ID without a scan
        assert conn.recv(64) == b"I" + r1["queue_id"].encode() + b"\n"
        conn.close()
        r2 = c.message(simple_message(rcpts=("x@example.test",)))
        c.close()
        assert r1["status"] == 0 and r2["status"] == 0
        assert r1["queue_id"] != r2["queue_id"]
        assert cleanup.incoming() == sorted([r1["queue_id"], r2["queue_id"]])
    finally:
        qmgr.close()
        os.unlink(path)


def test_qmgr_trigger_on_a_fifo_is_one_write_per_message(cleanup):
    """With public/qmgr a fifo (the default master.cf), cleanup keeps it
    open and writes one "I<ID>\\n" per message; the requests of several
    messages arrive whole and in order in one read."""
    path = cleanup.inst.queue / "public" / "qmgr"
    os.mkfifo(path, 0o622)
    os.chmod(path, 0o622)           # as master makes public fifos
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        c = cleanup.client()
        ids = [c.message(simple_message())["queue_id"] for _ in range(3)]
        c.close()
        deadline = time.monotonic() + 5
        got = b""
        while got.count(b"\n") < 3 and time.monotonic() < deadline:
            try:
                got += os.read(reader, 4096)
            except BlockingIOError:
                time.sleep(0.02)
        assert got == b"".join(b"I" + i.encode() + b"\n" for i in ids), got
        assert cleanup.inst.count_log(r"cannot trigger qmgr") == 0
    finally:
        os.close(reader)
        os.unlink(path)


def test_client_trigger_flag_leaves_the_trigger_to_the_client(cleanup):
    """With CLEANUP_FLAG_CLIENT_TRIGGER (smtpd, which wakes qmgr after its
    own 250) cleanup writes no trigger for the message; without it, one."""
    path = cleanup.inst.queue / "public" / "qmgr"
    os.mkfifo(path, 0o622)
    os.chmod(path, 0o622)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        c = cleanup.client()
        quiet = c.message(simple_message(), flags=FLAG_CLIENT_TRIGGER)
        loud = c.message(simple_message())
        c.close()
        assert quiet["status"] == 0 and loud["status"] == 0
        deadline = time.monotonic() + 5
        got = b""
        while not got.endswith(b"\n") and time.monotonic() < deadline:
            try:
                got += os.read(reader, 4096)
            except BlockingIOError:
                time.sleep(0.02)
        time.sleep(0.1)
        try:
            got += os.read(reader, 4096)
        except BlockingIOError:
            pass
        assert got == b"I" + loud["queue_id"].encode() + b"\n", got
        assert cleanup.incoming() == sorted([quiet["queue_id"], loud["queue_id"]])
    finally:
        os.close(reader)
        os.unlink(path)


def test_group_commit_state_file(cleanup):
    """cleanup shares the fsync of incoming/ with the other cleanup
    processes through incoming/.group-sync: the directory owner's, mode
    0600, one page, and no warning about it."""
    c = cleanup.client()
    assert c.message(simple_message())["status"] == 0
    c.close()
    st = os.stat(cleanup.inst.queue / "incoming" / ".group-sync")
    assert oct(st.st_mode & 0o777) == oct(0o600)
    assert st.st_size == 4096
    assert st.st_uid == os.stat(cleanup.inst.queue / "incoming").st_uid
    assert cleanup.inst.count_log(r"group-sync") == 0
    # the commit went through it: one arrival, covered by a finished fsync
    # (layout in lib/base/group_sync.c: magic, version, dev, ino, arrivals,
    # covered)
    raw = (cleanup.inst.queue / "incoming" / ".group-sync").read_bytes()
    magic, version, dev, ino, arrivals, covered = struct.unpack_from("<IIQQQQ", raw)
    assert (magic, version) == (0x70686773, 1)
    assert ino == os.stat(cleanup.inst.queue / "incoming").st_ino
    assert arrivals >= 1 and covered >= arrivals

"""bounce(8) end to end: a running master with cleanup and bounce; the test
plays qmgr. It writes an original queue file (docs/queue-file.md), connects
to private/bounce, speaks the bounce protocol (docs/ipc.md framing,
lib/mail/mail_proto.h conversation 3) and checks the notice that cleanup
queued in incoming/ (qmgr is left out of master.cf so the notice stays
there), parsed with Python's email package. A last test runs the whole
suite (qmgr, local-delivery) and reads the notice from the sender's
Maildir."""
import email
import email.policy
import os
import pwd
import re
import time

import pytest

from conftest import SANITIZER_REPORT
from mailsuite import have, mail  # noqa: F401  (the fixture)
from phwire import connect, encode, parse_records, queue_file, write_queue_file

HOST = "mail.example.test"

ORIGINAL = [
    "Received: from client.example (client.example [192.0.2.7])",
    "From: Alice <alice@example.test>",
    "To: nobody@example.net",
    "Subject: lunch on friday",
    "Message-ID: <orig-1@example.test>",
    "",
    "Shall we have lunch on friday?",
    "-- ",
    "Alice",
]


def write_original(queue, subdir, sender, rcpts, lines=ORIGINAL, attrs=(), owner=None):
    """Write a complete queue file into queue/subdir; returns its ID."""
    d = queue / subdir
    d.mkdir(exist_ok=True)
    data = queue_file(sender, rcpts, lines, arrival="1700000000",
                      attrs=[f"{name}={value}" for name, value in attrs])
    pw = pwd.getpwnam(owner) if owner else None
    return write_queue_file(d, data, pw.pw_uid if pw else None, pw.pw_gid if pw else -1)


class BounceClient:
    """qmgr's side of the bounce protocol."""

    def __init__(self, path, timeout=20):
        self.sock, self.reader = connect(path, "bounce", timeout)

    def request(self, req, qid, sender, rcpts, subdir="hold", ret="", envid="",
                arrival=1700000000):
        attrs = [("request", req), ("queue_id", qid), ("queue_file", f"{subdir}/{qid}"),
                 ("sender", sender), ("arrival_time", str(arrival)), ("dsn_envid", envid),
                 ("dsn_ret", ret)]
        for r in rcpts:
            attrs += [("rcpt_address", r["address"]), ("rcpt_orig", r.get("orig", "")),
                      ("rcpt_orcpt", r.get("orcpt", "")), ("rcpt_dsn", r.get("dsn", "5.1.1")),
                      ("rcpt_action", r.get("action", "failed")),
                      ("rcpt_reason", r.get("reason", "unknown user")),
                      ("relay", r.get("relay", "local"))]
        return self.raw(encode(attrs))

    def raw(self, data):
        self.sock.sendall(data)
        reply = self.reader.message_dict()
        assert set(reply) == {"status", "queue_id", "reason"}, reply
        return reply

    def close(self):
        self.sock.close()


def read_queue_file(path):
    """{'sender', 'rcpts', 'attrs', 'message' (bytes)} of a queue file."""
    out = {"sender": None, "rcpts": [], "attrs": {}, "lines": []}
    pending = b""
    types = []
    for t, body in parse_records(path.read_bytes()):
        types.append(t)
        if t == "S":
            out["sender"] = body.decode()
        elif t == "R":
            out["rcpts"].append(body.decode())
        elif t == "A":
            k, v = body.decode().split("=", 1)
            out["attrs"][k] = v
        elif t == "C":
            pending += body
        elif t == "L":
            out["lines"].append(pending + body)
            pending = b""
    assert types[0] == "V" and types[-1] == "E", types
    out["message"] = b"\r\n".join(out["lines"]) + b"\r\n"
    return out


def parse(message_bytes):
    return email.message_from_bytes(message_bytes, policy=email.policy.compat32)


def dsn_blocks(msg):
    """The delivery-status blocks (list of Message) of a notice."""
    parts = msg.get_payload()
    status = parts[1]
    assert status.get_content_type() in ("message/delivery-status",
                                         "message/global-delivery-status")
    return status.get_payload()


@pytest.fixture
def bq(mail):  # noqa: F811
    """mail instance running cleanup and bounce only (no qmgr: notices stay
    in incoming/)."""
    if not (have("bounce") and have("cleanup")):
        pytest.skip("bounce and cleanup must be built")
    mail.write_master_cf("cleanup unix n - n - 0 cleanup\nbounce unix - - n - 0 bounce\n")
    yield mail
    check_sanitizer(mail)


def check_sanitizer(inst):
    """Fail on a sanitizer report in master's stderr (make check-asan)."""
    try:
        inst.stop(timeout=15)
    except Exception:
        pass
    try:
        report = inst.stderr_path.read_text(errors="replace")
    except OSError:
        return
    m = SANITIZER_REPORT.search(report)
    assert not m, "sanitizer report:\n" + report[max(0, m.start() - 200):][:4000]


def start(inst):
    inst.start()
    inst.client = BounceClient(inst.queue / "private" / "bounce")
    return inst.client


def notice_file(inst, reply):
    assert reply["status"] == "0", reply
    nid = reply["queue_id"]
    assert re.fullmatch(r"[0-9A-Za-z]{11,21}", nid), reply
    path = inst.queue / "incoming" / nid
    assert path.exists(), (nid, inst.queue_files("incoming"))
    return read_queue_file(path)


def test_failure_notice_structure(bq):
    c = start(bq)
    qid = write_original(bq.queue, "hold", "alice@example.test",
                         ["nobody@example.net", "carol@example.test"],
                         attrs=[("dsn_envid", "ENV-7")], owner=bq.mail_owner)
    mark = bq.log_mark()
    reply = c.request("failure", qid, "alice@example.test", [
        {"address": "nobody@example.net", "orig": "info@alias.test",
         "orcpt": "rfc822;info@alias.test", "dsn": "5.1.1",
         "reason": "host mx.example.net[192.0.2.1] said: 550 5.1.1 <nobody@example.net>: "
                   "Recipient address rejected: User unknown in virtual mailbox table "
                   "(in reply to RCPT TO command)",
         "relay": "mx.example.net[192.0.2.1]:25"},
        {"address": "carol@example.test", "dsn": "5.2.2", "reason": "mailbox full",
         "relay": "local"},
    ], envid="ENV-7")
    qf = notice_file(bq, reply)
    bq.wait_log(rf"{qid}: sender non-delivery notification: {reply['queue_id']}", since=mark)

    # envelope: null sender, the original sender as recipient, the marker
    assert qf["sender"] == ""
    assert qf["rcpts"] == ["alice@example.test"]
    assert qf["attrs"].get("bounce_notice") == "sender"

    msg = parse(qf["message"])
    assert msg["From"] == f"MAILER-DAEMON@{HOST} (Mail Delivery System)"
    assert msg["To"] == "alice@example.test"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"] and email.utils.parsedate_to_datetime(msg["Date"])
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    boundary = msg.get_boundary()
    assert boundary and qid in boundary
    assert qf["message"].count(b"--" + boundary.encode() + b"\r\n") == 3
    assert qf["message"].count(b"--" + boundary.encode() + b"--") == 1
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "message/rfc822"]

    text = parts[0].get_payload()
    assert HOST in text
    assert "<nobody@example.net> (expanded from <info@alias.test>)" in text
    assert "<carol@example.test>: mailbox full" in text

    blocks = dsn_blocks(msg)
    assert len(blocks) == 3
    per_msg, r1, r2 = blocks
    assert per_msg["Reporting-MTA"] == f"dns; {HOST}"
    assert per_msg["X-Posthorn-Queue-ID"] == qid
    assert per_msg["Original-Envelope-Id"] == "ENV-7"
    assert email.utils.parsedate_to_datetime(per_msg["Arrival-Date"]).timestamp() == 1700000000
    assert r1["Final-Recipient"] == "rfc822; nobody@example.net"
    assert r1["Original-Recipient"] == "rfc822; info@alias.test"
    assert r1["Action"] == "failed"
    assert r1["Status"] == "5.1.1"
    assert r1["Remote-MTA"] == "dns; mx.example.net"
    diag = re.sub(r"\r?\n", "", r1["Diagnostic-Code"])
    assert diag == ("smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: "
                    "User unknown in virtual mailbox table")
    assert email.utils.parsedate_to_datetime(r1["Last-Attempt-Date"])
    assert r2["Final-Recipient"] == "rfc822; carol@example.test"
    assert r2["Status"] == "5.2.2"
    assert r2["Diagnostic-Code"] == "x-posthorn; mailbox full"
    assert r2["Remote-MTA"] is None
    # long diagnostic lines are folded within 78 columns
    for line in qf["lines"]:
        if line.startswith((b"Diagnostic-Code", b" ")):
            assert len(line) <= 78, line

    orig = parts[2].get_payload()[0]
    assert orig["Subject"] == "lunch on friday"
    assert orig["Message-ID"] == "<orig-1@example.test>"
    assert orig.get_payload() == "Shall we have lunch on friday?\r\n-- \r\nAlice\r\n"


def test_ret_hdrs_and_size_limit(bq):
    bq.set_main(bounce_size_limit="300")
    c = start(bq)
    owner = bq.mail_owner
    # RET=HDRS: headers only
    qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                         owner=owner)
    msg = parse(notice_file(bq, c.request("failure", qid, "alice@example.test",
                                          [{"address": "x@example.net"}], ret="hdrs"))["message"])
    part = msg.get_payload()[2]
    assert part.get_content_type() == "text/rfc822-headers"
    assert "Subject: lunch on friday" in part.get_payload()
    assert "Shall we" not in part.get_payload()
    # RET=FULL but over bounce_size_limit (300 bytes): headers only
    big = ORIGINAL + ["x" * 70] * 10
    qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                         lines=big, owner=owner)
    msg = parse(notice_file(bq, c.request("failure", qid, "alice@example.test",
                                          [{"address": "x@example.net"}], ret="full"))["message"])
    part = msg.get_payload()[2]
    assert part.get_content_type() == "text/rfc822-headers"
    assert "xxxxxxxx" not in part.get_payload()
    # within the limit: the full message
    qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                         owner=owner)
    msg = parse(notice_file(bq, c.request("failure", qid, "alice@example.test",
                                          [{"address": "x@example.net"}]))["message"])
    assert msg.get_payload()[2].get_content_type() == "message/rfc822"


def test_quoted_headers_bounded_by_bounce_size_limit(bq):
    """An original with ~100 KB of headers: whatever a notice quotes of
    it (RET=HDRS, RET=FULL falling back to the headers, a postmaster
    copy) stays within bounce_size_limit, cut at a line boundary, and the
    text part says so. (It used to be bounded by header_size_limit only:
    a 104 KB notice.)"""
    limit = 4000
    bq.set_main(bounce_size_limit=str(limit), notify_classes="bounce")
    c = start(bq)
    filler = [f"X-Filler-{i:04d}: " + "f" * 60 for i in range(1400)]    # ~100 KB
    lines = ORIGINAL[:4] + filler + ORIGINAL[4:]
    assert sum(len(x) + 1 for x in lines) > 100000
    for ret in ("hdrs", "full"):
        mark = bq.log_mark()
        qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                             lines=lines, owner=bq.mail_owner)
        reply = c.request("failure", qid, "alice@example.test",
                          [{"address": "x@example.net"}], ret=ret)
        m = bq.wait_log(rf"{qid}: postmaster non-delivery notification: (\w+)", since=mark)
        for nid in (reply["queue_id"], m.group(1)):
            qf = notice_file(bq, {"status": "0", "queue_id": nid})
            total = len(qf["message"])
            assert total < limit + 4000, (ret, total)
            msg = parse(qf["message"])
            text, quoted = msg.get_payload()[0].get_payload(), msg.get_payload()[2]
            assert quoted.get_content_type() == "text/rfc822-headers"
            qlines = quoted.get_payload().rstrip("\r\n").split("\r\n")
            assert 0 < sum(len(x) + 1 for x in qlines) <= limit
            # whole lines of the original, in order, from its start
            assert qlines == lines[:len(qlines)], qlines[-3:]
            assert "bounce_size_limit" in re.sub(r"\s+", " ", text), text


def test_delay_and_success_notices_on_one_connection(bq):
    c = start(bq)
    mark = bq.log_mark()
    qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                         owner=bq.mail_owner)
    reply = c.request("delay", qid, "alice@example.test", [
        {"address": "x@example.net", "action": "delayed", "dsn": "4.4.1",
         "reason": "connect to mx.example.net[192.0.2.1]:25: Connection timed out",
         "relay": "mx.example.net[192.0.2.1]:25"}])
    delay = parse(notice_file(bq, reply)["message"])
    bq.wait_log(rf"{qid}: sender delay notification: {reply['queue_id']}", since=mark)
    assert delay["Subject"] == "Delayed Mail (still being retried)"
    r = dsn_blocks(delay)[1]
    assert r["Action"] == "delayed" and r["Status"] == "4.4.1"
    until = email.utils.parsedate_to_datetime(r["Will-Retry-Until"]).timestamp()
    assert until == 1700000000 + 5 * 86400        # maximal_queue_lifetime 5d
    assert delay.get_payload()[2].get_content_type() == "text/rfc822-headers"

    reply = c.request("success", qid, "alice@example.test", [
        {"address": "bob@example.test", "action": "delivered", "dsn": "2.0.0",
         "reason": "delivered to maildir", "relay": "local"}])
    ok = parse(notice_file(bq, reply)["message"])
    bq.wait_log(rf"{qid}: sender delivery status notification: {reply['queue_id']}", since=mark)
    assert ok["Subject"] == "Successful Mail Delivery Report"
    r = dsn_blocks(ok)[1]
    assert r["Action"] == "delivered" and r["Status"] == "2.0.0"
    assert r["Will-Retry-Until"] is None
    assert ok.get_payload()[2].get_content_type() == "text/rfc822-headers"


def test_double_bounce_goes_to_postmaster_then_is_discarded(bq):
    c = start(bq)
    mark = bq.log_mark()
    # a notice (null sender) that could not be delivered
    qid = write_original(bq.queue, "hold", "", ["alice@example.test"],
                         attrs=[("bounce_notice", "sender")], owner=bq.mail_owner)
    reply = c.request("failure", qid, "", [{"address": "gone@example.net"}])
    qf = notice_file(bq, reply)
    bq.wait_log(rf"{qid}: postmaster non-delivery notification: {reply['queue_id']}",
                since=mark)
    assert qf["sender"] == ""
    assert qf["rcpts"] == [f"postmaster@{HOST}"]
    assert qf["attrs"].get("bounce_notice") == "postmaster"
    msg = parse(qf["message"])
    assert msg["To"] == f"postmaster@{HOST}"
    assert msg["Subject"].startswith("Postmaster Warning")
    assert msg.get_payload()[2].get_content_type() == "message/rfc822"

    # that double bounce failing too: logged and dropped, nothing queued
    before = bq.queue_files("incoming")
    dqid = write_original(bq.queue, "hold", "", [f"postmaster@{HOST}"],
                          attrs=[("bounce_notice", "postmaster")], owner=bq.mail_owner)
    reply = c.request("failure", dqid, "", [{"address": f"postmaster@{HOST}"}])
    assert reply == {"status": "0", "queue_id": "", "reason": ""}
    bq.wait_log(rf"{dqid}: discarded double bounce", since=mark)
    assert bq.queue_files("incoming") == before

    # without the marker, a failed notice to the postmaster address itself
    # is recognised as well
    dqid = write_original(bq.queue, "hold", "", [f"postmaster@{HOST}"], owner=bq.mail_owner)
    reply = c.request("failure", dqid, "", [{"address": f"POSTMASTER@{HOST}"}])
    assert reply["status"] == "0" and reply["queue_id"] == ""
    assert bq.queue_files("incoming") == before

    # no delay or success notices about a null-sender message
    reply = c.request("delay", qid, "", [{"address": "x@example.net", "action": "delayed",
                                          "dsn": "4.4.1"}])
    assert reply["status"] == "0" and reply["queue_id"] == ""
    bq.wait_log(rf"{qid}: null sender: no delay notification", since=mark)
    assert bq.queue_files("incoming") == before


def test_failed_postmaster_notice_to_an_alias_is_discarded(bq):
    """The marker alone must stop the loop: a postmaster notice whose
    failed recipient is not literally the postmaster address (postmaster
    is an alias of root, and root's delivery failed) is discarded, never
    reported again. (The address check cannot catch this case: remove
    the marker check in bounce_service.c and this test fails.)"""
    c = start(bq)
    mark = bq.log_mark()
    before = bq.queue_files("incoming")
    dqid = write_original(bq.queue, "hold", "", [f"postmaster@{HOST}"],
                          attrs=[("bounce_notice", "postmaster")], owner=bq.mail_owner)
    reply = c.request("failure", dqid, "", [
        {"address": f"root@{HOST}", "orig": f"postmaster@{HOST}", "dsn": "5.2.2",
         "reason": "mailbox full"}])
    assert reply == {"status": "0", "queue_id": "", "reason": ""}
    bq.wait_log(rf"{dqid}: discarded double bounce", since=mark)
    assert bq.count_log(rf"{dqid}: postmaster non-delivery notification", since=mark) == 0
    assert bq.queue_files("incoming") == before
    # the same failure of a notice to a sender (marker "sender") does go
    # to postmaster: the discard above is the marker's doing
    sqid = write_original(bq.queue, "hold", "", ["alice@example.test"],
                          attrs=[("bounce_notice", "sender")], owner=bq.mail_owner)
    reply = c.request("failure", sqid, "", [
        {"address": f"root@{HOST}", "orig": "alice@example.test"}])
    assert reply["status"] == "0" and reply["queue_id"] != ""
    bq.wait_log(rf"{sqid}: postmaster non-delivery notification: {reply['queue_id']}",
                since=mark)


def test_notify_classes_bounce_sends_postmaster_copy(bq):
    bq.set_main(notify_classes="bounce, 2bounce")
    c = start(bq)
    mark = bq.log_mark()
    qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                         owner=bq.mail_owner)
    reply = c.request("failure", qid, "alice@example.test", [{"address": "x@example.net"}])
    assert reply["status"] == "0"
    m = bq.wait_log(rf"{qid}: postmaster non-delivery notification: (\w+)", since=mark)
    copy = read_queue_file(bq.queue / "incoming" / m.group(1))
    assert copy["rcpts"] == [f"postmaster@{HOST}"] and copy["sender"] == ""
    msg = parse(copy["message"])
    assert msg["Subject"] == "Postmaster Copy: Undelivered Mail"
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"


def test_protocol_errors_and_missing_original(bq):
    c = start(bq)
    # a request with an unknown type: refused, the connection goes on
    reply = c.raw(encode([("request", "bogus")]))
    assert reply["status"] == "-1" and "attribute" in reply["reason"] or "request" in reply["reason"]
    qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                         owner=bq.mail_owner)
    reply = c.request("failure", qid, "alice@example.test", [{"address": "x@example.net"}],
                      subdir="../hold")
    assert reply["status"] == "-1" and "queue_file" in reply["reason"]
    # the original is gone: no notice, status -1 (qmgr will retry)
    os.unlink(bq.queue / "hold" / qid)
    before = bq.queue_files("incoming")
    reply = c.request("failure", qid, "alice@example.test", [{"address": "x@example.net"}])
    assert reply["status"] == "-1" and "cannot read the original" in reply["reason"]
    assert bq.queue_files("incoming") == before
    # cleanup down: status -1, nothing claimed
    (bq.queue / "public" / "cleanup").unlink()
    qid = write_original(bq.queue, "hold", "alice@example.test", ["x@example.net"],
                         owner=bq.mail_owner)
    reply = c.request("failure", qid, "alice@example.test", [{"address": "x@example.net"}])
    assert reply["status"] == "-1" and "cleanup" in reply["reason"]
    assert reply["queue_id"] == ""


def test_notice_delivered_to_senders_maildir(mail):  # noqa: F811
    for prog in ("bounce", "cleanup", "qmgr", "local-delivery"):
        if not have(prog):
            pytest.skip(f"{prog} not built")
    mail.start()
    c = BounceClient(mail.queue / "private" / "bounce")
    qid = write_original(mail.queue, "hold", "bob@example.test", ["nobody@example.net"],
                         owner=mail.mail_owner)
    reply = c.request("failure", qid, "bob@example.test", [
        {"address": "nobody@example.net", "dsn": "5.1.2",
         "reason": "Host or domain name not found", "relay": "none"}])
    assert reply["status"] == "0", reply
    msgs = mail.wait_maildir("bob@example.test", 1, timeout=20)
    msg = email.message_from_bytes(msgs[0], policy=email.policy.compat32)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg.get_content_type() == "multipart/report"
    assert re.search(r"<>", msg.get("Return-Path", "<>"))
    r = dsn_blocks(msg)[1]
    assert r["Final-Recipient"] == "rfc822; nobody@example.net"
    assert r["Status"] == "5.1.2"
    assert msg.get_payload()[2].get_payload()[0]["Subject"] == "lunch on friday"
    c.close()
    check_sanitizer(mail)


def test_real_bounce_from_local_delivery(mail):  # noqa: F811
    """The whole path: sendmail -f bob to an unknown local user; qmgr asks
    bounce; the notice lands in bob's Maildir."""
    for prog in ("bounce", "cleanup", "qmgr", "local-delivery", "pickup", "sendmail"):
        if not have(prog):
            pytest.skip(f"{prog} not built")
    mail.start()
    res = mail.sendmail("-f", "bob@example.test", f"nosuchuser@{HOST}",
                        input=b"Subject: to nobody\n\nhello\n")
    assert res.returncode == 0, res.stderr
    msgs = mail.wait_maildir("bob@example.test", 1, timeout=30)
    msg = email.message_from_bytes(msgs[0], policy=email.policy.compat32)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    r = dsn_blocks(msg)[1]
    assert r["Final-Recipient"] == f"rfc822; nosuchuser@{HOST}"
    assert r["Action"] == "failed" and r["Status"].startswith("5.")
    assert msg.get_payload()[2].get_payload()[0]["Subject"] == "to nobody"
    m = mail.wait_log(r"(\w+): sender non-delivery notification: (\w+)")
    mail.wait_log(rf"{m.group(1)}: removed")
    check_sanitizer(mail)


def test_failed_postmaster_notice_through_alias_does_not_loop(mail):  # noqa: F811
    """The whole path: postmaster is an alias of root, and root's mail
    is forwarded to an address that fails. A notice to a sender that
    fails becomes a postmaster notice; that one fails too, as a forwarded
    copy (a new queue file, without the envelope marker), and must be
    discarded: exactly one postmaster notice. Before the marker was also
    a header field of the notice this was an endless mail loop."""
    for prog in ("bounce", "cleanup", "qmgr", "local-delivery", "pickup", "sendmail"):
        if not have(prog):
            pytest.skip(f"{prog} not built")
    (mail.etc / "aliases").write_text("postmaster: root\nroot: admin@other.example\n")
    (mail.etc / "transport").write_text("other.example error:5.1.2 no such domain\n")
    mail.posthorn("map", f"cdb:{mail.etc}/transport")
    mail.set_main(transport_maps=f"cdb:{mail.etc}/transport")
    mail.build_maps()
    mail.start()
    mark = mail.log_mark()
    # ghost@example.test does not exist: the notice to it fails as well
    res = mail.sendmail("-f", "ghost@example.test", f"nosuchuser@{HOST}",
                        input=b"Subject: to nobody\n\nhello\n")
    assert res.returncode == 0, res.stderr
    mail.wait_log(r"discarded double bounce", since=mark, timeout=30)
    time.sleep(3)                   # a loop would go on producing notices
    log = mail.log_text()
    assert mail.count_log(r"postmaster non-delivery notification", since=mark) == 1, log[-4000:]
    check_sanitizer(mail)

"""smtp-client against scripted SMTP peers (tests/smtp_peer.py) and
Postfix's smtp-sink on 127.0.0.N, found through dnsmasq (tests/dnsfix.py):
per-recipient results (250/421/450/452/550/552) with the remote reply in
the log, the queue listing and the bounce in the sender's Maildir;
timeouts and a connection dropped in DATA; 8BITMIME conversion,
SMTPUTF8, CHUNKING, DSN and SIZE; connection reuse. The sending instance
is `net.sender()` (mailsuite.RelayNet): smtp service, short timeouts.

The first test checks the scripted peer itself and needs no smtp-client;
the others skip until build/libexec/smtp-client exists."""
import email
import email.policy
import re
import smtplib
import socket
import time

import pytest

from dnsfix import a, mx
from mailsuite import dsn_fields, net, notice_text  # noqa: F401  (net: the fixture)
from smtp_peer import HANG, Peer, shared_port

SENDER = "alice@example.test"


def send(inst, rcpts, message, mail_opts=(), rcpt_opts=None, sender=SENDER):
    """One message into inst's smtpd; the queue ID. rcpt_opts: address ->
    list of RCPT parameters."""
    if isinstance(message, str):
        message = message.encode()
    with inst.smtp() as s:
        s.ehlo("client.example")
        code, text = s.mail(sender, list(mail_opts))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r, (rcpt_opts or {}).get(r, []))
            assert code == 250, (r, code, text)
        code, text = s.data(message)
        assert code == 250, (code, text)
    return text.decode(errors="replace").rsplit(" ", 1)[-1]


def body(subject, text="hello from alice\r\n", extra=""):
    return (f"From: {SENDER}\r\nTo: someone\r\nSubject: {subject}\r\n{extra}\r\n{text}")


def start(net, peers, main=None, records=()):
    """dnsmasq with an A record DOMAIN -> peer for each (domain, peer) of
    peers (implicit MX) and records; the sending instance, started."""
    net.start_dns([a(dom, p.host) for dom, p in peers.items()] + list(records))
    inst = net.sender(main=main)
    inst.start()
    return inst


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


# ---------------------------------------------------------------- the peer
def test_scripted_peer_itself():
    """smtp_peer.Peer as smtplib sees it: extensions, strict parameters,
    per-recipient replies, dot-stuffing, BDAT, AUTH, HANG and DROP."""
    port = shared_port(["127.0.0.9"])
    p = Peer("127.0.0.9", port, ext=("PIPELINING", "DSN", "CHUNKING", "ENHANCEDSTATUSCODES"),
             size=3000, auth={"u": "pw"}, rcpt_replies={"bad@x.phtest": "550 5.1.1 nope"})
    with p:
        with smtplib.SMTP("127.0.0.9", port, timeout=5) as s:
            code, text = s.ehlo("me.phtest")
            assert code == 250 and b"CHUNKING" in text and b"SIZE 3000" in text
            assert b"8BITMIME" not in text
            assert s.login("u", "pw")[0] == 235
            assert s.mail("a@x.phtest", ["BODY=8BITMIME"])[0] == 555     # not offered
            assert s.mail("a@x.phtest", ["SIZE=10", "RET=HDRS", "ENVID=e1"])[0] == 250
            assert s.rcpt("c@x.phtest", ["NOTIFY=NEVER"])[0] == 250
            assert s.rcpt("bad@x.phtest")[0] == 550
            assert s.data(b"Subject: t\r\n\r\n.dot\r\nend\r\n")[0] == 250
            s.mail("a@x.phtest")
            s.rcpt("c@x.phtest")
            s.send(b"BDAT 4\r\nabcdBDAT 2 LAST\r\nef")
            assert s.getreply()[0] == 250 and s.getreply()[0] == 250
            assert s.mail("a@x.phtest", ["SIZE=5000"])[0] == 552
        msgs = p.wait_messages(2, timeout=2)
        assert msgs[0].mail_params == {"SIZE": "10", "RET": "HDRS", "ENVID": "e1"}
        assert msgs[0].rcpts[0] == ("c@x.phtest", {"NOTIFY": "NEVER"}, "250 2.1.5 Ok")
        assert msgs[0].rcpt_addrs == ["c@x.phtest"]
        assert msgs[0].data == b"Subject: t\r\n\r\n..dot\r\nend\r\n"
        assert msgs[0].content == b"Subject: t\r\n\r\n.dot\r\nend\r\n"
        assert msgs[1].bdat and msgs[1].chunks == [4, 2] and msgs[1].content == b"abcdef"
        assert p.sessions[0].auth == ("PLAIN", "u", "pw", True)
        assert p.sessions[0].helo == ("EHLO", "me.phtest")
        assert p.violations == ["parameter BODY not offered"]
        p.replies["MAIL"] = HANG
        with smtplib.SMTP("127.0.0.9", port, timeout=1) as s:
            s.ehlo("x")
            with pytest.raises((smtplib.SMTPServerDisconnected, socket.timeout)):
                s.mail("a@x.phtest")
        p.replies.pop("MAIL")
        p.drop_in_data = True
        with smtplib.SMTP("127.0.0.9", port, timeout=2) as s:
            s.ehlo("x")
            s.mail("a@x.phtest")
            s.rcpt("c@x.phtest")
            with pytest.raises(smtplib.SMTPServerDisconnected):
                s.data(b"Subject: t\r\n\r\nx\r\n")
        p.greeting = HANG
        with pytest.raises((smtplib.SMTPServerDisconnected, socket.timeout)):
            smtplib.SMTP("127.0.0.9", port, timeout=0.5)
        assert len(p.messages()) == 2 and p.connections == 4


# ---------------------------------------------------------------- delivery
def test_delivery_envelope_dsn_and_size(net):
    """A plain delivery: the peer gets the envelope with SIZE, the DSN
    parameters as given to the sending instance (RET, ENVID, NOTIFY,
    ORCPT), canonical content; the log quotes the peer's 250."""
    p = net.peer(ext=("PIPELINING", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"), size=100000)
    inst = start(net, {"dsn.phtest": p})
    qid = send(inst, ["bob@dsn.phtest", "carol@dsn.phtest"], body("with dsn"),
               mail_opts=["RET=HDRS", "ENVID=env-42"],
               rcpt_opts={"bob@dsn.phtest": ["NOTIFY=SUCCESS,FAILURE",
                                             "ORCPT=rfc822;boss@dsn.phtest"],
                          "carol@dsn.phtest": ["NOTIFY=NEVER"]})
    for r in ("bob@dsn.phtest", "carol@dsn.phtest"):
        st = inst.wait_status(qid, r, "sent")
        assert st["dsn"].startswith("2."), st
        assert st["relay"] == f"dsn.phtest[{p.host}]:{net.port}", st
        assert "queued as PEER1" in st["reason"], st
    (m,) = p.wait_messages(1)
    assert m.mail_from == SENDER
    assert m.mail_params.get("RET") == "HDRS" and m.mail_params.get("ENVID") == "env-42", m.mail
    assert 0 < int(m.mail_params["SIZE"]) < 100000
    rc = {addr: params for addr, params, _reply in m.rcpts}
    assert set(rc) == {"bob@dsn.phtest", "carol@dsn.phtest"}    # one transaction for both
    assert rc["bob@dsn.phtest"].get("NOTIFY") == "SUCCESS,FAILURE"
    assert rc["bob@dsn.phtest"].get("ORCPT", "").lower() == "rfc822;boss@dsn.phtest"
    assert rc["carol@dsn.phtest"].get("NOTIFY") == "NEVER"
    msg = parse(m.content)
    assert msg["Subject"] == "with dsn"
    assert msg.get_payload() == "hello from alice\r\n"
    assert p.sessions[0].helo[1] == inst.main["myhostname"]
    assert not p.violations, p.violations

    # the peer took NOTIFY=SUCCESS: it reports success, not we (RFC 3461 6.2)
    inst.wait_queue_empty()
    time.sleep(0.5)
    assert inst.maildir_messages(SENDER) == [], "a success notice from us"


def test_success_notice_relayed_to_a_peer_without_dsn(net):
    """NOTIFY=SUCCESS to a peer without DSN: the sender gets our success
    notice with Action: relayed (RFC 3461 6.2), not "delivered"."""
    p = net.peer(ext=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"))
    inst = start(net, {"nodsn.phtest": p})
    qid = send(inst, ["bob@nodsn.phtest"], body("no dsn"),
               rcpt_opts={"bob@nodsn.phtest": ["NOTIFY=SUCCESS"]})
    inst.wait_status(qid, "bob@nodsn.phtest", "sent")
    (m,) = p.wait_messages(1)
    assert "NOTIFY" not in m.rcpts[0][1]            # never sent to a peer without DSN
    (notice,) = inst.wait_notices(SENDER, 1)
    (rcpt,) = dsn_fields(notice)[1:]
    assert rcpt["Action"] == "relayed" and rcpt["Status"].startswith("2."), rcpt


def test_recipient_results_550_450_250(net):
    """One message, three recipients: 550 bounces, 450 defers, 250 is
    delivered; the remote replies are in the log, the queue listing and
    the bounce (RFC 3464) in the sender's Maildir."""
    p = net.peer(rcpt_replies={
        "gone@mixed.phtest": "550 5.1.1 <gone@mixed.phtest>: unknown user zq550",
        "later@mixed.phtest": "450 4.2.1 <later@mixed.phtest>: try again zq450"})
    inst = start(net, {"mixed.phtest": p})
    qid = send(inst, ["gone@mixed.phtest", "later@mixed.phtest", "ok@mixed.phtest"],
               body("mixed"))
    bounced = inst.wait_status(qid, "gone@mixed.phtest", "bounced")
    assert bounced["dsn"] == "5.1.1" and "550 5.1.1" in bounced["reason"] and \
        "zq550" in bounced["reason"], bounced
    deferred = inst.wait_status(qid, "later@mixed.phtest", "deferred")
    assert deferred["dsn"] == "4.2.1" and "zq450" in deferred["reason"], deferred
    sent = inst.wait_status(qid, "ok@mixed.phtest", "sent")
    assert sent["dsn"].startswith("2.")
    (m,) = p.wait_messages(1)
    assert m.rcpt_addrs == ["ok@mixed.phtest"]

    listing = inst.posthorn("queue", "list").stdout
    assert qid in listing and "later@mixed.phtest" in listing and "zq450" in listing, listing
    assert "gone@mixed.phtest" not in listing and "ok@mixed.phtest" not in listing, listing
    (entry,) = [e for e in inst.queue_json() if e["queue_id"] == qid]
    (r,) = entry["recipients"]
    assert r["address"] == "later@mixed.phtest" and "zq450" in r["delay_reason"], entry

    (notice,) = inst.wait_notices(SENDER, 1)
    blocks = dsn_fields(notice)
    failed = [b for b in blocks[1:] if b.get("Final-Recipient") == "rfc822; gone@mixed.phtest"]
    assert len(failed) == 1 and len(blocks) == 2, blocks
    assert failed[0]["Action"] == "failed" and failed[0]["Status"] == "5.1.1"
    assert "550 5.1.1" in failed[0]["Diagnostic-Code"] and "zq550" in failed[0]["Diagnostic-Code"]
    assert failed[0]["Diagnostic-Code"].startswith("smtp;"), failed[0]
    assert "zq550" in notice_text(notice)


def test_421_defers_the_whole_message_then_flush_delivers(net):
    """421 in the middle of the recipients ends the session: nothing of
    the message is delivered, every recipient is deferred with the reply;
    `posthorn queue flush` after the peer recovers delivers all."""
    p = net.peer(rcpt_replies={"two@p421.phtest": "421 4.3.2 shutting down zq421"})
    inst = start(net, {"p421.phtest": p}, main={"minimal_backoff_time": "60s",
                                                 "maximal_backoff_time": "120s"})
    qid = send(inst, ["one@p421.phtest", "two@p421.phtest"], body("421"))
    for r in ("one@p421.phtest", "two@p421.phtest"):
        st = inst.wait_status(qid, r, "deferred")
        assert st["dsn"].startswith("4.") and "zq421" in st["reason"], st
    assert p.messages() == []
    assert all(t.reply is None or not t.reply.startswith("2") for t in p.transactions)
    listing = inst.posthorn("queue", "list").stdout
    assert "zq421" in listing and "one@p421.phtest" in listing and "two@p421.phtest" in listing
    (entry,) = inst.queue_json()
    assert [r["address"] for r in entry["recipients"]] == ["one@p421.phtest", "two@p421.phtest"]
    assert all("zq421" in r["delay_reason"] for r in entry["recipients"]), entry
    p.rcpt_replies.clear()
    mark = inst.log_mark()
    inst.posthorn("queue", "flush")
    for r in ("one@p421.phtest", "two@p421.phtest"):
        inst.wait_status(qid, r, "sent", since=mark)
    (m,) = p.wait_messages(1)
    assert sorted(m.rcpt_addrs) == ["one@p421.phtest", "two@p421.phtest"]
    assert not inst.maildir_messages(SENDER)           # no notice of any kind


def test_452_defers_the_recipient_and_retry_delivers(net):
    """452 (too many recipients) defers that recipient only; it goes on
    the next try."""
    p = net.peer(rcpt_replies={"b@p452.phtest": "452 4.5.3 Too many recipients zq452"})
    inst = start(net, {"p452.phtest": p}, main={"minimal_backoff_time": "60s",
                                                 "maximal_backoff_time": "120s"})
    qid = send(inst, ["a@p452.phtest", "b@p452.phtest"], body("452"))
    st = inst.wait_status(qid, "b@p452.phtest", "deferred")
    assert st["dsn"].startswith("4.") and "zq452" in st["reason"], st
    inst.wait_status(qid, "a@p452.phtest", "sent")
    assert p.wait_messages(1)[0].rcpt_addrs == ["a@p452.phtest"]
    p.rcpt_replies.clear()
    mark = inst.log_mark()
    inst.posthorn("queue", "flush")
    inst.wait_status(qid, "b@p452.phtest", "sent", since=mark)
    assert p.wait_messages(2)[1].rcpt_addrs == ["b@p452.phtest"]
    assert inst.count_log(rf"{qid}: to=<a@p452.phtest>.*status=sent") == 1


def test_552_after_data_bounces(net):
    p = net.peer(replies={"DOT": "552 5.3.4 Message too big for me zq552"})
    inst = start(net, {"p552.phtest": p})
    qid = send(inst, ["x@p552.phtest"], body("552"))
    st = inst.wait_status(qid, "x@p552.phtest", "bounced")
    assert st["dsn"] == "5.3.4" and "zq552" in st["reason"], st
    assert "DATA" in st["reason"] or "end of data" in st["reason"].lower(), st
    (notice,) = inst.wait_notices(SENDER, 1)
    (rcpt,) = dsn_fields(notice)[1:]
    assert rcpt["Status"] == "5.3.4" and "zq552" in rcpt["Diagnostic-Code"], rcpt
    assert p.messages() == []


def test_mail_timeout_defers(net):
    """A peer that never answers MAIL FROM: deferred after
    smtp_mail_timeout, with the stage in the reason."""
    p = net.peer(replies={"MAIL": HANG})
    inst = start(net, {"slow.phtest": p}, main={"smtp_mail_timeout": "2s",
                                                 "minimal_backoff_time": "60s",
                                                 "maximal_backoff_time": "120s"})
    t0 = time.monotonic()
    qid = send(inst, ["x@slow.phtest"], body("timeout"))
    st = inst.wait_status(qid, "x@slow.phtest", "deferred", timeout=15)
    assert time.monotonic() - t0 < 12
    assert st["dsn"].startswith("4."), st
    assert re.search(r"time(d)? ?out", st["reason"], re.I) and "MAIL" in st["reason"], st
    assert p.messages() == [] and p.connections >= 1
    listing = inst.posthorn("queue", "list").stdout
    assert "x@slow.phtest" in listing and re.search(r"time(d)? ?out", listing, re.I), listing


def test_drop_in_data_defers_then_retry_delivers(net):
    """The peer closes the connection in the middle of DATA: the message
    is deferred, never counted as delivered; after the peer is healthy
    again, `posthorn queue flush` delivers it exactly once."""
    p = net.peer(drop_in_data=True)
    inst = start(net, {"drop.phtest": p}, main={"minimal_backoff_time": "60s",
                                                 "maximal_backoff_time": "120s"})
    qid = send(inst, ["x@drop.phtest"], body("dropped", "line\r\n" * 200))
    st = inst.wait_status(qid, "x@drop.phtest", "deferred")
    assert st["dsn"].startswith("4."), st
    assert re.search(r"lost connection|connection (closed|reset)|closed the connection",
                     st["reason"], re.I), st
    assert p.messages() == [] and p.transactions and p.transactions[0].data
    assert inst.count_log(rf"{qid}: to=<x@drop.phtest>.*status=sent") == 0
    p.drop_in_data = False
    mark = inst.log_mark()
    inst.posthorn("queue", "flush")
    inst.wait_status(qid, "x@drop.phtest", "sent", since=mark)
    (m,) = p.wait_messages(1)
    assert parse(m.content).get_payload() == "line\r\n" * 200
    time.sleep(0.5)
    assert len(p.messages()) == 1


# ------------------------------------------------------------ content, ESMTP
UTF8_TEXT = "Grüße aus Köln, ½ € — ünïcödé\r\nzweite Zeile: éàè\r\n"


def test_8bit_to_peer_without_8bitmime_is_converted(net):
    """An 8-bit MIME message to a peer without 8BITMIME arrives
    quoted-printable, 7-bit only, without BODY=8BITMIME; decoded it is
    the original text. A message without MIME headers gets them."""
    p = net.peer(ext=("PIPELINING", "ENHANCEDSTATUSCODES"))
    inst = start(net, {"seven.phtest": p})
    mime = ("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n")
    qid1 = send(inst, ["x@seven.phtest"], body("eight", UTF8_TEXT, mime).encode("utf-8"),
                mail_opts=["BODY=8BITMIME"])
    qid2 = send(inst, ["y@seven.phtest"], body("bare", UTF8_TEXT).encode("utf-8"),
                mail_opts=["BODY=8BITMIME"])
    inst.wait_status(qid1, "x@seven.phtest", "sent")
    inst.wait_status(qid2, "y@seven.phtest", "sent")
    msgs = {m.rcpt_addrs[0]: m for m in p.wait_messages(2)}
    for addr in ("x@seven.phtest", "y@seven.phtest"):
        m = msgs[addr]
        assert "BODY" not in m.mail_params, m.mail
        assert not re.search(rb"[\x80-\xff]", m.content), m.content
        msg = parse(m.content)
        assert msg["Content-Transfer-Encoding"].strip().lower() == "quoted-printable", m.content
        assert msg.get_payload(decode=True).decode("utf-8") == UTF8_TEXT
    assert parse(msgs["x@seven.phtest"].content).get_content_charset() == "utf-8"
    assert parse(msgs["y@seven.phtest"].content)["MIME-Version"]
    assert not p.violations, p.violations


def test_8bit_to_peer_with_8bitmime_passes_unchanged(net):
    p = net.peer(ext=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"))
    inst = start(net, {"eight.phtest": p})
    mime = ("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n")
    qid = send(inst, ["x@eight.phtest"], body("eight", UTF8_TEXT, mime).encode("utf-8"),
               mail_opts=["BODY=8BITMIME"])
    inst.wait_status(qid, "x@eight.phtest", "sent")
    (m,) = p.wait_messages(1)
    assert m.mail_params.get("BODY", "").upper() == "8BITMIME", m.mail
    assert UTF8_TEXT.encode("utf-8") in m.content
    assert not p.violations, p.violations


def test_8bit_header_to_peer_without_8bitmime_bounces(net):
    """8-bit bytes in a header cannot be converted: bounce 5.6.3, nothing
    sent (the policy of docs/smtp-client.md)."""
    p = net.peer(ext=("PIPELINING", "ENHANCEDSTATUSCODES"))
    inst = start(net, {"seven.phtest": p})
    qid = send(inst, ["x@seven.phtest"], body("Grüße", "text\r\n").encode("utf-8"),
               mail_opts=["BODY=8BITMIME"])
    st = inst.wait_status(qid, "x@seven.phtest", "bounced")
    assert st["dsn"] == "5.6.3", st
    inst.wait_notices(SENDER, 1)
    assert p.messages() == [] and not p.violations


def test_smtputf8_to_peer_without_it_bounces_5_6_7(net):
    """A message that needs SMTPUTF8 (a UTF-8 address) to a peer without
    SMTPUTF8 bounces with 5.6.7; a peer with it gets SMTPUTF8 and the
    address as it is."""
    plain = net.peer(ext=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"))
    utf8 = net.peer(ext=("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"))
    inst = start(net, {"ascii.phtest": plain, "utf8.phtest": utf8})
    qid1 = send(inst, ["jürgen@ascii.phtest"], body("utf8").encode(),
                mail_opts=["SMTPUTF8", "BODY=8BITMIME"])
    qid2 = send(inst, ["jürgen@utf8.phtest"], body("utf8").encode(),
                mail_opts=["SMTPUTF8", "BODY=8BITMIME"])
    st = inst.wait_status(qid1, "jürgen@ascii.phtest", "bounced")
    assert st["dsn"] == "5.6.7", st
    inst.wait_status(qid2, "jürgen@utf8.phtest", "sent")
    (m,) = utf8.wait_messages(1)
    assert "SMTPUTF8" in m.mail_params and m.rcpt_addrs == ["jürgen@utf8.phtest"], m.mail
    (notice,) = inst.wait_notices(SENDER, 1)
    assert dsn_fields(notice)[1]["Status"] == "5.6.7"
    assert plain.messages() == [] and not plain.violations and not utf8.violations


def test_chunking_peer_gets_bdat(net):
    p = net.peer(ext=("PIPELINING", "8BITMIME", "CHUNKING", "ENHANCEDSTATUSCODES"))
    inst = start(net, {"chunk.phtest": p})
    text = "".join(f"line {i}\r\n" for i in range(3000)) + ".leading dot\r\n"
    qid = send(inst, ["x@chunk.phtest"], body("chunks", text))
    inst.wait_status(qid, "x@chunk.phtest", "sent")
    (m,) = p.wait_messages(1)
    assert m.bdat and m.chunks and sum(m.chunks) == len(m.data), m
    assert not any(c.upper() == "DATA" for c in p.sessions[0].commands)
    assert parse(m.content).get_payload() == text          # no dot-stuffing in BDAT
    assert not p.violations, p.violations


def test_size_limit_bounces_without_data(net):
    """The peer's SIZE is smaller than the message: bounced 5.3.4 at
    once, the content never sent."""
    p = net.peer(ext=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"), size=2000)
    inst = start(net, {"small.phtest": p})
    qid = send(inst, ["x@small.phtest"], body("small", "y" * 70 + "\r\n"))
    inst.wait_status(qid, "x@small.phtest", "sent")
    qid_big = send(inst, ["z@small.phtest"], body("big", ("y" * 70 + "\r\n") * 100))
    st = inst.wait_status(qid_big, "z@small.phtest", "bounced")
    assert st["dsn"] == "5.3.4", st
    (notice,) = inst.wait_notices(SENDER, 1)
    assert dsn_fields(notice)[1]["Status"] == "5.3.4"
    assert len(p.messages()) == 1
    content = [c for s in p.sessions for c in s.commands if c.upper().startswith(("DATA", "BDAT"))]
    assert len(content) == 1, p.describe()           # the small message's only
    assert not p.violations, p.violations


def test_connection_reuse(net):
    """Messages one after another to one destination go over one session
    (RSET between them); the log shows conn_use=2 and 3."""
    p = net.peer()
    inst = start(net, {"reuse.phtest": p}, main={"smtp_connection_cache_time_limit": "5s"})
    uses = []
    for n in range(3):
        qid = send(inst, [f"r{n}@reuse.phtest"], body(f"reuse {n}"))
        uses.append(inst.wait_status(qid, f"r{n}@reuse.phtest", "sent")["conn_use"])
    p.wait_messages(3)
    assert p.connections == 1, p.describe()
    assert uses == [0, 2, 3], uses              # conn_use=1 is not printed
    assert re.search(r"relay=reuse\.phtest\[[0-9.]+\]:\d+, conn_use=2, ", inst.log_text())


def test_smtp_sink_peer(net):
    """Postfix's smtp-sink as the next hop, through an MX record."""
    sink = net.sink()
    net.start_dns([mx("sink.phtest", "mx.sink.phtest", 10), a("mx.sink.phtest", sink.host)])
    inst = net.sender()
    inst.start()
    qids = [send(inst, [f"u{n}@sink.phtest"], body(f"sink {n}", f"X-Marker-{n}\r\n"))
            for n in range(5)]
    for n, qid in enumerate(qids):
        st = inst.wait_status(qid, f"u{n}@sink.phtest", "sent")
        assert st["relay"] == f"mx.sink.phtest[{sink.host}]:{net.port}", st
    deadline = time.monotonic() + 5
    while len(sink.messages()) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    data = b"".join(sink.messages())
    for n in range(5):
        assert f"X-Marker-{n}".encode() in data
        assert f"X-Rcpt-Args: <u{n}@sink.phtest>".encode() in data


# ------------------------------------------------------- destination scheduling
def test_hung_destination_does_not_block_healthy_one(net):
    """One domain's peer accepts TCP and never greets; meanwhile 50
    messages to a healthy domain are all delivered within a bound, and
    the hung destination's mail ends up deferred (greeting timeout)."""
    hung = net.peer(greeting=HANG)
    good = net.peer()
    inst = start(net, {"hung.phtest": hung, "good.phtest": good},
                 main={"smtp_greeting_timeout": "5s", "minimal_backoff_time": "30s",
                       "maximal_backoff_time": "60s"})
    hung_ids = [send(inst, [f"h{n}@hung.phtest"], body(f"hung {n}")) for n in range(8)]
    hung.wait_connections(1, timeout=5)
    t0 = time.monotonic()
    with inst.smtp() as s:
        s.ehlo("client.example")
        for n in range(50):
            s.sendmail(SENDER, [f"g{n}@good.phtest"], body(f"good {n}").encode())
    good.wait_messages(50, timeout=10)
    took = time.monotonic() - t0
    assert took < 10, took
    # while the healthy mail flowed, the hung peer held at most its window
    assert hung.connections <= 5, hung.connections
    reasons = []
    for n, qid in enumerate(hung_ids):
        st = inst.wait_status(qid, f"h{n}@hung.phtest", "deferred", timeout=20)
        assert st["dsn"].startswith("4."), st
        reasons.append(st["reason"])
    assert any(re.search(r"greeting", r, re.I) for r in reasons), reasons
    assert hung.connections <= 5, hung.connections
    inst.wait_log(r"smtp destination hung\.phtest: dead")
    assert inst.count_log(r"smtp destination good\.phtest: dead") == 0
    print(f"50 messages to the healthy domain in {took:.2f}s; hung peer connections: "
          f"{hung.connections}")


def test_dead_destination_deferred_without_connection(net):
    """A destination whose only host greets with 421 is dead after the
    failure (destination_concurrency_failed_cohort_limit 1): the next
    message for it is deferred with the same reason and no connection
    reaches the peer until minimal_backoff_time has passed; then it is
    alive again and, the peer healthy now, both messages go."""
    p = net.peer(greeting="421 4.3.2 Service not available zqdead")
    inst = start(net, {"dead.phtest": p},
                 main={"minimal_backoff_time": "6s", "maximal_backoff_time": "12s",
                       "smtp_dead_host_time": "0", "smtp_initial_destination_concurrency": "1"})
    qid1 = send(inst, ["a@dead.phtest"], body("dead 1"))
    st = inst.wait_status(qid1, "a@dead.phtest", "deferred")
    t_dead = time.monotonic()
    assert st["dsn"].startswith("4.") and "zqdead" in st["reason"], st
    conns = p.connections
    assert conns >= 1
    mark = inst.log_mark()
    qid2 = send(inst, ["b@dead.phtest"], body("dead 2"))
    st2 = inst.wait_status(qid2, "b@dead.phtest", "deferred", since=mark)
    assert st2["dsn"].startswith("4.") and "zqdead" in st2["reason"], st2
    time.sleep(1)
    assert time.monotonic() - t_dead < 5, "too slow to see the dead period"
    assert p.connections == conns, p.describe()     # (a flush would revive it)
    reasons = [r["delay_reason"] for e in inst.queue_json() for r in e["recipients"]]
    assert len(reasons) == 2 and all("zqdead" in r for r in reasons), reasons
    p.greeting = "220 dead.phtest ESMTP alive again"
    inst.wait_status(qid1, "a@dead.phtest", "sent", timeout=20, since=mark)
    inst.wait_status(qid2, "b@dead.phtest", "sent", timeout=20, since=mark)
    # the retries come when the dead time ends and are tried then, not
    # deferred once more for a second backoff (that would be at 12 s)
    assert 5 < time.monotonic() - t_dead < 10.5
    assert inst.count_log(r"smtp destination dead\.phtest: alive again") >= 1


def test_output_is_canonical_no_smuggling(net):
    """Whatever the stored message holds, the wire gets CR LF lines only,
    dot-stuffed, within 998 octets: a bare CR (sendmail passes it
    through), a lone "." line, an SMTP command after it and a 3000-octet
    line reach the peer as one message with the same text, and the peer
    sees one MAIL command."""
    p = net.peer()
    inst = start(net, {"canon.phtest": p})
    text = (b"Subject: smuggle\n\nbefore\rMAIL FROM:<evil@canon.phtest>\n.\n"
            b"RCPT TO:<victim@canon.phtest>\n..two dots\n" + b"z" * 3000 + b"\nend\n")
    res = inst.sendmail("-i", "-f", SENDER, "x@canon.phtest", input=text)
    assert res.returncode == 0, res.stderr
    (m,) = p.wait_messages(1)
    assert not p.violations, p.violations
    assert all(len(l) <= 998 for l in m.data.split(b"\r\n"))
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", m.data)
    assert b"\r\n.\r\n" not in m.data                   # the lone dot was stuffed
    assert [c.split(":")[0].upper() for c in p.sessions[0].commands
            if c.upper().startswith("MAIL")] == ["MAIL FROM"]
    msg = parse(m.content)
    decoded = msg.get_payload(decode=True)
    for piece in (b"MAIL FROM:<evil@canon.phtest>", b"RCPT TO:<victim@canon.phtest>",
                  b".two dots", b"end"):
        assert piece in decoded, (piece, m.content[:2000])
    assert decoded.replace(b"\r\n", b"").count(b"z") == 3000
    assert len(p.transactions) == 1


def bdat_submit(inst, rcpt, content, body="BINARYMIME"):
    """One message into inst's smtpd with BDAT (BODY=...); the queue ID."""
    with inst.connect(inst.smtp_port, host=inst.smtp_host) as c:
        assert c.readline().startswith("220")
        c.send("EHLO client.example\r")
        while not (line := c.readline()).startswith("250 "):
            assert line.startswith("250-"), line
        c.sock.sendall(f"MAIL FROM:<{SENDER}> BODY={body}\r\nRCPT TO:<{rcpt}>\r\n"
                       f"BDAT {len(content)} LAST\r\n".encode() + content)
        replies = [c.readline() for _ in range(3)]
        assert all(r.startswith("250") for r in replies), replies
        c.send("QUIT\r")
    return replies[2].rsplit(" ", 1)[-1]


def test_binarymime_passed_or_downgraded(net):
    """A BODY=BINARYMIME message: to a peer with CHUNKING and BINARYMIME
    it goes as it is, with BDAT; to one without BINARYMIME it is
    downgraded (no binary bytes, no BODY=BINARYMIME), or bounced."""
    both = net.peer(ext=("PIPELINING", "8BITMIME", "BINARYMIME", "CHUNKING",
                         "ENHANCEDSTATUSCODES"))
    plain = net.peer(ext=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"))
    inst = start(net, {"bin.phtest": both, "nobin.phtest": plain})
    content = (b"MIME-Version: 1.0\r\nSubject: binary\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: binary\r\n\r\nbin\x00ary \xff\xfe data\r\n")
    q1 = bdat_submit(inst, "x@bin.phtest", content)
    q2 = bdat_submit(inst, "x@nobin.phtest", content)
    inst.wait_status(q1, "x@bin.phtest", "sent")
    (m,) = both.wait_messages(1)
    assert m.bdat and m.mail_params.get("BODY", "").upper() == "BINARYMIME", m.mail
    assert b"bin\x00ary \xff\xfe data" in m.content
    st = inst.wait_status(q2, "x@nobin.phtest", "(?:sent|bounced)")
    if "status=sent" in st["line"]:
        (m2,) = plain.wait_messages(1)
        assert m2.mail_params.get("BODY", "").upper() != "BINARYMIME", m2.mail
        assert b"\x00" not in m2.content
        assert parse(m2.content).get_payload(decode=True).rstrip(b"\r\n") == \
            b"bin\x00ary \xff\xfe data"
    else:
        assert st["dsn"].startswith("5.6."), st
    assert not both.violations and not plain.violations, (both.violations, plain.violations)


def test_delay_warning_quotes_the_remote_reply(net):
    """Mail deferred by the peer past delay_warning_time: the sender gets
    one delay notice (Action: delayed) with the peer's reply."""
    p = net.peer(rcpt_replies={"slow@late.phtest": "450 4.2.0 <slow@late.phtest>: busy zqlate"})
    inst = start(net, {"late.phtest": p}, main={"delay_warning_time": "2s"})
    qid = send(inst, ["slow@late.phtest"], body("late"))
    inst.wait_status(qid, "slow@late.phtest", "deferred")
    (notice,) = inst.wait_notices(SENDER, 1, timeout=20)
    (rcpt,) = dsn_fields(notice)[1:]
    assert rcpt["Action"] == "delayed" and rcpt["Status"] == "4.2.0", rcpt
    assert "zqlate" in rcpt.get("Diagnostic-Code", ""), rcpt
    time.sleep(2)
    assert len(inst.wait_notices(SENDER, 1)) == 1                  # only one
    assert p.messages() == []

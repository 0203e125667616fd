"""Relaying end to end: one posthorn instance sends, through smtp-client,
to another instance's smtpd (or a scripted peer) found through DNS
(dnsmasq on loopback, tests/dnsfix.py): MX preference and fallback,
implicit MX, CNAME, null MX, NXDOMAIN and SERVFAIL, IPv6, relayhost,
transport_maps, client AUTH, and expiry of mail to an unreachable host.
Every listener has its own 127.0.0.N and the shared port net.port, which
the sender uses as smtp_tcp_port (mailsuite.RelayNet). Bounces are read
from the sender's Maildir, deferrals from `posthorn queue list`."""
import re
import socket
import time

import pytest

from dnsfix import a, aaaa, cname, mx, null_mx, servfail
from mailsuite import dsn_fields, net, notice_text  # noqa: F401  (net: the fixture)
from smtp_peer import shared_port

SENDER = "alice@example.test"


def message(subject, text="hello from alice\r\n"):
    return f"From: {SENDER}\r\nTo: someone\r\nSubject: {subject}\r\n\r\n{text}"


def test_instance_to_instance_through_mx(net):
    """alice@example.test on instance A writes to carol@b.phtest; A finds
    B's smtpd through the MX of b.phtest and B puts it in carol's
    Maildir; A's log quotes B's 250 with B's queue ID."""
    hb = net.host()
    net.start_dns([mx("b.phtest", "mx.b.phtest", 10), a("mx.b.phtest", hb)])
    b = net.receiver("b.phtest", users=("carol",), host=hb)
    sender = net.sender()
    b.start()
    sender.start()
    qid = sender.smtp_send(SENDER, ["carol@b.phtest"], message("over smtp"))
    res = sender.sendmail("-f", SENDER, "carol@b.phtest",
                          input=b"Subject: over sendmail\n\nsecond line\n")
    assert res.returncode == 0, res.stderr
    msgs = b.wait_maildir("carol@b.phtest", 2, timeout=20)
    subjects = sorted(re.search(rb"^Subject: (.*)$", m, re.M).group(1) for m in msgs)
    assert subjects == [b"over sendmail", b"over smtp"]
    st = sender.wait_status(qid, "carol@b.phtest", "sent")
    assert st["relay"] == f"mx.b.phtest[{hb}]:{net.port}", st
    assert st["dsn"] == "2.0.0", st
    m = re.search(r"queued as (\w+)", st["reason"])
    assert m, st
    assert b.count_log(rf"{m.group(1)}: client=") == 1
    mine = [x for x in msgs if b"over smtp" in x][0]
    assert re.search(rb"^Return-Path: <alice@example.test>", mine, re.M)
    assert re.search(rb"Received: from mail\.example\.test", mine), mine[:600]
    sender.wait_queue_empty(timeout=10, subdirs=("incoming", "active", "deferred"))


def test_mx_preference_order(net):
    """Both exchangers work: every message goes to the lower preference."""
    first, second = net.peer(), net.peer()
    net.start_dns([mx("pref.phtest", "mx20.pref.phtest", 20),
                   mx("pref.phtest", "mx10.pref.phtest", 10),
                   a("mx10.pref.phtest", first.host), a("mx20.pref.phtest", second.host)])
    sender = net.sender()
    sender.start()
    qids = [sender.smtp_send(SENDER, [f"u{n}@pref.phtest"], message(f"pref {n}"))
            for n in range(3)]
    for n, qid in enumerate(qids):
        st = sender.wait_status(qid, f"u{n}@pref.phtest", "sent")
        assert st["relay"].startswith(f"mx10.pref.phtest[{first.host}]"), st
    assert len(first.wait_messages(1)) >= 1 and second.connections == 0


def test_fallback_to_next_mx(net):
    """The best MX refuses the connection, the next greets with 421: the
    message goes to the third, within one delivery."""
    refused = net.host()                    # nobody listens there
    busy = net.peer(greeting="421 4.3.2 Too busy zqbusy")
    good = net.peer()
    net.start_dns([mx("fb.phtest", "mx1.fb.phtest", 10), mx("fb.phtest", "mx2.fb.phtest", 20),
                   mx("fb.phtest", "mx3.fb.phtest", 30), a("mx1.fb.phtest", refused),
                   a("mx2.fb.phtest", busy.host), a("mx3.fb.phtest", good.host)])
    sender = net.sender()
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@fb.phtest"], message("fallback"))
    st = sender.wait_status(qid, "x@fb.phtest", "sent")
    assert st["relay"].startswith(f"mx3.fb.phtest[{good.host}]"), st
    (m,) = good.wait_messages(1)
    assert m.rcpt_addrs == ["x@fb.phtest"]
    assert busy.connections == 1
    assert sender.count_log(rf"{qid}: to=<x@fb.phtest>.*status=deferred") == 0


def test_implicit_mx_and_cname(net):
    """No MX: the domain's own A record (RFC 5321 5.1); a CNAME is
    followed, for the domain and for an MX host."""
    direct, via_alias, via_mx_alias = net.peer(), net.peer(), net.peer()
    net.start_dns([a("imp.phtest", direct.host),
                   cname("alias.phtest", "real.phtest"), a("real.phtest", via_alias.host),
                   mx("cmx.phtest", "mx.cmx.phtest", 10),
                   cname("mx.cmx.phtest", "host.cmx.phtest"),
                   a("host.cmx.phtest", via_mx_alias.host)])
    sender = net.sender()
    sender.start()
    q1 = sender.smtp_send(SENDER, ["x@imp.phtest"], message("implicit"))
    q2 = sender.smtp_send(SENDER, ["x@alias.phtest"], message("cname"))
    q3 = sender.smtp_send(SENDER, ["x@cmx.phtest"], message("mx cname"))
    assert sender.wait_status(q1, "x@imp.phtest", "sent")["relay"] == \
        f"imp.phtest[{direct.host}]:{net.port}"
    sender.wait_status(q2, "x@alias.phtest", "sent")
    sender.wait_status(q3, "x@cmx.phtest", "sent")
    assert direct.wait_messages(1)[0].rcpt_addrs == ["x@imp.phtest"]
    assert via_alias.wait_messages(1)[0].rcpt_addrs == ["x@alias.phtest"]
    assert via_mx_alias.wait_messages(1)[0].rcpt_addrs == ["x@cmx.phtest"]


def test_ipv6_exchanger(net):
    """An exchanger with only an AAAA record (::1), inet_protocols = all."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", net.port))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    p = net.peer(host="::1")
    net.start_dns([mx("six.phtest", "mx.six.phtest", 10), aaaa("mx.six.phtest", "::1")])
    sender = net.sender(main={"inet_protocols": "all"})
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@six.phtest"], message("v6"))
    st = sender.wait_status(qid, "x@six.phtest", "sent")
    assert "[::1]" in st["relay"], st
    assert p.wait_messages(1)[0].session.client_addr[0] == "::1"


def test_null_mx_bounces_5_1_10(net):
    net.start_dns([null_mx("null.phtest")])
    sender = net.sender()
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@null.phtest"], message("to a null MX"))
    st = sender.wait_status(qid, "x@null.phtest", "bounced")
    assert st["dsn"] == "5.1.10", st
    assert re.search(r"null ?MX", st["reason"], re.I), st
    (notice,) = sender.wait_notices(SENDER, 1)
    (rcpt,) = dsn_fields(notice)[1:]
    assert rcpt["Final-Recipient"] == "rfc822; x@null.phtest"
    assert rcpt["Action"] == "failed" and rcpt["Status"] == "5.1.10", rcpt
    assert re.search(r"null ?MX", notice_text(notice), re.I)


def test_nxdomain_bounces(net):
    net.start_dns([a("other.phtest", "127.0.0.1")])
    sender = net.sender()
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@nx.phtest"], message("to nowhere"))
    st = sender.wait_status(qid, "x@nx.phtest", "bounced")
    assert st["dsn"].startswith("5.1."), st
    assert "nx.phtest" in st["reason"], st
    (notice,) = sender.wait_notices(SENDER, 1)
    (rcpt,) = dsn_fields(notice)[1:]
    assert rcpt["Status"] == st["dsn"] and rcpt["Action"] == "failed"


def test_servfail_defers_with_reason_and_next_try(net):
    net.start_dns([servfail("fail.phtest")])
    sender = net.sender(main={"minimal_backoff_time": "60s", "maximal_backoff_time": "120s"})
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@fail.phtest"], message("servfail"))
    st = sender.wait_status(qid, "x@fail.phtest", "deferred")
    assert st["dsn"] == "4.4.3", st
    assert "fail.phtest" in st["reason"], st
    listing = sender.posthorn("queue", "list").stdout
    assert qid in listing and "x@fail.phtest" in listing, listing
    assert "fail.phtest" in listing.split(qid, 1)[1], listing
    (entry,) = [e for e in sender.queue_json() if e["queue_id"] == qid]
    assert entry["queue_name"] == "deferred"
    (r,) = entry["recipients"]
    assert "fail.phtest" in r["delay_reason"], r
    assert time.time() + 30 < entry["next_try"] < time.time() + 200, entry   # backoff 60s..120s
    assert re.search(rf"^{qid} .*\n\(next try: [A-Z][a-z]{{2}} .*\)\n\(.*fail\.phtest",
                     listing, re.M), listing
    assert not sender.maildir_messages(SENDER)


def test_unreachable_host_expires_after_maximal_queue_lifetime(net):
    """Connection refused: deferred, retried with backoff, and returned to
    the sender once maximal_queue_lifetime has passed."""
    nobody = net.host()
    net.start_dns([mx("down.phtest", "mx.down.phtest", 10), a("mx.down.phtest", nobody)])
    sender = net.sender(main={"maximal_queue_lifetime": "4s"})
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@down.phtest"], message("unreachable"))
    st = sender.wait_status(qid, "x@down.phtest", "deferred")
    assert st["dsn"] == "4.4.1" and re.search(r"connect to .*refused", st["reason"], re.I), st
    exp = sender.wait_status(qid, "x@down.phtest", "(?:expired|bounced)", timeout=20)
    # (the last try may have skipped the address as dead: the reason is
    # still the refusal it was marked dead with)
    assert re.search(r"refused", exp["reason"], re.I), exp
    assert sender.count_log(rf"{qid}: to=<x@down.phtest>.*status=deferred") >= 2
    (notice,) = sender.wait_notices(SENDER, 1)
    (rcpt,) = dsn_fields(notice)[1:]
    assert rcpt["Final-Recipient"] == "rfc822; x@down.phtest" and rcpt["Action"] == "failed"
    assert re.search(r"refused", rcpt.get("Diagnostic-Code", "") + notice_text(notice), re.I)


# --------------------------------------------------------------------- routing
def test_relayhost(net):
    """relayhost = [127.0.0.N]: no DNS for the recipient domain at all
    (it would be NXDOMAIN); the relay gets it on smtp_tcp_port."""
    relay = net.peer()
    net.start_dns([])
    sender = net.sender(main={"relayhost": f"[{relay.host}]"})
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@nowhere.phtest", "y@elsewhere.phtest"],
                           message("via relayhost"))
    for r in ("x@nowhere.phtest", "y@elsewhere.phtest"):
        st = sender.wait_status(qid, r, "sent")
        assert st["relay"] == f"{relay.host}[{relay.host}]:{net.port}", st
    (m,) = relay.wait_messages(1)
    assert sorted(m.rcpt_addrs) == ["x@nowhere.phtest", "y@elsewhere.phtest"]
    # local mail stays local
    q2 = sender.smtp_send(SENDER, ["bob@example.test"], message("local"))
    assert sender.wait_status(q2, "bob@example.test", "sent")["relay"] == "local"


def test_transport_maps(net):
    """smtp:[host]:port (its own port), smtp: with the domain's MX,
    error: (bounce with the text) and discard: (logged as sent)."""
    host = net.host()
    other_port = shared_port([host])
    direct = net.peer(host=host, port=other_port)
    via_mx = net.peer()
    net.start_dns([mx("tmx.phtest", "mx.tmx.phtest", 10), a("mx.tmx.phtest", via_mx.host)])
    sender = net.sender()
    (sender.etc / "transport").write_text(
        f"direct.phtest smtp:[{direct.host}]:{other_port}\n"
        "tmx.phtest smtp:\n"
        "err.phtest error:5.7.1 no mail for you zqerr\n"
        "disc.phtest discard:zqdisc\n")
    sender.posthorn("map", f"cdb:{sender.etc}/transport")
    sender.set_main(transport_maps=f"cdb:{sender.etc}/transport")
    sender.start()
    q1 = sender.smtp_send(SENDER, ["x@direct.phtest"], message("direct"))
    q2 = sender.smtp_send(SENDER, ["x@tmx.phtest"], message("tmx"))
    q3 = sender.smtp_send(SENDER, ["x@err.phtest"], message("err"))
    q4 = sender.smtp_send(SENDER, ["x@disc.phtest"], message("disc"))
    assert sender.wait_status(q1, "x@direct.phtest", "sent")["relay"] == \
        f"{direct.host}[{direct.host}]:{other_port}"
    assert sender.wait_status(q2, "x@tmx.phtest", "sent")["relay"].startswith(
        f"mx.tmx.phtest[{via_mx.host}]")
    err = sender.wait_status(q3, "x@err.phtest", "bounced")
    assert err["dsn"] == "5.7.1" and "zqerr" in err["reason"], err
    disc = sender.wait_status(q4, "x@disc.phtest", "sent")
    assert disc["relay"] == "none" and "zqdisc" in disc["reason"], disc
    assert direct.wait_messages(1)[0].rcpt_addrs == ["x@direct.phtest"]
    assert via_mx.wait_messages(1)[0].rcpt_addrs == ["x@tmx.phtest"]
    (notice,) = sender.wait_notices(SENDER, 1)
    assert "zqerr" in dsn_fields(notice)[1].get("Diagnostic-Code", "") + notice_text(notice)


def auth_sender(net, relay, cleartext):
    sender = net.sender(main={"relayhost": f"[{relay.host}]", "smtp_sasl_auth_enable": "yes"})
    (sender.etc / "sasl_passwd").write_text(
        f"[{relay.host}] relayuser:s3cr3t-pw\n[{relay.host}]:{net.port} relayuser:s3cr3t-pw\n")
    sender.posthorn("map", f"cdb:{sender.etc}/sasl_passwd")
    params = {"smtp_sasl_password_maps": f"cdb:{sender.etc}/sasl_passwd"}
    if cleartext:
        params["smtp_sasl_cleartext_destinations"] = f"[{relay.host}]"
    sender.set_main(**params)
    sender.start()
    return sender


@pytest.mark.parametrize("mechs", [("PLAIN", "LOGIN"), ("LOGIN",)])
def test_auth_to_relayhost_with_cleartext_permission(net, mechs):
    """AUTH PLAIN (LOGIN when the relay offers only that) with the
    credentials of smtp_sasl_password_maps; the password never logged."""
    relay = net.peer(auth={"relayuser": "s3cr3t-pw"}, auth_mechs=mechs, auth_required=True)
    net.start_dns([])
    sender = auth_sender(net, relay, cleartext=True)
    qid = sender.smtp_send(SENDER, ["x@far.phtest"], message("with auth"))
    sender.wait_status(qid, "x@far.phtest", "sent")
    (m,) = relay.wait_messages(1)
    assert m.session.auth == (mechs[0], "relayuser", "s3cr3t-pw", True)
    assert not relay.violations, relay.violations
    assert "s3cr3t-pw" not in sender.log_text()


def test_auth_refused_defers(net):
    """Wrong credentials (535): deferred with the relay's reply, not
    bounced and not sent without AUTH."""
    relay = net.peer(auth={"relayuser": "other-pw"}, auth_required=True)
    net.start_dns([])
    sender = auth_sender(net, relay, cleartext=True)
    qid = sender.smtp_send(SENDER, ["x@far.phtest"], message("bad auth"))
    st = sender.wait_status(qid, "x@far.phtest", "deferred")
    assert st["dsn"].startswith("4.") and "535" in st["reason"], st
    assert relay.messages() == [] and relay.sessions[0].auth[3] is False


def test_auth_without_cleartext_permission_defers(net):
    """The relay offers AUTH, but it is not in
    smtp_sasl_cleartext_destinations: no password is sent, the mail is
    deferred (not sent without AUTH, not bounced)."""
    relay = net.peer(auth={"relayuser": "s3cr3t-pw"}, auth_required=True)
    net.start_dns([])
    sender = auth_sender(net, relay, cleartext=False)
    qid = sender.smtp_send(SENDER, ["x@far.phtest"], message("no cleartext"))
    st = sender.wait_status(qid, "x@far.phtest", "deferred")
    assert st["dsn"].startswith("4."), st
    assert re.search(r"cleartext|TLS", st["reason"], re.I), st
    relay.wait_connections(1)
    assert all(s.auth is None for s in relay.sessions)
    assert relay.transactions == [] and relay.messages() == []
    assert "s3cr3t-pw" not in sender.log_text()
    assert not sender.maildir_messages(SENDER)

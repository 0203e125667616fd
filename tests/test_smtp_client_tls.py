"""smtp-client's TLS (issue 13, item 4): opportunistic STARTTLS by
default, the levels none, may, encrypt, fingerprint, verify and secure,
smtp_tls_policy_maps in Postfix's syntax, the outcome in the delivery
log line (tls=Verified:TLSv1.3:cipher, tls=none) and in the "...TLS
connection established to ..." line, policy failures deferred (never
sent in cleartext), a downgrade by a proxy that strips STARTTLS, the
cleartext retry after a failed handshake under may, and relayhost AUTH
only over TLS.

The peers are tests/smtp_peer.py with a Python ssl server context
(STARTTLS) and, for two posthorn instances relaying to each other, a
receiving instance whose smtpd offers STARTTLS. Certificates come from
tests/tlsca.py: its CA, plus leaf certificates for the .phtest names
the MX records use (made with the same CA). Everything is on
127.0.0.N (mailsuite.RelayNet); every wait is bounded."""
import os
import re
import shutil
import socket
import ssl
import threading
import time

import pytest

import tlsca
from dnsfix import a, mx
from mailsuite import net  # noqa: F401  (the fixture)
from tlsca import tls_ca  # noqa: F401  (the fixture)

SENDER = "alice@example.test"


def message(subject):
    return f"From: {SENDER}\r\nTo: someone\r\nSubject: {subject}\r\n\r\nhello over TLS\r\n"


_leaves = {}


def leaf(ca, name, kind="ec"):
    """A server certificate for name, signed by the test CA (one per name)."""
    if name not in _leaves:
        _leaves[name] = tlsca._leaf(ca.dir, ca.ca_cert, "leaf-" + name.replace(".", "-"), kind,
                                    name, [f"DNS:{name}"])
    return _leaves[name]


def server_context(cert, maximum=None):
    """An ssl server context with cert (a tlsca.Cert)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.cert, cert.key)
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def tls_main(ca, **more):
    """main.cf for a sender that trusts the test CA."""
    params = {"smtp_tls_CAfile": ca.ca}
    params.update(more)
    return params


def policy_table(sender, lines):
    """smtp_tls_policy_maps = cdb:ETC/tls_policy with lines."""
    (sender.etc / "tls_policy").write_text("".join(line + "\n" for line in lines))
    sender.posthorn("map", f"cdb:{sender.etc}/tls_policy")
    sender.set_main(smtp_tls_policy_maps=f"cdb:{sender.etc}/tls_policy")


def tls_peer(net, ca, domain, cert=None, **kw):
    """A STARTTLS peer as mx.DOMAIN (cert: default one for that name)."""
    host = net.host()
    name = f"mx.{domain}"
    p = net.peer(host=host, tls=server_context(cert or leaf(ca, name)), **kw)
    return p, [mx(domain, name, 10), a(name, host)]


def established(sender, trust, relay_prefix):
    """The smtp-client line for one TLS session."""
    return sender.wait_log(rf"{trust} TLS connection established to "
                           rf"{re.escape(relay_prefix)}\S*: (TLSv1\.[23]) with cipher (\S+)")


# ------------------------------------------------------------------ may
def test_opportunistic_tls_by_default(net, tls_ca):
    """No TLS setting at all: the peer offers STARTTLS, the session is
    encrypted; the chain is not checked against anything the sender was
    told to trust, so it is "Untrusted" (Postfix's word), and delivered."""
    p, rr = tls_peer(net, tls_ca, "opp.phtest")
    net.start_dns(rr)
    sender = net.sender()
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@opp.phtest"], message("opportunistic"))
    st = sender.wait_status(qid, "x@opp.phtest", "sent")
    (m,) = p.wait_messages(1)
    assert m.session.tls is not None and m.session.tls[0] in ("TLSv1.2", "TLSv1.3")
    assert st["tls"] == f"Untrusted:{m.session.tls[0]}:{m.session.tls[1]}", st
    line = established(sender, "Untrusted", "mx.opp.phtest[")
    assert line.group(1) == m.session.tls[0] and line.group(2) == m.session.tls[1]
    # the first EHLO was in cleartext, the second under TLS (RFC 3207 4.2)
    assert [c.split()[0] for c in m.session.commands[:3]] == ["EHLO", "STARTTLS", "EHLO"]


def test_trusted_under_may_with_a_ca(net, tls_ca):
    """With smtp_tls_CAfile the chain verifies: "Trusted" (may checks no
    name); without STARTTLS the mail goes in cleartext (tls=none)."""
    p, rr = tls_peer(net, tls_ca, "trusted.phtest")
    plain = net.peer()
    net.start_dns(rr + [a("plain.phtest", plain.host)])
    sender = net.sender(main=tls_main(tls_ca))
    sender.start()
    q1 = sender.smtp_send(SENDER, ["x@trusted.phtest"], message("trusted"))
    q2 = sender.smtp_send(SENDER, ["x@plain.phtest"], message("plain"))
    assert sender.wait_status(q1, "x@trusted.phtest", "sent")["tls"].startswith("Trusted:TLSv1.")
    assert sender.wait_status(q2, "x@plain.phtest", "sent")["tls"] == "none"
    assert plain.wait_messages(1)[0].session.tls is None
    assert p.wait_messages(1)[0].session.tls is not None


def test_level_none_never_starttls(net, tls_ca):
    """smtp_tls_security_level = none: STARTTLS is offered, not used."""
    p, rr = tls_peer(net, tls_ca, "none.phtest")
    net.start_dns(rr)
    sender = net.sender(main={"smtp_tls_security_level": "none"})
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@none.phtest"], message("none"))
    assert sender.wait_status(qid, "x@none.phtest", "sent")["tls"] == "none"
    (m,) = p.wait_messages(1)
    assert m.session.tls is None and "STARTTLS" not in m.session.commands


def test_may_handshake_failure_retries_in_cleartext(net, tls_ca):
    """Under may a failed handshake (the peer stops at TLS 1.2, the policy
    wants 1.3) is retried once in cleartext with the same host; under
    encrypt the same failure defers and nothing is sent."""
    host = net.host()
    ctx = server_context(leaf(tls_ca, "mx.hs.phtest"), maximum=ssl.TLSVersion.TLSv1_2)
    p = net.peer(host=host, tls=ctx)
    host2 = net.host()
    p2 = net.peer(host=host2, tls=server_context(leaf(tls_ca, "mx.hs2.phtest"),
                                                  maximum=ssl.TLSVersion.TLSv1_2))
    net.start_dns([mx("hs.phtest", "mx.hs.phtest"), a("mx.hs.phtest", host),
                   mx("hs2.phtest", "mx.hs2.phtest"), a("mx.hs2.phtest", host2)])
    sender = net.sender(main=tls_main(tls_ca))
    policy_table(sender, ["hs.phtest may protocols=>=TLSv1.3",
                          "hs2.phtest encrypt protocols=>=TLSv1.3"])
    sender.start()
    q1 = sender.smtp_send(SENDER, ["x@hs.phtest"], message("retry plain"))
    q2 = sender.smtp_send(SENDER, ["x@hs2.phtest"], message("no plain"))
    st = sender.wait_status(q1, "x@hs.phtest", "sent")
    assert st["tls"] == "none", st
    (m,) = p.wait_messages(1)
    assert m.session.tls is None and "STARTTLS" not in m.session.commands
    assert p.sessions[0].tls is None and p.sessions[0].commands[-1] == "STARTTLS"
    assert sender.count_log(r"TLS handshake with mx\.hs\.phtest\[\S+ failed: .*"
                            r"trying again without TLS") >= 1
    st2 = sender.wait_status(q2, "x@hs2.phtest", "deferred")
    assert st2["dsn"] == "4.7.5" and "Cannot start TLS: handshake failure" in st2["reason"], st2
    assert p2.transactions == []
    assert all("MAIL" not in " ".join(s.commands) for s in p2.sessions)


# ------------------------------------------------------------- encrypt
class StripProxy:
    """A man in the middle on host:port that forwards to target but
    removes STARTTLS from the EHLO reply (a downgrade attack), and
    refuses the STARTTLS command itself should a client send it."""

    def __init__(self, host, port, target):
        self.host, self.port, self.target = host, port, target
        self.stripped = 0
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.2)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop_flag.is_set():
            try:
                c, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            s = socket.create_connection(self.target, timeout=5)
        except OSError:
            c.close()
            return
        c.settimeout(10)
        s.settimeout(10)
        cf, sf = c.makefile("rb"), s.makefile("rb")
        try:
            c.sendall(sf.readline())                      # greeting
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = cf.readline()
                if not line:
                    break
                if line.upper().startswith(b"STARTTLS"):
                    c.sendall(b"454 4.7.0 TLS not available\r\n")
                    continue
                s.sendall(line)
                if line.upper().startswith(b"DATA"):
                    rep = sf.readline()
                    c.sendall(rep)
                    if rep.startswith(b"354"):
                        while True:
                            d = cf.readline()
                            if not d:
                                return
                            s.sendall(d)
                            if d == b".\r\n":
                                break
                    else:
                        continue
                reply = []
                while True:
                    r = sf.readline()
                    if not r:
                        return
                    reply.append(r)
                    if r[3:4] != b"-":
                        break
                kept = [r for r in reply if b"STARTTLS" not in r.upper()]
                if len(kept) != len(reply):
                    self.stripped += 1
                    kept = [k[:3] + b"-" + k[4:] for k in kept[:-1]] + \
                        [kept[-1][:3] + b" " + kept[-1][4:]]
                c.sendall(b"".join(kept))
        except OSError:
            pass
        finally:
            c.close()
            s.close()

    def stop(self):
        self.stop_flag.set()
        self.listener.close()
        self.thread.join(3)


@pytest.mark.parametrize("level", ["encrypt", "may"])
def test_downgrade_by_stripping_proxy(net, tls_ca, level):
    """A proxy removes STARTTLS from the peer's EHLO reply: under encrypt
    the delivery defers 4.7.4 ("TLS is required, but was not offered")
    and no MAIL reaches the peer; under may it goes in cleartext."""
    p, _rr = tls_peer(net, tls_ca, "strip.phtest")
    mitm_host = net.host()
    proxy = StripProxy(mitm_host, net.port, (p.host, net.port))
    try:
        net.start_dns([mx("strip.phtest", "mx.strip.phtest"), a("mx.strip.phtest", mitm_host)])
        sender = net.sender(main=tls_main(tls_ca, smtp_tls_security_level=level))
        sender.start()
        qid = sender.smtp_send(SENDER, ["x@strip.phtest"], message("downgrade " + level))
        if level == "encrypt":
            st = sender.wait_status(qid, "x@strip.phtest", "deferred")
            assert st["dsn"] == "4.7.4", st
            assert "TLS is required, but was not offered by host mx.strip.phtest[" \
                in st["reason"], st
            p.wait_connections(1)
            time.sleep(0.5)
            assert p.transactions == [] and p.messages() == []
            assert proxy.stripped >= 1
        else:
            st = sender.wait_status(qid, "x@strip.phtest", "sent")
            assert st["tls"] == "none", st
            (m,) = p.wait_messages(1)
            assert m.session.tls is None
    finally:
        proxy.stop()


# -------------------------------------------------------------- verify
def test_verify_with_the_mx_name(net, tls_ca):
    """verify: a chain to smtp_tls_CAfile and the MX host name in the
    certificate: "Verified", in both log lines."""
    p, rr = tls_peer(net, tls_ca, "ver.phtest")
    net.start_dns(rr)
    sender = net.sender(main=tls_main(tls_ca, smtp_tls_security_level="verify"))
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@ver.phtest"], message("verified"))
    st = sender.wait_status(qid, "x@ver.phtest", "sent")
    (m,) = p.wait_messages(1)
    assert st["tls"] == f"Verified:{m.session.tls[0]}:{m.session.tls[1]}", st
    assert re.search(rf"relay=mx\.ver\.phtest\[{re.escape(p.host)}\]:\d+, "
                     rf"tls=Verified:TLSv1\.[23]:\S+, delay=", st["line"]), st["line"]
    established(sender, "Verified", f"mx.ver.phtest[{p.host}]:{net.port}")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (privilege drop)")
def test_trust_anchors_read_before_the_privilege_drop(net, tls_ca):
    """smtp_tls_CAfile readable by root only: smtp-client reads it in
    pre_init, before it becomes the mail owner, so verify still works."""
    p, rr = tls_peer(net, tls_ca, "root.phtest")
    net.start_dns(rr)
    private = net.workdir / "root-only-ca.pem"
    shutil.copy(tls_ca.ca, private)
    os.chmod(private, 0o600)
    sender = net.sender(main={"smtp_tls_CAfile": str(private),
                              "smtp_tls_security_level": "verify"})
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@root.phtest"], message("root-only CA"))
    assert sender.wait_status(qid, "x@root.phtest", "sent")["tls"].startswith("Verified:")


def test_verify_with_capath_and_policy_match(net, tls_ca):
    """The table's match= names (here the test CA's "mail.test") instead
    of the MX name; the CA found through smtp_tls_CApath."""
    p, rr = tls_peer(net, tls_ca, "pm.phtest", cert=tls_ca.rsa)
    net.start_dns(rr)
    sender = net.sender(main={"smtp_tls_CApath": tls_ca.ca_dir})
    policy_table(sender, ["pm.phtest verify match=nexthop:mail.test"])
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@pm.phtest"], message("match"))
    assert sender.wait_status(qid, "x@pm.phtest", "sent")["tls"].startswith("Verified:")


@pytest.mark.parametrize("case", ["wrongname", "expired", "untrusted", "nomatch"])
def test_verify_failures_defer(net, tls_ca, case):
    """Under verify a certificate for another name, an expired one, one
    from a CA the sender does not trust, or a policy match= the
    certificate does not carry: deferred 4.7.5, nothing sent; the next
    attempt meets the same refusal (no cleartext fallback)."""
    cert = {"wrongname": tls_ca.wrongname, "expired": tls_ca.expired,
            "untrusted": tls_ca.untrusted, "nomatch": tls_ca.rsa}[case]
    p, rr = tls_peer(net, tls_ca, "bad.phtest", cert=cert)
    net.start_dns(rr)
    sender = net.sender(main=tls_main(tls_ca))
    # expired and untrusted carry mail.test: only their chain is wrong
    match = {"wrongname": "hostname", "expired": "mail.test", "untrusted": "mail.test",
             "nomatch": "other.test"}[case]
    policy_table(sender, [f"bad.phtest verify match={match}"])
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@bad.phtest"], message("bad " + case))
    st = sender.wait_status(qid, "x@bad.phtest", "deferred")
    assert st["dsn"] == "4.7.5", st
    if case in ("expired", "untrusted"):
        assert "Server certificate not trusted: host mx.bad.phtest[" in st["reason"], st
        if case == "expired":
            assert re.search(r"expired", st["reason"], re.I), st
    else:
        assert "Server certificate not verified: host mx.bad.phtest[" in st["reason"], st
    p.wait_connections(2, timeout=20)          # tried again: the same refusal
    p.wait_closed()             # the peer's side of the handshake settled
    assert p.transactions == []
    assert all(s.tls is not None for s in p.sessions if s.commands)
    assert sender.count_log(r"status=sent") == 0


def test_secure_matches_the_nexthop_domain(net, tls_ca):
    """secure: by default the next-hop domain or a subdomain, not the
    MX name: mx.sec.phtest matches .sec.phtest (dot-nexthop)."""
    p, rr = tls_peer(net, tls_ca, "sec.phtest")
    net.start_dns(rr)
    sender = net.sender(main=tls_main(tls_ca))
    policy_table(sender, ["sec.phtest secure"])
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@sec.phtest"], message("secure"))
    assert sender.wait_status(qid, "x@sec.phtest", "sent")["tls"].startswith("Verified:")


# --------------------------------------------------------- fingerprint
@pytest.mark.parametrize("which", ["cert", "pkey", "lower", "wrong"])
def test_fingerprint(net, tls_ca, which):
    """fingerprint: the SHA-256 of the certificate or of its public key
    (any case); an unlisted one defers. No CA is involved."""
    cert = tls_ca.untrusted                       # a chain nobody trusts
    fp = {"cert": cert.fingerprint, "pkey": cert.pkey_fingerprint,
          "lower": cert.fingerprint.lower(), "wrong": tls_ca.rsa.fingerprint}[which]
    p, rr = tls_peer(net, tls_ca, "fp.phtest", cert=cert)
    net.start_dns(rr)
    sender = net.sender()
    policy_table(sender, [f"fp.phtest fingerprint match=00:11:22|{fp}"])
    sender.start()
    qid = sender.smtp_send(SENDER, ["x@fp.phtest"], message("fp " + which))
    if which == "wrong":
        st = sender.wait_status(qid, "x@fp.phtest", "deferred")
        assert st["dsn"] == "4.7.5" and "Server certificate not verified" in st["reason"], st
        assert cert.fingerprint in st["reason"], st
        assert p.transactions == []
    else:
        st = sender.wait_status(qid, "x@fp.phtest", "sent")
        assert st["tls"].startswith("Verified:"), st


# -------------------------------------------------------- policy table
def test_policy_table_keys_and_levels(net, tls_ca):
    """[host]:port, a domain and .parent keys; a bad entry defers
    (4.7.5) rather than weakening anything."""
    hosts = [net.host() for _ in range(3)]
    peers = [net.peer(host=h, ext=("PIPELINING",)) for h in hosts]   # no STARTTLS
    net.start_dns([a("d1.phtest", hosts[0]), a("x.sub.phtest", hosts[1]),
                   a("d3.phtest", hosts[2])])
    sender = net.sender(main=tls_main(tls_ca))
    policy_table(sender, ["d1.phtest encrypt", ".sub.phtest encrypt",
                          "d3.phtest bogus-level"])
    sender.start()
    q = {d: sender.smtp_send(SENDER, [f"u@{d}"], message(d))
         for d in ("d1.phtest", "x.sub.phtest", "d3.phtest")}
    for d in ("d1.phtest", "x.sub.phtest"):
        st = sender.wait_status(q[d], f"u@{d}", "deferred")
        assert st["dsn"] == "4.7.4" and "TLS is required" in st["reason"], st
    st = sender.wait_status(q["d3.phtest"], "u@d3.phtest", "deferred")
    assert st["dsn"] == "4.7.5" and "bad TLS policy" in st["reason"], st
    assert sender.count_log(r"warning: .*smtp_tls_policy_maps: entry d3\.phtest: "
                            r"unknown TLS security level") >= 1
    assert all(p.transactions == [] for p in peers)


# ----------------------------------------------------------- relay AUTH
def auth_sender(net, relay_host, tls_level, ca):
    sender = net.sender(main=tls_main(ca, relayhost=f"[{relay_host}]",
                                      smtp_sasl_auth_enable="yes",
                                      smtp_tls_security_level=tls_level))
    (sender.etc / "sasl_passwd").write_text(f"[{relay_host}] relayuser:s3cr3t-pw\n")
    sender.posthorn("map", f"cdb:{sender.etc}/sasl_passwd")
    sender.set_main(smtp_sasl_password_maps=f"cdb:{sender.etc}/sasl_passwd")
    sender.start()
    return sender


def test_relayhost_auth_needs_tls(net, tls_ca):
    """relayhost AUTH: refused (deferred, no password sent) when the relay
    offers no STARTTLS; done when the session is TLS."""
    plain = net.peer(auth={"relayuser": "s3cr3t-pw"}, auth_required=True)
    net.start_dns([])
    sender = auth_sender(net, plain.host, "may", tls_ca)
    qid = sender.smtp_send(SENDER, ["x@far.phtest"], message("auth, no tls"))
    st = sender.wait_status(qid, "x@far.phtest", "deferred")
    assert st["dsn"] == "4.7.0" and "needs TLS" in st["reason"], st
    assert all(s.auth is None for s in plain.sessions) and plain.transactions == []


def test_relayhost_auth_over_tls(net, tls_ca):
    tls_relay = net.peer(auth={"relayuser": "s3cr3t-pw"}, auth_required=True,
                         tls=server_context(tls_ca.rsa))
    net.start_dns([])
    sender = auth_sender(net, tls_relay.host, "encrypt", tls_ca)
    qid = sender.smtp_send(SENDER, ["x@far.phtest"], message("auth over tls"))
    st = sender.wait_status(qid, "x@far.phtest", "sent")
    assert st["tls"].startswith("Trusted:TLSv1."), st
    (m,) = tls_relay.wait_messages(1)
    assert m.session.tls is not None
    assert m.session.auth == ("PLAIN", "relayuser", "s3cr3t-pw", True)
    cmds = m.session.commands
    assert cmds.index("STARTTLS") < next(i for i, c in enumerate(cmds) if c.startswith("AUTH"))
    assert "s3cr3t-pw" not in sender.log_text()


# ------------------------------------------------- connection cache
def test_cached_tls_session_is_reused(net, tls_ca):
    """The connection cache keeps the TLS session: the second and third
    message go over it (RSET inside TLS), each logged with its TLS."""
    p, rr = tls_peer(net, tls_ca, "cache.phtest")
    net.start_dns(rr)
    sender = net.sender(main=tls_main(tls_ca, smtp_tls_security_level="verify",
                                      smtp_connection_cache_time_limit="5s"))
    sender.start()
    got = []
    for n in range(3):
        qid = sender.smtp_send(SENDER, [f"c{n}@cache.phtest"], message(f"cache {n}"))
        got.append(sender.wait_status(qid, f"c{n}@cache.phtest", "sent"))
    assert len(p.wait_messages(3)) == 3 and p.connections == 1, p.describe()
    assert [g["conn_use"] for g in got] == [0, 2, 3], got
    assert all(g["tls"].startswith("Verified:TLSv1.") for g in got), got
    assert p.sessions[0].commands.count("STARTTLS") == 1
    assert "RSET" in p.sessions[0].commands


# ------------------------------------------------------- resumption
def test_session_resumption(net, tls_ca):
    """A second session to the same peer resumes the first one's TLS
    session (no connection cache: each delivery opens its own)."""
    p, rr = tls_peer(net, tls_ca, "res.phtest")
    net.start_dns(rr)
    sender = net.sender(main=tls_main(tls_ca, smtp_connection_cache_time_limit="0"))
    sender.start()
    for n in range(3):
        qid = sender.smtp_send(SENDER, [f"r{n}@res.phtest"], message(f"res {n}"))
        sender.wait_status(qid, f"r{n}@res.phtest", "sent")
    assert len(p.wait_messages(3)) == 3 and p.connections >= 3
    lines = re.findall(r"TLS connection established to mx\.res\.phtest\S*: .*", sender.log_text())
    assert len(lines) >= 3, lines
    assert any(line.endswith("(resumed)") for line in lines[1:]), lines


# ------------------------------------------------------- two instances
def test_two_instances_relay_over_verified_tls(net, tls_ca):
    """Instance A delivers to instance B (posthorn smtpd with STARTTLS and
    a certificate for its MX name) under verify, and B replies to A the
    same way: both directions Verified, B's Received header records the
    TLS protocol and cipher. (Skips while smtpd has no STARTTLS.)"""
    ha, hb = net.host(), net.host()
    ca_cert, cb_cert = leaf(tls_ca, "mx.a.phtest"), leaf(tls_ca, "mx.b.phtest")
    net.start_dns([mx("a.phtest", "mx.a.phtest"), a("mx.a.phtest", ha),
                   mx("b.phtest", "mx.b.phtest"), a("mx.b.phtest", hb)])

    a_inst = net.sender(main=dict(tls_main(tls_ca, smtp_tls_security_level="verify"),
                                  smtpd_tls_cert_file=ca_cert.cert,
                                  smtpd_tls_key_file=ca_cert.key,
                                  smtpd_tls_security_level="may"),
                        domain="a.phtest", hostname="mx.a.phtest", users=("alice",), smtp_host=ha,
                        smtp_port=net.port)
    b_inst = net.sender(main=dict(tls_main(tls_ca, smtp_tls_security_level="verify"),
                                  smtpd_tls_cert_file=cb_cert.cert,
                                  smtpd_tls_key_file=cb_cert.key,
                                  smtpd_tls_security_level="may"),
                        domain="b.phtest", hostname="mx.b.phtest", users=("carol",), smtp_host=hb,
                        smtp_port=net.port)
    a_inst.start()
    b_inst.start()
    with b_inst.smtp() as s:
        code, text = s.ehlo("probe.phtest")
        if b"STARTTLS" not in text:
            pytest.skip("smtpd does not offer STARTTLS yet (i13-smtpd not merged)")
    qid = a_inst.smtp_send("alice@a.phtest", ["carol@b.phtest"],
                           "From: alice@a.phtest\r\nSubject: a to b\r\n\r\nover verified TLS\r\n")
    st = a_inst.wait_status(qid, "carol@b.phtest", "sent", timeout=20)
    assert st["relay"] == f"mx.b.phtest[{hb}]:{net.port}", st
    assert re.match(r"Verified:TLSv1\.[23]:\S+$", st["tls"]), st
    (msg,) = b_inst.wait_maildir("carol@b.phtest", 1, timeout=20)
    header = re.split(rb"\r?\n\r?\n", msg, maxsplit=1)[0]
    assert re.search(rb"TLSv1\.[23]", header), header
    # and back
    q2 = b_inst.smtp_send("carol@b.phtest", ["alice@a.phtest"],
                          "From: carol@b.phtest\r\nSubject: b to a\r\n\r\nreply\r\n")
    st2 = b_inst.wait_status(q2, "alice@a.phtest", "sent", timeout=20)
    assert re.match(r"Verified:TLSv1\.[23]:\S+$", st2["tls"]), st2
    a_inst.wait_maildir("alice@a.phtest", 1, timeout=20)
    established(a_inst, "Verified", f"mx.b.phtest[{hb}]:{net.port}")
    established(b_inst, "Verified", f"mx.a.phtest[{ha}]:{net.port}")


def test_relayhost_auth_to_posthorn_submission(net, tls_ca):
    """relayhost AUTH to a posthorn submission service (smtpd with the auth
    service): over its cleartext port (AUTH offered without TLS) the
    password is not sent and the mail defers 4.7.0; over its STARTTLS
    port, verified by the IP address in the certificate, smtp-client logs
    in and the relay delivers to bob."""
    from test_smtpd_auth import BOB, SubInstance      # the AUTH fixture of smtpd's tests
    auth = ("smtpd_sasl_auth_enable=yes",
            "smtpd_client_restrictions=permit_sasl_authenticated,reject",
            "mynetworks=192.0.2.0/24")
    relay = SubInstance({"subtls": ("smtpd_tls_security_level=may",) + auth,
                         "subclear": ("smtpd_tls_security_level=none",
                                      "smtpd_tls_auth_only=no") + auth},
                        main={"smtpd_tls_chain_files": tls_ca.rsa.chain})
    try:
        relay.start()
        login = "alice@example.test"
        net.start_dns([])
        results = {}
        for name in ("subclear", "subtls"):
            nexthop = f"[127.0.0.1]:{relay.port[name]}"
            sender = net.sender(main=tls_main(tls_ca, relayhost=nexthop,
                                              smtp_sasl_auth_enable="yes",
                                              smtp_tls_security_level="may"),
                                domain="s.phtest", users=("dave",))
            (sender.etc / "sasl_passwd").write_text(
                f"{nexthop} {login}:{relay.passwords[login]}\n")
            sender.posthorn("map", f"cdb:{sender.etc}/sasl_passwd")
            # the cleartext port cannot meet verify: may for that one
            policy_table(sender, [f"{nexthop} {'may' if name == 'subclear' else 'verify'}"])
            sender.set_main(smtp_sasl_password_maps=f"cdb:{sender.etc}/sasl_passwd")
            sender.start()
            qid = sender.smtp_send("dave@s.phtest", [BOB],
                                   f"From: dave@s.phtest\r\nSubject: via {name}\r\n\r\nhi\r\n")
            status = "deferred" if name == "subclear" else "sent"
            results[name] = sender.wait_status(qid, BOB, status, timeout=20)
            assert relay.passwords[login] not in sender.log_text()
        clear, tls = results["subclear"], results["subtls"]
        assert clear["dsn"] == "4.7.0" and "needs TLS" in clear["reason"], clear
        assert re.match(r"Verified:TLSv1\.[23]:", tls["tls"]), tls
        msgs = relay.wait_maildir(BOB, 1, timeout=20)
        assert len(msgs) == 1 and b"Subject: via subtls" in msgs[0]
        assert relay.count_log(r"sasl_username=alice@example\.test") >= 1 or \
            relay.count_log(r"alice@example\.test") >= 1
    finally:
        relay.cleanup()

"""lib/tls: handshakes over loopback through the test driver ph-tls
(tests/bin/ph-tls) and real clients (Python ssl, openssl s_client).

Covers: RSA or ECDSA certificate picked by what the client supports,
SNI, TLS 1.1 refused by default (and accepted when the protocols say
so), Postfix protocol syntax, session tickets resumed by ANOTHER server
process (shared secret file), key/certificate mismatch errors naming the
file, client-side verification results and fingerprints for good /
expired / wrong-name / untrusted certificates, CApath, client
certificates, the STARTTLS injection defence (stream and conn glue),
the event-loop (conn) glue with large output, and the plugin file check.
"""
import hashlib
import os
import pathlib
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from tlsca import tls_ca  # noqa: F401  (fixture)

BUILD = pathlib.Path(os.environ.get("POSTHORN_BUILD", "build"))
PH_TLS = BUILD / "testbin" / "ph-tls"
PLUGIN = BUILD / "libexec" / "posthorn-tls.so"

pytestmark = pytest.mark.skipif(not PH_TLS.exists() or not PLUGIN.exists(),
                                reason="ph-tls / posthorn-tls.so not built")


def env():
    e = dict(os.environ)
    e["POSTHORN_TLS_PLUGIN"] = str(PLUGIN.resolve())
    return e


SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def no_sanitizer_report(text):
    assert not SANITIZER.search(text or ""), text


def parse(line):
    """'tls ok k=v k=v ... summary=TEXT' -> dict"""
    out = {}
    head, _, summary = line.partition(" summary=")
    for item in head.split(" ")[2:]:
        k, _, v = item.partition("=")
        out[k] = v
    out["summary"] = summary
    # subject/issuer may hold spaces: re-split on known keys
    for key in ("subject", "issuer", "verify_error"):
        marker = " %s=" % key
        if marker in head:
            rest = head.split(marker, 1)[1]
            nxt = min([rest.find(" %s=" % k) for k in
                       ("issuer", "fingerprint", "verified", "matched", "verify_error",
                        "pkey_fingerprint") if rest.find(" %s=" % k) >= 0] or [len(rest)])
            out[key] = rest[:nxt]
    return out


class Server:
    """ph-tls server/conn-server in the background; .port, .lines()"""

    def __init__(self, *args, mode="server", count=1):
        self.p = subprocess.Popen([str(PH_TLS), mode, "-n", str(count), *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env(), text=True)
        line = self.p.stdout.readline()
        if not line.startswith("port "):
            self.p.kill()
            raise AssertionError("server did not start: %r %s" % (line, self.p.stderr.read()))
        self.port = int(line.split()[1])

    def finish(self, timeout=15):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        self.out, self.err = out, err
        no_sanitizer_report(err)
        return out.splitlines()

    def tls_lines(self, timeout=15):
        return [parse(l) for l in self.finish(timeout) if l.startswith("tls ok")]

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()


@pytest.fixture
def servers():
    made = []

    def make(*args, **kw):
        s = Server(*args, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.kill()


def client(*args, timeout=20):
    r = subprocess.run([str(PH_TLS), "client", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env(), text=True, timeout=timeout)
    no_sanitizer_report(r.stderr)
    return r


def client_infos(*args):
    r = client(*args)
    return [parse(l) for l in r.stdout.splitlines() if l.startswith("tls ok")], r


def py_handshake(port, ctx, server_hostname=None):
    """a Python ssl client: (DER certificate, version, cipher)"""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            der = s.getpeercert(binary_form=True)
            version, cipher = s.version(), s.cipher()[0]
            s.sendall(b"hello\r\nquit\r\n")
            s.recv(100)
            return der, version, cipher


def fp(der):
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def noverify_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def both_chains(ca):
    return "--chain-files", "%s,%s" % (ca.rsa.chain, ca.ecdsa.chain)


# ---------------------------------------------------------------------------

def test_rsa_or_ecdsa_by_client_capability(tls_ca, servers):
    """one server, both key types: a client that only does ECDSA gets the
    ECDSA certificate, one that only does RSA gets the RSA one"""
    srv = servers(*both_chains(tls_ca), count=3)
    got = {}
    for kind, ciphers in (("rsa", "ECDHE-RSA-AES128-GCM-SHA256"),
                          ("ecdsa", "ECDHE-ECDSA-AES128-GCM-SHA256")):
        ctx = noverify_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
        der, version, cipher = py_handshake(srv.port, ctx)
        assert version == "TLSv1.2"
        got[kind] = fp(der)
    # TLS 1.3 default client: either, but a valid one
    der, version, _ = py_handshake(srv.port, noverify_ctx())
    assert version == "TLSv1.3"
    assert got["rsa"] == tls_ca.rsa.fingerprint
    assert got["ecdsa"] == tls_ca.ecdsa.fingerprint
    assert fp(der) in (tls_ca.rsa.fingerprint, tls_ca.ecdsa.fingerprint)
    srv.finish()


def test_legacy_cert_key_pairs(tls_ca, servers):
    """cert_file/key_file and eccert_file/eckey_file serve like chain files"""
    srv = servers("--cert", tls_ca.rsa.cert, "--key", tls_ca.rsa.key,
                  "--eccert", tls_ca.ecdsa.cert, "--eckey", tls_ca.ecdsa.key, count=2)
    for want, ciphers in ((tls_ca.rsa, "ECDHE-RSA-AES128-GCM-SHA256"),
                          (tls_ca.ecdsa, "ECDHE-ECDSA-AES128-GCM-SHA256")):
        ctx = noverify_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
        der, _, _ = py_handshake(srv.port, ctx)
        assert fp(der) == want.fingerprint
    srv.finish()


def test_sni_picks_certificate(tls_ca, servers, tmp_path):
    sni = tmp_path / "sni"
    sni.write_text("# SNI\nsni.test %s, %s\n.wild.test %s\n" % (
        tls_ca.sni.chain, tls_ca.sni_ec.chain, tls_ca.sni.chain))
    srv = servers(*both_chains(tls_ca), "--sni-maps", "cdb:%s" % sni, count=4)
    ctx = ssl.create_default_context(cafile=tls_ca.ca)
    der, _, _ = py_handshake(srv.port, ctx, server_hostname="sni.test")  # verifies the name too
    assert fp(der) in (tls_ca.sni.fingerprint, tls_ca.sni_ec.fingerprint)
    der, _, _ = py_handshake(srv.port, ctx, server_hostname="localhost")
    assert fp(der) in (tls_ca.rsa.fingerprint, tls_ca.ecdsa.fingerprint)
    der, _, _ = py_handshake(srv.port, noverify_ctx(), server_hostname="a.wild.test")
    assert fp(der) == tls_ca.sni.fingerprint
    der, _, _ = py_handshake(srv.port, noverify_ctx(), server_hostname="unknown.test")
    assert fp(der) in (tls_ca.rsa.fingerprint, tls_ca.ecdsa.fingerprint)
    infos = srv.tls_lines()
    assert [i["sni"] for i in infos] == ["sni.test", "localhost", "a.wild.test", "unknown.test"]


def s_client_tls11(port):
    """openssl s_client forced to TLS 1.1 (security level 0 so that the
    client itself is willing): True if the handshake succeeded"""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_1",
                        "-cipher", "DEFAULT@SECLEVEL=0"], input="quit\n",
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=15)
    return re.search(r"New, TLSv1(\.[01])?, Cipher is (?!\(NONE\))", r.stdout) is not None


def test_tls11_refused_by_default(tls_ca, servers):
    srv = servers(*both_chains(tls_ca), count=1)
    assert not s_client_tls11(srv.port)
    srv.finish()
    # the same client succeeds when the server allows it: the refusal
    # above is the server's default, not the client's own limit
    srv = servers(*both_chains(tls_ca), "--protocols", ">=TLSv1", count=1)
    assert s_client_tls11(srv.port)
    srv.finish()


def test_protocols_postfix_syntax(tls_ca, servers):
    srv = servers(*both_chains(tls_ca), "--protocols", "!SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3")
    _, version, _ = py_handshake(srv.port, noverify_ctx())
    assert version == "TLSv1.2"
    srv.finish()
    srv = servers(*both_chains(tls_ca), "--protocols", "TLSv1.3")
    _, version, _ = py_handshake(srv.port, noverify_ctx())
    assert version == "TLSv1.3"
    srv.finish()
    r = subprocess.run([str(PH_TLS), "check", *both_chains(tls_ca), "--protocols", "TLSv9"],
                       stdout=subprocess.PIPE, text=True, env=env())
    assert r.returncode != 0 and 'unknown TLS protocol "TLSv9"' in r.stdout


def test_ciphers_and_ciphersuites(tls_ca, servers):
    srv = servers(*both_chains(tls_ca), "--ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
    _, version, cipher = py_handshake(srv.port, noverify_ctx())
    assert (version, cipher) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
    srv.finish()
    r = subprocess.run([str(PH_TLS), "check", *both_chains(tls_ca), "--ciphers", "NOSUCH"],
                       stdout=subprocess.PIPE, text=True, env=env())
    assert r.returncode != 0 and "bad cipher list" in r.stdout


def test_ticket_resumed_by_another_process(tls_ca, servers, tmp_path):
    """two separate server processes sharing the ticket secret: a session
    from the first is resumed by the second"""
    key = tmp_path / "ticket.key"
    a = servers(*both_chains(tls_ca), "--ticket-key-file", str(key))
    b = servers(*both_chains(tls_ca), "--ticket-key-file", str(key))
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    infos, r = client_infos("--ca-file", tls_ca.ca, "--cache-key", "mx:25",
                            "-c", str(a.port), "-c", str(b.port))
    assert [i["resumed"] for i in infos] == ["0", "1"], r.stdout + r.stderr
    assert [i["resumed"] for i in b.tls_lines()] == ["1"]
    a.finish()


def test_ticket_not_resumed_with_other_secret(tls_ca, servers, tmp_path):
    a = servers(*both_chains(tls_ca), "--ticket-key-file", str(tmp_path / "k1"))
    b = servers(*both_chains(tls_ca), "--ticket-key-file", str(tmp_path / "k2"))
    infos, r = client_infos("--ca-file", tls_ca.ca, "--cache-key", "mx:25",
                            "-c", str(a.port), "-c", str(b.port))
    assert [i["resumed"] for i in infos] == ["0", "0"], r.stdout
    a.finish()
    b.finish()


def test_ticket_secret_readable_by_others_refused(tls_ca, servers, tmp_path):
    key = tmp_path / "ticket.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o644)
    a = servers(*both_chains(tls_ca), "--ticket-key-file", str(key))
    b = servers(*both_chains(tls_ca), "--ticket-key-file", str(key))
    infos, _ = client_infos("--ca-file", tls_ca.ca, "--cache-key", "x",
                            "-c", str(a.port), "-c", str(b.port))
    assert [i["resumed"] for i in infos] == ["0", "0"]
    a.finish()
    b.finish()
    assert "tickets off" in a.err and "mode 0600" in a.err


def test_ticket_previous_slot_accepted(tls_ca, servers, tmp_path):
    """lifetime 3 s: a ticket of the previous slot is still accepted, one
    two slots old is not (the keys rotate). The first connection is made
    just after a slot boundary (it may take up to 2.7 s to get there)."""
    key = tmp_path / "ticket.key"
    srv = [servers(*both_chains(tls_ca), "--ticket-key-file", str(key), "--ticket-lifetime", "3")
           for _ in range(4)]
    for pause, want in ((3300, "1"), (6300, "0")):
        while int(time.time()) % 3 != 0:       # just after a slot boundary
            time.sleep(0.02)
        a, b = srv.pop(), srv.pop()
        infos, r = client_infos("--ca-file", tls_ca.ca, "--cache-key", "x", "--pause", str(pause),
                                "-c", str(a.port), "-c", str(b.port))
        assert [i["resumed"] for i in infos] == ["0", want], r.stdout + r.stderr


def test_key_cert_mismatch_names_the_file(tls_ca, tmp_path):
    r = subprocess.run([str(PH_TLS), "check", "--cert", tls_ca.rsa.cert, "--key", tls_ca.ecdsa.key],
                       stdout=subprocess.PIPE, text=True, env=env())
    assert r.returncode == 1
    assert "the private key in %s does not match the certificate in %s" % (
        tls_ca.ecdsa.key, tls_ca.rsa.cert) in r.stdout
    bad = tmp_path / "bad-chain.pem"
    bad.write_text(open(tls_ca.ecdsa.key).read() + open(tls_ca.rsa.cert).read())
    os.chmod(bad, 0o600)
    r = subprocess.run([str(PH_TLS), "check", "--chain-files", str(bad)],
                       stdout=subprocess.PIPE, text=True, env=env())
    assert r.returncode == 1
    assert "%s: the private key does not match the certificate" % bad in r.stdout
    r = subprocess.run([str(PH_TLS), "check", "--chain-files", str(tmp_path / "missing.pem")],
                       stdout=subprocess.PIPE, text=True, env=env())
    assert r.returncode == 1 and "missing.pem" in r.stdout
    r = subprocess.run([str(PH_TLS), "check"], stdout=subprocess.PIPE, text=True, env=env())
    assert r.returncode == 1 and "no server certificate" in r.stdout


def test_key_file_readable_by_others_warns(tls_ca, tmp_path):
    loose = tmp_path / "loose.pem"
    shutil.copy(tls_ca.rsa.chain, loose)
    os.chmod(loose, 0o644)
    r = subprocess.run([str(PH_TLS), "check", "--chain-files", str(loose)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    assert r.returncode == 0
    assert "%s is accessible by group or others" % loose in r.stderr


@pytest.mark.parametrize("which,verified,matched,error", [
    ("rsa", "1", "1", "-"),
    ("expired", "0", "1", "certificate has expired"),
    ("wrongname", "1", "0", "-"),
    ("untrusted", "0", "1", "unable to get local issuer certificate"),
])
def test_client_verification(tls_ca, servers, which, verified, matched, error):
    cert = getattr(tls_ca, which)
    srv = servers("--chain-files", cert.chain)
    infos, r = client_infos("--ca-file", tls_ca.ca, "--match", "localhost", "--sni", "localhost",
                            "-c", str(srv.port))
    assert len(infos) == 1, r.stdout + r.stderr
    i = infos[0]
    assert i["fingerprint"] == cert.fingerprint
    assert i["pkey_fingerprint"] == cert.pkey_fingerprint
    assert (i["verified"], i["matched"]) == (verified, matched)
    assert i["verify_error"] == error
    assert i["subject"] == ("wrong.test" if which == "wrongname" else "localhost")
    srv.finish()


def test_client_ip_match_and_capath(tls_ca, servers):
    srv = servers("--chain-files", tls_ca.ecdsa.chain)
    infos, r = client_infos("--ca-path", tls_ca.ca_dir, "--match", "127.0.0.1", "-c", str(srv.port))
    assert infos and infos[0]["verified"] == "1" and infos[0]["matched"] == "1", r.stdout
    assert infos[0]["matched_name"] == "127.0.0.1"
    srv.finish()


def test_client_certificate(tls_ca, servers):
    srv = servers(*both_chains(tls_ca), "--ask-ccert", "--ca-file", tls_ca.ca)
    infos, r = client_infos("--ca-file", tls_ca.ca, "--cert", tls_ca.client.cert,
                            "--key", tls_ca.client.key, "-c", str(srv.port))
    assert infos, r.stdout + r.stderr
    s = srv.tls_lines()[0]
    assert (s["peer_cert"], s["subject"], s["verified"]) == ("1", "client.test", "1")
    assert s["fingerprint"] == tls_ca.client.fingerprint


@pytest.mark.parametrize("mode", ["server", "conn-server"])
def test_starttls_injection_discarded(tls_ca, servers, mode):
    srv = servers(*both_chains(tls_ca), "--starttls", mode=mode)
    r = client("--ca-file", tls_ca.ca, "--starttls", "--inject", "INJECTED", "-c", str(srv.port))
    assert "reply echo: hello" in r.stdout, r.stdout + r.stderr
    lines = srv.finish()
    discarded = [l for l in lines if l.startswith("discarded")]
    assert discarded and int(discarded[0].split()[1]) >= len("INJECTED\r\n")
    got = [l for l in lines if l.startswith("got ")]
    assert "got INJECTED" not in got
    assert got[0] == "got hello"


def test_conn_glue_large_output_and_real_client(tls_ca, servers):
    srv = servers(*both_chains(tls_ca), mode="conn-server", count=2)
    ctx = ssl.create_default_context(cafile=tls_ca.ca)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"big\r\n")
            data = b""
            deadline = time.time() + 15
            while not data.endswith(b"end\r\n") and time.time() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.sendall(b"quit\r\n")
    assert data.count(b"\r\n") == 20001
    infos, r = client_infos("--ca-file", tls_ca.ca, "-c", str(srv.port))
    assert infos and infos[0]["verified"] == "1"
    assert "reply echo: hello" in r.stdout
    srv.finish()


def test_plugin_file_checked(tls_ca, tmp_path):
    loose = tmp_path / "posthorn-tls.so"
    shutil.copy(PLUGIN, loose)
    os.chmod(loose, 0o775)
    e = env()
    e["POSTHORN_TLS_PLUGIN"] = str(loose)
    r = subprocess.run([str(PH_TLS), "check", *both_chains(tls_ca)], stdout=subprocess.PIPE,
                       text=True, env=e)
    assert r.returncode == 1 and "refused" in r.stdout and str(loose) in r.stdout
    os.chmod(loose, 0o755)
    r = subprocess.run([str(PH_TLS), "check", *both_chains(tls_ca)], stdout=subprocess.PIPE,
                       text=True, env=e)
    assert r.returncode == 0 and r.stdout.strip() == "ok"


def test_plugin_not_mapped_without_tls(tls_ca):
    """the programs themselves do not link OpenSSL: only the plugin does"""
    for prog in ("smtpd", "pop3d-login", "imapd-login", "master"):
        path = BUILD / "libexec" / prog
        if not path.exists():
            continue
        r = subprocess.run(["ldd", str(path)], stdout=subprocess.PIPE, text=True)
        assert "libssl" not in r.stdout, prog
    r = subprocess.run(["ldd", str(PLUGIN)], stdout=subprocess.PIPE, text=True)
    assert "libssl" in r.stdout


def test_reload_picks_new_certificate(tls_ca, instance):
    """the certificate file is replaced on disk: after `posthorn reload`
    new sessions get the new certificate, and a session in progress
    (in the old process) goes on"""
    cert = instance.etc / "server.pem"
    shutil.copy(tls_ca.rsa.chain, cert)
    os.chmod(cert, 0o600)
    port = instance.free_port()
    instance.set_main(smtpd_tls_chain_files=str(cert),
                      tls_session_ticket_key_file=str(instance.etc / "ticket.key"))
    instance.write_master_cf(f"{port} inet n - n - - ph-tls-echo\n")
    # the instance's daemon_directory has the plugin (a link to the build)
    assert (instance.libexec / "posthorn-tls.so").exists()
    instance.start()
    ctx = noverify_ctx()

    def connect():
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = ctx.wrap_socket(raw)
        return s, fp(s.getpeercert(binary_form=True))

    old, got = connect()
    assert got == tls_ca.rsa.fingerprint
    old.sendall(b"one\r\n")
    assert old.recv(100).startswith(b"echo: one")
    instance.wait_log(r"TLS connection established from client: TLSv1.3 with cipher")
    # replace the certificate the way an admin (or certbot) does: rename
    tmp = instance.etc / "server.pem.new"
    shutil.copy(tls_ca.ecdsa.chain, tmp)
    os.chmod(tmp, 0o600)
    os.rename(tmp, cert)
    instance.reload()
    deadline = time.time() + 10
    while True:
        new, got = connect()
        new.sendall(b"two\r\n")
        new.recv(100)
        new.close()
        if got == tls_ca.ecdsa.fingerprint or time.time() > deadline:
            break
        time.sleep(0.2)
    assert got == tls_ca.ecdsa.fingerprint
    # the old session still works, in its old process, with its old cert
    old.sendall(b"three\r\n")
    assert old.recv(100).startswith(b"echo: three")
    old.sendall(b"quit\r\n")
    old.close()

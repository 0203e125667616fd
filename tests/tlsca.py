"""tlsca - a throwaway certificate authority for the TLS tests.

Every TLS test uses this fixture instead of its own certificates. It
runs the openssl(1) command line once per test session (ECDSA keys are
cheap, the RSA keys are 2048 bits) and returns paths and fingerprints:

    from tlsca import tls_ca          # the pytest fixture (session scope)
    def test_x(tls_ca):
        tls_ca.ca                     # CA certificate (PEM): trust anchor
        tls_ca.rsa.chain              # key + certificate in one file
        tls_ca.rsa.cert, .key         # separate files (legacy cert_file/key_file)
        tls_ca.rsa.fingerprint        # SHA-256 of the DER certificate,
                                      # "AB:CD:..." (upper case, ':' separated)
        tls_ca.rsa.pkey_fingerprint   # SHA-256 of the DER public key

Or without pytest: `tlsca.build(directory)` returns the same object.

Certificates (all signed by `ca` unless said otherwise), each a Cert with
name, key, cert, chain (key then certificate then nothing else: the CA
is the trust anchor), fingerprint, pkey_fingerprint, names:
    rsa        RSA 2048 server: CN localhost, SAN DNS localhost, mail.test,
               IP 127.0.0.1
    ecdsa      ECDSA P-256 server, same names
    sni        RSA 2048 server for "sni.test" only
    sni_ec     ECDSA server for "sni.test" only
    expired    ECDSA, names as rsa, valid 2020-01-01 .. 2020-12-31
    wrongname  ECDSA, CN/SAN wrong.test only
    untrusted  ECDSA, names as rsa, signed by a second CA (`other_ca`)
    client     ECDSA client certificate, CN client.test (clientAuth)
and `ca_dir`, a hashed CA directory (c_rehash style) holding `ca`.
"""
import hashlib
import os
import pathlib
import subprocess
import tempfile

SERVER_NAMES = ["DNS:localhost", "DNS:mail.test", "IP:127.0.0.1"]


class Cert:
    def __init__(self, name, directory):
        self.name = name
        d = pathlib.Path(directory)
        self.key = str(d / f"{name}.key")
        self.cert = str(d / f"{name}.pem")
        self.chain = str(d / f"{name}-chain.pem")
        self.fingerprint = ""
        self.pkey_fingerprint = ""
        self.names = []

    def __repr__(self):
        return f"Cert({self.name}, {self.cert})"


class CA:
    """Paths of the whole set (see the module comment)."""


def _run(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout


def _colon_hex(data):
    return ":".join("%02X" % b for b in data)


def _fingerprints(cert_path):
    der = _run("x509", "-in", cert_path, "-outform", "DER")
    pub_der = _run("x509", "-in", cert_path, "-noout", "-pubkey")
    pem = pub_der.decode()
    tmp = cert_path + ".pub"
    with open(tmp, "w") as f:
        f.write(pem)
    spki = _run("pkey", "-pubin", "-in", tmp, "-outform", "DER")
    os.unlink(tmp)
    return _colon_hex(hashlib.sha256(der).digest()), _colon_hex(hashlib.sha256(spki).digest())


def _key(path, kind):
    if kind == "rsa":
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    os.chmod(path, 0o600)


def _self_signed(d, name, cn):
    c = Cert(name, d)
    _key(c.key, "ec")
    _run("req", "-new", "-x509", "-key", c.key, "-out", c.cert, "-days", "3650",
         "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    c.fingerprint, c.pkey_fingerprint = _fingerprints(c.cert)
    return c


def _leaf(d, ca, name, kind, cn, sans, client=False, dates=None):
    c = Cert(name, d)
    c.names = [s.split(":", 1)[1] for s in sans]
    _key(c.key, kind)
    csr = os.path.join(d, f"{name}.csr")
    _run("req", "-new", "-key", c.key, "-out", csr, "-subj", f"/CN={cn}")
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
        if sans:
            f.write("subjectAltName=%s\n" % ",".join(sans))
    if dates is None:
        _run("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
             "-CAcreateserial", "-out", c.cert, "-days", "825", "-sha256",
             "-extfile", ext)
    else:
        # x509 -req cannot back-date: a minimal `openssl ca` does
        db = os.path.join(d, f"{name}.db")
        open(db, "w").close()
        conf = os.path.join(d, f"{name}.cnf")
        with open(conf, "w") as f:
            f.write(f"""[ca]
default_ca = c
[c]
database = {db}
new_certs_dir = {d}
serial = {d}/{name}.serial
default_md = sha256
policy = p
unique_subject = no
copy_extensions = none
[p]
commonName = supplied
[x]
basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth
subjectAltName={",".join(sans)}
""")
        with open(os.path.join(d, f"{name}.serial"), "w") as f:
            f.write("1000\n")
        _run("ca", "-batch", "-config", conf, "-cert", ca.cert, "-keyfile", ca.key,
             "-in", csr, "-out", c.cert, "-startdate", dates[0], "-enddate", dates[1],
             "-extensions", "x", "-notext")
    with open(c.chain, "w") as out:
        out.write(open(c.key).read())
        out.write(open(c.cert).read())
    os.chmod(c.chain, 0o600)
    c.fingerprint, c.pkey_fingerprint = _fingerprints(c.cert)
    return c


def build(directory):
    """Create the whole set under directory (must exist); return a CA."""
    d = str(directory)
    r = CA()
    r.dir = d
    ca = _self_signed(d, "ca", "posthorn test CA")
    other = _self_signed(d, "other-ca", "posthorn untrusted CA")
    r.ca = ca.cert
    r.ca_cert = ca
    r.other_ca = other.cert
    r.rsa = _leaf(d, ca, "rsa", "rsa", "localhost", SERVER_NAMES)
    r.ecdsa = _leaf(d, ca, "ecdsa", "ec", "localhost", SERVER_NAMES)
    r.sni = _leaf(d, ca, "sni", "rsa", "sni.test", ["DNS:sni.test"])
    r.sni_ec = _leaf(d, ca, "sni-ec", "ec", "sni.test", ["DNS:sni.test"])
    r.expired = _leaf(d, ca, "expired", "ec", "localhost", SERVER_NAMES,
                      dates=("20200101000000Z", "20201231000000Z"))
    r.wrongname = _leaf(d, ca, "wrongname", "ec", "wrong.test", ["DNS:wrong.test"])
    r.untrusted = _leaf(d, other, "untrusted", "ec", "localhost", SERVER_NAMES)
    r.client = _leaf(d, ca, "client", "ec", "client.test", [], client=True)
    # hashed directory for CApath
    r.ca_dir = os.path.join(d, "capath")
    os.makedirs(r.ca_dir, exist_ok=True)
    h = _run("x509", "-in", ca.cert, "-noout", "-subject_hash").decode().strip()
    link = os.path.join(r.ca_dir, h + ".0")
    if not os.path.exists(link):
        os.symlink(ca.cert, link)
    os.chmod(d, 0o755)
    return r


_cached = None


def get():
    """One set per Python process (kept in a temporary directory)."""
    global _cached
    if _cached is None:
        d = tempfile.mkdtemp(prefix="posthorn-tlsca-")
        _cached = build(d)
    return _cached


try:
    import pytest

    @pytest.fixture(scope="session")
    def tls_ca():
        return get()
except ImportError:  # pragma: no cover - used without pytest
    pass


if __name__ == "__main__":
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="posthorn-tlsca-")
    os.makedirs(out, exist_ok=True)
    ca = build(out)
    for n in ("rsa", "ecdsa", "sni", "sni_ec", "expired", "wrongname", "untrusted", "client"):
        c = getattr(ca, n)
        print(n, c.chain, c.fingerprint)
    print("ca", ca.ca)

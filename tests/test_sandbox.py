"""tools/sandbox.sh (`make run`): sets up an instance without starting it
(POSTHORN_SANDBOX_NO_START=1) in a temporary directory
(POSTHORN_SANDBOX_DIR) from a temporary build directory (POSTHORN_BUILD)
whose daemons are stand-ins, so the test does not depend on which
daemons exist yet. Checks the generated files, the ports, the demo user
and its password file, and that a second run changes nothing."""
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess

import pytest

from conftest import stand_in_place

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("POSTHORN_BUILD", "build")
POSTHORN = BUILD / "bin" / "posthorn"
SANDBOX = ROOT / "tools" / "sandbox.sh"
MKINSTANCE = ROOT / "tools" / "mkinstance.py"

pytestmark = pytest.mark.skipif(not POSTHORN.exists(), reason=f"{POSTHORN} not built")

PORTS = {"2525": "smtpd", "2587": "smtpd", "2465": "smtpd", "2110": "pop3d-login",
         "2995": "pop3d-login", "2143": "imapd-login", "2993": "imapd-login"}
# what a TLS port needs besides its daemon (without it the port would be
# something else: plain SMTP on 2465, an unauthenticated 2587)
NEEDS = {"2587": ("smtpd_tls_security_level", "smtpd_sasl_auth_enable", "smtpd_tls_auth_only"),
         "2465": ("smtpd_tls_wrappermode", "smtpd_sasl_auth_enable"),
         "2995": ("pop3d_tls_wrappermode",), "2993": ("imapd_tls_wrappermode",)}
BUILT = ("master", "smtpd", "cleanup", "auth")


@pytest.fixture
def place():
    """A world-searchable directory (as root the daemons' user must reach
    it) with a stand-in build: the real posthorn, stub daemons."""
    base = stand_in_place("posthorn-sandbox-", BUILT)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def run_sandbox(place, run_dir=None, build=None, timeout=120):
    env = dict(os.environ,
               POSTHORN_BUILD=str(build or place / "build"),
               POSTHORN_SANDBOX_DIR=str(run_dir or place / "run"),
               POSTHORN_SANDBOX_NO_START="1")
    env.pop("POSTHORN_CONFIG_DIR", None)
    return subprocess.run(["sh", str(SANDBOX)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def known_parameters(posthorn, etc):
    res = subprocess.run([str(posthorn), "-c", str(etc), "conf", "-d"],
                         capture_output=True, text=True, timeout=60, check=True)
    return {line.split("=", 1)[0].strip() for line in res.stdout.splitlines() if "=" in line}


def parse_main(text):
    values = {}
    for line in text.splitlines():
        if line and not line[0] in "# \t" and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_sandbox_setup(place):
    proc = run_sandbox(place)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = place / "run"
    etc = run / "etc"

    main = parse_main((etc / "main.cf").read_text())
    assert main["queue_directory"] == f"{run}/queue"
    assert main["data_directory"] == f"{run}/data"
    assert main["daemon_directory"] == f"{place}/build/libexec"
    # the commands are linked into run/bin; postdrop is a helper in
    # daemon_directory, which check as root makes set-gid (root:setgid_group
    # 2755), so local users can queue
    assert main["command_directory"] == f"{place}/run/bin"
    assert not (place / "run" / "bin" / "postdrop").exists()
    if os.geteuid() == 0:
        st = (place / "build" / "libexec" / "postdrop").stat()
        assert stat.S_IMODE(st.st_mode) == 0o2755 and st.st_uid == 0
    assert main["maillog_file"] == f"{run}/log/maillog"
    assert main["inet_interfaces"] == "127.0.0.1"
    if os.geteuid() == 0:
        assert main["mail_owner"] == "posthorn"
        assert main["setgid_group"] == "posthorn-drop"
        pwd.getpwnam("posthorn")
    else:
        assert main["mail_owner"] == pwd.getpwuid(os.geteuid()).pw_name

    # master.cf: every loopback port, active only where the daemon exists
    # and knows the parameters the port needs.
    master = (etc / "master.cf").read_text()
    known = known_parameters(place / "build/bin/posthorn", etc)
    for port, daemon in PORTS.items():
        m = re.search(rf"^(#?){port}\s+inet\s.*\s{daemon}$", master, re.M)
        assert m, f"port {port} ({daemon}) missing from master.cf"
        can = daemon in BUILT and all(n in known for n in NEEDS.get(port, ()))
        assert (m.group(1) == "") == can, (port, daemon)
        if daemon in BUILT and not can:
            assert f"# {port}: this build's {daemon} has no" in master
    assert re.search(r"^cleanup\s+unix\s", master, re.M)
    assert re.search(r"^auth\s+unix\s", master, re.M)
    assert re.search(r"^#qmgr\s+fifo\s.*\s300\s+1\s+qmgr$", master, re.M)
    assert "# qmgr: not built yet" in master
    # posthorn accepts what the sandbox wrote.
    chk = subprocess.run([str(place / "build/bin/posthorn"), "-c", str(etc), "check"],
                         capture_output=True, text=True, timeout=30)
    assert chk.returncode == 0 and chk.stderr == "", chk.stderr

    # The demo user: a password kept 0600, a SHA-512 crypt hash, a Maildir.
    pwfile = run / "demo.password"
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o600
    password = pwfile.read_text().strip()
    assert len(password) >= 12
    users = (etc / "users").read_text()          # users(5): the demo user is declared here
    m = re.search(r"^demo@example\.test:(\$6\$[^:]+):::([^:]+):$", users, re.M)
    assert m, users
    salt = m.group(1).split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password,
                           capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    assert again == m.group(1)
    assert m.group(2) == "example.test/demo/"
    maildir = run / "mail" / m.group(2)
    for sub in ("cur", "new", "tmp"):
        assert (maildir / sub).is_dir()
    assert stat.S_IMODE((etc / "users").stat().st_mode) == 0o600
    # posthorn users built the auth table (the hash, for auth alone) ...
    assert stat.S_IMODE((etc / "users.auth.cdb").stat().st_mode) == 0o600
    q = subprocess.run([str(place / "build/bin/posthorn"), "-c", str(etc), "map", "-q",
                        "DEMO@example.test", f"cdb:{etc}/users.auth"],
                       capture_output=True, text=True, timeout=30)
    assert q.returncode == 0 and q.stdout.startswith("$6$")
    assert main["auth_user_maps"] == f"cdb:{etc}/users.auth"
    # ... and the mailbox table, the Maildir without the hash (relative to
    # virtual_mailbox_base), first in virtual_mailbox_maps.
    q = subprocess.run([str(place / "build/bin/posthorn"), "-c", str(etc), "map", "-q",
                        "demo@example.test", f"cdb:{etc}/users.mailbox"],
                       capture_output=True, text=True, timeout=30)
    assert q.returncode == 0 and q.stdout == "example.test/demo/\n"
    assert main["virtual_mailbox_maps"].startswith(f"cdb:{etc}/users.mailbox, ")
    assert main["virtual_mailbox_base"] == f"{run}/mail"
    q = subprocess.run([str(place / "build/bin/posthorn"), "-c", str(etc), "map", "-q",
                        "postmaster", f"cdb:{etc}/aliases"],
                       capture_output=True, text=True, timeout=30)
    assert q.returncode == 0 and q.stdout == "demo@example.test\n"
    assert parse_main((etc / "main.cf").read_text())["alias_maps"] == f"cdb:{etc}/aliases"
    if os.geteuid() == 0:
        assert maildir.stat().st_uid == pwd.getpwnam("vmail").pw_uid

    # The certificates: RSA and ECDSA, self-signed for localhost and
    # 127.0.0.1; the keys 0600 and root's (never the mail owner's); the
    # fingerprints printed; the TLS parameters name them (commented out
    # while the build does not know them).
    for cert, key, chain, kind in (("cert.pem", "key.pem", "rsa.pem", "rsaEncryption"),
                                   ("eccert.pem", "eckey.pem", "ecdsa.pem", "id-ecPublicKey")):
        for secret in (key, chain):
            st = (etc / "tls" / secret).stat()
            assert stat.S_IMODE(st.st_mode) == 0o600
            if os.geteuid() == 0:
                assert st.st_uid == 0
        text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(etc / "tls" / cert)],
                              capture_output=True, text=True, timeout=30, check=True).stdout
        assert kind in text
        assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
        fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                             str(etc / "tls" / cert)], capture_output=True, text=True,
                            timeout=30, check=True).stdout.strip().split("=", 1)[1]
        assert f"SHA256 {fp}" in proc.stdout
        # the chain file is the key, then the certificate, and they match
        both = (etc / "tls" / chain).read_text()
        assert both == (etc / "tls" / key).read_text() + (etc / "tls" / cert).read_text()
        pub = [subprocess.run(["openssl", what, "-pubkey", "-noout", "-in", str(etc / "tls" / f)]
                              if what == "x509" else
                              ["openssl", "pkey", "-pubout", "-in", str(etc / "tls" / f)],
                              capture_output=True, text=True, timeout=30).stdout
               for what, f in (("x509", cert), ("pkey", chain))]
        assert pub[0] and pub[0] == pub[1]
    trust = (etc / "tls" / "trust.pem").read_text()
    assert trust.count("BEGIN CERTIFICATE") == 2
    cf = (etc / "main.cf").read_text()
    chains = f"{etc}/tls/rsa.pem, {etc}/tls/ecdsa.pem"
    assert re.search(rf"^#?smtpd_tls_chain_files = {re.escape(chains)}", cf, re.M)
    assert ("smtpd_tls_chain_files" in main) == ("smtpd_tls_chain_files" in known)
    # cleartext logins: on the plain POP3 and IMAP ports only, and said so
    assert re.search(r"^#?\s+-o pop3d_cleartext_login_networks=127.0.0.0/8", master, re.M)
    assert "cleartext logins" in proc.stdout and "loopback" in proc.stdout

    # The queue is there, as the manifest says.
    assert stat.S_IMODE((run / "queue" / "maildrop").stat().st_mode) == 0o1730
    assert stat.S_IMODE((run / "queue" / "public").stat().st_mode) == 0o710

    # How to connect.
    for text in ("2525", "2587", "2465", "2110", "2995", "2143", "2993",
                 "demo@example.test", password, f"{run}/log/maillog", "stop"):
        assert text in proc.stdout


def test_sandbox_is_idempotent_and_keeps_the_password(place):
    assert run_sandbox(place).returncode == 0
    run = place / "run"
    names = ["demo.password", "etc/users", "etc/users.auth.cdb", "etc/users.mailbox.cdb",
             "etc/main.cf", "etc/master.cf",
             "etc/tls/cert.pem", "etc/tls/key.pem", "etc/tls/eccert.pem", "etc/tls/eckey.pem",
             "etc/tls/rsa.pem", "etc/tls/ecdsa.pem", "etc/tls/trust.pem", "etc/vmailbox", "etc/vmailbox.cdb",
             "etc/aliases", "etc/aliases.cdb"]
    before = {n: (run / n).read_bytes() for n in names}
    (run / "queue" / "private").chmod(0o755)          # a damage check repairs
    proc = run_sandbox(place)
    assert proc.returncode == 0, proc.stderr
    after = {n: (run / n).read_bytes() for n in names}
    assert before == after
    assert "private: mode was 0755, now 0700" in proc.stderr
    proc = run_sandbox(place)
    assert proc.returncode == 0
    assert "repaired" not in proc.stderr


def test_sandbox_picks_up_new_daemons_and_local_additions(place):
    assert run_sandbox(place).returncode == 0
    etc = place / "run" / "etc"
    assert re.search(r"^#2110\s", (etc / "master.cf").read_text(), re.M)
    stub = place / "build" / "libexec" / "pop3d-login"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    (etc / "main.cf.local").write_text("max_use = 5\n")
    assert run_sandbox(place).returncode == 0
    assert re.search(r"^2110\s+inet\s.*pop3d-login$", (etc / "master.cf").read_text(), re.M)
    assert parse_main((etc / "main.cf").read_text())["max_use"] == "5"


def test_sandbox_without_a_build(place):
    proc = run_sandbox(place, build=place / "nothing")
    assert proc.returncode == 1
    assert "run make first" in proc.stderr


def test_sandbox_unreachable_dir_as_root(place):
    # An explicit POSTHORN_SANDBOX_DIR the mail owner cannot reach is refused
    # with the reason (no mode is changed behind the operator's back).
    if os.geteuid() != 0:
        pytest.skip("only root drops to the posthorn user")
    hidden = place / "hidden"
    hidden.mkdir(mode=0o700)
    hidden.chmod(0o700)
    proc = run_sandbox(place, run_dir=hidden / "run")
    assert proc.returncode == 1
    assert "cannot reach" in proc.stderr and "POSTHORN_SANDBOX_DIR" in proc.stderr
    assert stat.S_IMODE(hidden.stat().st_mode) == 0o700


def private_checkout(place):
    """A copy of the sandbox scripts in a checkout under a 0700 directory
    (a clone under /root), and a runner for them with a state base of the
    test's own; (hidden dir, checkout, state base, run function)."""
    if os.geteuid() != 0:
        pytest.skip("only root drops to the posthorn user")
    hidden = place / "hidden"
    hidden.mkdir(mode=0o700)
    hidden.chmod(0o700)
    checkout = hidden / "posthorn"
    (checkout / "tools").mkdir(parents=True)
    shutil.copy2(SANDBOX, checkout / "tools" / "sandbox.sh")
    shutil.copy2(MKINSTANCE, checkout / "tools" / "mkinstance.py")
    state = place / "state"
    env = dict(os.environ, POSTHORN_BUILD=str(place / "build"),
               POSTHORN_SANDBOX_STATE_BASE=str(state), POSTHORN_SANDBOX_NO_START="1")
    env.pop("POSTHORN_SANDBOX_DIR", None)
    env.pop("POSTHORN_CONFIG_DIR", None)

    def run():
        return subprocess.run(["sh", str(checkout / "tools" / "sandbox.sh")], env=env,
                              capture_output=True, text=True, timeout=120)
    return hidden, checkout, state, run


def test_sandbox_private_checkout_as_root(place):
    # The README's first command from a clone under /root (mode 0700): the
    # instance goes to a root-owned state directory the mail owner can
    # reach, run/ in the checkout links to it, and no mode is weakened.
    hidden, checkout, state, run_sandbox_script = private_checkout(place)
    for attempt in (1, 2):          # a second run finds the same place
        proc = run_sandbox_script()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        homes = list(state.iterdir())
        assert len(homes) == 1 and homes[0].name.startswith("posthorn-")
        home = homes[0]
        assert f"the instance lives in {home}" in proc.stdout
        run = checkout / "run"
        assert run.is_symlink() and pathlib.Path(os.readlink(run)) == home
        assert (run / "etc" / "main.cf").exists()
        main = parse_main((home / "etc" / "main.cf").read_text())
        assert main["queue_directory"] == str(home / "queue")
    assert stat.S_IMODE(hidden.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.stat().st_mode) & 0o022 == 0
    probe = subprocess.run(["runuser", "-u", "posthorn", "--", "test", "-x", str(home / "queue")])
    assert probe.returncode == 0


def test_sandbox_refuses_an_unsafe_state_base(place):
    hidden, checkout, state, run_sandbox_script = private_checkout(place)
    state.mkdir()
    state.chmod(0o1777)             # anyone could plant a link there
    proc = run_sandbox_script()
    assert proc.returncode == 1
    assert "writable only by root" in proc.stderr
    assert list(state.iterdir()) == []

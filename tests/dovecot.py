"""A private Dovecot (Debian's dovecot-core, -pop3d, -imapd) on loopback,
the reference server of the differential tests (tests/test_conformance.py)
and the yardstick that tests/test_imap_clients.py can be pointed at
(POSTHORN_IMAP_REFERENCE=dovecot) to check its own expectations.

    dv = Dovecot(workdir, {"alice@example.test": ("pw", maildir)}, owner)
    dv.start()          # POP3 on dv.pop3_port, IMAP on dv.imap_port
    ...
    dv.stop()

Its own dovecot.conf, base_dir, state_dir and log (DIR/dovecot.log), a
passwd-file passdb and userdb with sha512-crypt hashes (as bench/access
runs it), maildir:~ for each account, no TLS, plaintext logins allowed,
no failure delay. The Maildirs are the caller's (owned by owner, a pwd
entry): copy the same Maildir to posthorn and here to compare the two.
Needs root (Dovecot drops to the mailbox owner and to its own users);
skip() says why it cannot run.
"""
import grp
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import time

DOVECOT = "/usr/sbin/dovecot"
LIBDIR = pathlib.Path("/usr/lib/dovecot")


# The namespace as posthorn's store makes it: Maildir++ folders separated
# by ".", the four special-use folders of every new user, subscribed.
NAMESPACE_SETTINGS = """\
namespace inbox {
  inbox = yes
  separator = .
  mailbox Drafts {
    auto = subscribe
    special_use = \\Drafts
  }
  mailbox Sent {
    auto = subscribe
    special_use = \\Sent
  }
  mailbox Trash {
    auto = subscribe
    special_use = \\Trash
  }
  mailbox Junk {
    auto = subscribe
    special_use = \\Junk
  }
}
"""


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def missing(protocols=("pop3",)):
    """Why a private Dovecot cannot run here (a text), or None."""
    if os.geteuid() != 0:
        return "the reference Dovecot needs root"
    if not os.access(DOVECOT, os.X_OK):
        return "Dovecot is not installed (tools/install-deps.sh: dovecot-core)"
    for proto in protocols:
        if not (LIBDIR / proto).exists():
            return f"Dovecot's {proto} is not installed (tools/install-deps.sh: dovecot-{proto}d)"
    for user in ("dovenull", "dovecot"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"the user {user} (made by the dovecot-core package) is missing"
    return None


def sha512_crypt(password):
    res = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                         capture_output=True, text=True, timeout=30, check=True)
    return res.stdout.strip()


class Dovecot:
    """See the module docstring. accounts: address -> (password, Maildir
    path); owner: the pwd entry that owns the Maildirs; protocols: a
    subset of ("pop3", "imap"); settings: more dovecot.conf lines;
    hashes: address -> sha512-crypt hash of its password, when the caller
    has one (else one is made)."""

    def __init__(self, workdir, accounts, owner, protocols=("pop3", "imap"), settings="",
                 hashes=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.accounts = dict(accounts)
        self.owner = owner
        self.protocols = tuple(protocols)
        self.settings = settings
        self.hashes = dict(hashes or {})     # address -> sha512-crypt hash (else made)
        self.pop3_port = free_port() if "pop3" in protocols else None
        self.imap_port = free_port() if "imap" in protocols else None
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.master = None

    def write_config(self):
        run, state = self.dir / "run", self.dir / "state"
        run.mkdir(mode=0o755, exist_ok=True)
        state.mkdir(mode=0o750, exist_ok=True)
        self.log.touch()
        uid, gid = self.owner.pw_uid, self.owner.pw_gid
        passwd = self.dir / "passwd"
        passwd.write_text("".join(
            f"{addr}:{{SHA512-CRYPT}}{self.hashes.get(addr) or sha512_crypt(pw)}:{uid}:{gid}"
            f"::{box}::\n"
            for addr, (pw, box) in self.accounts.items()))
        shutil.chown(passwd, "root", grp.getgrgid(pwd.getpwnam("dovecot").pw_gid).gr_name)
        passwd.chmod(0o640)
        listeners = ""
        if self.pop3_port:
            listeners += (f"service pop3-login {{\n  inet_listener pop3 {{\n"
                          f"    address = 127.0.0.1\n    port = {self.pop3_port}\n  }}\n"
                          f"  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n")
        if self.imap_port:
            listeners += (f"service imap-login {{\n  inet_listener imap {{\n"
                          f"    address = 127.0.0.1\n    port = {self.imap_port}\n  }}\n"
                          f"  inet_listener imaps {{\n    port = 0\n  }}\n}}\n")
        self.conf.write_text(f"""\
# dovecot.conf - a private reference instance made by tests/dovecot.py
instance_name = {self.dir.name}
base_dir = {run}
state_dir = {state}
protocols = {" ".join(self.protocols)}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
log_path = {self.log}
mail_location = maildir:~
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_max_userip_connections = 100
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
{listeners}{self.settings}
""")

    def start(self, timeout=15):
        self.write_config()
        err = self.dir / "dovecot.stderr"
        with open(err, "ab") as f:
            res = subprocess.run([DOVECOT, "-c", str(self.conf)], stdout=f, stderr=f,
                                 stdin=subprocess.DEVNULL, timeout=30, start_new_session=True)
        if res.returncode != 0:
            raise AssertionError(f"dovecot did not start ({res.returncode}):\n"
                                 f"{err.read_text(errors='replace')[-2000:]}\n{self.log_tail()}")
        pidfile = self.dir / "run" / "master.pid"
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.master = int(pidfile.read_text().split()[0])
                break
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dovecot wrote no pid file\n{self.log_tail()}")
            time.sleep(0.05)
        for port, greeting in ((self.pop3_port, b"+OK"), (self.imap_port, b"* OK")):
            if port:
                self._wait_greeting(port, greeting, deadline)
        return self

    def _wait_greeting(self, port, greeting, deadline):
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.settimeout(3)
                    if s.recv(200).startswith(greeting):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dovecot does not greet on {port}\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout=15):
        pid, self.master = self.master, None
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

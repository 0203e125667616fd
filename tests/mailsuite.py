"""A complete mail instance for end-to-end tests: the `mail` fixture.

Built on conftest.Instance, it adds everything a message needs to travel
(tools/mkinstance.py writes it, the generator the sandbox and bench use):

    DIR/bin                 command_directory: posthorn, sendmail (+ mailq,
                            newaliases)
    DIR/libexec             daemon_directory: links to the daemons, and
                            postdrop (a setgid copy when root)
    DIR/mail/DOMAIN/USER/   virtual Maildirs, with cur/ new/ tmp/ (owned by the virtual mailbox
                            owner: "posthorn-vmail" when root, else the
                            invoking user)
    DIR/etc/vmailbox        virtual_mailbox_maps (cdb), users below,
                            Maildir paths relative to DIR/mail
    DIR/etc/virtual         virtual_alias_maps (cdb)
    DIR/etc/aliases         alias_maps (cdb)

Domains: example.test (virtual mailboxes: alice, bob, carol), alias.test
(virtual alias domain: info@alias.test -> alice), mydestination =
mail.example.test, localhost. master.cf runs every daemon that is built:
smtp (inet smtpd on a free loopback port, .smtp_port), pickup, cleanup,
qmgr, bounce, local (local-delivery); default_master_cf() returns it.
Use it as:

    from mailsuite import mail   # noqa: F401  (the fixture)
    def test_x(mail):
        mail.start()
        qid = mail.smtp_send("a@remote.test", ["alice@example.test"], "Subject: x\\r\\n\\r\\nhi\\r\\n")
        msgs = mail.wait_maildir("alice@example.test", 1)

Helpers: have(program), smtp() (an smtplib.SMTP), smtp_send(...),
maildir(addr) (path), maildir_messages(addr) (list of bytes),
wait_maildir(addr, count, timeout), sendmail(*args, input=...),
posthorn(*args), queue_files(subdir), wait_queue_empty(timeout).
"""
import os
import smtplib
import subprocess
import time

import pytest

from conftest import BUILD, Instance, MASTER, free_port, mkinstance

DOMAIN = "example.test"
USERS = ("alice", "bob", "carol")
SERVICES = ("pickup", "cleanup", "qmgr", "bounce", "local")


def have(program):
    """True if the daemon or tool is built."""
    return (BUILD / "libexec" / program).exists() or (BUILD / "bin" / program).exists()


class MailInstance(Instance):
    """A full instance; see the module docstring."""

    def __init__(self):
        self.smtp_port = free_port()
        super().__init__(
            mail=True, commands="link", ports={"smtp": f"127.0.0.1:{self.smtp_port}"},
            services=SERVICES, mailboxes=[f"{u}@{DOMAIN}" for u in USERS],
            virtual=["info@alias.test alice@example.test",
                     "team@example.test alice@example.test, bob@example.test"],
            main={"virtual_alias_domains": "alias.test"})
        self.bin = self.layout.bin
        self.mailroot = self.layout.mailroot
        self.vmail_owner = self.layout.vmail_owner

    def default_master_cf(self):
        """The master.cf the instance started with."""
        return self.layout.master_cf

    def posthorn(self, *args, check=True, timeout=30, input=None):
        """Run posthorn -c ETC ARGS."""
        res = subprocess.run([str(BUILD / "bin" / "posthorn"), "-c", str(self.etc), *args],
                             capture_output=True, text=True, timeout=timeout, input=input)
        if check and res.returncode != 0:
            raise AssertionError(f"posthorn {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}{res.stderr}")
        return res

    def build_maps(self):
        for name in ("vmailbox", "virtual", "aliases"):
            mkinstance.build_map(BUILD / "bin" / "posthorn", self.etc, name,
                                 aliases=name == "aliases", force=True)

    def start(self, foreground=True, timeout=10, args=()):
        self.posthorn("check", check=False)   # creates/repairs the queue directories
        return super().start(foreground=foreground, timeout=timeout, args=args)

    # -- SMTP ------------------------------------------------------------------
    def smtp(self, timeout=10):
        return smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=timeout)

    def smtp_send(self, sender, rcpts, message, timeout=10):
        """Send one message; returns the queue ID from the 250 reply."""
        if isinstance(message, str):
            message = message.encode()
        with self.smtp(timeout=timeout) as s:
            s.ehlo("client.example")
            s.mail(sender)
            for r in rcpts:
                code, text = s.rcpt(r)
                assert code == 250, (r, code, text)
            code, text = s.data(message)
            assert code == 250, (code, text)
        text = text.decode(errors="replace")
        return text.rsplit(" ", 1)[-1]

    # -- injection -----------------------------------------------------------
    def sendmail(self, *args, input=b"", timeout=30, name="sendmail"):
        env = dict(os.environ, POSTHORN_CONFIG_DIR=str(self.etc))
        return subprocess.run([str(self.bin / name), *args], input=input, env=env,
                              capture_output=True, timeout=timeout)

    # -- mailboxes -----------------------------------------------------------
    def maildir(self, address):
        user, domain = address.split("@", 1)
        return self.mailroot / domain / user

    def maildir_messages(self, address):
        base = self.maildir(address)
        out = []
        for sub in ("new", "cur"):
            d = base / sub
            if d.is_dir():
                for f in sorted(d.iterdir()):
                    out.append(f.read_bytes())
        return out

    def wait_maildir(self, address, count, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.maildir_messages(address)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        raise AssertionError(f"{address}: {len(self.maildir_messages(address))} messages "
                             f"after {timeout}s, want {count}\nlog:\n{self.log_text()[-4000:]}")

    # -- queue -----------------------------------------------------------------
    def queue_files(self, subdir):
        """Queue files and cleanup's temp files; not incoming/.group-sync
        (the cleanup processes' group-commit state, no message)."""
        d = self.queue / subdir
        return sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) \
            if d.is_dir() else []

    def wait_queue_empty(self, timeout=15, subdirs=("maildrop", "incoming", "active")):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(self.queue_files(s) for s in subdirs):
                return
            time.sleep(0.05)
        raise AssertionError("queue not empty: " + str({s: self.queue_files(s) for s in subdirs}))


@pytest.fixture
def mail():
    """A full mail instance (see MailInstance); call .start() to run it."""
    if not MASTER.exists():
        pytest.skip(f"{MASTER} not built")
    if not (BUILD / "bin" / "posthorn").exists():
        pytest.skip("posthorn not built")
    inst = MailInstance()
    try:
        yield inst
    finally:
        inst.cleanup()

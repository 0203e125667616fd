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
posthorn(*args), queue_files(subdir), wait_queue_empty(timeout);
for relay tests wait_status(qid, rcpt, status) (the outcome's log line),
queue_json() and wait_notices(address, count) (DSNs in a Maildir).

Relay tests (smtp-client) use the `net` fixture instead: a RelayNet
holds sending instances (smtp service, dns_servers, short timeouts:
RELAY_PARAMS), receiving instances on their own 127.0.0.N address,
scripted peers (tests/smtp_peer.py), smtp-sinks (Sink) and a dnsmasq
(tests/dnsfix.py), all on one shared port; see RelayNet.
"""
import email
import email.policy
import json
import os
import pathlib
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

import dnsfix
import smtp_peer
from conftest import BUILD, Instance, MASTER, SANITIZER_REPORT, free_port, mkinstance

DOMAIN = "example.test"
USERS = ("alice", "bob", "carol")
SERVICES = ("pickup", "cleanup", "qmgr", "bounce", "local", "client-limits")
SERVICES_SMTP = SERVICES + ("smtp",)      # with smtp-client (unix service "smtp")


def have(program):
    """True if the daemon or tool is built."""
    return (BUILD / "libexec" / program).exists() or (BUILD / "bin" / program).exists()


class MailInstance(Instance):
    """A full instance; see the module docstring."""

    def __init__(self, *, domain=DOMAIN, users=USERS, smtp_host="127.0.0.1", smtp_port=None,
                 services=SERVICES, hostname=None, virtual=None, main=None, ports=None,
                 passwords=False, front=True):
        """The defaults make the suite's instance; relay tests (RelayNet)
        give another domain and users, a listen address, the smtp
        service (SERVICES_SMTP) and main.cf parameters. ports: more inet
        services (name -> [host:]port, e.g. pop3); passwords: the users
        get passwords (the users table; .passwords maps address ->
        password) instead of bare mailboxes; front: smtp-front holds the
        smtp port and hands clients to smtpd (the default, as in the
        shipped master.cf), else smtpd serves the port itself."""
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port or free_port(smtp_host)
        self.domain = domain
        params = {"virtual_alias_domains": "alias.test"}
        if hostname:
            params["myhostname"] = hostname
        if domain != DOMAIN:
            params["mydomain"] = domain
        params.update(main or {})
        if virtual is None:
            virtual = ["info@alias.test alice@example.test",
                       "team@example.test alice@example.test, bob@example.test"] \
                if domain == DOMAIN else []
        addresses = [f"{u}@{domain}" for u in users]
        super().__init__(
            mail=True, commands="link",
            ports={"smtp": f"{smtp_host}:{self.smtp_port}", **(ports or {})},
            services=services, mailboxes=[] if passwords else addresses,
            users=addresses if passwords else [], virtual=virtual, main=params, front=front)
        self.passwords = dict(self.layout.passwords)
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
        return smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=timeout)

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

    def sendmail_loop(self, address, n, timeout=120):
        """The shell loop of issue 15, `for i in $(seq n); do echo hi |
        sendmail address; done`; returns its wall-clock seconds (asserts
        that every sendmail exited 0)."""
        script = (f'for i in $(seq {n}); do echo hi | "{self.bin}/sendmail" {address} '
                  f'|| exit 1; done')
        env = dict(os.environ, POSTHORN_CONFIG_DIR=str(self.etc))
        t0 = time.monotonic()
        res = subprocess.run(["bash", "-c", script], env=env, capture_output=True,
                             timeout=timeout)
        elapsed = time.monotonic() - t0
        assert res.returncode == 0, res.stderr
        return elapsed

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

    # -- outcomes (relay tests) ---------------------------------------------------
    def wait_status(self, qid, rcpt, status, timeout=15, since=0):
        """Wait for the log line of rcpt's outcome (sent, deferred, bounced,
        expired) of message qid; a dict: relay, dsn, reason, line, conn_use,
        tls (the SMTP session's "Verified:TLSv1.3:cipher", "none", or "")."""
        m = self.wait_log(rf"^.*{qid}: to=<{re.escape(rcpt)}>, (?:orig_to=<[^>]*>, )?"
                          rf"relay=(\S+?),(?: conn_use=(\d+),)?(?: tls=(\S+),)? .*dsn=(\S+), "
                          rf"status={status} \((.*)\)$", timeout=timeout, since=since)
        return {"relay": m.group(1), "conn_use": int(m.group(2) or 0), "tls": m.group(3) or "",
                "dsn": m.group(4), "reason": m.group(5), "line": m.group(0)}

    def queue_json(self):
        """posthorn queue list --json, parsed."""
        return json.loads(self.posthorn("queue", "list", "--json").stdout)

    def wait_notices(self, address, count=1, timeout=20):
        """The delivery status notifications (multipart/report) in
        address's Maildir, parsed (email.message.Message), once there
        are count of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [email.message_from_bytes(m, policy=email.policy.compat32)
                     for m in self.maildir_messages(address)]
            found = [m for m in found if m.get_content_type() == "multipart/report"]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{address}: {len(found)} notices after {timeout}s, want "
                                     f"{count}\nlog:\n{self.log_text()[-4000:]}")
            time.sleep(0.05)

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


# ------------------------------------------------------------------ relaying
# main.cf of a sending instance in relay tests: short retries and
# deadlines, so that every scenario ends within seconds.
RELAY_PARAMS = {
    "minimal_backoff_time": "1s", "maximal_backoff_time": "2s", "queue_run_delay": "1s",
    "qmgr_incoming_scan_delay": "1s", "service_throttle_time": "1s",
    "dns_timeout": "2s", "smtp_connect_timeout": "2s", "smtp_greeting_timeout": "3s",
    "smtp_helo_timeout": "3s", "smtp_mail_timeout": "3s", "smtp_rcpt_timeout": "3s",
    "smtp_data_init_timeout": "3s", "smtp_data_xfer_timeout": "3s",
    "smtp_data_done_timeout": "4s", "smtp_quit_timeout": "2s", "smtp_rset_timeout": "2s",
    "smtp_auth_timeout": "3s", "inet_protocols": "ipv4",
}


def need_smtp_client():
    if not have("smtp-client"):
        pytest.skip(f"{BUILD}/libexec/smtp-client is not built yet")


class Sink:
    """Postfix's smtp-sink on host:port, dumping each message into its own
    file in dumpdir (-d); messages() reads them."""

    def __init__(self, host, port, dumpdir, args=()):
        self.host, self.port, self.dumpdir = host, port, pathlib.Path(dumpdir)
        self.dumpdir.mkdir(parents=True, exist_ok=True)
        self.dumpdir.chmod(0o777)
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        if not os.path.exists(binary):
            pytest.skip("smtp-sink is not installed (Debian: postfix)")
        cmd = [binary] + (["-u", "nobody"] if os.geteuid() == 0 else []) + list(args) + \
            ["-d", f"{self.dumpdir}/msg.", f"{host}:{port}", "256"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.create_connection((host, port), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(100).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"smtp-sink did not start on {host}:{port}")
            time.sleep(0.05)

    def files(self):
        return sorted(self.dumpdir.glob("msg.*"))

    def messages(self):
        return [f.read_bytes() for f in self.files()]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class RelayNet:
    """Several instances, scripted peers, smtp-sinks and a dnsmasq on
    loopback for relay tests (the `net` fixture). Every listener has its
    own 127.0.0.N address (host()) and the one shared port .port, which
    the sending instances use as smtp_tcp_port, so that MX and A records
    can point at 127.0.0.N.

        net.start_dns([dnsfix.mx("b.phtest", "mx.b.phtest"), dnsfix.a("mx.b.phtest", h)])
        a = net.sender()                     # smtp-client, dns_servers, RELAY_PARAMS
        b = net.receiver("b.phtest", host=h) # smtpd on h:port, Maildirs of b.phtest
        p = net.peer(ext=(...), ...)         # smtp_peer.Peer, started
        s = net.sink()                       # smtp-sink
    """

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self._hosts = iter(f"127.0.0.{n}" for n in range(10, 250))
        self.port = smtp_peer.shared_port([f"127.0.0.{n}" for n in (1, 10, 11, 12, 13, 20)])
        self.dns = None
        self.peers, self.sinks, self.instances = [], [], []

    def host(self):
        return next(self._hosts)

    def start_dns(self, records):
        self.dns = dnsfix.DnsServer.start(self.workdir, records)
        return self.dns

    def peer(self, host=None, port=None, **kw):
        """A started smtp_peer.Peer on host (default: a new 127.0.0.N) and
        port (default: the shared one)."""
        p = smtp_peer.Peer(host or self.host(), port or self.port, **kw)
        self.peers.append(p)
        return p.start()

    def sink(self, host=None, args=()):
        host = host or self.host()
        s = Sink(host, self.port, self.workdir / f"sink-{host}", args)
        self.sinks.append(s)
        return s

    def sender(self, main=None, **kw):
        """An instance with smtp-client (example.test: alice, bob, carol)."""
        params = dict(RELAY_PARAMS, smtp_tcp_port=str(self.port))
        if self.dns is not None:
            params["dns_servers"] = self.dns.servers
        params.update(main or {})
        inst = MailInstance(services=SERVICES_SMTP, main=params, **kw)
        self.instances.append(inst)
        return inst

    def receiver(self, domain, users=("carol",), host=None, main=None):
        """An instance whose smtpd listens on host:port, with Maildirs for
        users@domain (myhostname mx.DOMAIN)."""
        inst = MailInstance(domain=domain, users=users, smtp_host=host or self.host(),
                            smtp_port=self.port, hostname=f"mx.{domain}", main=main)
        self.instances.append(inst)
        return inst

    def close(self):
        reports = []
        for inst in self.instances:
            try:
                inst.stop(timeout=15)
            except Exception:       # pylint: disable=broad-except
                pass
            try:
                report = inst.stderr_path.read_text(errors="replace")
            except OSError:
                report = ""
            if SANITIZER_REPORT.search(report):
                reports.append(report)
            inst.cleanup()
        for p in self.peers:
            p.stop()
        for s in self.sinks:
            s.stop()
        if self.dns is not None:
            self.dns.stop()
        assert not reports, "sanitizer report in master's stderr:\n" + reports[0][:4000]


@pytest.fixture
def net():
    """A RelayNet in a fresh /tmp directory (0755: smtp-sink runs as
    nobody); skips unless master, posthorn and smtp-client are built."""
    if not MASTER.exists():
        pytest.skip(f"{MASTER} not built")
    if not (BUILD / "bin" / "posthorn").exists():
        pytest.skip("posthorn not built")
    need_smtp_client()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="posthorn-net-", dir="/tmp"))
    workdir.chmod(0o755)
    rn = RelayNet(workdir)
    try:
        yield rn
    finally:
        try:
            rn.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def dsn_fields(notice):
    """The message/(global-)delivery-status part of a notice as a list of dicts:
    the per-message block, then one per recipient (continuation lines
    joined)."""
    for part in notice.walk():
        if part.get_content_type() in ("message/delivery-status",
                                       "message/global-delivery-status"):
            payload = part.get_payload()
            if isinstance(payload, list):           # compat32 parsed it as messages
                payload = "\n".join(p.as_string() for p in payload)
            out = []
            for block in re.split(r"\r?\n(?:\r?\n)+", payload.strip()):
                text = re.sub(r"\r?\n[ \t]+", " ", block)
                out.append(dict(line.split(": ", 1) for line in text.splitlines()
                                if ": " in line))
            return out
    raise AssertionError("no message/delivery-status part in the notice")


def notice_text(notice):
    """The human-readable first part of a notice."""
    first = notice.get_payload()[0]
    return first.get_payload(decode=True).decode(errors="replace")

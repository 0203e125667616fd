#!/usr/bin/env python3
"""mkinstance.py - build a posthorn instance in a directory: the one
generator behind tools/sandbox.sh (`make run`), the test fixtures
(tests/conftest.py, tests/mailsuite.py) and bench/ingest.

    DIR/etc/main.cf, DIR/etc/master.cf   GENERATED on every run; local
                                         additions go in main.cf.local and
                                         master.cf.local, which are appended
    DIR/etc/vmailbox(.cdb)               virtual_mailbox_maps: address ->
                                         Maildir relative to DIR/mail, for
                                         the mailboxes without a password
    DIR/etc/virtual(.cdb)                virtual_alias_maps
    DIR/etc/aliases(.cdb)                alias_maps
    DIR/etc/users                        the users file (users(5)), one
                                         line per user with a password:
                                         address:sha512-crypt hash:::
                                         Maildir relative to DIR/mail:
    DIR/etc/users.auth(.cdb)             built from it by posthorn users:
                                         auth_user_maps (auth alone may
                                         read it)
    DIR/etc/users.mailbox(.cdb)          and the users' mailboxes, first
                                         in virtual_mailbox_maps
    DIR/etc/tls/cert.pem, key.pem        self-signed certificates (--tls):
    DIR/etc/tls/eccert.pem, eckey.pem    RSA and ECDSA (P-256), names
                                         localhost, mail.example.test and
                                         127.0.0.1, made once and kept; the
                                         keys 0600 and root's when root
                                         (the daemons read them before
                                         they drop privileges; the mail
                                         owner never can)
    DIR/etc/tls/rsa.pem, ecdsa.pem       each key followed by its
                                         certificate (smtpd_tls_chain_files),
                                         0600 like the keys
    DIR/etc/tls/trust.pem                both certificates: the file a
                                         client trusts (--CAfile, --cacert)
    DIR/LOCALPART.password               each user's password, made once
    DIR/queue, DIR/queue/pid             queue_directory (posthorn check
                                         makes the rest)
    DIR/log/maillog, DIR/mail, DIR/spool maillog_file, Maildirs, mbox spool
    DIR/libexec, DIR/bin                 with --daemons link / --commands
                                         link: links to the build (as root
                                         DIR/libexec/postdrop is a setgid
                                         copy: sendmail runs it from
                                         daemon_directory)

Who owns what (the users policy): as root the daemons run as the system
user "posthorn", postdrop's group is "posthorn-drop" and virtual
mailboxes belong to a mail store user (--vmail-owner, default
"posthorn-vmail"); the auth service runs as "posthorn-auth" (auth_user,
the only reader of the auth table) and the login processes
(pop3d-login, imapd-login) as "posthorn-login" (login_user, chrooted to
DIR/queue/login, which they make themselves); pop3d and imapd start as
root (unpriv n) to become each mailbox's owner; missing accounts are
created. As a normal user all of them are the invoking user.

Ports: inet services (smtp, submission, smtps, pop3, pop3s, imap, imaps)
are written only for the listen addresses the caller gives (--port
NAME=[HOST:]PORT, or --sandbox-ports for 2525, 2587, ...). Unix and fifo
services are all written unless --services names some. A service whose
daemon is not built, or a parameter this build does not know, is written
commented out.

Running it again over the same directory keeps passwords, hashes, mail,
the aliases and virtual tables and the certificate; it regenerates
main.cf and master.cf and rebuilds a table only when its source changed.

Python 3 standard library only; tests and bench import it as a module
(make_instance, write_main_cf, build_map, ensure_accounts).
"""
import argparse
import grp
import os
import pathlib
import pwd
import re
import secrets
import shutil
import string
import subprocess
import sys

DOMAIN = "example.test"
ROOT_MAIL_OWNER = "posthorn"
ROOT_SETGID_GROUP = "posthorn-drop"
DEFAULT_VMAIL_OWNER = "posthorn-vmail"
ROOT_AUTH_USER = "posthorn-auth"
ROOT_LOGIN_USER = "posthorn-login"
SANDBOX_PORTS = {"smtp": "2525", "submission": "2587", "smtps": "2465",
                 "pop3": "2110", "pop3s": "2995", "imap": "2143", "imaps": "2993"}
DEFAULT_ALIASES = ("postmaster: root", "abuse: root")

# Every service an instance may run, in master.cf order: (inet port name
# or None, master.cf name for the others, type, private, unpriv, chroot,
# wakeup, maxproc, command, -o overrides).
SERVICES = (
    ("smtp", None, "inet", "n", "-", "n", "-", "-", "smtpd", ()),
    # submission (RFC 6409): STARTTLS first, then AUTH, required both
    ("submission", None, "inet", "n", "-", "n", "-", "-", "smtpd",
     ("syslog_name=posthorn/submission", "smtpd_tls_security_level=encrypt",
      "smtpd_sasl_auth_enable=yes", "smtpd_client_restrictions=permit_sasl_authenticated,reject",
      "smtpd_sender_restrictions=reject_sender_login_mismatch")),
    # submissions (RFC 8314): implicit TLS, then AUTH
    ("smtps", None, "inet", "n", "-", "n", "-", "-", "smtpd",
     ("syslog_name=posthorn/smtps", "smtpd_tls_wrappermode=yes", "smtpd_sasl_auth_enable=yes",
      "smtpd_client_restrictions=permit_sasl_authenticated,reject",
      "smtpd_sender_restrictions=reject_sender_login_mismatch")),
    (None, "pickup", "fifo", "n", "-", "n", "60", "1", "pickup", ()),
    # sendmail's socket in submit/ (private "w": every local user may connect)
    (None, "submit", "unix", "w", "-", "n", "-", "-", "submit", ()),
    (None, "cleanup", "unix", "n", "-", "n", "-", "0", "cleanup", ()),
    (None, "qmgr", "fifo", "n", "-", "n", "300", "1", "qmgr", ()),
    (None, "bounce", "unix", "-", "-", "n", "-", "0", "bounce", ()),
    (None, "smtp", "unix", "-", "-", "n", "-", "-", "smtp-client", ()),
    (None, "local", "unix", "-", "n", "n", "-", "-", "local-delivery", ()),
    (None, "auth", "unix", "-", "-", "n", "-", "1", "auth", ()),
    (None, "client-limits", "unix", "-", "-", "n", "-", "1", "client-limits", ()),
    ("pop3", None, "inet", "n", "-", "n", "-", "-", "pop3d-login", ()),
    ("pop3s", None, "inet", "n", "-", "n", "-", "-", "pop3d-login", ("pop3d_tls_wrappermode=yes",)),
    ("imap", None, "inet", "n", "-", "n", "-", "-", "imapd-login", ()),
    ("imaps", None, "inet", "n", "-", "n", "-", "-", "imapd-login", ("imapd_tls_wrappermode=yes",)),
    (None, "pop3d", "unix", "-", "n", "n", "-", "-", "pop3d", ()),
    (None, "imapd", "unix", "-", "n", "n", "-", "-", "imapd", ()),
)
# The port-25 front (smtp-front(8), on by default; --no-front: smtpd on the
# port itself): the inet line's columns (type, private, unpriv, chroot,
# wakeup, maxproc) and the pass service it hands clients to. smtp-front
# runs as mail_owner, chrooted to the queue directory, one process.
FRONT_COLUMNS = ("inet", "n", "-", "y", "-", "1")
PASS_SERVICE = "smtpd"
# Overrides without which a service would be something else (2465 without
# wrapper mode is plain SMTP, 2587 without them an unauthenticated relay
# port): a build that does not know one of them gets the whole service
# commented out, not just the -o line.
REQUIRED_OVERRIDES = {"smtpd_tls_wrappermode", "smtpd_tls_security_level",
                      "smtpd_sasl_auth_enable", "smtpd_client_restrictions",
                      "smtpd_sender_restrictions", "pop3d_tls_wrappermode",
                      "imapd_tls_wrappermode"}
# --cleartext-login (the sandbox): POP3 USER/PASS and IMAP LOGIN without TLS
# on the plain pop3 and imap ports only (pop3s and imaps are TLS anyway).
CLEARTEXT_OVERRIDES = {"pop3": "pop3d_cleartext_login_networks=127.0.0.0/8",
                       "imap": "imapd_cleartext_login_networks=127.0.0.0/8"}
# main.cf with --tls: the chain files of _tls_cert (key, then certificate)
# for smtpd; pop3d_tls_chain_files and imapd_tls_chain_files default to
# smtpd's, so one pair serves every protocol. STARTTLS offered on smtp,
# pop3 and imap.
TLS_PARAMS = (
    ("smtpd_tls_chain_files", "{tls}/rsa.pem, {tls}/ecdsa.pem"),
    ("smtpd_tls_security_level", "may"),
)
PORT_NAMES = tuple(s[0] for s in SERVICES if s[0])
UNIX_NAMES = tuple(s[1] for s in SERVICES if s[1])


class SetupError(Exception):
    """The instance cannot be built (the message says why)."""


def note(text):
    print(f"mkinstance: {text}", file=sys.stderr)


# ----------------------------------------------------------------- accounts
def _create_group(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        grp.getgrnam(name)
        note(f"created system group {name}")


def _create_user(name, comment):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    nologin = "/usr/sbin/nologin" if os.access("/usr/sbin/nologin", os.X_OK) else "/bin/false"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", nologin, "--comment", comment, name],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise SetupError(f"cannot create the system user {name}") from None
    note(f"created system user {name}")
    return pw


def ensure_accounts(vmail_owner=DEFAULT_VMAIL_OWNER, mail=True):
    """(mail_owner, setgid_group, vmail_owner) of the users policy; as root
    the system accounts are created if missing (vmail_owner only if mail)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.getuid())
        return me.pw_name, grp.getgrgid(me.pw_gid).gr_name, me.pw_name
    _create_group(ROOT_SETGID_GROUP)
    _create_user(ROOT_MAIL_OWNER, "posthorn mail system")
    if mail:
        _create_user(vmail_owner, "posthorn virtual mailboxes")
        service_accounts()
    return ROOT_MAIL_OWNER, ROOT_SETGID_GROUP, vmail_owner


def service_accounts():
    """(auth_user, login_user): as root the system users of the auth
    service and the login processes, created if missing; otherwise the
    invoking user twice."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.getuid()).pw_name
        return me, me
    _create_user(ROOT_AUTH_USER, "posthorn authentication")
    _create_user(ROOT_LOGIN_USER, "posthorn pre-login processes")
    return ROOT_AUTH_USER, ROOT_LOGIN_USER


# --------------------------------------------------------------- helpers
def _posthorn(posthorn, etc, *args):
    res = subprocess.run([str(posthorn), "-c", str(etc), *args],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise SetupError(f"posthorn {' '.join(args)} failed ({res.returncode}):\n"
                         f"{res.stdout}{res.stderr}")
    return res


def known_parameters(posthorn, etc):
    """The main.cf parameter names this build knows, or None (no posthorn:
    then nothing is commented out)."""
    try:
        res = subprocess.run([str(posthorn), "-c", str(etc), "conf", "-d"],
                             capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    if res.returncode != 0:
        return None
    return {line.split("=", 1)[0].strip() for line in res.stdout.splitlines() if "=" in line}


def _mtime(path):
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def build_map(posthorn, etc, name, aliases=False, force=False):
    """posthorn map cdb:ETC/NAME (-a for aliases(5) syntax) when the .cdb
    is missing or older than its source (or force)."""
    src = pathlib.Path(etc) / name
    cdb, built = _mtime(src.with_name(name + ".cdb")), _mtime(src)
    if force or cdb is None or (built is not None and built > cdb):
        _posthorn(posthorn, etc, "map", *(["-a"] if aliases else []), f"cdb:{src}")


def _write_if_changed(path, text, mode=None):
    """Write path atomically unless it already holds text; True if written."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(path.name + ".new")
    old = os.umask(0o077 if mode is not None and mode & 0o077 == 0 else 0o022)
    try:
        tmp.write_text(text)
    finally:
        os.umask(old)
    if mode is not None:
        tmp.chmod(mode)
    tmp.replace(path)
    return True


def _write_once(path, text):
    """Write path only if it is missing or empty (the operator's from then on)."""
    if path.exists() and path.stat().st_size > 0:
        return False
    return _write_if_changed(path, text)


def write_main_cf(etc, params, unknown=(), header=None):
    """Write ETC/main.cf: a header, params (name -> value), the parameters
    this build does not know as comments, then ETC/main.cf.local."""
    etc = pathlib.Path(etc)
    head = header if header is not None else (
        f"# main.cf - GENERATED by tools/mkinstance.py; running it again rewrites\n"
        f"# this file: put local additions in {etc}/main.cf.local.\n")
    text = head + "".join(f"{k} = {v}\n" for k, v in params.items())
    text += "".join(f"#{k} = {v}\t# not known to this build yet\n" for k, v in unknown)
    local = etc / "main.cf.local"
    if local.is_file():
        extra = local.read_text()
        text += "# ---- from main.cf.local\n" + extra + ("" if extra.endswith("\n") else "\n")
    _write_if_changed(etc / "main.cf", text)
    return text


def master_cf_text(etc, daemon_dir, ports, services, known, extra_lines=(),
                   cleartext_login=False, front=True, unpriv=None):
    """The master.cf text: the selected services (commented out when their
    daemon is not in daemon_dir, or the build lacks one of their
    REQUIRED_OVERRIDES), extra_lines, then ETC/master.cf.local;
    cleartext_login: CLEARTEXT_OVERRIDES on the plain pop3 and imap ports;
    front: the smtp port is run by smtp-front (FRONT_COLUMNS), which hands
    clients to smtpd on the pass service PASS_SERVICE (when smtp-front is
    built); unpriv: service name -> the unpriv column to use instead
    (bench experiments, e.g. local-delivery as the mail owner)."""
    out = [f"# master.cf - GENERATED by tools/mkinstance.py; running it again rewrites\n"
           f"# this file: put local additions in {etc}/master.cf.local.\n"
           "# Daemons that are not built yet are commented out.\n"
           "# service      type  private unpriv  chroot  wakeup  maxproc command + args\n"]
    for port_name, unix_name, *cols, command, overrides in SERVICES:
        if port_name:
            if port_name not in ports:
                continue
            name = str(ports[port_name])
        else:
            if services is not None and unix_name not in services:
                continue
            name = unix_name
        if unpriv and name in unpriv:
            cols = [cols[0], cols[1], unpriv[name], *cols[3:]]
        pass_row = None
        if port_name == "smtp" and front and (pathlib.Path(daemon_dir) / "smtp-front").exists():
            # the front holds the port; smtpd gets the clients that behave
            pass_row = "%-15s %-5s %-7s %-7s %-7s %-7s %-7s %s" % (PASS_SERVICE, "pass", "-",
                                                                   "-", *cols[3:], command)
            cols, command = list(FRONT_COLUMNS), "smtp-front"
        row = "%-15s %-5s %-7s %-7s %-7s %-7s %-7s %s" % (name, *cols, command)
        if cleartext_login and port_name in CLEARTEXT_OVERRIDES:
            overrides = (*overrides, CLEARTEXT_OVERRIDES[port_name])
        pre = ""
        lacking = [o.split("=", 1)[0] for o in overrides
                   if o.split("=", 1)[0] in REQUIRED_OVERRIDES
                   and known is not None and o.split("=", 1)[0] not in known]
        if not (pathlib.Path(daemon_dir) / command).exists():
            pre = "#"
            out.append(f"# {command}: not built yet\n")
        elif lacking:
            pre = "#"
            out.append(f"# {name}: this build's {command} has no {', '.join(lacking)} yet\n")
        out.append(f"{pre}{row}\n")
        if pass_row:
            out.append(f"{pre}{pass_row}\n")
        for o in overrides:
            if known is None or o.split("=", 1)[0] in known:
                out.append(f"{pre}  -o {o}\n")
            else:
                out.append(f"#  -o {o}\t# not known to this build yet\n")
    out.extend(line.rstrip("\n") + "\n" for line in extra_lines)
    local = pathlib.Path(etc) / "master.cf.local"
    if local.is_file():
        extra = local.read_text()
        out.append("# ---- from master.cf.local\n" + extra + ("" if extra.endswith("\n") else "\n"))
    return "".join(out)


def _sha512_crypt(password):
    try:
        res = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                             capture_output=True, text=True, timeout=30)
        hashed = res.stdout.strip() if res.returncode == 0 else ""
    except OSError:
        hashed = ""
    if not hashed:
        try:
            import crypt         # pylint: disable=import-outside-toplevel,deprecated-module
            hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
        except (ImportError, AttributeError):
            hashed = ""
    if not hashed.startswith("$6$"):
        raise SetupError("neither openssl nor python's crypt can make a SHA-512 crypt hash")
    return hashed


def _password(path):
    """The password kept in path, made (16 letters and digits, 0600) if missing."""
    if not path.exists() or path.stat().st_size == 0:
        alphabet = string.ascii_letters + string.digits
        _write_if_changed(path, "".join(secrets.choice(alphabet) for _ in range(16)) + "\n",
                          mode=0o600)
    path.chmod(0o600)
    return path.read_text().strip()


TLS_NAMES = f"DNS:localhost,DNS:mail.{DOMAIN},IP:127.0.0.1"
TLS_KEYS = (("cert.pem", "key.pem", "rsa.pem", ["-newkey", "rsa:2048"]),
            ("eccert.pem", "eckey.pem", "ecdsa.pem",
             ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]))


def _tls_cert(etc, mail_owner):       # pylint: disable=unused-argument
    """ETC/tls: a self-signed RSA and a self-signed ECDSA certificate
    (names TLS_NAMES, ten years), made once and kept, a chain file for
    each (key, then certificate), and trust.pem with both certificates
    for the clients. The keys are 0600 and, as root, root's: the
    daemons read them as root before they drop privileges, and the mail
    owner (whose daemons face the network) must never be able to."""
    tls = etc / "tls"
    tls.mkdir(mode=0o755, exist_ok=True)
    for cert_name, key_name, chain_name, newkey in TLS_KEYS:
        cert, key = tls / cert_name, tls / key_name
        if not (cert.exists() and cert.stat().st_size and key.exists() and key.stat().st_size):
            old = os.umask(0o077)
            try:
                res = subprocess.run(
                    ["openssl", "req", "-x509", *newkey, "-nodes", "-days", "3650",
                     "-subj", f"/O=posthorn sandbox/CN=localhost", "-addext",
                     f"subjectAltName={TLS_NAMES}", "-addext",
                     "extendedKeyUsage=serverAuth,clientAuth",
                     "-keyout", str(key), "-out", str(cert)],
                    capture_output=True, timeout=120)
            finally:
                os.umask(old)
            if res.returncode != 0:
                raise SetupError(f"openssl could not make a self-signed certificate: "
                                 f"{res.stderr.decode(errors='replace').strip()}")
        # the chain file: the key, then the certificate (0600 before it
        # holds the key)
        _write_if_changed(tls / chain_name, key.read_text() + cert.read_text(), mode=0o600)
        cert.chmod(0o644)
        for secret in (key, tls / chain_name):
            if os.geteuid() == 0:
                os.chown(secret, 0, 0)
            secret.chmod(0o600)
    trust = "".join((tls / c).read_text() for c, *_rest in TLS_KEYS)
    _write_if_changed(tls / "trust.pem", trust, mode=0o644)
    return tls


def tls_fingerprints(etc):
    """[(file name, SHA-256 fingerprint as AA:BB:...)] of ETC/tls's certificates."""
    out = []
    for cert_name, *_rest in TLS_KEYS:
        res = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                              str(pathlib.Path(etc) / "tls" / cert_name)],
                             capture_output=True, text=True, timeout=30)
        if res.returncode == 0 and "=" in res.stdout:
            out.append((cert_name, res.stdout.strip().split("=", 1)[1]))
    return out


def _link_dir(dest, sources):
    """dest/NAME -> every program in sources (existing entries are kept)."""
    dest.mkdir(mode=0o755, exist_ok=True)
    for src in sources:
        if src.is_dir():
            for prog in sorted(src.iterdir()):
                link = dest / prog.name
                if not link.exists() and not link.is_symlink():
                    link.symlink_to(prog)


def _link_commands(dest, build_bin):
    """dest: posthorn, sendmail (+ mailq, newaliases). postdrop is not a
    command: it is in daemon_directory (_setgid_postdrop)."""
    dest.mkdir(mode=0o755, exist_ok=True)
    for prog in ("posthorn", "sendmail"):
        src, link = build_bin / prog, dest / prog
        if src.exists() and not link.is_symlink():
            link.symlink_to(src.resolve())
    if (build_bin / "sendmail").exists():
        for alias in ("mailq", "newaliases"):
            if not (dest / alias).is_symlink():
                (dest / alias).symlink_to(dest / "sendmail")


def _setgid_postdrop(libexec, build, setgid_group):
    """libexec/postdrop: a setgid copy as root (setgid needs a real file
    with the right group), else the link _link_dir made."""
    src = build / "libexec" / "postdrop"
    if not src.exists():
        src = build / "bin" / "postdrop"
    dst = libexec / "postdrop"
    if not src.exists():
        return
    if os.geteuid() == 0:
        if dst.is_symlink():
            dst.unlink()
        shutil.copy2(src, dst)
        shutil.chown(dst, "root", setgid_group)
        dst.chmod(0o2755)
    elif not dst.exists() and not dst.is_symlink():
        dst.symlink_to(src.resolve())


def write_mailboxes(mailroot, etc, addresses, owner, table=None):
    """Maildirs mailroot/DOMAIN/USER/{cur,new,tmp} (0700, owned by owner)
    and the virtual mailbox table ETC/vmailbox (paths relative to
    mailroot) for the addresses in table (default: all); True if the
    table changed."""
    mailroot = pathlib.Path(mailroot)
    mailroot.mkdir(mode=0o755, exist_ok=True)
    pw = pwd.getpwnam(owner)
    lines = []
    for addr in addresses:
        user, domain = addr.split("@", 1)
        box = mailroot / domain / user
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        for p in (box, *(box / s for s in ("cur", "new", "tmp"))):
            p.chmod(0o700)
        if table is None or addr in table:
            lines.append(f"{addr} {domain}/{user}/\n")
    if os.geteuid() == 0:
        for p in (mailroot, *mailroot.rglob("*")):
            os.lchown(p, pw.pw_uid, pw.pw_gid)
    return _write_if_changed(pathlib.Path(etc) / "vmailbox", "".join(lines), mode=0o644)


class Layout:
    """What make_instance built: paths, owners, the main.cf parameters it
    wrote (main, and unknown: the commented ones), master_cf (the text),
    passwords (address -> password)."""

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.etc = self.dir / "etc"
        self.queue = self.dir / "queue"
        self.data = self.dir / "data"
        self.logdir = self.dir / "log"
        self.maillog = self.logdir / "maillog"
        self.mailroot = self.dir / "mail"
        self.spool = self.dir / "spool"
        self.libexec = self.bin = None
        self.main, self.unknown, self.master_cf = {}, [], ""
        self.mail_owner = self.setgid_group = self.vmail_owner = None
        self.auth_user = self.login_user = None
        self.passwords = {}


def make_instance(directory, build, *, ports=None, services=None, mail=True, users=(),
                  mailboxes=(), aliases=None, virtual=(), main=None, master=(),
                  daemons="build", testbin=False, commands="build", tls=False,
                  vmail_owner=DEFAULT_VMAIL_OWNER, check=False, cleartext_login=False,
                  front=True, unpriv=None):
    """Build (or bring up to date) the instance in directory from the build
    directory build; see the module docstring. ports: inet service name ->
    [host:]port; services: unix/fifo service names (None: all); mail: the
    mail layer (domains, tables, Maildirs, spool); users: addresses with a
    password, mailboxes: addresses without; aliases: aliases(5) lines;
    virtual: virtual_alias_maps lines; main: extra main.cf parameters;
    master: extra master.cf lines; daemons/commands: "build" (use the
    build's directories) or "link" (DIR/libexec, DIR/bin); commands None:
    no command_directory; testbin: link build/testbin too; check: run
    posthorn check at the end; tls: certificates (_tls_cert) and
    TLS_PARAMS; cleartext_login: CLEARTEXT_OVERRIDES; front: smtp-front on
    the smtp port (FRONT_COLUMNS), smtpd behind it; unpriv: service name ->
    unpriv column (master_cf_text). Returns a Layout."""
    build = pathlib.Path(build).resolve()
    posthorn = build / "bin" / "posthorn"
    lay = Layout(directory)
    lay.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    for d in (lay.etc, lay.logdir, lay.queue, lay.queue / "pid"):
        d.mkdir(mode=0o755, exist_ok=True)
    if not lay.maillog.exists():
        lay.maillog.touch()
        lay.maillog.chmod(0o644)
    lay.mail_owner, lay.setgid_group, lay.vmail_owner = ensure_accounts(vmail_owner, mail)
    if mail:
        lay.auth_user, lay.login_user = service_accounts()
    known = known_parameters(posthorn, lay.etc)

    if daemons == "link":
        lay.libexec = lay.dir / "libexec"
        _link_dir(lay.libexec, [build / "libexec"] + ([build / "testbin"] if testbin else []))
        _setgid_postdrop(lay.libexec, build, lay.setgid_group)
    else:
        lay.libexec = build / "libexec"
    if commands == "link":
        lay.bin = lay.dir / "bin"
        _link_commands(lay.bin, build / "bin")
    elif commands == "build":
        lay.bin = build / "bin"

    params = {
        "queue_directory": str(lay.queue),
        "data_directory": str(lay.data),
        "daemon_directory": str(lay.libexec),
    }
    if lay.bin is not None:
        params["command_directory"] = str(lay.bin)
    params.update({
        "maillog_file": str(lay.maillog),
        "mail_owner": lay.mail_owner,
        "setgid_group": lay.setgid_group,
        "inet_interfaces": "127.0.0.1",
    })
    everyone = list(users) + [a for a in mailboxes if a not in users]
    if mail:
        etc = lay.etc
        domains = sorted({a.split("@", 1)[1] for a in everyone}) or [DOMAIN]
        params.update({
            "myhostname": f"mail.{DOMAIN}",
            "mydomain": DOMAIN,
            "myorigin": "$myhostname",
            "mydestination": "$myhostname, localhost",
            "mynetworks": "127.0.0.0/8 [::1]/128",
            "mail_spool_directory": str(lay.spool),
            "virtual_mailbox_domains": ", ".join(domains),
            "virtual_mailbox_base": str(lay.mailroot),
            "virtual_mailbox_maps": (f"cdb:{etc}/users.mailbox, " if users else "")
                                    + f"cdb:{etc}/vmailbox",
            "virtual_mailbox_owner": lay.vmail_owner,
            "virtual_alias_maps": f"cdb:{etc}/virtual",
            "alias_maps": f"cdb:{etc}/aliases",
            "auth_user": lay.auth_user,
            "login_user": lay.login_user,
        })
        if users:
            params["auth_user_maps"] = f"cdb:{etc}/users.auth"
    if tls:
        params.update({k: v.format(tls=lay.etc / "tls") for k, v in TLS_PARAMS})
    params.update({k: str(v) for k, v in (main or {}).items()})
    extra = set(main or {})
    lay.main = {k: v for k, v in params.items() if known is None or k in known or k in extra}
    lay.unknown = [(k, v) for k, v in params.items() if k not in lay.main]
    write_main_cf(lay.etc, lay.main, lay.unknown)

    lay.master_cf = master_cf_text(lay.etc, lay.libexec, ports or {}, services, known, master,
                                   cleartext_login=cleartext_login, front=front,
                                   unpriv=unpriv)
    _write_if_changed(lay.etc / "master.cf", lay.master_cf)

    if tls:
        _tls_cert(lay.etc, lay.mail_owner)
    if mail:
        _mail_layer(lay, posthorn, users, everyone, aliases, virtual)
    if check:
        _posthorn(posthorn, lay.etc, "check")
    return lay


def _mail_layer(lay, posthorn, users, everyone, aliases, virtual):
    """Spool, Maildirs and the four tables of make_instance."""
    etc = lay.etc
    lay.spool.mkdir(exist_ok=True)
    lay.spool.chmod(0o1777)
    build_map(posthorn, etc, "vmailbox",
              force=write_mailboxes(lay.mailroot, etc, everyone, lay.vmail_owner,
                                    table=[a for a in everyone if a not in users]))
    _write_once(etc / "virtual", "".join(line.rstrip("\n") + "\n" for line in virtual)
                or "# virtual - virtual aliases: address, target addresses.\n")
    build_map(posthorn, etc, "virtual")
    _write_once(etc / "aliases",
                f"# aliases - local aliases (rebuild: newaliases, or\n"
                f"# posthorn -c {etc} map -a cdb:{etc}/aliases)\n"
                + "".join(line.rstrip("\n") + "\n" for line in (aliases or DEFAULT_ALIASES)))
    build_map(posthorn, etc, "aliases", aliases=True)
    if users:
        _users_table(lay, posthorn, users)


def _users_table(lay, posthorn, users):
    """ETC/users (users(5)): ADDRESS:HASH:::DOMAIN/USER/: for each user
    with a password (kept in DIR/LOCALPART.password; the hash is
    sha512-crypt, uid and gid those of virtual_mailbox_owner, the Maildir
    relative to virtual_mailbox_base), then posthorn users builds
    users.auth and users.mailbox from it. A hash is kept while the
    password file is not newer than the users file and the Maildir is the
    same, so running again leaves everything as it was. The file holds
    hashes: mode 0600, root's when root."""
    table = lay.etc / "users"
    old = {}
    if table.exists():
        for line in table.read_text().splitlines():
            fields = line.split(":")
            if len(fields) >= 6 and not line.startswith("#"):
                old[fields[0]] = (fields[1], fields[4])
    lines = ["# users - mail users (users(5)): address:hash:uid:gid:Maildir:quota\n",
             f"# Build with: {posthorn} -c {lay.etc} users cdb:{table}\n"]
    for addr in users:
        user, domain = addr.split("@", 1)
        pwfile = lay.dir / f"{user}.password"
        lay.passwords[addr] = _password(pwfile)
        maildir = f"{domain}/{user}/"
        hashed, was = old.get(addr, (None, None))
        if hashed is None or was != maildir or _mtime(pwfile) > _mtime(table):
            hashed = _sha512_crypt(lay.passwords[addr])
        lines.append(f"{addr}:{hashed}:::{maildir}:\n")
    changed = _write_if_changed(table, "".join(lines), mode=0o600)
    if os.geteuid() == 0:
        shutil.chown(table, "root", "root")
    table.chmod(0o600)
    built = [_mtime(table.with_name(f"users.{kind}.cdb")) for kind in ("auth", "mailbox")]
    if changed or None in built or min(built) < _mtime(table):
        _posthorn(posthorn, lay.etc, "users", f"cdb:{table}")


# --------------------------------------------------------------------- CLI
def _pairs(values, what):
    out = {}
    for v in values:
        name, eq, value = v.partition("=")
        if not eq or not name.strip():
            raise SystemExit(f"mkinstance: {what} {v!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="mkinstance.py",
        description="Build or update a posthorn instance (configuration, tables, users, "
                    "directories) in DIR. Running it again keeps passwords and mail.")
    ap.add_argument("dir", nargs="?", help="the instance directory")
    ap.add_argument("--build", default=os.environ.get("POSTHORN_BUILD", "build"),
                    help="the build directory (default $POSTHORN_BUILD or build)")
    ap.add_argument("--accounts", action="store_true",
                    help="only make sure the accounts exist; print mail_owner, setgid_group "
                         "and virtual mailbox owner")
    ap.add_argument("--sandbox-ports", action="store_true",
                    help="smtp 2525, submission 2587, smtps 2465, pop3 2110, pop3s 2995, "
                         "imap 2143, imaps 2993")
    ap.add_argument("--port", action="append", default=[], metavar="NAME=[HOST:]PORT",
                    help=f"listen address of an inet service ({', '.join(PORT_NAMES)})")
    ap.add_argument("--services", metavar="LIST",
                    help=f"unix and fifo services to write, comma-separated (default all: "
                         f"{','.join(UNIX_NAMES)})")
    ap.add_argument("--user", action="append", default=[], metavar="ADDRESS",
                    help="a virtual user with a Maildir and a password (DIR/LOCALPART.password)")
    ap.add_argument("--mailbox", action="append", default=[], metavar="ADDRESS",
                    help="a virtual mailbox without a password")
    ap.add_argument("--alias", action="append", default=None, metavar="'NAME: TARGET'",
                    help="an aliases(5) line for a new aliases file (default: postmaster and "
                         "abuse to root)")
    ap.add_argument("--virtual", action="append", default=[], metavar="'ADDRESS TARGETS'",
                    help="a line for a new virtual alias table")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra main.cf parameter")
    ap.add_argument("--master-line", action="append", default=[], metavar="LINE",
                    help="an extra master.cf line")
    ap.add_argument("--vmail-owner", default=DEFAULT_VMAIL_OWNER,
                    help=f"as root, the owner of the virtual mailboxes (default "
                         f"{DEFAULT_VMAIL_OWNER})")
    ap.add_argument("--daemons", choices=["build", "link"], default="build",
                    help="daemon_directory: the build's libexec, or links in DIR/libexec")
    ap.add_argument("--commands", choices=["build", "link"], default="build",
                    help="command_directory: the build's bin, or links in DIR/bin")
    ap.add_argument("--tls", action="store_true",
                    help="self-signed RSA and ECDSA certificates in DIR/etc/tls, made once, "
                         "and smtpd_tls_* for them (pop3d and imapd default to those)")
    ap.add_argument("--cleartext-login", action="store_true",
                    help="allow POP3 USER/PASS and IMAP LOGIN without TLS on the plain pop3 "
                         "and imap ports (the sandbox: loopback only)")
    ap.add_argument("--no-front", action="store_true",
                    help="run smtpd on the smtp port itself, without the front smtp-front "
                         "(greeting pause, cheap idle connections)")
    ap.add_argument("--no-mail", action="store_true",
                    help="only the base: directories, owners, main.cf and master.cf")
    ap.add_argument("--check", action="store_true", help="run posthorn check at the end")
    args = ap.parse_args(argv)
    try:
        if args.accounts:
            print(*ensure_accounts(args.vmail_owner, not args.no_mail))
            return 0
        if not args.dir:
            ap.error("the instance directory is missing")
        build = pathlib.Path(args.build)
        if not (build / "bin" / "posthorn").exists():
            raise SetupError(f"{build}/bin/posthorn is missing; run make first")
        ports = dict(SANDBOX_PORTS) if args.sandbox_ports else {}
        ports.update(_pairs(args.port, "--port"))
        bad = set(ports) - set(PORT_NAMES)
        if bad:
            ap.error(f"--port: unknown service {', '.join(sorted(bad))}")
        services = None
        if args.services is not None:
            services = [s for s in args.services.split(",") if s]
            bad = set(services) - set(UNIX_NAMES)
            if bad:
                ap.error(f"--services: unknown service {', '.join(sorted(bad))}")
        make_instance(args.dir, build, ports=ports, services=services, mail=not args.no_mail,
                      users=args.user, mailboxes=args.mailbox, aliases=args.alias,
                      virtual=args.virtual, main=_pairs(args.param, "--param"),
                      master=args.master_line, daemons=args.daemons, commands=args.commands,
                      tls=args.tls, vmail_owner=args.vmail_owner, check=args.check,
                      cleartext_login=args.cleartext_login, front=not args.no_front)
    except SetupError as e:
        print(f"mkinstance: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

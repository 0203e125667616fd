"""tools/mkinstance.py, the one generator of an instance (sandbox, test
fixtures, bench/ingest): what it writes, that running it again changes
nothing and keeps passwords and mail, the users policy as root and as a
normal user, extra main.cf parameters and master.cf lines. Uses a
stand-in build (the real posthorn, stub daemons) so the result does not
depend on which daemons exist yet."""
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import BUILD, IS_ROOT, ROOT, stand_in_place

POSTHORN = BUILD / "bin" / "posthorn"
MKINSTANCE = ROOT / "tools" / "mkinstance.py"
BUILT = ("master", "smtpd", "cleanup", "qmgr", "local-delivery")

pytestmark = pytest.mark.skipif(not POSTHORN.exists(), reason=f"{POSTHORN} not built")


@pytest.fixture
def place():
    """A world-searchable scratch directory with a stand-in build."""
    base = stand_in_place("posthorn-mkinstance-", BUILT)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def mkinstance(place, *args, user=None, directory=None):
    cmd = [sys.executable, str(MKINSTANCE), str(directory or place / "inst"),
           "--build", str(place / "build"), *args]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    env = dict(os.environ)
    env.pop("POSTHORN_CONFIG_DIR", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def parse_main(path):
    values = {}
    for line in path.read_text().splitlines():
        if line and line[0] not in "# \t" and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def lookup(place, etc, key, table):
    res = subprocess.run([str(place / "build/bin/posthorn"), "-c", str(etc), "map", "-q", key,
                          f"cdb:{etc}/{table}"], capture_output=True, text=True, timeout=30)
    return res.stdout if res.returncode == 0 else None


def users_entry(etc, password):
    """The Maildir of demo's entry in the users file ETC/users (users(5):
    address:hash:uid:gid:Maildir:quota), whose hash must be that of
    password."""
    m = re.search(r"^demo@example\.test:(\$6\$[^:]+):::([^:]+):$",
                  (etc / "users").read_text(), re.M)
    assert m
    salt = m.group(1).split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password,
                           capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    assert again == m.group(1)
    return m.group(2)


FULL = ("--port", "smtp=127.0.0.1:2599", "--user", "demo@example.test",
        "--mailbox", "alice@example.test", "--virtual", "info@example.test alice@example.test",
        "--param", "max_use=7", "--master-line", "extra unix - - n - - cleanup")


def test_mkinstance_writes_an_instance(place):
    proc = mkinstance(place, *FULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inst = place / "inst"
    etc = inst / "etc"
    main = parse_main(etc / "main.cf")
    assert main["queue_directory"] == f"{inst}/queue"
    assert main["daemon_directory"] == f"{place}/build/libexec"
    assert main["maillog_file"] == f"{inst}/log/maillog"
    assert main["virtual_mailbox_base"] == f"{inst}/mail"
    assert main["max_use"] == "7"                               # the extra parameter
    assert main["inet_interfaces"] == "127.0.0.1"
    # A parameter this build does not know is written, commented out.
    text = (etc / "main.cf").read_text()
    for name in ("auth_user_maps",):
        if name not in main:
            assert re.search(rf"^#{name} = .*not known to this build", text, re.M)

    # master.cf: only the inet service given a port; the extra line; the
    # daemons that are not built commented out.
    master = (etc / "master.cf").read_text()
    assert re.search(r"^127\.0\.0\.1:2599\s+inet\s.*\ssmtpd$", master, re.M)
    assert not re.search(r"^#?(2525|2110|2143)\s", master, re.M)
    assert re.search(r"^qmgr\s+fifo\s.*\s300\s+1\s+qmgr$", master, re.M)
    assert re.search(r"^#pickup\s+fifo\s", master, re.M)
    assert "# pickup: not built yet" in master
    assert re.search(r"^extra unix - - n - - cleanup$", master, re.M)
    chk = subprocess.run([str(place / "build/bin/posthorn"), "-c", str(etc), "check"],
                         capture_output=True, text=True, timeout=30)
    assert chk.returncode == 0, chk.stdout + chk.stderr

    # Tables: relative Maildirs, the virtual alias, default aliases, and
    # the user with a password hash that matches the kept password.
    assert lookup(place, etc, "alice@example.test", "vmailbox") == "example.test/alice/\n"
    # a user with a password is declared once, in the users file: its
    # mailbox comes from users.mailbox, first in virtual_mailbox_maps
    assert lookup(place, etc, "demo@example.test", "vmailbox") is None
    assert lookup(place, etc, "demo@example.test", "users.mailbox") == "example.test/demo/\n"
    assert main["virtual_mailbox_maps"] == f"cdb:{etc}/users.mailbox, cdb:{etc}/vmailbox"
    assert main["auth_user_maps"] == f"cdb:{etc}/users.auth"
    assert lookup(place, etc, "info@example.test", "virtual") == "alice@example.test\n"
    assert lookup(place, etc, "postmaster", "aliases") == "root\n"
    pwfile = inst / "demo.password"
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o600
    password = pwfile.read_text().strip()
    assert len(password) == 16
    assert users_entry(etc, password) == "example.test/demo/"
    assert lookup(place, etc, "demo@example.test", "users.auth").startswith("$6$")
    assert "alice@example.test" not in (etc / "users").read_text()   # no password, no entry
    assert lookup(place, etc, "alice@example.test", "users.mailbox") is None
    for user in ("demo", "alice"):
        for sub in ("cur", "new", "tmp"):
            d = inst / "mail" / "example.test" / user / sub
            assert d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((inst / "spool").stat().st_mode) == 0o1777


def test_mkinstance_is_idempotent_and_keeps_passwords_and_mail(place):
    assert mkinstance(place, *FULL, "--tls").returncode == 0
    inst = place / "inst"
    names = ["demo.password", "etc/main.cf", "etc/master.cf", "etc/users", "etc/users.auth",
             "etc/users.auth.cdb", "etc/users.mailbox", "etc/users.mailbox.cdb",
             "etc/vmailbox", "etc/vmailbox.cdb", "etc/virtual", "etc/virtual.cdb",
             "etc/aliases", "etc/aliases.cdb", "etc/tls/cert.pem", "etc/tls/key.pem"]
    before = {n: (inst / n).read_bytes() for n in names}
    mtimes = {n: (inst / n).stat().st_mtime_ns for n in names}
    mail = inst / "mail/example.test/alice/new/1.msg"
    mail.write_text("Subject: kept\n\nhi\n")
    (inst / "etc/aliases").write_text("postmaster: alice@example.test\n")   # the operator's
    before["etc/aliases"] = (inst / "etc/aliases").read_bytes()
    proc = mkinstance(place, *FULL, "--tls")
    assert proc.returncode == 0, proc.stderr
    after = {n: (inst / n).read_bytes() for n in names}
    changed = [n for n in names if n != "etc/aliases.cdb" and before[n] != after[n]]
    assert changed == []
    untouched = [n for n in names if n not in ("etc/aliases", "etc/aliases.cdb")
                 and (inst / n).stat().st_mtime_ns != mtimes[n]]
    assert untouched == []                      # not even rewritten with the same bytes
    assert mail.read_text() == "Subject: kept\n\nhi\n"
    # The edited aliases file was kept and its table rebuilt from it.
    assert lookup(place, inst / "etc", "postmaster", "aliases") == "alice@example.test\n"

    # A new password (the file is newer than the table) is hashed again.
    old_hash = (inst / "etc/users").read_text()
    (inst / "demo.password").write_text("another-secret-1\n")
    os.utime(inst / "demo.password", ns=(mtimes["etc/users"] + 10**9,) * 2)
    assert mkinstance(place, *FULL).returncode == 0
    assert (inst / "etc/users").read_text() != old_hash
    users_entry(inst / "etc", "another-secret-1")


def test_mkinstance_local_additions_and_sandbox_ports(place):
    inst = place / "inst"
    (inst / "etc").mkdir(parents=True)
    (inst / "etc" / "main.cf.local").write_text("max_idle = 33s\n")
    (inst / "etc" / "master.cf.local").write_text("mine unix - - n - - cleanup\n")
    proc = mkinstance(place, "--sandbox-ports", "--services", "cleanup,qmgr")
    assert proc.returncode == 0, proc.stderr
    assert parse_main(inst / "etc" / "main.cf")["max_idle"] == "33s"
    master = (inst / "etc" / "master.cf").read_text()
    assert re.search(r"^mine unix - - n - - cleanup$", master, re.M)
    known = set(subprocess.run([str(place / "build" / "bin" / "posthorn"), "-c", str(inst / "etc"),
                                "conf", "-d"], capture_output=True, text=True, timeout=60,
                               check=True).stdout.replace(" ", "").split("\n"))
    known = {line.split("=", 1)[0] for line in known}
    # a TLS port is served only by a daemon that knows what makes it one
    # (without wrapper mode 2465 would be plain SMTP)
    needs = {"2587": "smtpd_tls_security_level", "2465": "smtpd_tls_wrappermode",
             "2993": "imapd_tls_wrappermode"}
    for port, daemon in (("2525", "smtpd"), ("2587", "smtpd"), ("2465", "smtpd"),
                         ("2110", "pop3d-login"), ("2993", "imapd-login")):
        m = re.search(rf"^(#?){port}\s+inet\s.*\s{daemon}$", master, re.M)
        can = daemon in BUILT and needs.get(port, "smtpd_banner") in known
        assert m and (m.group(1) == "") == can, (port, master)
    services = re.findall(r"^#?([a-z][a-z0-9-]*)\s+(?:unix|fifo)\s", master, re.M)
    assert services == ["cleanup", "qmgr", "mine"]


def test_mkinstance_users_policy_as_root(place):
    if not IS_ROOT:
        pytest.skip("the system accounts are made by root only")
    proc = mkinstance(place, *FULL, "--vmail-owner", "posthorn-vmail", "--commands", "link")
    assert proc.returncode == 0, proc.stderr
    inst = place / "inst"
    main = parse_main(inst / "etc" / "main.cf")
    assert main["mail_owner"] == "posthorn"
    assert main["setgid_group"] == "posthorn-drop"
    assert main["virtual_mailbox_owner"] == "posthorn-vmail"
    vmail = pwd.getpwnam("posthorn-vmail")
    assert (inst / "mail/example.test/demo/new").stat().st_uid == vmail.pw_uid
    assert main["auth_user"] == "posthorn-auth" and main["login_user"] == "posthorn-login"
    users = (inst / "etc" / "users").stat()          # hashes: root's alone
    assert users.st_uid == 0 and stat.S_IMODE(users.st_mode) == 0o600
    auth = pwd.getpwnam("posthorn-auth")
    pwd.getpwnam("posthorn-login")
    for name in ("users.auth", "users.auth.cdb"):    # the auth service's alone
        st = (inst / "etc" / name).stat()
        assert st.st_uid == auth.pw_uid and stat.S_IMODE(st.st_mode) == 0o600, name
    # postdrop is a set-gid copy where daemon_directory points, not a command
    postdrop = inst / "libexec" / "postdrop"
    if (BUILD / "bin" / "postdrop").exists():
        shutil.copy2(BUILD / "bin" / "postdrop", place / "build" / "libexec" / "postdrop")
        assert mkinstance(place, *FULL, "--commands", "link", "--daemons", "link").returncode == 0
        assert stat.S_IMODE(postdrop.stat().st_mode) == 0o2755
        assert not postdrop.is_symlink()
        assert not (inst / "bin" / "postdrop").exists()
        assert parse_main(inst / "etc" / "main.cf")["daemon_directory"] == str(inst / "libexec")


def test_mkinstance_users_policy_as_a_normal_user(place):
    """Everything belongs to, and runs as, the invoking user (as root:
    the test runs the generator as "nobody")."""
    if IS_ROOT:
        probe = subprocess.run(["runuser", "-u", "nobody", "--", "test", "-r", str(MKINSTANCE)])
        if probe.returncode != 0:
            pytest.skip("nobody cannot read the checkout")
        inst = place / "nobody"
        inst.mkdir()
        shutil.chown(inst, "nobody")
        proc = mkinstance(place, *FULL, user="nobody", directory=inst)
        me = pwd.getpwnam("nobody")
    else:
        inst = place / "inst"
        proc = mkinstance(place, *FULL)
        me = pwd.getpwuid(os.getuid())
    assert proc.returncode == 0, proc.stderr
    main = parse_main(inst / "etc" / "main.cf")
    assert main["mail_owner"] == me.pw_name
    assert main["virtual_mailbox_owner"] == me.pw_name
    assert main["auth_user"] == me.pw_name and main["login_user"] == me.pw_name
    import grp  # pylint: disable=import-outside-toplevel
    assert main["setgid_group"] == grp.getgrgid(me.pw_gid).gr_name
    assert stat.S_IMODE((inst / "etc" / "users").stat().st_mode) == 0o600
    assert (inst / "mail/example.test/demo/new").stat().st_uid == me.pw_uid


def test_mkinstance_usage_errors(place):
    proc = mkinstance(place, "--port", "smtpx=1")
    assert proc.returncode == 2 and "unknown service smtpx" in proc.stderr
    proc = mkinstance(place, "--services", "nonsense")
    assert proc.returncode == 2 and "unknown service nonsense" in proc.stderr
    proc = subprocess.run([sys.executable, str(MKINSTANCE), str(place / "x"), "--build",
                           str(place / "nothing")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "run make first" in proc.stderr

"""The administrator's command, posthorn (tools/posthorn/): conf, check,
map, start/stop/reload/status and usage errors, against a private
configuration in a temporary directory.

Daemons are stand-ins (small shell scripts) except where a test says it
needs the real master (build/libexec/master), so these tests work before
the daemons exist. Runs as root and as a normal user; as root the queue
belongs to "nobody" and a spare group plays setgid_group."""
import fcntl
import grp
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from conftest import as_nobody_or_skip

IS_ROOT = os.geteuid() == 0

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("POSTHORN_BUILD", "build")
POSTHORN = BUILD / "bin" / "posthorn"
MASTER = BUILD / "libexec" / "master"

pytestmark = pytest.mark.skipif(not POSTHORN.exists(), reason=f"{POSTHORN} not built")

STUB = "#!/bin/sh\necho \"$0 $*\" >> \"$(dirname \"$0\")/calls\"\nexit 0\n"


def accounts():
    """(mail_owner, setgid_group) that exist on this host when root."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return me, grp.getgrgid(os.getegid()).gr_name
    owner = "nobody"
    owner_gid = pwd.getpwnam(owner).pw_gid
    for name in ("posthorn-drop", "mail", "daemon", "staff", "users"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in (0, owner_gid):
            return owner, name
    pytest.skip("no spare group for setgid_group")


class Cli:
    """A configuration directory with main.cf, master.cf, a stub daemon
    directory and a queue, plus a runner for posthorn -c DIR."""

    def __init__(self, base):
        self.base = base
        self.config_dir = base / "etc"
        self.queue_dir = base / "queue"
        self.data_dir = base / "data"
        self.libexec = base / "libexec"
        self.bin = base / "bin"
        self.config_dir.mkdir()
        self.libexec.mkdir()
        self.bin.mkdir()
        for prog in ("master", "smtpd", "cleanup"):
            self.stub(prog)
        self.stub("postdrop")      # a real file in daemon_directory, as installed
        self.owner, self.group = accounts()
        self.main = {
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "daemon_directory": str(self.libexec),
            "mail_owner": self.owner,
            "setgid_group": self.group,
            "command_directory": str(self.bin),
        }
        self.write_main()
        self.write_master("2525 inet n - n - - smtpd\n"
                          "cleanup unix n - n - 0 cleanup\n")
        # alias_maps defaults to cdb:$config_directory/aliases.
        (self.config_dir / "aliases").write_text("postmaster: root\n")
        self.run("map", "-a", f"cdb:{self.config_dir}/aliases", check=0)

    def stub(self, name, text=STUB):
        path = self.libexec / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def write_main(self, extra=""):
        lines = [f"{k} = {v}" for k, v in self.main.items()]
        (self.config_dir / "main.cf").write_text("\n".join(lines) + "\n" + extra)

    def write_master(self, text):
        (self.config_dir / "master.cf").write_text(text)

    def run(self, *args, check=None, env=None, timeout=30):
        proc = subprocess.run([str(POSTHORN), "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, timeout=timeout, env=env)
        if check is not None:
            assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
        return proc


@pytest.fixture
def cli(tmp_path):
    base = tmp_path / "ph"
    base.mkdir()
    # The daemons (nobody) must reach the queue as they would on a host.
    for p in (tmp_path, base):
        p.chmod(0o755)
    return Cli(base)


# ---------------------------------------------------------------- conf

def parse_conf(out):
    result = {}
    for line in out.splitlines():
        name, _, value = line.partition(" =")
        result[name] = value.strip()
    return result


def test_conf_prints_every_parameter_sorted(cli):
    proc = cli.run("conf", check=0)
    lines = proc.stdout.splitlines()
    names = [l.split(" =")[0] for l in lines]
    assert names == sorted(names)
    values = parse_conf(proc.stdout)
    assert values["queue_directory"] == str(cli.queue_dir)
    assert values["max_use"] == "100"
    assert values["myorigin"] == "$myhostname"          # as written, like postconf
    assert len(names) >= 20


def test_conf_expand(cli):
    cli.write_main("myhostname = mx.example.org\n")
    values = parse_conf(cli.run("conf", "-x", "myorigin", check=0).stdout)
    assert values == {"myorigin": "mx.example.org"}
    # forward_path is expanded per recipient by local-delivery ($home is
    # no main.cf parameter): -x shows it as written, as the daemon reads it
    values = parse_conf(cli.run("conf", "-x", "forward_path", check=0).stdout)
    assert values == {"forward_path": "$home/.forward${recipient_delimiter}${extension}, "
                                      "$home/.forward"}


def test_conf_n_only_what_main_cf_sets(cli):
    cli.write_main("max_use = 7\n")
    values = parse_conf(cli.run("conf", "-n", check=0).stdout)
    assert values == {**cli.main, "max_use": "7"}


def test_conf_d_defaults_ignore_main_cf(cli):
    cli.write_main("max_use = 7\n")
    out = cli.run("conf", "-d", "max_use", "queue_directory", "default_database_type", check=0).stdout
    assert out == ("max_use = 100\nqueue_directory = /var/spool/posthorn\n"
                   "default_database_type = cdb\n")


def test_conf_names_and_unknown_name(cli):
    proc = cli.run("conf", "max_use", "nonesuch_param", "mail_owner")
    assert proc.returncode == 1
    assert proc.stdout == f"max_use = 100\nmail_owner = {cli.owner}\n"
    assert "posthorn: warning: unknown parameter: nonesuch_param" in proc.stderr


def test_conf_bad_main_cf_is_reported_with_file_line(cli):
    cli.write_main("max_use = 5\nthis line has no equals sign\n")
    proc = cli.run("conf", "max_use")
    assert proc.returncode == 1
    assert f"{cli.config_dir}/main.cf:8:" in proc.stderr


def test_shipped_main_cf_shows_the_true_defaults(cli):
    """conf/main.cf documents defaults as '#name = value'; each must be
    what `posthorn conf -d` says."""
    wrong = []
    for line in (ROOT / "conf/main.cf").read_text().splitlines():
        if not line.startswith("#") or not re.match(r"#\w+ =( |$)", line):
            continue
        name, _, value = line[1:].partition(" =")
        if not name.isidentifier():
            continue
        proc = cli.run("conf", "-d", name)
        if proc.returncode != 0:
            wrong.append(f"{name}: unknown parameter")
            continue
        if name in ("myhostname", "mydomain"):        # computed from the host
            continue
        got = proc.stdout.partition(" = ")[2].strip()
        if got != value.strip():
            wrong.append(f"{name}: main.cf says {value!r}, default is {got!r}")
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------- check

def syslog_listens():
    """Does a syslog daemon listen on /dev/log on this host?"""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as s:
            try:
                s.connect("/dev/log")
                return True
            except OSError:
                pass
    return False


def test_check_warns_when_nothing_receives_the_log(cli):
    """No maillog_file and no syslog daemon (containers, minimal hosts):
    every line would be lost, so check says so; with maillog_file, not."""
    proc = cli.run("check", check=0)
    warned = "nothing receives syslog on /dev/log" in proc.stderr
    assert warned == (not syslog_listens()), proc.stderr
    cli.write_main(f"maillog_file = {cli.base}/maillog\n")
    proc = cli.run("check", check=0)
    assert "nothing receives syslog" not in proc.stderr


def test_check_good_config_creates_the_queue(cli):
    cli.write_main(f"maillog_file = {cli.base}/maillog\n")
    proc = cli.run("check", check=0)
    assert "error" not in proc.stderr
    assert f"repaired: {cli.queue_dir}/maildrop: created (mode 1730)" in proc.stderr
    st = os.stat(cli.queue_dir / "maildrop")
    assert stat.S_IMODE(st.st_mode) == 0o1730
    assert stat.S_IMODE(os.stat(cli.queue_dir / "public").st_mode) == 0o710
    assert stat.S_IMODE(os.stat(cli.data_dir).st_mode) == 0o700
    if os.geteuid() == 0:
        assert st.st_uid == pwd.getpwnam(cli.owner).pw_uid
        assert st.st_gid == grp.getgrnam(cli.group).gr_gid
        assert os.stat(cli.queue_dir / "pid").st_uid == 0
    # A second run finds nothing to say.
    proc = cli.run("check", check=0)
    assert proc.stderr == ""


def test_check_repairs_a_wrong_mode(cli):
    cli.run("check", check=0)
    (cli.queue_dir / "maildrop").chmod(0o777)
    (cli.queue_dir / "private").chmod(0o755)
    proc = cli.run("check", check=0)
    assert f"repaired: {cli.queue_dir}/maildrop: mode was 0777, now 1730" in proc.stderr
    assert f"repaired: {cli.queue_dir}/private: mode was 0755, now 0700" in proc.stderr
    assert stat.S_IMODE(os.stat(cli.queue_dir / "maildrop").st_mode) == 0o1730


def test_check_never_removes_a_file_in_the_way(cli):
    cli.run("check", check=0)
    (cli.queue_dir / "hold").rmdir()
    (cli.queue_dir / "hold").write_text("x")
    proc = cli.run("check")
    assert proc.returncode == 1
    assert f"posthorn: error: {cli.queue_dir}/hold: is not a directory (not changed)" in proc.stderr
    assert (cli.queue_dir / "hold").read_text() == "x"


def test_check_bad_main_cf_line(cli):
    cli.write_main("max_use = 10\n  \nno equals here\n")
    proc = cli.run("check")
    assert proc.returncode == 1
    assert f"posthorn: error: {cli.config_dir}/main.cf:9:" in proc.stderr


def test_check_bad_value_type(cli):
    cli.write_main("max_use = lots\n")
    proc = cli.run("check")
    assert proc.returncode == 1
    assert f"{cli.config_dir}/main.cf:7:" in proc.stderr
    assert "max_use" in proc.stderr


def test_check_bad_master_cf_line(cli):
    cli.write_master("smtp inet n - n - - smtpd\nbroken line\n")
    proc = cli.run("check")
    assert proc.returncode == 1
    assert f"posthorn: error: {cli.config_dir}/master.cf:2:" in proc.stderr


def test_check_missing_daemon_binary(cli):
    cli.write_master("smtp inet n - n - - smtpd\n# comment\npop3 inet n - n - - pop3d-login\n")
    proc = cli.run("check")
    assert proc.returncode == 1
    assert (f"posthorn: error: {cli.config_dir}/master.cf:3: service pop3/inet: "
            f"command {cli.libexec}/pop3d-login: No such file or directory") in proc.stderr


def test_check_daemon_not_executable(cli):
    (cli.libexec / "cleanup").chmod(0o644)
    proc = cli.run("check")
    if os.geteuid() == 0:
        # root may execute a file only if some x bit is set
        assert proc.returncode == 1
    assert "service cleanup/unix: command" in proc.stderr and "not executable" in proc.stderr


def test_check_bad_override_value(cli):
    cli.write_master("smtp inet n - n - - smtpd\n  -o max_use=many\n  -o max_usee=3\n")
    proc = cli.run("check")
    assert proc.returncode == 1
    assert f"posthorn: error: {cli.config_dir}/master.cf:1: service smtp/inet:" in proc.stderr
    assert "max_use" in proc.stderr
    assert "-o max_usee: unknown parameter (did you mean max_use?)" in proc.stderr


def test_check_warns_about_privileged_ports_when_not_root(cli):
    cli.write_master("smtp inet n - n - - smtpd\n2525 inet n - n - - smtpd\n")
    proc = cli.run("check", check=0)
    warning = f"{cli.config_dir}/master.cf:1: service smtp/inet: port 25 needs root"
    assert (warning in proc.stderr) == (os.geteuid() != 0)
    assert "2525/inet: port" not in proc.stderr


def test_check_warns_about_misspelled_parameter(cli):
    cli.write_main("mail_ownr = someone\n")
    proc = cli.run("check", check=0)
    assert (f"posthorn: warning: {cli.config_dir}/main.cf:7: unknown parameter mail_ownr "
            "(did you mean mail_owner?)") in proc.stderr


def test_check_unknown_mail_owner(cli):
    if os.geteuid() != 0:
        pytest.skip("accounts are only looked up as root")
    cli.main["mail_owner"] = "no-such-user-posthorn"
    cli.write_main()
    proc = cli.run("check")
    assert proc.returncode == 1
    assert (f"{cli.config_dir}/main.cf:4: mail_owner: unknown user: no-such-user-posthorn"
            in proc.stderr)


def test_check_tables_named_by_maps_parameters(cli):
    source = cli.base / "aliases"
    source.write_text("postmaster root\n")
    cli.write_main(f"alias_maps = cdb:{source}\nalias_database = $alias_maps\n")
    proc = cli.run("check")
    assert proc.returncode == 1
    assert f"main.cf:7: alias_maps: cdb:{source}: {source}.cdb is missing" in proc.stderr
    cli.run("map", f"cdb:{source}", check=0)
    proc = cli.run("check", check=0)
    assert "alias_maps" not in proc.stderr
    future = time.time() + 10
    os.utime(source, (future, future))
    proc = cli.run("check", check=0)
    assert f"warning: {cli.config_dir}/main.cf:7: alias_maps: cdb:{source}:" in proc.stderr
    assert "is older than" in proc.stderr


def test_check_default_alias_table_missing_is_a_warning(cli):
    (cli.config_dir / "aliases.cdb").unlink()
    proc = cli.run("check", check=0)
    assert (f"posthorn: warning: {cli.config_dir}/main.cf (alias_maps not set, default): "
            f"alias_maps: cdb:{cli.config_dir}/aliases: {cli.config_dir}/aliases.cdb is missing; "
            f"run: newaliases or posthorn map -a cdb:{cli.config_dir}/aliases") in proc.stderr


# ----------------------------------------------------------------- map

def test_map_build_and_query_with_case_folding(cli):
    source = cli.base / "virtual"
    source.write_text("# comment\nAlice@Example.COM  alice\n\nbob@example.com bob,\n  carol\n")
    cli.run("map", f"cdb:{source}", check=0)
    assert (cli.base / "virtual.cdb").exists()
    for key in ("alice@example.com", "ALICE@EXAMPLE.COM", "Alice@Example.COM"):
        proc = cli.run("map", "-q", key, f"cdb:{source}", check=0)
        assert proc.stdout == "alice\n"
    assert cli.run("map", "-q", "bob@example.com", f"cdb:{source}", check=0).stdout == "bob, carol\n"
    proc = cli.run("map", "-q", "nobody@example.com", f"cdb:{source}")
    assert proc.returncode == 1 and proc.stdout == ""
    # The default type comes from default_database_type (cdb).
    assert cli.run("map", "-q", "alice@example.com", str(source), check=0).stdout == "alice\n"


def test_map_aliases_syntax(cli):
    source = cli.base / "aliases"
    source.write_text("# local aliases\nPostmaster: root\nabuse: postmaster,\n  alice@example.com\n")
    cli.run("map", "-a", f"cdb:{source}", check=0)
    assert cli.run("map", "-q", "postmaster", f"cdb:{source}", check=0).stdout == "root\n"
    out = cli.run("map", "-q", "abuse", f"cdb:{source}", check=0).stdout
    assert out.startswith("postmaster,") and out.rstrip().endswith("alice@example.com")


def test_map_without_folding(cli):
    source = cli.base / "exact"
    source.write_text("Alice@Example.COM alice\n")
    cli.run("map", "-f", f"cdb:{source}", check=0)
    assert cli.run("map", "-f", "-q", "Alice@Example.COM", f"cdb:{source}", check=0).stdout == "alice\n"
    assert cli.run("map", "-f", "-q", "alice@example.com", f"cdb:{source}").returncode == 1


def test_map_rebuild_is_atomic(cli):
    source = cli.base / "t"
    built = cli.base / "t.cdb"
    source.write_text("k1 v1\n")
    cli.run("map", f"cdb:{source}", check=0)
    first = os.stat(built).st_ino
    # A reader that opened the old file keeps it whole across the rebuild.
    with open(built, "rb") as old:
        old_bytes = old.read()
        old.seek(0)
        source.write_text("k1 v2\nk2 v3\n")
        cli.run("map", f"cdb:{source}", check=0)
        assert old.read() == old_bytes
    assert os.stat(built).st_ino != first            # replaced by rename
    assert cli.run("map", "-q", "k1", f"cdb:{source}", check=0).stdout == "v2\n"
    assert sorted(p.name for p in cli.base.iterdir() if p.name.startswith("t")) == ["t", "t.cdb"]
    # A broken source leaves the built table as it was.
    source.write_text("k1 v9\nkeywithoutvalue\n")
    proc = cli.run("map", f"cdb:{source}")
    assert proc.returncode == 1
    assert f"{source}:2" in proc.stderr
    assert cli.run("map", "-q", "k1", f"cdb:{source}", check=0).stdout == "v2\n"
    assert sorted(p.name for p in cli.base.iterdir() if p.name.startswith("t")) == ["t", "t.cdb"]


def test_map_errors(cli):
    proc = cli.run("map", "-q", "x", f"nosuchtype:{cli.base}/x")
    assert proc.returncode == 2
    assert "posthorn: error:" in proc.stderr
    proc = cli.run("map", f"cdb:{cli.base}/missing")
    assert proc.returncode == 1
    assert "missing" in proc.stderr


# --------------------------------------------------------------- usage

@pytest.mark.parametrize("args", [
    [], ["nonsense"], ["-z", "status"], ["conf", "-z"], ["conf", "-n", "-d"],
    ["map"], ["map", "-q"], ["map", "a", "b"], ["status", "extra"], ["stop", "x"],
    ["start", "-X"], ["check", "now"], ["reload", "x"], ["conf", "max_use=3"],
])
def test_usage_errors_exit_2(cli, args):
    proc = cli.run(*args)
    assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
    assert "usage: posthorn" in proc.stderr


def test_help(cli):
    proc = cli.run("help", check=0)
    for command in ("start", "stop", "reload", "status", "check", "conf", "map", "queue"):
        assert f"  {command} " in proc.stdout


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"]])
def test_help_forms_people_type(args):
    proc = subprocess.run([str(POSTHORN), *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "usage: posthorn" in proc.stdout and "  queue " in proc.stdout


def test_version_and_unknown_long_option():
    proc = subprocess.run([str(POSTHORN), "--version"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0 and re.fullmatch(r"posthorn \S+\n", proc.stdout)
    proc = subprocess.run([str(POSTHORN), "--bogus"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "bad option --bogus (try posthorn --help)" in proc.stderr


def test_config_dir_from_environment(cli):
    env = dict(os.environ, POSTHORN_CONFIG_DIR=str(cli.config_dir))
    proc = subprocess.run([str(POSTHORN), "conf", "-n", "queue_directory"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.stdout == f"queue_directory = {cli.queue_dir}\n"


# -------------------------------------------- start/stop/status/reload

HOLDER = r"""
import fcntl, os, signal, sys, time
path, log = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0); os.write(fd, b"%d\n" % os.getpid())
def hup(sig, frame):
    open(log, "a").write("HUP\n")
def term(sig, frame):
    open(log, "a").write("TERM\n"); time.sleep(0.3); sys.exit(0)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, term)
print("locked", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def holder(cli):
    """A stand-in master: holds the lock on pid/master.pid, logs signals."""
    cli.run("check", check=0)
    log = cli.base / "signals"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER,
                             str(cli.queue_dir / "pid" / "master.pid"), str(log)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    proc.log = log
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_status_and_stop_when_not_running(cli):
    proc = cli.run("status")
    assert proc.returncode == 1
    assert "posthorn: not running" in proc.stdout
    proc = cli.run("stop")
    assert proc.returncode == 1
    assert "posthorn: not running" in proc.stderr
    proc = cli.run("reload")
    assert proc.returncode == 1
    assert "posthorn: not running" in proc.stderr


def test_stale_pid_file_without_lock_is_not_running(cli):
    cli.run("check", check=0)
    (cli.queue_dir / "pid" / "master.pid").write_text("999999\n")
    assert cli.run("status").returncode == 1


def test_status_reload_stop_with_a_lock_holder(cli, holder):
    proc = cli.run("status", check=0)
    assert f"running (master pid {holder.pid})" in proc.stdout
    proc = cli.run("start")
    assert proc.returncode == 1
    assert f"already running (master pid {holder.pid})" in proc.stderr
    cli.run("reload", check=0)
    deadline = time.time() + 5
    # the holder creates the file, then writes the line: wait for the line
    while time.time() < deadline and not (holder.log.exists()
                                          and holder.log.read_text().endswith("\n")):
        time.sleep(0.05)
    assert holder.log.read_text() == "HUP\n"
    start = time.time()
    cli.run("stop", check=0)
    assert time.time() - start >= 0.25          # it waited for the lock
    assert holder.wait(timeout=5) == 0
    assert holder.log.read_text() == "HUP\nTERM\n"
    assert cli.run("status").returncode == 1


def test_reload_refuses_a_broken_config(cli, holder):
    cli.write_master("smtp inet n - n - - smtpd\nthis is broken\n")
    proc = cli.run("reload")
    assert proc.returncode == 3                  # refused: configuration errors
    assert f"posthorn: error: {cli.config_dir}/master.cf:2:" in proc.stderr
    time.sleep(0.2)
    assert not holder.log.exists()
    cli.write_master("smtp inet n - n - - smtpd\n")
    cli.write_main("max_use = -\n")
    proc = cli.run("reload")
    assert proc.returncode == 3
    assert f"{cli.config_dir}/main.cf:7:" in proc.stderr
    assert not holder.log.exists()


def test_status_and_stop_with_a_broken_main_cf(cli, holder):
    """Finding and stopping a running master does not depend on main.cf
    being valid: the pid lock counts; the errors are a warning."""
    cli.write_main("max_use = -\n")
    proc = cli.run("status")
    assert proc.returncode == 0, proc.stderr
    assert f"running (master pid {holder.pid})" in proc.stdout
    assert "main.cf has errors" in proc.stderr
    proc = cli.run("stop")
    assert "main.cf has errors" in proc.stderr
    assert holder.wait(timeout=5) == 0
    assert holder.log.read_text().endswith("TERM\n")
    assert cli.run("status").returncode == 1


def test_start_as_a_normal_user_with_a_system_configuration(tmp_path):
    """A normal user starting a configuration whose mail_owner is someone
    else gets told so, before any repair (not a permission error from the
    log file or the pid file); master itself refuses the same way."""
    as_nobody = as_nobody_or_skip(POSTHORN)
    import tempfile
    base = pathlib.Path(tempfile.mkdtemp(prefix="posthorn-sys-", dir="/tmp"))
    try:
        base.chmod(0o755)
        etc = base / "etc"
        etc.mkdir(mode=0o755)
        # a system configuration: its mail owner is not the invoking user
        (etc / "main.cf").write_text(f"queue_directory = {base}/queue\n"
                                     f"data_directory = {base}/data\n"
                                     f"daemon_directory = {MASTER.parent}\n"
                                     "mail_owner = daemon\nalias_maps =\n")
        (etc / "master.cf").write_text("")
        proc = subprocess.run(as_nobody + [str(POSTHORN), "-c", str(etc), "start"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1, proc.stderr
        assert "start must be run as root (or use a private configuration)" in proc.stderr
        assert "mail_owner = daemon" in proc.stderr and "you are nobody" in proc.stderr
        assert not (base / "queue").exists()        # nothing was touched
        proc = subprocess.run(as_nobody + [str(MASTER), "-c", str(etc), "-F"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0
        assert "must be run as root (or use a private configuration)" in proc.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_check_repairs_postdrop_set_gid(cli):
    """postdrop must be root:setgid_group 2755 or local users' sendmail
    cannot queue: check repairs it as root; a symlink is an error."""
    if not IS_ROOT:
        pytest.skip("only root checks a real installation's set-gid programs")
    postdrop = cli.libexec / "postdrop"
    cli.run("check", check=0)
    st = postdrop.stat()
    assert stat.S_IMODE(st.st_mode) == 0o2755, oct(st.st_mode)
    assert st.st_uid == 0 and st.st_gid == grp.getgrnam(cli.group).gr_gid
    postdrop.chmod(0o755)
    proc = cli.run("check", check=0)
    assert f"repaired: {postdrop}: set to owner root" in proc.stderr
    assert stat.S_IMODE(postdrop.stat().st_mode) == 0o2755
    postdrop.unlink()
    proc = cli.run("check", check=0)              # missing: a warning only
    assert f"warning: {postdrop}: No such file" in proc.stderr
    postdrop.symlink_to("/bin/true")
    proc = cli.run("check", check=1)
    assert f"{postdrop}: " in proc.stderr and "sendmail cannot queue" in proc.stderr


def test_missing_table_fails_reload_but_not_start(cli, holder):
    """A table main.cf names that is missing: reload is refused (the
    operator is there to build it); start goes ahead with a warning, and
    the mail that needs it is deferred at run time."""
    missing = cli.config_dir / "virtual"
    cli.write_main(f"virtual_alias_maps = cdb:{missing}\n")
    proc = cli.run("reload")
    assert proc.returncode == 3, proc.stderr
    assert "virtual_alias_maps" in proc.stderr and str(missing) in proc.stderr
    assert not holder.log.exists()               # no SIGHUP
    (missing).write_text("a@example.test b@example.test\n")
    cli.run("map", f"cdb:{missing}", check=0)
    assert cli.run("reload").returncode == 0


def test_missing_table_warns_at_start(cli):
    missing = cli.config_dir / "virtual"
    cli.write_main(f"virtual_alias_maps = cdb:{missing}\n")
    proc = cli.run("start")
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and str(missing) in proc.stderr
    assert "deferred until it is built" in proc.stderr
    assert (cli.libexec / "calls").exists()      # master was started


def test_start_runs_master_with_config_dir(cli):
    proc = cli.run("start", check=0)
    assert "posthorn: started" in proc.stderr
    calls = (cli.libexec / "calls").read_text().splitlines()
    assert calls == [f"{cli.libexec}/master -c {cli.config_dir}"]
    # check ran first: the queue exists.
    assert (cli.queue_dir / "maildrop").is_dir()


def test_start_foreground_execs_master(cli):
    cli.run("-v", "start", "-F", check=0)
    calls = (cli.libexec / "calls").read_text().splitlines()
    assert calls == [f"{cli.libexec}/master -c {cli.config_dir} -F -v"]


def test_start_refuses_a_broken_config(cli):
    cli.write_master("smtp inet n - n - - smtpd\nbad\n")
    proc = cli.run("start")
    assert proc.returncode == 3
    assert f"{cli.config_dir}/master.cf:2:" in proc.stderr
    assert not (cli.libexec / "calls").exists()


def test_start_reports_a_master_that_fails(cli):
    cli.stub("master", "#!/bin/sh\necho 'posthorn/master: fatal: bind 127.0.0.1:25: in use' >&2\nexit 1\n")
    proc = cli.run("start")
    assert proc.returncode == 1
    assert "bind 127.0.0.1:25" in proc.stderr
    assert "master did not start" in proc.stderr


@pytest.mark.skipif(not MASTER.exists(), reason="the real master is not built yet")
def test_real_master_start_status_reload_stop(cli):
    """The whole life through the CLI with build/libexec/master and no
    services but a wake-up-less unix stub."""
    cli.main["daemon_directory"] = str(MASTER.parent)
    cli.main["maillog_file"] = str(cli.base / "maillog")
    cli.write_main()
    cli.write_master("")
    cli.run("start", check=0, timeout=60)
    try:
        proc = cli.run("status", check=0)
        pid = int(proc.stdout.split("master pid ")[1].rstrip(")\n"))
        os.kill(pid, 0)
        cli.run("reload", check=0)
        proc = cli.run("start")
        assert proc.returncode == 1 and "already running" in proc.stderr
    finally:
        cli.run("stop", timeout=60)
    assert cli.run("status").returncode == 1
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)


# ------------------------------------------------- shipped files, install

def test_shipped_master_cf_parses_and_names_only_suite_programs(cli):
    text = (ROOT / "conf/master.cf").read_text()
    commands = set()
    for line in text.splitlines():
        if line and not line[0] in "# \t":
            commands.add(line.split()[7])
    # what is built runs; the daemons to come are there, commented out
    assert {"smtpd", "pickup", "cleanup", "qmgr", "bounce", "local-delivery"} <= commands
    for later in ("smtp-client", "auth", "pop3d-login", "imapd-login", "pop3d", "imapd"):
        assert later in commands or re.search(rf"^#\S+\s.*\s{later}$", text, re.M), later
    for command in commands:
        cli.stub(command)
    cli.write_master(text)
    proc = cli.run("check")
    assert "error" not in proc.stderr, proc.stderr
    assert proc.returncode == 0


def test_install_into_destdir(tmp_path):
    build = tmp_path / "build"
    (build / "bin").mkdir(parents=True)
    (build / "libexec").mkdir()
    shutil.copy2(POSTHORN, build / "bin" / "posthorn")
    for name in ("master", "smtpd"):
        (build / "libexec" / name).write_text("#!/bin/sh\n")
        (build / "libexec" / name).chmod(0o755)
    # as make builds them: postdrop in bin and libexec, mailq and
    # newaliases links to sendmail
    for name in ("bin/sendmail", "bin/postdrop", "libexec/postdrop"):
        (build / name).write_text("#!/bin/sh\n")
        (build / name).chmod(0o755)
    for name in ("mailq", "newaliases"):
        (build / "bin" / name).symlink_to("sendmail")
    dest = tmp_path / "dest"
    args = ["sh", str(ROOT / "tools/install.sh"), str(dest), "/usr", "/etc/posthorn",
            "/usr/libexec/posthorn", "/usr/sbin", "/usr/bin", "/usr/share/man", str(build)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    assert os.access(dest / "usr/sbin/posthorn", os.X_OK)
    assert stat.S_IMODE(os.stat(dest / "usr/libexec/posthorn/smtpd").st_mode) == 0o755
    # postdrop is a helper in libexec; nothing in sbin that a Debian MTA
    # package owns (postdrop, sendmail, mailq, newaliases)
    assert sorted(p.name for p in (dest / "usr/sbin").iterdir()) == ["posthorn", "sendmail.posthorn"]
    assert (dest / "usr/libexec/posthorn/postdrop").is_file()
    assert not (dest / "usr/bin").exists()
    assert (dest / "usr/share/man/man1/posthorn.1").exists()
    assert (dest / "usr/share/man/man1/sendmail.posthorn.1").exists()
    assert not (dest / "usr/share/man/man1/sendmail.1").exists()
    # The notes the man pages cite, at the path they cite.
    docs = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert docs and sorted(p.name for p in (dest / "usr/share/doc/posthorn").iterdir()) == docs
    assert (dest / "usr/share/doc/posthorn/queue.md").read_text() == (ROOT / "docs/queue.md").read_text()
    assert stat.S_IMODE(os.stat(dest / "usr/share/doc/posthorn/queue.md").st_mode) == 0o644
    assert (dest / "etc/posthorn/main.cf").read_text() == (ROOT / "conf/main.cf").read_text()
    assert "ExecStart=/usr/sbin/posthorn start -F" in \
        (dest / "usr/lib/systemd/system/posthorn.service").read_text()
    # An operator's main.cf survives a second install.
    (dest / "etc/posthorn/main.cf").write_text("myhostname = mine\n")
    proc = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60)
    assert (dest / "etc/posthorn/main.cf").read_text() == "myhostname = mine\n"
    assert "exists, kept" in proc.stdout


# ------------------------------- the whole life of a real instance via CLI

def posthorn_at(instance, *args, timeout=60):
    return subprocess.run([str(POSTHORN), "-c", str(instance.etc), *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not MASTER.exists() or not (BUILD / "testbin" / "ph-echo").exists(),
                    reason="master and tests/bin/ph-echo are not built yet")
def test_cli_drives_a_real_master_with_services(instance):
    """start (check + repair + master), a service answers, reload adds a
    service, stop waits until master and children are gone."""
    a, b = instance.free_port(), instance.free_port()
    instance.write_master_cf(f"{a} inet - - n - - ph-echo\n")
    proc = posthorn_at(instance, "start")
    assert proc.returncode == 0, proc.stderr
    assert (instance.queue / "maildrop").is_dir()      # check ran and repaired
    try:
        proc = posthorn_at(instance, "status")
        assert proc.returncode == 0
        pid = int(re.search(r"master pid (\d+)", proc.stdout).group(1))
        with instance.connect(a) as c:
            assert c.readline().startswith("ph-echo ready")
            assert c.cmd("echo hi") == "hi"
        mark = instance.log_mark()
        instance.write_master_cf(f"{a} inet - - n - - ph-echo\n{b} inet - - n - - ph-echo\n")
        assert posthorn_at(instance, "reload").returncode == 0
        instance.wait_log(r"reload --", since=mark)
        with instance.connect(b) as c:
            assert c.readline().startswith("ph-echo ready")
        # A broken master.cf is refused and the running services stay.
        instance.write_master_cf("this is not a service\n")
        proc = posthorn_at(instance, "reload")
        assert proc.returncode == 3 and f"{instance.etc}/master.cf:1:" in proc.stderr
        with instance.connect(a) as c:
            assert c.readline().startswith("ph-echo ready")
    finally:
        proc = posthorn_at(instance, "stop")
    assert proc.returncode == 0, proc.stderr
    assert posthorn_at(instance, "status").returncode == 1
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert instance.processes() == []

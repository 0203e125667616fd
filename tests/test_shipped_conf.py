"""The configuration files posthorn ships (conf/main.cf, conf/master.cf,
conf/aliases) check clean with what this build has: no error and no
warning from `posthorn check`, and newaliases builds the aliases without
a duplicate. Paths and accounts are pointed at a scratch instance; the
files' own settings are used as shipped (issue 9, items 4 and 10)."""
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD, mkinstance

ROOT = pathlib.Path(__file__).resolve().parent.parent
POSTHORN = BUILD / "bin" / "posthorn"


@pytest.fixture
def shipped(tmp_path):
    if not POSTHORN.exists():
        pytest.skip("posthorn not built")
    tmp_path.chmod(0o755)
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("main.cf", "master.cf", "aliases"):
        shutil.copy(ROOT / "conf" / name, etc / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # daemon_directory: links to the build, and postdrop a real file there
    # (check as root makes it set-gid; the build's own copy is left alone)
    libexec = tmp_path / "libexec"
    libexec.mkdir()
    for prog in (BUILD / "libexec").iterdir():
        (libexec / prog.name).symlink_to(prog)
    (libexec / "postdrop").unlink(missing_ok=True)
    shutil.copy(BUILD / "bin" / "postdrop", libexec / "postdrop")
    owner, group, _ = mkinstance.ensure_accounts(mail=False)
    local = [f"queue_directory = {tmp_path}/queue", f"data_directory = {tmp_path}/data",
             f"daemon_directory = {libexec}", f"command_directory = {bin_dir}",
             f"mail_owner = {owner}", f"setgid_group = {group}",
             f"maillog_file = {tmp_path}/maillog"]
    with open(etc / "main.cf", "a") as f:
        f.write("\n# --- test: where this instance lives\n" + "\n".join(local) + "\n")
    return etc


def ph(etc, *args):
    return subprocess.run([str(POSTHORN), "-c", str(etc), *args], capture_output=True,
                          text=True, timeout=60)


def test_shipped_aliases_build_without_duplicates(shipped):
    res = ph(shipped, "map", "-a", f"cdb:{shipped}/aliases")
    assert res.returncode == 0, res.stderr
    assert "duplicate" not in res.stderr, res.stderr


def test_shipped_configuration_checks_clean(shipped):
    assert ph(shipped, "map", "-a", f"cdb:{shipped}/aliases").returncode == 0
    ph(shipped, "check")                  # the first run creates the directories
    res = ph(shipped, "check")
    assert res.returncode == 0, res.stderr
    problems = [l for l in res.stderr.splitlines() if "error:" in l or "warning:" in l]
    assert problems == [], "\n".join(problems)


def test_unknown_override_is_an_error(shipped):
    """A service must not run weaker than written: an -o parameter this
    build does not know fails check and start (master refuses it too)."""
    with open(shipped / "master.cf", "a") as f:
        f.write("submission inet n - n - - smtpd\n  -o smtpd_tls_no_such_level=encrypt\n")
    res = ph(shipped, "check")
    assert res.returncode != 0
    assert "service submission/inet: -o smtpd_tls_no_such_level: unknown parameter" \
        in res.stderr
    res = subprocess.run([str(BUILD / "libexec" / "master"), "-c", str(shipped), "-t"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert "-o smtpd_tls_no_such_level=encrypt: unknown parameter" in res.stderr

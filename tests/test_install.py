"""tools/install.sh (make install, make uninstall) into a DESTDIR: what it
records it removes again, and it never replaces a file another package
owns (issue 9, item 1). A real installation into / is never run here."""
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("POSTHORN_BUILD", "build")
POSTHORN = BUILD / "bin" / "posthorn"
CONF = ("main.cf", "master.cf", "aliases")

pytestmark = pytest.mark.skipif(not POSTHORN.exists(), reason="posthorn not built")


@pytest.fixture
def build(tmp_path):
    """A stand-in build: the real posthorn, stubs for the rest, as make
    lays them out (postdrop also in libexec, mailq/newaliases links)."""
    build = tmp_path / "build"
    (build / "bin").mkdir(parents=True)
    (build / "libexec").mkdir()
    shutil.copy2(POSTHORN, build / "bin" / "posthorn")
    for name in ("libexec/master", "libexec/smtpd", "libexec/postdrop",
                 "bin/sendmail", "bin/postdrop"):
        (build / name).write_text("#!/bin/sh\n")
        (build / name).chmod(0o755)
    for name in ("mailq", "newaliases"):
        (build / "bin" / name).symlink_to("sendmail")
    return build


def install(build, dest, *extra, env=None):
    args = ["sh", str(ROOT / "tools/install.sh"), *extra, str(dest), "/usr", "/etc/posthorn",
            "/usr/libexec/posthorn", "/usr/sbin", "/usr/bin", "/usr/share/man", str(build)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def tree(dest):
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))


def test_install_then_uninstall_leaves_only_the_configuration(build, tmp_path):
    dest = tmp_path / "dest"
    proc = install(build, dest)
    assert proc.returncode == 0, proc.stderr
    record = (dest / "usr/share/posthorn/installed").read_text().splitlines()
    assert "f /usr/libexec/posthorn/postdrop" in record
    assert "f /usr/sbin/sendmail.posthorn" in record
    assert not any(line.endswith(("/mailq", "/newaliases", "/usr/sbin/postdrop"))
                   for line in record)
    assert not any("/etc/posthorn" in line for line in record)  # never the configuration
    # a second install (upgrade) keeps one record, and the operator's file
    (dest / "etc/posthorn/main.cf").write_text("myhostname = mine\n")
    assert install(build, dest).returncode == 0
    proc = install(build, dest, "--uninstall")
    assert proc.returncode == 0, proc.stderr
    assert "left: the configuration" in proc.stdout
    assert tree(dest) == ["etc", "etc/posthorn"] + [f"etc/posthorn/{f}" for f in sorted(CONF)]
    assert (dest / "etc/posthorn/main.cf").read_text() == "myhostname = mine\n"
    # nothing recorded: refused, nothing removed
    proc = install(build, dest, "--uninstall")
    assert proc.returncode != 0 and "nothing recorded" in proc.stderr


def test_uninstall_keeps_a_directory_with_other_files(build, tmp_path):
    dest = tmp_path / "dest"
    assert install(build, dest).returncode == 0
    (dest / "usr/sbin/other").write_text("not ours\n")
    proc = install(build, dest, "--uninstall")
    assert proc.returncode == 0, proc.stderr
    assert (dest / "usr/sbin/other").exists()
    assert not (dest / "usr/sbin/posthorn").exists()
    assert f"left {dest}/usr/sbin (not empty)" in proc.stdout


def fake_dpkg_query(tmp_path, owned):
    """A dpkg-query first on PATH that says postfix owns the paths in owned."""
    stub = tmp_path / "stub"
    stub.mkdir(parents=True)
    (stub / "dpkg-query").write_text(
        "#!/bin/sh\n"
        '[ "$1" = -S ] || exit 2\n'
        "found=1\n"
        f"for f in {' '.join(owned)}; do\n"
        '    case $f in $2) echo "postfix: $f"; found=0 ;; esac\n'
        "done\n"
        '[ $found = 0 ] || echo "dpkg-query: no path found matching pattern $2" >&2\n'
        "exit $found\n")
    (stub / "dpkg-query").chmod(0o755)
    return {"PATH": f"{stub}:{os.environ['PATH']}", "POSTHORN_INSTALL_CHECK_OWNERS": "1"}


def test_a_file_another_package_owns_is_refused(build, tmp_path):
    dest = tmp_path / "dest"
    env = fake_dpkg_query(tmp_path, ["/usr/sbin/posthorn"])
    proc = install(build, dest, env=env)
    assert proc.returncode != 0
    assert "/usr/sbin/posthorn belongs to the package postfix; not replacing it" in proc.stderr
    assert not dest.exists()            # checked before anything is written


def test_a_page_another_package_has_gets_a_posthorn_section(build, tmp_path):
    """postfix's master(8) (Debian: master.8postfix.gz) and postdrop.1.gz
    are left alone; ours is `man 8posthorn master`."""
    dest = tmp_path / "dest"
    env = fake_dpkg_query(tmp_path, ["/usr/share/man/man8/master.8postfix.gz",
                                     "/usr/share/man/man1/postdrop.1.gz"])
    proc = install(build, dest, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "usr/share/man/man8/master.8posthorn").exists()
    assert not (dest / "usr/share/man/man8/master.8").exists()
    assert (dest / "usr/share/man/man1/postdrop.1posthorn").exists()
    assert (dest / "usr/share/man/man5/master.cf.5").exists()      # not master.5
    assert (dest / "usr/share/man/man8/smtpd.8").exists()
    assert install(build, dest, "--uninstall").returncode == 0
    assert not (dest / "usr").exists()


def test_without_the_check_under_destdir_no_dpkg_query_runs(build, tmp_path):
    """A package build (DESTDIR) does not ask dpkg about the build host."""
    dest = tmp_path / "dest"
    env = fake_dpkg_query(tmp_path, ["/usr/sbin/posthorn"])
    env.pop("POSTHORN_INSTALL_CHECK_OWNERS")
    proc = install(build, dest, env=env)
    assert proc.returncode == 0, proc.stderr


def stubs(tmp_path, owned):
    """dpkg-query (postfix owns owned), update-alternatives and mandb that
    log their arguments, first on PATH."""
    env = fake_dpkg_query(tmp_path, owned or ["/nothing"])
    log = tmp_path / "calls"
    for name in ("update-alternatives", "mandb"):
        (tmp_path / "stub" / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
        (tmp_path / "stub" / name).chmod(0o755)
    return env, log


def real_install(build, base, *extra, env, hide=()):
    """An installation without DESTDIR, but with every directory under
    base (never into /); only the alternatives' link names are /usr's,
    and update-alternatives is a stub. hide: files (such as another MTA's
    /usr/sbin/sendmail) that the installer must not see: it runs in a
    mount namespace of its own where each of their directories is an
    overlay with a whiteout for the file."""
    args = ["sh", str(ROOT / "tools/install.sh"), *extra, "", f"{base}/usr", f"{base}/etc/posthorn",
            f"{base}/usr/libexec/posthorn", f"{base}/usr/sbin", f"{base}/usr/bin",
            f"{base}/usr/share/man", str(build)]
    if hide:
        top = tempfile.mkdtemp(prefix="hide.", dir=os.path.dirname(str(base)))
        script = ["set -e", "mount --make-rprivate /"]
        dirs = {}
        for path in hide:
            dirs.setdefault(os.path.dirname(path), []).append(os.path.basename(path))
        for n, (d, names) in enumerate(sorted(dirs.items())):
            upper, work = f"{top}/{n}/upper", f"{top}/{n}/work"
            script.append(f"mkdir -p {upper} {work}")
            script += [f"mknod {upper}/{name} c 0 0" for name in names]
            script.append(f"mount -t overlay overlay -o lowerdir={d},upperdir={upper},"
                          f"workdir={work} {d}")
        script.append('exec "$@"')
        args = ["unshare", "-m", "sh", "-c", "\n".join(script), "hide", *args]
    return subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **env))


ALT_PATHS = ["/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases",
             "/usr/share/man/man1/sendmail.1", "/usr/share/man/man1/mailq.1",
             "/usr/share/man/man1/newaliases.1"]


@pytest.mark.skipif(os.geteuid() != 0, reason="alternatives are registered by root only")
def test_alternatives_only_when_no_package_owns_sendmail(build, tmp_path):
    base = tmp_path / "root"
    env, log = stubs(tmp_path, ["/usr/sbin/sendmail"])
    proc = real_install(build, base, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "/usr/sbin/sendmail not set up (/usr/sbin/sendmail belongs to the package postfix)" \
        in proc.stdout
    assert "update-alternatives" not in log.read_text()
    assert real_install(build, base, "--uninstall", env=env).returncode == 0
    assert tree(base) == ["etc", "etc/posthorn"] + [f"etc/posthorn/{f}" for f in sorted(CONF)]

    # A host with an MTA of its own (the test suite installs Debian's
    # postfix for smtp-sink) has the names: hide them from the installer.
    hide = [p for p in ALT_PATHS if os.path.lexists(p)]
    if hide and (shutil.which("unshare") is None
                 or subprocess.run(["unshare", "-m", "true"]).returncode != 0):
        pytest.skip("this host has a sendmail of its own and no mount namespaces to hide it")
    log.unlink()
    env, log = stubs(tmp_path / "free", [])
    proc = real_install(build, base, env=env, hide=hide)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text()
    assert (f"update-alternatives --install /usr/sbin/sendmail sendmail "
            f"{base}/usr/sbin/sendmail.posthorn 25 --slave /usr/lib/sendmail") in calls
    assert f"--slave /usr/bin/mailq mailq {base}/usr/sbin/sendmail.posthorn" in calls
    assert (f"--slave /usr/share/man/man1/newaliases.1 newaliases.1 "
            f"{base}/usr/share/man/man1/sendmail.posthorn.1") in calls
    proc = real_install(build, base, "--uninstall", env=env, hide=hide)
    assert proc.returncode == 0, proc.stderr
    assert (f"update-alternatives --remove sendmail {base}/usr/sbin/sendmail.posthorn"
            in log.read_text())
    assert tree(base) == ["etc", "etc/posthorn"] + [f"etc/posthorn/{f}" for f in sorted(CONF)]

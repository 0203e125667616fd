"""A configuration edit cannot stop a running system (issue 8, item 1).

master validates main.cf and master.cf (with every service's -o options)
at start and at reload, and hands each child the main.cf text that
validated (a sealed memfd): an edit takes effect only through a reload
that accepts it. A refused reload says why on the command line and in the
log; `posthorn check` reports only the real errors; what a child writes to
stderr before its logging is up reaches the log through master."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BUILD, MASTER

POSTHORN = BUILD / "bin" / "posthorn"
pytestmark = pytest.mark.skipif(not (BUILD / "testbin" / "ph-echo").exists(),
                                reason="tests/bin/ph-echo is not built")


def posthorn_at(instance, *args, timeout=60):
    return subprocess.run([str(POSTHORN), "-c", str(instance.etc), *args],
                          capture_output=True, text=True, timeout=timeout)


def greeted(instance, port, timeout=5):
    with instance.connect(port) as c:
        line = c.readline(timeout=timeout)
        assert line.startswith("ph-echo ready"), line
        assert c.cmd("echo hi") == "hi"
        return int(re.search(r"pid=(\d+)", line).group(1))


def main_cf_lines(instance):
    return (instance.etc / "main.cf").read_text().splitlines()


def test_typo_in_main_cf_does_not_reach_new_children(instance):
    port = instance.free_port()
    # max_use=1: every connection is served by a freshly started child
    instance.write_master_cf(f"{port} inet - - n - - ph-echo -o max_use=1\n")
    instance.start()
    first = greeted(instance, port)
    with open(instance.etc / "main.cf", "a") as f:
        f.write("smtpd_recipient_limit = lots\n")
    lineno = len(main_cf_lines(instance))
    mark = instance.log_mark()
    # New children start from the configuration that validated.
    for _ in range(3):
        try:
            assert greeted(instance, port) != first
        except TimeoutError:
            raise AssertionError(instance.log_text()[mark:] + "\n---\n" +
                                 instance.stderr_path.read_text())
    assert instance.count_log(r"bad command startup|fatal", since=mark) == 0
    # The reload is refused, with the reason on the command line and in the log.
    proc = posthorn_at(instance, "reload")
    assert proc.returncode == 3                  # refused: configuration errors
    assert f"{instance.etc}/main.cf:{lineno}: parameter smtpd_recipient_limit: bad number" \
        in proc.stderr
    instance.wait_log(rf"reload refused, master keeps the running configuration: "
                      rf"{re.escape(str(instance.etc))}/main.cf:{lineno}:", since=mark)
    # A SIGHUP that bypasses the command is refused by master itself.
    os.kill(instance.master_pid(), signal.SIGHUP)
    instance.wait_log(rf"main.cf:{lineno}: parameter smtpd_recipient_limit", since=mark)
    greeted(instance, port)
    # Fixed and reloaded, the new value reaches new children.
    text = (instance.etc / "main.cf").read_text().replace("= lots", "= 77")
    (instance.etc / "main.cf").write_text(text)
    mark = instance.log_mark()
    assert posthorn_at(instance, "reload").returncode == 0
    instance.wait_log(r"reload --", since=mark)
    greeted(instance, port)


def test_edit_without_reload_is_not_seen(instance):
    # The positive side of the snapshot: a valid edit is not seen either
    # until a reload accepts it (here: a child's max_use).
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - 1 ph-echo\n")
    instance.set_main(max_use=1)
    instance.start()
    a = greeted(instance, port)
    instance.set_main(max_use=100)           # edited, not reloaded
    b = greeted(instance, port)
    assert greeted(instance, port) not in (a, b)    # still max_use=1
    mark = instance.log_mark()
    instance.reload()
    instance.wait_log(r"reload --", since=mark)
    c = greeted(instance, port)
    assert greeted(instance, port) == c      # max_use=100 now


def test_bad_override_in_master_cf_is_a_config_error(instance):
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n")
    instance.start()
    instance.write_master_cf(f"{port} inet - - n - - ph-echo\n"
                             f"  -o max_use=lots\n")
    res = instance.run_master("-t")
    assert res.returncode != 0
    assert re.search(rf"{re.escape(str(instance.etc))}/master.cf:1: service {port}/inet: "
                     r".*max_use.*lots", res.stderr), res.stderr
    mark = instance.log_mark()
    os.kill(instance.master_pid(), signal.SIGHUP)
    instance.wait_log(r"master.cf:1: service .*max_use", since=mark)
    greeted(instance, port)


def test_check_reports_only_the_real_errors(instance):
    instance.write_master_cf("")
    posthorn_at(instance, "check")           # creates the queue directories
    assert posthorn_at(instance, "check").returncode == 0
    lines = main_cf_lines(instance)
    with open(instance.etc / "main.cf", "a") as f:
        f.write("smtpd_recipient_limit = lots\nthis line is broken\n")
    n = len(lines)
    proc = posthorn_at(instance, "check")
    errors = [l for l in proc.stderr.splitlines() if ": error: " in l]
    assert proc.returncode != 0
    assert any(f"main.cf:{n + 1}: parameter smtpd_recipient_limit: bad number" in e
               for e in errors), errors
    assert any(f"main.cf:{n + 2}: missing '='" in e for e in errors), errors
    assert len(errors) == 2, errors          # no cascade from the defaults


def test_child_stderr_reaches_the_log(instance):
    # A command that fails before any logging of its own (here a script;
    # a daemon's early fatal error is the same) gets its words into the log.
    script = instance.libexec / "ph-says-why"
    script.write_text("#!/bin/sh\necho 'cannot start: the reason is here' >&2\nexit 1\n")
    script.chmod(0o755)
    port = instance.free_port()
    instance.write_master_cf(f"{port} inet - - n - - ph-says-why\n")
    res = instance.start(foreground=False)
    assert res.returncode == 0, res.stderr
    try:
        mark = instance.log_mark()
        s = instance.connect(port)
        instance.wait_log(r"child stderr: cannot start: the reason is here", since=mark)
        s.close()
    finally:
        instance.stop()

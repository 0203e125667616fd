"""submit, the local submission service: sendmail's fast path over the
Unix socket $queue_directory/submit/submit. End to end with a full
instance whose master.cf has the submit line: delivery without maildrop/,
the fall-back to postdrop while the system is stopped, the submitter's
uid taken from the kernel (a forged submit_uid or other attribute is
refused; a user other than root gets its own uid), a client that goes
away before the end record (nothing queued), and durability: with every
fsync of cleanup failing (strace fault injection) sendmail must fail
and nothing may be delivered."""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import MASTER
from mailsuite import SERVICES, MailInstance, have
from phwire import record

EX_DATAERR, EX_TEMPFAIL = 65, 75
NOBODY = 65534


@pytest.fixture
def smail():
    """A mail instance with the submit service in master.cf."""
    for prog in ("submit", "pickup", "cleanup", "qmgr", "local-delivery"):
        if not have(prog):
            pytest.skip(f"{prog} not built")
    if not MASTER.exists():
        pytest.skip(f"{MASTER} not built")
    inst = MailInstance(services=SERVICES + ("submit",))
    try:
        yield inst
    finally:
        inst.cleanup()


def maildrop_file(sender=b"me@example.test", rcpts=(b"alice@example.test",), attrs=(),
                  body=(b"Subject: raw", b"", b"hi"), end=True):
    out = record("V", "posthorn-queue 1") + record("S", sender)
    for a in attrs:
        out += record("A", a)
    for r in rcpts:
        out += record("R", r)
    out += record("M")
    for line in body:
        out += record("L", line)
    if end:
        out += record("X") + record("E")
    return out


CLIENT = r"""
import os, socket, sys
uid = int(sys.argv[2])
if uid != os.getuid():
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
data = sys.stdin.buffer.read()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(data)
if sys.argv[3] == "eof":
    s.shutdown(socket.SHUT_WR)
    print(s.makefile("rb").readline().decode().strip())
"""


def raw_submit(inst, data, uid=0, eof=True):
    """Connect to the submit socket as uid, send data, return the answer."""
    res = subprocess.run(["/usr/bin/python3", "-c", CLIENT, str(inst.queue / "submit" / "submit"),
                          str(uid), "eof" if eof else "close"],
                         input=data, capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.decode().strip()


def test_submit_socket_layout(smail):
    smail.start()
    d = smail.queue / "submit"
    assert (d.stat().st_mode & 0o7777) == 0o711
    sock = d / "submit"
    assert (sock.stat().st_mode & 0o777) == 0o666


def test_sendmail_goes_through_submit(smail):
    smail.start()
    res = smail.sendmail("-f", "root@example.test", "alice@example.test",
                         input=b"Subject: via submit\n\nhello\n")
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    msgs = smail.wait_maildir("alice@example.test", 1)
    assert b"Subject: via submit" in msgs[0]
    log = smail.log_text()
    assert re.search(r"submit\[\d+\]: [0-9A-Za-z]+: uid=0 from=<root@example.test>", log), log
    assert not re.search(r"pickup\[\d+\]: [0-9A-Za-z]+: uid=", log), log
    # -v says which way the message went
    res = smail.sendmail("-v", "alice@example.test", input=b"Subject: two\n\nx\n")
    assert res.returncode == 0 and b"by the submit service" in res.stderr, res.stderr
    smail.wait_maildir("alice@example.test", 2)
    smail.wait_queue_empty()


def test_fallback_to_postdrop_while_stopped(smail):
    """Stopped: the socket file is left but nobody listens; sendmail uses
    postdrop, and pickup takes the file at the next start."""
    smail.start()
    smail.stop()
    assert (smail.queue / "submit").is_dir()
    res = smail.sendmail("-v", "alice@example.test", input=b"Subject: while stopped\n\nx\n")
    assert res.returncode == 0, res.stderr
    assert b"using postdrop" in res.stderr, res.stderr
    assert len(smail.queue_files("maildrop")) == 1
    smail.start()
    msgs = smail.wait_maildir("alice@example.test", 1)
    assert b"Subject: while stopped" in msgs[0]
    smail.wait_queue_empty()


def test_queue_minfree_refused_before_the_input(smail):
    """Less than queue_minfree free: submit refuses at once with a
    temporary failure that names the parameter (as postdrop and smtpd
    do), sendmail exits 75 saying why, and nothing is queued."""
    del smail                               # only for its checks: this one needs main.cf
    inst = MailInstance(services=SERVICES + ("submit",), main={"queue_minfree": str(1 << 60)})
    try:
        inst.start()
        answer = raw_submit(inst, maildrop_file())
        assert answer.startswith(f"F {EX_TEMPFAIL} not enough free space"), answer
        assert "queue_minfree" in answer, answer
        res = inst.sendmail("alice@example.test", input=b"Subject: no room\n\nx\n")
        assert res.returncode == EX_TEMPFAIL, res
        assert b"queue_minfree" in res.stderr, res.stderr
        assert inst.queue_files("maildrop") == [] and inst.queue_files("incoming") == []
        inst.wait_log(r"submit\[\d+\]: warning: uid=0: not enough free space.*queue_minfree")
    finally:
        inst.cleanup()


def test_identity_comes_from_the_kernel(smail):
    smail.start()
    # a user other than root: its own uid, whatever it writes
    assert raw_submit(smail, maildrop_file(sender=b"nobody@example.test"), uid=NOBODY) \
        .startswith("Q ")
    smail.wait_maildir("alice@example.test", 1)
    log = smail.wait_log(rf"submit\[\d+\]: [0-9A-Za-z]+: uid={NOBODY} from=<nobody@example.test>")
    assert log
    # a forged identity or trusted attribute is refused, nothing queued
    for attr in (b"submit_uid=0", b"sasl_username=admin", b"client_address=1.2.3.4"):
        answer = raw_submit(smail, maildrop_file(attrs=[attr]), uid=NOBODY)
        assert answer.startswith(f"F {EX_DATAERR} "), answer
        assert "not allowed" in answer, answer
    # so is a time record (the arrival time is submit's)
    bad = maildrop_file().replace(record("S", b"me@example.test"),
                                  record("S", b"me@example.test") + record("T", "1 0"))
    assert raw_submit(smail, bad, uid=NOBODY).startswith(f"F {EX_DATAERR} ")
    time.sleep(0.5)
    assert len(smail.maildir_messages("alice@example.test")) == 1
    smail.wait_queue_empty()


def test_sendmail_as_another_user(smail):
    """The real sendmail run by nobody: delivered, and logged with its uid."""
    smail.start()
    env = dict(os.environ, POSTHORN_CONFIG_DIR=str(smail.etc))

    def as_nobody():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    res = subprocess.run([str(smail.bin / "sendmail"), "alice@example.test"],
                         input=b"Subject: from nobody\n\nx\n", env=env, capture_output=True,
                         timeout=30, preexec_fn=as_nobody, cwd="/")
    assert res.returncode == 0, res.stderr
    msgs = smail.wait_maildir("alice@example.test", 1)
    assert b"Subject: from nobody" in msgs[0]
    assert smail.wait_log(rf"submit\[\d+\]: [0-9A-Za-z]+: uid={NOBODY} from=<nobody>")


def test_client_gone_before_the_end(smail):
    smail.start()
    assert raw_submit(smail, maildrop_file(end=False), eof=False) == ""
    assert raw_submit(smail, maildrop_file(end=False), eof=True).startswith(f"F {EX_DATAERR} ")
    assert raw_submit(smail, maildrop_file()).startswith("Q ")      # the process still serves
    smail.wait_maildir("alice@example.test", 1)
    time.sleep(0.5)
    assert len(smail.maildir_messages("alice@example.test")) == 1
    smail.wait_queue_empty()


def test_fsync_failure_is_reported(smail):
    """Durability under fault injection: every fsync/fdatasync of the
    processes master starts from now on (cleanup, submit) fails with EIO.
    cleanup cannot commit, so sendmail must fail (EX_TEMPFAIL), and the
    message must not be delivered or left in the queue."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed")
    smail.start()
    master = smail.master_pid()
    tracer = subprocess.Popen([strace, "-f", "-qq", "-o", "/dev/null", "-p", str(master),
                               "-e", "trace=fsync,fdatasync",
                               "-e", "inject=fsync,fdatasync:error=EIO"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)                        # strace attached
        assert tracer.poll() is None, tracer.stderr.read()
        res = smail.sendmail("alice@example.test", input=b"Subject: must fail\n\nx\n")
        assert res.returncode == EX_TEMPFAIL, (res.returncode, res.stderr)
        assert b"not queued" in res.stderr, res.stderr
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=10)
    time.sleep(1.0)
    assert smail.maildir_messages("alice@example.test") == []
    assert smail.queue_files("incoming") == [] and smail.queue_files("maildrop") == []
    # without the fault the same command works (new processes)
    smail.stop()
    smail.start()
    res = smail.sendmail("alice@example.test", input=b"Subject: now\n\nx\n")
    assert res.returncode == 0, res.stderr
    smail.wait_maildir("alice@example.test", 1)


def test_submit_rate(smail, capsys):
    """The shell loop of the issue through submit; a generous floor only."""
    smail.start()
    n = 100 if os.environ.get("POSTHORN_SANITIZED") else 300
    elapsed = smail.sendmail_loop("alice@example.test", n)
    with capsys.disabled():
        print(f"\nsendmail via submit: {n} messages in {elapsed:.2f}s = {n / elapsed:.0f} msgs/s")
    smail.wait_maildir("alice@example.test", n, timeout=120)
    assert smail.queue_files("maildrop") == []
    assert not re.search(r"pickup\[\d+\]: [0-9A-Za-z]+: uid=", smail.log_text())

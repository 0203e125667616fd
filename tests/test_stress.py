"""Stress mode (lib/mail/master_proto.h): a real smtpd service under
master with maxproc 2 is filled by two silent clients; a third client
waits. master logs "stress mode on", tells the two running smtpd
processes (SIGUSR2), which cut the wait in progress to the stress value
of smtpd_timeout, and starts new processes with -o stress=yes; once the
clients are gone, "stress mode off" follows after MASTER_STRESS_CALM_S.
The test's smtpd_timeout is ${stress?{3}:{60}}s: without stress mode
every silent client would be held for 60 s."""
import re
import socket
import time

import pytest

from conftest import proc_cmdline

STRESS_S = 3          # smtpd_timeout in stress mode (the test's)
NORMAL_S = 60         # and otherwise
CALM_S = 10           # MASTER_STRESS_CALM_S


def master_cf(port, extra=""):
    return (f"127.0.0.1:{port} inet n - n - 2 smtpd"
            f" -o smtpd_timeout=${{stress?{{{STRESS_S}}}:{{{NORMAL_S}}}}}s"
            f" -o smtpd_error_sleep_time=0 {extra}\n")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=NORMAL_S)
    return s


def read_reply(sock, timeout):
    """One SMTP reply line (the last of a multi-line one) or '' at EOF."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        try:
            data = sock.recv(1)
        except ConnectionResetError:
            return ""
        if not data:
            return buf.decode(errors="replace")
        buf += data
        if buf.endswith(b"\n"):
            line = buf.decode(errors="replace").rstrip("\r\n")
            if len(line) >= 4 and line[3] == "-":
                buf = b""
                continue
            return line


def smtpd_pids(instance, port):
    return instance.children(f"127.0.0.1:{port}")


def argv_of(pid):
    return [a.decode() for a in proc_cmdline(pid) if a]


@pytest.fixture
def stressed(instance):
    port = instance.free_port()
    instance.set_main(myhostname="mail.example.test", smtpd_error_sleep_time="0")
    instance.write_master_cf(master_cf(port, "-o max_use=1"))
    instance.start()
    instance.port = port
    return instance


def fill_and_stress(instance):
    """Two silent greeted clients on both processes, a third waiting;
    returns (c1, c2, c3, time stress was logged)."""
    port = instance.port
    c1, c2 = connect(port), connect(port)
    assert read_reply(c1, 10).startswith("220 ")
    assert read_reply(c2, 10).startswith("220 ")
    running = smtpd_pids(instance, port)
    assert len(running) == 2
    for pid in running:
        assert "stress=yes" not in argv_of(pid)
    mark = instance.log_mark()
    c3 = connect(port)                       # in the listen queue
    instance.wait_log(rf"warning: service 127\.0\.0\.1:{port} \(127\.0\.0\.1:{port}\): "
                      r"all 2 processes busy -- stress mode on", since=mark, timeout=5)
    t_on = time.monotonic()
    return c1, c2, c3, t_on, running, mark


def test_stress_on_shortens_running_and_new(stressed):
    inst = stressed
    port = inst.port
    c1, c2, c3, t_on, running, mark = fill_and_stress(inst)
    # the running processes were told: their silent clients are cut at
    # about STRESS_S after the signal, not NORMAL_S after their greeting
    for c in (c1, c2):
        line = read_reply(c, NORMAL_S)
        took = time.monotonic() - t_on
        assert re.match(r"421 4\.4\.2 mail\.example\.test Error: timeout exceeded", line), line
        assert STRESS_S - 1 < took < STRESS_S + 3, took
    assert inst.count_log(r"stress mode: shorter timeouts", since=mark) == 2
    # max_use=1: both exit; c3 gets a new process, started in stress
    line = read_reply(c3, 10)
    t_greet = time.monotonic()
    assert line.startswith("220 "), line
    [pid] = [p for p in smtpd_pids(inst, port) if p not in running]
    argv = argv_of(pid)
    i = argv.index("stress=yes")
    assert argv[i - 1] == "-o" and i < argv.index("smtpd_timeout=${stress?{3}:{60}}s")
    # its smtpd_timeout is the stress value: a silent client is dropped
    line = read_reply(c3, NORMAL_S)
    took = time.monotonic() - t_greet
    assert line.startswith("421 4.4.2 "), line
    assert STRESS_S - 1 < took < STRESS_S + 2, took
    for c in (c1, c2, c3):
        c.close()
    # and smtpd_hard_error_limit is 1 in stress: one error, then 421
    c4 = connect(port)
    assert read_reply(c4, 10).startswith("220 ")
    c4.sendall(b"BOGUS\r\n")
    assert read_reply(c4, 5).startswith("500 ")
    assert read_reply(c4, 5).startswith("421 4.7.0 ")
    c4.close()
    # calm: stress ends MASTER_STRESS_CALM_S after the last busy moment
    m = inst.wait_log(rf"service 127\.0\.0\.1:{port}: stress mode off", since=mark,
                      timeout=CALM_S + 5)
    assert inst.count_log(r"stress mode on", since=mark) == 1
    assert inst.count_log(r"stress mode off", since=mark) == 1
    # a new process after stress: normal values again
    c5 = connect(port)
    assert read_reply(c5, 10).startswith("220 ")
    [pid] = smtpd_pids(inst, port)
    assert "stress=yes" not in argv_of(pid)
    c5.sendall(b"BOGUS\r\n")
    assert read_reply(c5, 5).startswith("500 ")
    c5.sendall(b"NOOP\r\n")
    assert read_reply(c5, 5).startswith("250 ")       # not cut after one error
    c5.close()
    assert m


def test_stress_without_max_use_and_reload(instance):
    """Long-lived processes: the signal is what shortens them; a reload
    in stress keeps the service in stress (new processes get
    stress=yes), and stress mode ends once, after the calm period."""
    port = instance.free_port()
    instance.set_main(myhostname="mail.example.test")
    instance.write_master_cf(master_cf(port))
    instance.start()
    instance.port = port
    c1, c2, c3, t_on, running, mark = fill_and_stress(instance)
    # reload while in stress: the old processes retire after their
    # client (cut short by the stress signal); new ones start in stress
    instance.reload()
    for c in (c1, c2):
        line = read_reply(c, NORMAL_S)
        assert line.startswith("421 4.4.2 "), line
        assert time.monotonic() - t_on < STRESS_S + 3
    assert read_reply(c3, 10).startswith("220 ")
    new = [p for p in smtpd_pids(instance, port) if p not in running]
    assert new and all("stress=yes" in argv_of(p) for p in new)
    assert read_reply(c3, NORMAL_S).startswith("421 4.4.2 ")
    for c in (c1, c2, c3):
        c.close()
    assert instance.count_log(r"stress mode off", since=mark) == 0
    instance.wait_log(rf"service 127\.0\.0\.1:{port}: stress mode off", since=mark,
                      timeout=CALM_S + 5)
    assert instance.count_log(r"stress mode on", since=mark) == 1


def test_no_stress_below_the_limit(instance):
    """Two clients on a service of three processes: no stress mode."""
    port = instance.free_port()
    instance.set_main(myhostname="mail.example.test")
    instance.write_master_cf(master_cf(port).replace(" 2 smtpd", " 3 smtpd"))
    instance.start()
    c1, c2 = connect(port), connect(port)
    assert read_reply(c1, 10).startswith("220 ")
    assert read_reply(c2, 10).startswith("220 ")
    c3 = connect(port)
    assert read_reply(c3, 10).startswith("220 ")
    time.sleep(1)
    assert "stress mode" not in instance.log_text()
    for c in (c1, c2, c3):
        c.close()

"""smtpd in a full instance (tests/mailsuite.py): messages received over
SMTP end up in Maildirs and queue files with what the client said; the
policy replies come from the real tables and the real local delivery
agent."""
import os
import re
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from mailsuite import MASTER, BUILD, MailInstance, have, mail  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(
    not all(have(p) for p in ("smtpd", "cleanup", "qmgr", "local-delivery")),
    reason="needs smtpd, cleanup, qmgr and local-delivery")


def raw_session(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220 ")
    return sock, f


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return None, lines
        lines.append(line.rstrip(b"\r\n"))
        if line[3:4] == b" ":
            return int(line[:3]), lines


def test_delivered_with_received_header(mail):
    mail.start()
    with mail.smtp() as s:
        s.ehlo("client.example")
        s.mail("sender@remote.example")
        assert s.rcpt("alice@example.test")[0] == 250
        code, text = s.data(b"Subject: e2e\r\n\r\nline\r\n.dotted\r\n")
        assert code == 250
    qid = text.decode().rsplit(" ", 1)[-1]
    [msg] = mail.wait_maildir("alice@example.test", 1)
    head = msg.split(b"\n\n", 1)[0]
    assert re.search(rb"Received: from client\.example \(\[127\.0\.0\.1\]\)\n\tby mail\.example\.test "
                     rb"\(posthorn\) with ESMTP\n\tfor <alice@example\.test>; ", head), head
    assert msg.rstrip(b"\n").endswith(b"line\n.dotted")
    mail.wait_log(rf"{qid}: client=unknown\[127\.0\.0\.1\]")


def test_smtpd_wakes_qmgr_after_its_250():
    """smtpd asks cleanup not to wake qmgr (CLEANUP_FLAG_CLIENT_TRIGGER)
    and writes qmgr's trigger itself once the 250 is out, so that on one
    CPU qmgr (nice -5) and the delivery do not run before the reply. With
    qmgr's safety-net scan an hour away, the mail is delivered within
    seconds only if that trigger came, for every message of a session."""
    if not MASTER.exists() or not (BUILD / "bin" / "posthorn").exists():
        pytest.skip("not built")
    inst = MailInstance(main={"qmgr_incoming_scan_delay": "3600s"})
    try:
        inst.start()
        ids = []
        with inst.smtp() as s:
            s.ehlo("client.example")
            for i in range(3):
                s.mail("sender@remote.example")
                assert s.rcpt("alice@example.test")[0] == 250
                code, text = s.data(f"Subject: trigger {i}\r\n\r\nbody\r\n".encode())
                assert code == 250
                ids.append(text.decode().rsplit(" ", 1)[-1])
                inst.wait_maildir("alice@example.test", i + 1, timeout=10)
        for qid in ids:
            inst.wait_log(rf"{qid}: .*status=sent")
        assert inst.count_log(r"cannot trigger qmgr") == 0
    finally:
        inst.cleanup()


def test_file_in_progress_during_data_is_left_alone():
    """While a client is still sending DATA, cleanup's file is already
    incoming/ID, with mode 0200 (architecture.md decision 51): qmgr does
    not take it, neither when a trigger names it nor on its scan (every
    second here), and the queue tools do not show or move it. After the
    end of data the 250 names the same ID and the message is delivered."""
    if not MASTER.exists() or not (BUILD / "bin" / "posthorn").exists():
        pytest.skip("not built")
    import phwire

    def valid_queue_ids(d):         # not .group-sync, not a temp name
        return sorted(p.name for p in d.iterdir() if not p.name.startswith((".", "tmp.")))

    inst = MailInstance(main={"qmgr_incoming_scan_delay": "1s"})
    try:
        inst.start()
        incoming = inst.queue / "incoming"
        with inst.smtp() as s:
            s.ehlo("client.example")
            assert s.mail("sender@remote.example")[0] == 250
            assert s.rcpt("alice@example.test")[0] == 250
            assert s.docmd("DATA")[0] == 354
            # enough for smtpd's buffered stream to cleanup to pass it on
            s.send(b"Subject: slow\r\n\r\n" + (b"x" * 70 + b"\r\n") * 3000)
            deadline = time.monotonic() + 10
            while not valid_queue_ids(incoming) and time.monotonic() < deadline:
                time.sleep(0.02)
            (qid,) = valid_queue_ids(incoming)
            path = incoming / qid
            assert oct(path.stat().st_mode & 0o777) == oct(0o200)
            phwire.trigger(inst.queue / "public" / "qmgr", f"I{qid}\n".encode())
            time.sleep(2.5)                 # the trigger and two scans
            assert valid_queue_ids(incoming) == [qid]
            assert oct(path.stat().st_mode & 0o777) == oct(0o200)
            assert inst.count_log(rf"qmgr\[\d+\]: {qid}: ") == 0
            res = inst.posthorn("queue", "list")
            assert qid not in res.stdout and "Mail queue is empty" in res.stdout
            res = inst.posthorn("queue", "hold", qid, check=False)
            assert res.returncode == 1 and "still being received" in res.stderr
            assert path.exists()
            s.send(b"the second half\r\n.\r\n")
            code, text = s.getreply()
            assert code == 250 and text.decode().endswith(f"queued as {qid}"), (code, text)
        inst.wait_maildir("alice@example.test", 1)
        inst.wait_log(rf"{qid}: .*status=sent")
    finally:
        inst.cleanup()


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_qmgr_tells_master_only_once(mail):
    """qmgr (trigger_notify_once) does not write master a busy/idle pair
    for every trigger: over three messages at most one status write (its
    first trigger), where it used to be two per message."""
    mail.start()
    mail.smtp_send("a@remote.example", ["alice@example.test"], "Subject: 0\r\n\r\nx\r\n")
    mail.wait_maildir("alice@example.test", 1)
    (qmgr,) = mail.children("qmgr")
    out = mail.dir / "qmgr.strace"
    tr = subprocess.Popen(["strace", "-qq", "-p", str(qmgr), "-e", "trace=write", "-o", str(out)])
    try:
        time.sleep(1.0)                 # strace attached
        for i in range(3):
            mail.smtp_send("a@remote.example", ["alice@example.test"],
                           f"Subject: {i + 1}\r\n\r\nx\r\n")
            mail.wait_maildir("alice@example.test", i + 2)
        time.sleep(0.3)
    finally:
        tr.terminate()
        tr.wait(10)
    writes = out.read_text().splitlines()
    assert len([w for w in writes if "deliver" in w]) >= 3, writes     # it was watching
    assert len([w for w in writes if w.startswith("write(3,")]) <= 1, writes


def test_dsn_parameters_in_queue_file(mail):
    """A message to a remote domain waits in the queue (no smtp client
    yet); its queue file holds the DSN records the client sent."""
    mail.start()
    with mail.smtp() as s:
        s.ehlo("client.example")
        code, _ = s.docmd("MAIL FROM:<sender@remote.example> RET=HDRS ENVID=abc+2Bdef BODY=8BITMIME")
        assert code == 250
        code, _ = s.docmd("RCPT TO:<x@foreign.example> NOTIFY=SUCCESS,DELAY "
                          "ORCPT=rfc822;orig+2Bx@foreign.example")
        assert code == 250
        code, text = s.data(b"Subject: dsn\r\n\r\nbody\r\n")
        assert code == 250
    qid = text.decode().rsplit(" ", 1)[-1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        res = mail.posthorn("queue", "cat", qid, check=False)
        if res.returncode == 0:
            break
        time.sleep(0.1)
    out = res.stdout
    assert res.returncode == 0, res.stderr
    assert "attribute: dsn_ret=HDRS" in out
    assert "attribute: dsn_envid=abc+def" in out
    assert "attribute: body=8BITMIME" in out
    assert "attribute: client_address=127.0.0.1" in out
    assert "attribute: protocol=ESMTP" in out
    assert "orcpt: rfc822;orig+x@foreign.example" in out
    assert "notify: success,delay" in out
    assert re.search(r"recipient: x@foreign\.example", out)


def test_policy_replies_from_real_tables(mail):
    mail.set_main(mynetworks="192.0.2.0/24")
    mail.start()
    with mail.smtp() as s:
        s.ehlo("client.example")
        s.mail("sender@remote.example")
        code, text = s.rcpt("nobody@example.test")
        assert code == 550 and text.startswith(b"5.1.1 <nobody@example.test>: Recipient address "
                                               b"rejected: User unknown in virtual mailbox table")
        code, text = s.rcpt("x@foreign.example")
        assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text
        code, _ = s.rcpt("user%foreign.example@example.test")
        assert code == 554
        assert s.rcpt("info@alias.test")[0] == 250
        assert s.rcpt("team@example.test")[0] == 250
        assert s.rcpt("bob+tag@example.test")[0] == 250
        code, _ = s.data(b"Subject: fan-out\r\n\r\nhi\r\n")
        assert code == 250
    mail.wait_maildir("alice@example.test", 1)
    mail.wait_maildir("bob@example.test", 1)
    mail.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 "
                  r"<x@foreign\.example>: Relay access denied; from=<sender@remote\.example> "
                  r"to=<x@foreign\.example> proto=ESMTP helo=<client\.example>")


def test_bdat_delivered_intact(mail):
    mail.start()
    sock, f = raw_session(mail.smtp_port)
    body = b"Subject: bdat\r\n\r\n" + b"".join(b"line %d\r\n" % i for i in range(2000))
    sock.sendall(b"EHLO client.example\r\n")
    assert read_reply(f)[0] == 250
    sock.sendall(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<carol@example.test>\r\n"
                 + b"BDAT 7000\r\n" + body[:7000]
                 + b"BDAT %d LAST\r\n" % (len(body) - 7000) + body[7000:])
    codes = [read_reply(f)[0] for _ in range(4)]
    assert codes == [250, 250, 250, 250]
    sock.sendall(b"QUIT\r\n")
    read_reply(f)
    sock.close()
    [msg] = mail.wait_maildir("carol@example.test", 1)
    assert msg.endswith(b"line 1998\nline 1999\n")
    assert msg.count(b"\nline ") == 2000


def test_smuggling_attempt_delivers_one_message(mail):
    mail.start()
    sock, f = raw_session(mail.smtp_port)
    sock.sendall(b"EHLO client.example\r\n")
    assert read_reply(f)[0] == 250
    sock.sendall(b"MAIL FROM:<a@remote.example>\r\n")
    assert read_reply(f)[0] == 250
    sock.sendall(b"RCPT TO:<alice@example.test>\r\n")
    assert read_reply(f)[0] == 250
    sock.sendall(b"DATA\r\n")
    assert read_reply(f)[0] == 354
    sock.sendall(b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<admin@example.test>\r\n"
                 b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\n"
                 b"QUIT\r\n\r\n.\r\n")
    code, lines = read_reply(f)
    assert code == 250
    sock.sendall(b"QUIT\r\n")
    read_reply(f)
    sock.close()
    [msg] = mail.wait_maildir("alice@example.test", 1)
    assert b"Subject: smuggled" in msg      # as content of the one message
    mail.wait_queue_empty()
    time.sleep(0.5)
    assert mail.maildir_messages("bob@example.test") == []


def test_over_quota_at_rcpt(mail):
    lines = (mail.etc / "vmailbox").read_text().replace(
        "carol@example.test example.test/carol/",
        "carol@example.test example.test/carol/ quota=100")
    (mail.etc / "vmailbox").write_text(lines)
    mail.build_maps()
    mail.start()
    with mail.smtp() as s:
        s.ehlo("client.example")
        code, _ = s.docmd("MAIL FROM:<a@remote.example> SIZE=5000")
        assert code == 250
        code, text = s.rcpt("carol@example.test")
        assert code == 552 and text.startswith(b"5.2.2 <carol@example.test>"), (code, text)
        assert s.rcpt("alice@example.test")[0] == 250


def test_swaks_end_to_end(mail):
    import shutil
    swaks = shutil.which("swaks")
    if not swaks:
        pytest.skip("swaks not installed")
    mail.start()
    res = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(mail.smtp_port),
                          "--from", "a@remote.example", "--to", "bob@example.test",
                          "--pipeline", "--header", "Subject: via swaks", "--body", "hello",
                          "--timeout", "10"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    [msg] = mail.wait_maildir("bob@example.test", 1)
    assert b"Subject: via swaks" in msg




def _cleanup_peers(mail):
    """The socket inodes ("socket:[N]") whose peer a cleanup process
    holds (from ss -xn: local and peer inode of each unix socket)."""
    cleanup_inodes = set()
    for pid in mail.processes():
        try:
            if not open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].endswith(b"cleanup"):
                continue
            cleanup_inodes |= {os.readlink(f"/proc/{pid}/fd/{fd}")
                               for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
    out = set()
    ss = subprocess.run(["ss", "-xn"], capture_output=True, text=True, timeout=10).stdout
    for line in ss.splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f"socket:[{f[7]}]" in cleanup_inodes:
            out.add(f"socket:[{f[5]}]")
    return out


def _smtpd_kept_sockets(mail):
    """{smtpd pid: its unix-domain socket inodes connected to cleanup}
    (the kept cleanup connection, if any; not a client's TCP socket that
    a finishing session still holds, not the listeners, not the
    connection to client-limits)."""
    to_cleanup = _cleanup_peers(mail)
    out = {}
    for pid in mail.processes():
        try:
            if not open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].endswith(b"smtpd"):
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        socks = set()
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link in to_cleanup:
                socks.add(link)
        out[pid] = socks
    return out

def test_cleanup_connection_kept_across_sessions_then_released(mail):
    """Back-to-back sessions of one smtpd process share one cleanup
    connection (no new connection per message): over three sessions the
    smtpd processes hold fewer distinct cleanup sockets than there were
    sessions. After a second without a session smtpd closes it, so idle
    smtpd processes hold no cleanup process."""
    mail.start()
    mark = mail.log_mark()
    for attempt in range(3):
        seen, pids = set(), set()
        for i in range(3):
            mail.smtp_send("sender@remote.example", ["alice@example.test"],
                           f"Subject: k{attempt}{i}\r\n\r\nx\r\n")
            for pid, socks in _smtpd_kept_sockets(mail).items():
                if socks:
                    pids.add(pid)
                    seen |= socks
        # three sessions in as many processes (a loaded machine) prove
        # nothing either way: try again
        if len(pids) < 3:
            break
    assert len(pids) < 3, "every session went to a new smtpd process"
    assert len(seen) <= len(pids) < 3, (seen, pids)
    time.sleep(2.5)
    assert all(not socks for socks in _smtpd_kept_sockets(mail).values())
    assert mail.count_log(r"warning|fatal|panic", since=mark) == 0, mail.log_text()


def test_binarymime_cannot_forge_mbox_messages(mail):
    """Audit issue 7 item 1: bare LF inside BDAT BODY=BINARYMIME content is
    a line end like any other, so an mbox gets one "From " separator and
    the forged one is quoted; headers behind a bare LF are real headers
    (here: Received: lines that count toward hopcount_limit)."""
    with open(mail.etc / "vmailbox", "a") as f:
        f.write("dave@example.test example.test/dave.mbox\n")
    mail.build_maps()
    mail.start()
    forged = (b"Subject: real\r\n\r\nhello\n"
              b"From evil@attacker.example Thu Jan  1 00:00:00 2026\n"
              b"From: ceo@victim.example\nSubject: forged message\n\nsend money\r\n")
    hidden_hops = b"X-A: 1" + b"\nReceived: from x by y" * 60 + b"\r\n\r\nbody\r\n"
    sock, f = raw_session(mail.smtp_port)
    sock.sendall(b"EHLO client.example\r\n")
    assert read_reply(f)[0] == 250
    for body in (forged, hidden_hops):
        sock.sendall(b"MAIL FROM:<a@b.example> BODY=BINARYMIME\r\nRCPT TO:<dave@example.test>\r\n"
                     + b"BDAT %d LAST\r\n" % len(body) + body)
        assert [read_reply(f)[0] for _ in range(2)] == [250, 250]
        code, lines = read_reply(f)
        if body is forged:
            assert code == 250, lines
        else:
            assert code == 554 and lines[0].startswith(b"554 5.4.6"), lines
    sock.sendall(b"QUIT\r\n")
    read_reply(f)
    sock.close()
    mbox = mail.mailroot / "example.test" / "dave.mbox"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (mbox.exists() and b"send money" in mbox.read_bytes()):
        time.sleep(0.05)
    text = mbox.read_bytes()
    assert b"send money" in text, mail.log_text()[-3000:]
    assert [l for l in text.split(b"\n") if l.startswith(b"From ")] == \
        [text.split(b"\n", 1)[0]], text
    assert b"\n>From evil@attacker.example Thu Jan  1 00:00:00 2026\nFrom: ceo@victim.example\n" \
        in text, text

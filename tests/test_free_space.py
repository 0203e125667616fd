"""Free space in the queue's file system (issue 14 item 4): the queue of
a full instance lives on a small tmpfs that the test mounts (root only;
skipped otherwise). With less than queue_minfree free, smtpd refuses
MAIL FROM with 452 4.3.1 (smtplib and swaks), and so does a declared
SIZE= that does not fit; sendmail says why on its standard error; a
message that passes MAIL FROM but does not fit gets 451 after its data
and the log names the real cause (ENOSPC, "No space left on device").
Once the space is freed, exactly the messages that got 250 arrive."""
import os
import shutil
import smtplib
import subprocess
import time

import pytest

from mailsuite import MailInstance, MASTER, BUILD, have

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
    pytest.mark.skipif(not all(have(p) for p in ("smtpd", "cleanup", "qmgr", "local-delivery")),
                       reason="needs smtpd, cleanup, qmgr and local-delivery"),
]

FS_SIZE = 8 * 1024 * 1024
MINFREE = 256 * 1024


@pytest.fixture
def small(tmp_path):
    """A mail instance whose queue directory is an 8 MB tmpfs."""
    if not MASTER.exists() or not (BUILD / "bin" / "posthorn").exists():
        pytest.skip("not built")
    inst = MailInstance(main={"queue_minfree": str(MINFREE)})
    saved = tmp_path / "queue"
    mounted = False
    try:
        st = inst.queue.stat()
        shutil.copytree(inst.queue, saved, symlinks=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0755",
                              "posthorn-test-queue", str(inst.queue)],
                             capture_output=True, text=True, timeout=20)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
        mounted = True
        subprocess.run(["cp", "-a", f"{saved}/.", f"{inst.queue}/"], check=True, timeout=20)
        os.chown(inst.queue, st.st_uid, st.st_gid)
        os.chmod(inst.queue, st.st_mode & 0o7777)
        yield inst
    finally:
        try:
            inst.stop(timeout=15)
        except Exception:
            pass
        if mounted:
            subprocess.run(["umount", "-l", str(inst.queue)], timeout=20)
        inst.cleanup()


def free_bytes(path):
    vfs = os.statvfs(path)
    return vfs.f_bavail * vfs.f_frsize


def fill_to(filler, leave):
    """Grow filler until the file system is full, then give back
    about leave bytes; the free bytes."""
    chunk = b"\0" * 65536
    with open(filler, "ab", buffering=0) as f:
        for _ in range(FS_SIZE // len(chunk) + 16):     # bounded
            try:
                f.write(chunk)
            except OSError:
                break
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return free_bytes(filler.parent)


def try_send(inst, subject, body=b"x\r\n", size=None):
    """One message over smtplib: ('mail', code, text) if MAIL FROM was
    refused, else ('data', code, text)."""
    with inst.smtp(timeout=20) as s:
        s.ehlo("client.example")
        opts = [f"SIZE={size}"] if size is not None else []
        code, text = s.mail("sender@remote.example", opts)
        if code != 250:
            return "mail", code, text.decode(errors="replace")
        assert s.rcpt("alice@example.test")[0] == 250
        try:
            code, text = s.data(b"Subject: " + subject.encode() + b"\r\n\r\n" + body)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return "data", code, text.decode(errors="replace")


def subjects(inst):
    out = []
    for m in inst.maildir_messages("alice@example.test"):
        for line in m.split(b"\n"):
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode().strip())
                break
    return sorted(out)


def test_free_space_refusal_and_nothing_lost(small):
    inst = small
    inst.start()
    filler = inst.queue / "filler"
    accepted, refused = [], []

    # Room for small messages, not for a big one: MAIL FROM passes
    # (more than queue_minfree free), the big one fails after its data.
    free = fill_to(filler, 640 * 1024)
    assert MINFREE < free < 1024 * 1024, free
    for i in range(3):
        where, code, text = try_send(inst, f"small {i}")
        assert (where, code) == ("data", 250), (where, code, text)
        accepted.append(f"small {i}")
    mark = inst.log_mark()
    big = (b"y" * 998 + b"\r\n") * 1200                  # ~1.2 MB
    where, code, text = try_send(inst, "big", body=big)
    assert where == "data" and code == 451, (where, code, text)
    assert text.endswith(": No space left on device"), text
    refused.append("big")
    inst.wait_log(r"cleanup.*queue file write error: No space left on device", since=mark)
    assert inst.count_log(r"queue file write error: I/O error", since=mark) == 0

    # A declared size that does not fit: 1.5 x SIZE + queue_minfree.
    free = free_bytes(inst.queue)
    where, code, text = try_send(inst, "sized", size=int(free / 1.5))
    assert (where, code) == ("mail", 452), (where, code, text)
    assert text.startswith("4.3.1 Insufficient system storage"), text
    refused.append("sized")
    where, code, text = try_send(inst, "small sized", size=1000)
    assert (where, code) == ("data", 250), (where, code, text)
    accepted.append("small sized")

    # Below queue_minfree: MAIL FROM refused for everyone.
    free = fill_to(filler, 64 * 1024)
    assert free < MINFREE, free
    mark = inst.log_mark()
    where, code, text = try_send(inst, "full")
    assert (where, code) == ("mail", 452), (where, code, text)
    assert "4.3.1 Insufficient system storage" in text
    refused.append("full")
    inst.wait_log(r"smtpd.*not enough free space in the queue file system", since=mark)
    swaks = shutil.which("swaks")
    if swaks:
        res = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(inst.smtp_port),
                              "--from", "a@remote.example", "--to", "alice@example.test",
                              "--header", "Subject: swaks full", "--timeout", "10"],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode != 0
        assert "<** 452 4.3.1 Insufficient system storage" in res.stdout, res.stdout
        refused.append("swaks full")
    res = inst.sendmail("alice@example.test", input=b"Subject: sendmail full\n\nz\n")
    assert res.returncode != 0, res
    assert b"not enough free space in the queue file system" in res.stderr, res.stderr
    refused.append("sendmail full")

    # Space back: exactly the accepted messages arrive, nothing else.
    filler.unlink()
    inst.wait_maildir("alice@example.test", len(accepted), timeout=20)
    inst.wait_queue_empty(timeout=20)
    time.sleep(1.5)                                       # anything late?
    assert subjects(inst) == sorted(accepted), (subjects(inst), refused)
    print(inst.log_text()) if os.environ.get("FREE_SPACE_LOG") else None
    where, code, text = try_send(inst, "after")
    assert (where, code) == ("data", 250), (where, code, text)


def test_filling_queue_keeps_every_250(small):
    """The issue's measurement: with qmgr not running, accepted mail stays
    on the small file system and fills it; messages go on until the
    free space runs out, then MAIL FROM is refused (452 4.3.1) and
    nothing is answered 250 that was not queued. Once space is freed
    and qmgr runs, exactly the messages that got 250 arrive."""
    inst = small
    full_cf = inst.default_master_cf()
    no_qmgr = "\n".join(l for l in full_cf.splitlines() if not l.startswith("qmgr ")) + "\n"
    assert no_qmgr != full_cf
    inst.write_master_cf(no_qmgr)
    inst.start()
    filler = inst.queue / "filler"
    fill_to(filler, 3 * 1024 * 1024)
    body = (b"z" * 998 + b"\r\n") * 100                   # ~100 KB
    accepted, outcomes = [], {}
    for i in range(60):                                   # bounded
        sized = i % 2 == 1
        where, code, text = try_send(inst, f"fill {i}", body=body,
                                     size=len(body) + 64 if sized else None)
        outcomes[(where, code)] = outcomes.get((where, code), 0) + 1
        if (where, code) == ("data", 250):
            accepted.append(f"fill {i}")
        else:
            assert (where, code) == ("mail", 452) and "4.3.1" in text, (i, where, code, text)
    assert accepted and outcomes.get(("mail", 452)), outcomes
    assert len(inst.queue_files("incoming")) == len(accepted)
    filler.unlink()
    inst.write_master_cf(full_cf)
    inst.reload()
    inst.wait_maildir("alice@example.test", len(accepted), timeout=30)
    inst.wait_queue_empty(timeout=20)
    time.sleep(1.5)                                       # anything late?
    assert subjects(inst) == sorted(accepted), outcomes
    print(f"free-space fill: {len(accepted)} got 250, {outcomes} -> {len(accepted)} arrived")

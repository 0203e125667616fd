"""The `mail` fixture itself: maps built, directories made, master runs."""
import os
import pathlib
import time

from conftest import IS_ROOT, proc_cmdline
from mailsuite import mail, have  # noqa: F401  pylint: disable=unused-import


def test_mail_instance_starts_and_stops(mail):
    for name in ("vmailbox", "virtual", "aliases"):
        assert (mail.etc / f"{name}.cdb").exists(), name
    res = mail.posthorn("map", "-q", "alice@example.test", f"cdb:{mail.etc}/vmailbox")
    assert res.stdout.strip() == "example.test/alice/"
    mail.start()
    for sub in ("incoming", "active", "deferred", "maildrop", "public", "private"):
        assert (mail.queue / sub).is_dir(), sub
    mail.stop()
    assert not mail.processes()


def test_qmgr_scheduling_priority(mail):
    """qmgr lowers its nice value (qmgr_scheduling_priority, -5) when it
    starts as root; without root it keeps the priority it was given."""
    mail.start()
    try:
        deadline = time.monotonic() + 5
        qmgr = []
        while not qmgr and time.monotonic() < deadline:
            qmgr = [p for p in mail.processes()
                    if proc_cmdline(p) and proc_cmdline(p)[0].endswith(b"qmgr")]
            time.sleep(0.05)
        assert len(qmgr) == 1, qmgr
        want = -5 if IS_ROOT else os.nice(0)
        deadline = time.monotonic() + 5     # qmgr sets it after exec
        while True:
            stat = pathlib.Path(f"/proc/{qmgr[0]}/stat").read_text()
            nice = int(stat[stat.rindex(")") + 2:].split()[16])
            if nice == want or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert nice == want, nice
        assert mail.count_log(r"qmgr_scheduling_priority") == 0
    finally:
        mail.stop()

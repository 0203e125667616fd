"""INSTALL's section 11 (an ISP with virtual domains), followed literally.

The blocks between "# --- begin NAME" and "# --- end NAME" in INSTALL are
taken as written; the only changes are the places that differ in a
scratch instance (/etc/posthorn, /var/mail/vhosts, the posthorn command,
the vmail account). If INSTALL says something that no longer works, this
test fails (issue 9, item 10)."""
import pathlib
import re
import subprocess
import time

import pytest

from mailsuite import mail  # noqa: F401  (the fixture)

ROOT = pathlib.Path(__file__).resolve().parent.parent


def blocks():
    text = (ROOT / "INSTALL").read_text()
    found = {}
    for m in re.finditer(r"^    # --- begin (\S+)\n(.*?)^    # --- end \1$", text, re.M | re.S):
        found[m.group(1)] = "\n".join(line[4:] for line in m.group(2).splitlines()) + "\n"
    assert set(found) >= {"main.cf", "vmailbox", "virtual", "commands"}, found.keys()
    return found


def localize(text, mail, vhosts):
    text = text.replace("/etc/posthorn", str(mail.etc)).replace("/var/mail/vhosts", str(vhosts))
    text = re.sub(r"^posthorn ", f"{mail.bin}/posthorn -c {mail.etc} ", text, flags=re.M)
    text = text.replace("virtual_mailbox_owner = vmail", f"virtual_mailbox_owner = {mail.vmail_owner}")
    return text.replace("vmail:vmail", f"{mail.vmail_owner}:")


def test_walkthrough_virtual_domains(mail):
    b = blocks()
    vhosts = mail.dir / "vhosts"
    mail.start()
    for line in localize(b["main.cf"], mail, vhosts).splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            mail.main[name.strip()] = value.strip()
    mail.set_main()
    (mail.etc / "vmailbox").write_text(localize(b["vmailbox"], mail, vhosts))
    (mail.etc / "virtual").write_text(localize(b["virtual"], mail, vhosts))
    res = subprocess.run(["bash", "-e", "-c", localize(b["commands"], mail, vhosts)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    mark = mail.log_mark()
    mail.wait_log(r"reload --", since=0)

    def box(user):
        dom, name = {"anna": ("example.net", "anna"), "ben": ("example.net", "ben"),
                     "carla": ("example.org", "carla")}[user]
        return vhosts / dom / name / "new"

    with mail.smtp() as s:
        s.sendmail("boss@remote.test", ["sales@example.net"], "Subject: order\r\n\r\nhi\r\n")
    for user in ("anna", "ben"):
        deadline = time.monotonic() + 15
        while not list(box(user).iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(list(box(user).iterdir())) == 1, (user, mail.log_text()[mark:])
    with mail.smtp() as s:
        s.ehlo()
        code, _ = s.mail("boss@remote.test", ["SIZE=2000"])
        assert code == 250
        code, text = s.rcpt("carla@example.org")
        assert code == 552 and b"5.2.2" in text, (code, text)
        code, text = s.rcpt("nobody@example.org")
        assert code == 550 and b"5.1.1" in text, (code, text)
        s.rset()
        s.mail("boss@remote.test", ["SIZE=100"])
        code, _ = s.rcpt("info@example.org")
        assert code == 250

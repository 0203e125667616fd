"""Rebuilt lookup tables take effect without a reload (issue 7, item 17).

A daemon remembers the identity of every table file it opened; before it
takes the next client the server skeleton asks whether one was rebuilt and,
if so, the process logs "table X has changed -- restarting" and exits, so
that master starts a fresh one that opens the new file (docs/tables.md).
"""
import re

from mailsuite import mail  # noqa: F401  (the fixture)


def rcpt_code(inst, rcpt):
    with inst.smtp() as s:
        s.ehlo("client.example")
        s.mail("sender@remote.example")
        code, text = s.rcpt(rcpt)
        s.rset()
    return code, text


def test_newaliases_takes_effect_without_reload(mail):
    mail.start()
    master = mail.master_pid()
    code, text = rcpt_code(mail, "newguy@mail.example.test")
    assert code == 550 and b"User unknown in local recipient table" in text
    # behind smtp-front (the default) smtpd is the "smtpd" pass service
    service = "smtpd" if re.search(r"^smtpd\s+pass\s", mail.default_master_cf(), re.M) \
        else f"127.0.0.1:{mail.smtp_port}"
    smtpd_before = set(mail.children(service))
    assert smtpd_before
    mark = mail.log_mark()
    with open(mail.etc / "aliases", "a") as f:
        f.write("newguy: alice@example.test\n")
    res = mail.sendmail(name="newaliases")
    assert res.returncode == 0, res.stderr
    # The very next session already sees the new alias: no reload, no wait.
    code, text = rcpt_code(mail, "newguy@mail.example.test")
    assert code == 250, text
    mail.wait_log(r"smtpd\[\d+\]: table cdb:\S+/aliases has changed -- restarting", since=mark)
    assert mail.count_log(r"reload", since=mark) == 0
    assert mail.master_pid() == master
    assert not smtpd_before & set(mail.children(service))   # a fresh smtpd served it
    # And the mail goes through to the alias's target.
    mail.smtp_send("sender@remote.example", ["newguy@mail.example.test"],
                   "Subject: via new alias\r\n\r\nhi\r\n")
    msgs = mail.wait_maildir("alice@example.test", 1)
    assert b"via new alias" in msgs[0]


def test_posthorn_map_virtual_table_takes_effect(mail):
    """Same for posthorn map on a virtual mailbox table, three rebuilds in a
    row: each one is seen by the next session."""
    mail.start()
    users = ["alice", "bob", "carol"]
    for i in range(3):
        addr = f"new{i}@example.test"
        assert rcpt_code(mail, addr)[0] == 550
        (mail.mailroot / "example.test" / f"new{i}").mkdir()
        users.append(f"new{i}")
        (mail.etc / "vmailbox").write_text(
            "".join(f"{u}@example.test example.test/{u}/\n" for u in users))
        mail.posthorn("map", f"cdb:{mail.etc}/vmailbox")
        code, text = rcpt_code(mail, addr)     # at once: no retry, no wait
        assert code == 250, (addr, text)
        assert rcpt_code(mail, f"new{i+1}@example.test")[0] == 550


def test_virtual_alias_rebuild_reaches_smtpd_and_cleanup(mail):
    """virtual_alias_maps is read by smtpd (is the recipient known?) and by
    cleanup (the rewrite): after posthorn map both use the new entry."""
    mail.start()
    mail.smtp_send("sender@remote.example", ["info@alias.test"], "Subject: one\r\n\r\n1\r\n")
    mail.wait_maildir("alice@example.test", 1)
    assert rcpt_code(mail, "sales@alias.test")[0] == 550
    mark = mail.log_mark()
    (mail.etc / "virtual").write_text(
        "info@alias.test bob@example.test\n"
        "sales@alias.test carol@example.test\n"
        "team@example.test alice@example.test, bob@example.test\n")
    mail.posthorn("map", f"cdb:{mail.etc}/virtual")
    mail.smtp_send("sender@remote.example", ["info@alias.test", "sales@alias.test"],
                   "Subject: two\r\n\r\n2\r\n")
    mail.wait_maildir("bob@example.test", 1)           # info@ now goes to bob
    mail.wait_maildir("carol@example.test", 1)
    assert len(mail.maildir_messages("alice@example.test")) == 1
    mail.wait_log(r"cleanup\[\d+\]: table cdb:\S+/virtual has changed -- restarting",
                  since=mark)

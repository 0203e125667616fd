"""The `mail` fixture itself: maps built, directories made, master runs."""
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

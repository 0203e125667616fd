"""posthorn queue: list (mailq format and --json), show, cat, delete,
hold, release, requeue and flush, on queue files written here in Python
from docs/queue-file.md (no daemon needed, except for flush)."""
import json
import os
import re
import socket
import subprocess
import time

import pytest

import phwire
from conftest import BUILD, as_nobody_or_skip
from phwire import queue_id, record

POSTHORN = BUILD / "bin" / "posthorn"
QUEUE_DIRS = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt", "defer",
              "bounce", "private", "public")


def queue_file(sender, rcpts, body_lines, arrival=1700000000, attrs=(), done=()):
    """A complete queue file: V T S A* R/D... M L... X E."""
    return phwire.queue_file(sender, [{"address": r, "done": r in done} for r in rcpts],
                             body_lines, arrival=f"{arrival}.000000", attrs=attrs)


@pytest.fixture
def q(instance):
    if not POSTHORN.exists():
        pytest.skip("posthorn not built")
    for d in QUEUE_DIRS:
        (instance.queue / d).mkdir(exist_ok=True)
    return instance


def ph(inst, *args, check=None):
    res = subprocess.run([str(POSTHORN), "-c", str(inst.etc), "queue", *args],
                         capture_output=True, text=True, timeout=30)
    if check is not None:
        assert res.returncode == check, (args, res.returncode, res.stdout, res.stderr)
    return res


def put(inst, subdir, qid, data, mtime=None):
    p = inst.queue / subdir / qid
    p.write_bytes(data)
    p.chmod(0o600)
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return p


NEXT_TRY = 1700003600


def sample(inst):
    """Three messages: deferred (with reasons), active, on hold."""
    ids = {
        "deferred": queue_id(1700000000, 1, 101),
        "active": queue_id(1700000100, 2, 102),
        "hold": queue_id(1700000200, 3, 103),
    }
    put(inst, "deferred", ids["deferred"],
        queue_file("alice@example.test", ["bob@remote.test", "carol@remote.test", "dan@x.test"],
                   ["Subject: first", "From: alice@example.test", "To: bob@remote.test,",
                    "\tcarol@remote.test", "", "hello"],
                   attrs=["client_address=192.0.2.1"], done=["dan@x.test"]),
        mtime=NEXT_TRY)     # qmgr's next attempt: the mtime of deferred/ID
    (inst.queue / "defer" / ids["deferred"]).write_text(
        "rcpt=bob@remote.test, dsn=4.4.1, reason=connect to remote.test: Connection refused\n"
        "rcpt=carol@remote.test, dsn=4.4.1, reason=old reason\n"
        "rcpt=carol@remote.test, dsn=4.2.0, reason=mailbox busy\n")
    put(inst, "active", ids["active"], queue_file("", ["postmaster@example.test"], ["x"]))
    put(inst, "hold", ids["hold"], queue_file("eve@example.test", ["frank@example.test"],
                                              ["Subject: held", "", "y" * 2000]))
    return ids


def test_list_empty(q):
    res = ph(q, "list", check=0)
    assert res.stdout.strip() == "Mail queue is empty"
    res = ph(q, "list", "--json", check=0)
    assert json.loads(res.stdout) == []


def test_list_mailq_format(q):
    ids = sample(q)
    out = ph(q, "list", check=0).stdout
    lines = out.splitlines()
    assert lines[0].startswith("-Queue ID-")
    # oldest first; active marked "*", hold marked "!"
    order = [l.split()[0].rstrip("*!") for l in lines if re.match(r"^[0-9A-Za-z]{11,21}", l)]
    assert order == [ids["deferred"], ids["active"], ids["hold"]]
    assert re.search(rf"^{ids['active']}\*\s+\d+ .*  MAILER-DAEMON$", out, re.M)
    assert re.search(rf"^{ids['hold']}!\s+\d+ ", out, re.M)
    # per-recipient reasons, the last line of defer/ID wins; done ones hidden
    assert "(connect to remote.test: Connection refused)\n" + " " * 53 + "bob@remote.test" in out
    assert "(mailbox busy)\n" + " " * 53 + "carol@remote.test" in out
    assert "old reason" not in out
    assert "dan@x.test" not in out
    assert re.search(r"^-- \d+ Kbytes in 3 Requests\.$", out, re.M)
    # the deferred message's next try, in parentheses under its header
    # line (the local time of its mtime); the others have none
    when = time.strftime("%a %b %e %H:%M:%S", time.localtime(NEXT_TRY))
    assert re.search(rf"^{ids['deferred']} .*\n\(next try: {when}\)\n\(connect to", out, re.M)
    assert out.count("(next try: ") == 1
    # size: content bytes with CRLF per line
    size = (len("Subject: first") + len("From: alice@example.test") + len("To: bob@remote.test,")
            + len("\tcarol@remote.test") + len("hello") + 6 * 2)
    assert re.search(rf"^{ids['deferred']}\s+{size} ", out, re.M)


def test_list_json(q):
    ids = sample(q)
    data = json.loads(ph(q, "list", "--json", check=0).stdout)
    assert [m["queue_id"] for m in data] == [ids["deferred"], ids["active"], ids["hold"]]
    d = data[0]
    assert d["queue_name"] == "deferred"
    assert d["sender"] == "alice@example.test"
    assert d["arrival_time"] == 1700000000
    assert d["next_try"] == NEXT_TRY
    assert d["recipients"] == [
        {"address": "bob@remote.test", "delay_reason": "connect to remote.test: Connection refused"},
        {"address": "carol@remote.test", "delay_reason": "mailbox busy"},
    ]
    assert data[1]["sender"] == "" and data[1]["queue_name"] == "active"
    assert data[2]["queue_name"] == "hold"
    assert "next_try" not in data[1] and "next_try" not in data[2]


def test_show_and_cat(q):
    ids = sample(q)
    out = ph(q, "show", ids["deferred"], check=0).stdout
    assert f"queue_id: {ids['deferred']}" in out
    assert "queue: deferred" in out
    assert "sender: <alice@example.test>" in out
    assert "attribute: client_address=192.0.2.1" in out
    assert "recipient: <bob@remote.test> pending (connect to remote.test: Connection refused)" in out
    assert "recipient: <dan@x.test> done" in out
    assert "  Subject: first" in out and "hello" not in out   # header only
    # a folded header line keeps its tab (it was shown as "?")
    assert "  To: bob@remote.test,\n  \tcarol@remote.test\n" in out
    assert "next_attempt:" in out

    out = ph(q, "cat", ids["deferred"], check=0).stdout
    assert "version: posthorn-queue 1" in out
    assert "sender: alice@example.test" in out
    assert "done: dan@x.test" in out
    assert "line: hello" in out
    assert out.rstrip().endswith("end:")
    out = ph(q, "cat", "-o", ids["deferred"], check=0).stdout
    assert re.match(r"^\s+0 version: posthorn-queue 1", out)


def test_unknown_and_bad_ids(q):
    sample(q)
    missing = queue_id(1700000300, 4, 999)
    for sub in ("show", "cat", "delete", "hold", "release", "requeue"):
        res = ph(q, sub, missing, check=1)
        assert f"posthorn: queue: no such message: {missing}" in res.stderr, (sub, res.stderr)
    for bad in ("../../etc/passwd", "tmp.1.2.3", "1xVWKc2aE4j/x", ""):
        res = ph(q, "show", bad, check=1)
        assert "bad queue ID" in res.stderr
    res = ph(q, "frobnicate")
    assert res.returncode == 2 and "unknown subcommand" in res.stderr
    res = ph(q, "show")
    assert res.returncode == 2


def test_hold_release_requeue_delete(q):
    ids = sample(q)
    before = time.time()
    # hold a deferred message; it cannot be held twice
    res = ph(q, "hold", ids["deferred"], check=0)
    assert f"{ids['deferred']}: placed on hold" in res.stdout
    assert (q.queue / "hold" / ids["deferred"]).exists()
    assert not (q.queue / "deferred" / ids["deferred"]).exists()
    res = ph(q, "hold", ids["deferred"], check=1)
    assert "is in hold/" in res.stderr
    # release: to deferred/, due now (mtime reset)
    res = ph(q, "release", ids["deferred"], check=0)
    assert "released from hold" in res.stdout
    p = q.queue / "deferred" / ids["deferred"]
    assert p.exists() and p.stat().st_mtime >= before - 1
    assert "cannot wake up qmgr" in res.stderr     # no qmgr running: only a warning
    # requeue: back to incoming/, defer log dropped
    res = ph(q, "requeue", ids["deferred"], check=0)
    assert (q.queue / "incoming" / ids["deferred"]).exists()
    assert not (q.queue / "defer" / ids["deferred"]).exists()
    # ALL forms
    res = ph(q, "hold", "ALL", check=0)
    assert sorted(os.listdir(q.queue / "hold")) == sorted(ids.values())
    res = ph(q, "release", "ALL", check=0)
    assert sorted(os.listdir(q.queue / "deferred")) == sorted(ids.values())
    (q.queue / "defer" / ids["hold"]).write_text("rcpt=frank@example.test, dsn=4.0.0, reason=x\n")
    res = ph(q, "delete", ids["hold"], check=0)
    assert f"{ids['hold']}: removed" in res.stdout
    assert not (q.queue / "defer" / ids["hold"]).exists()
    # temp files and foreign names are never touched by ALL
    (q.queue / "deferred" / "tmp.1.2.3").write_text("x")
    res = ph(q, "delete", "ALL", check=0)
    assert res.stdout.count(": removed") == 2
    assert os.listdir(q.queue / "deferred") == ["tmp.1.2.3"]
    assert ph(q, "list", check=0).stdout.strip() == "Mail queue is empty"


def test_in_progress_file_is_not_a_message(q):
    """A file in incoming/ that cleanup is still writing (mode 0200: named
    by its ID before its content, docs/queue.md) is not listed, and no
    command shows, moves or removes it: by ID it is refused, ALL passes
    it by. (Deleting or moving it would let cleanup acknowledge a message
    that is gone.)"""
    ids = sample(q)
    busy = queue_id(1700000400, 5, 105)
    p = put(q, "incoming", busy, queue_file("a@example.test", ["b@example.test"], ["half"])[:30])
    p.chmod(0o200)
    out = ph(q, "list", check=0).stdout
    assert busy not in out and "in 3 Requests." in out
    assert busy not in [m["queue_id"] for m in json.loads(ph(q, "list", "--json", check=0).stdout)]
    for sub in ("show", "cat", "delete", "hold"):
        res = ph(q, sub, busy, check=1)
        assert f"message {busy} is still being received" in res.stderr, (sub, res.stderr)
    for sub in ("hold", "release", "requeue", "delete"):
        ph(q, sub, "ALL", check=0)
    assert ph(q, "list", check=0).stdout.strip() == "Mail queue is empty"
    assert os.listdir(q.queue / "incoming") == [busy]
    assert oct(p.stat().st_mode & 0o777) == oct(0o200)
    assert len(ids) == 3


def test_flush_triggers_qmgr(q):
    # The request waits in the listen backlog until we accept it: no
    # thread, no race with the command.
    path = q.queue / "public" / "qmgr"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(str(path))
        srv.listen(1)
        ph(q, "flush", check=0)
        srv.settimeout(10)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(10)
            assert conn.recv(16) == b"F"


def test_flush_without_qmgr_fails(q):
    res = ph(q, "flush", check=1)
    assert "cannot wake up qmgr" in res.stderr


def test_corrupt_file_listed_with_error(q):
    qid = queue_id(1700000400, 5, 104)
    put(q, "deferred", qid, record("V", "posthorn-queue 1") + record("T", "1700000400")
        + record("S", "a@b") + record("R", "c@d") + record("M") + record("L", "x"))
    out = ph(q, "list", check=0).stdout
    assert qid in out and "no end record" in out
    res = ph(q, "cat", qid)
    assert res.returncode == 1 and "premature end of file" in res.stderr
    assert "line: x" in res.stdout


def test_listing_refuses_when_it_cannot_read_the_queue(q):
    """mailq as a normal user: never "Mail queue is empty" for a queue it
    could not read, and one clear refusal instead of a line per directory."""
    as_nobody = as_nobody_or_skip(POSTHORN)
    sample(q)
    for d in QUEUE_DIRS:
        (q.queue / d).chmod(0o700)
    for args in (["queue", "list"], ["queue", "list", "--json"]):
        res = subprocess.run(as_nobody + [str(POSTHORN), "-c", str(q.etc), *args],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 1, res.stdout + res.stderr
        assert res.stdout == ""
        assert "empty" not in res.stdout + res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot list the queue" in lines[0], res.stderr
        assert "run mailq as one of them" in lines[0]
    # the mail owner (here: root) still gets the listing
    assert "-- " in ph(q, "list", check=0).stdout

"""The mail store (lib/store, docs/mailstore.md) across processes, through
tests/bin/ph-store: readers refreshing while mail is delivered into new/
(the way local-delivery does it: tmp/, then a rename into new/), several
readers opening a mailbox full of new mail at once, expunges during
deliveries, a damaged index, the session lock. Every loop is bounded in
count and time."""
import os
import pathlib
import subprocess
import threading
import time

import pytest

from conftest import BUILD

PH_STORE = BUILD / "testbin" / "ph-store"

pytestmark = pytest.mark.skipif(not PH_STORE.exists(), reason="make test-programs first")


class Maildir:
    """A Maildir written to as local-delivery writes it."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.seq = 0
        self.lock = threading.Lock()

    def deliver(self, body):
        with self.lock:
            self.seq += 1
            seq = self.seq
        now = time.time()
        base = f"{int(now)}.M{int(now * 1e6) % 1000000:06d}P{os.getpid()}Q{seq}.test"
        data = body.encode() if isinstance(body, str) else body
        tmp = self.root / "tmp" / base
        tmp.write_bytes(data)
        os.rename(tmp, self.root / "new" / f"{base},S={len(data)}")
        return base


def run(*args, check=True, timeout=60):
    res = subprocess.run([str(PH_STORE), *map(str, args)], capture_output=True, text=True,
                         timeout=timeout)
    if check:
        assert res.returncode == 0, (args, res.returncode, res.stderr)
    return res


def fetch(path, uid):
    """The bytes of message uid (no newline translation)."""
    res = subprocess.run([str(PH_STORE), "fetch", str(path), str(uid)], capture_output=True,
                         timeout=60)
    assert res.returncode == 0, (path, uid, res.stderr)
    return res.stdout


def parse_list(out):
    """(uidvalidity, uidnext, {uid: (size, crlf, flags, name)})"""
    lines = out.splitlines()
    head = lines[0].split()
    assert head[0] == "uidvalidity" and head[2] == "uidnext" and head[4] == "count"
    msgs = {}
    for line in lines[1:]:
        uid, size, crlf, flags, name = line.split(" ", 4)
        msgs[int(uid)] = (int(size), int(crlf), flags, name)
    assert len(msgs) == int(head[5])
    return int(head[1]), int(head[3]), msgs


def key(name):
    """The unique part of a Maildir file name."""
    for i, c in enumerate(name):
        if c in ",:":
            return name[:i]
    return name


def store_list(path):
    return parse_list(run("list", path).stdout)


def test_list_fetch_and_crlf_sizes(tmp_path):
    md = Maildir(tmp_path / "box")
    bodies = ["Subject: a\n\nline\n", "Subject: b\r\n\r\ncrlf\r\n", "x" * 70000 + "\n"]
    for b in bodies:
        md.deliver(b)
    uv, nxt, msgs = store_list(md.root)
    assert sorted(msgs) == [1, 2, 3] and nxt == 4
    for uid, body in zip((1, 2, 3), bodies):
        size, crlf, flags, name = msgs[uid]
        assert size == len(body)
        assert crlf == len(body.replace("\r\n", "\n").replace("\n", "\r\n"))
        assert fetch(md.root, uid) == body.encode()
        assert (md.root / "cur" / name).exists()
    assert not list((md.root / "new").iterdir())
    # the same again from another process: nothing changes
    assert store_list(md.root) == (uv, nxt, msgs)


def test_readers_refreshing_during_deliveries(tmp_path):
    """Two readers refresh every 10 ms while 300 messages arrive: each new
    message gets a UID above every earlier one, none changes its UID, and
    all of them are there at the end, each with its own content."""
    md = Maildir(tmp_path / "box")
    for i in range(20):
        md.deliver(f"early {i}\n")
    store_list(md.root)
    watchers = [subprocess.Popen([str(PH_STORE), "watch", str(md.root), "4"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    sent = {}

    def writer(n, tag):
        for i in range(n):
            base = md.deliver(f"{tag} {i}\n")
            sent[base] = f"{tag} {i}\n"
            if i % 10 == 0:
                time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(150, t)) for t in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    outs = [w.communicate(timeout=60) for w in watchers]
    for w, (out, err) in zip(watchers, outs):
        assert w.returncode == 0, err
    uv, nxt, msgs = store_list(md.root)
    assert len(msgs) == 320
    assert sorted(msgs) == list(range(1, 321)) and nxt == 321
    by_key = {key(m[3]): uid for uid, m in msgs.items()}
    for base, body in list(sent.items())[::15]:
        assert fetch(md.root, by_key[base]) == body.encode()
    # what the watchers ended with agrees with the final state
    for out, _ in outs:
        wuv, _, wmsgs = parse_list(out)
        assert wuv == uv
        for uid, m in wmsgs.items():
            assert by_key[key(m[3])] == uid


def test_many_readers_open_new_mail_at_once(tmp_path):
    """Eight processes open a mailbox whose 400 messages are all in new/:
    the lock lets one assign the UIDs; every one sees the same UIDs."""
    md = Maildir(tmp_path / "box")
    for i in range(400):
        md.deliver(f"message {i}\n")
    procs = [subprocess.Popen([str(PH_STORE), "list", str(md.root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        uv, nxt, msgs = parse_list(out)
        results.append((uv, nxt, {uid: key(m[3]) for uid, m in msgs.items()}))
    assert all(r == results[0] for r in results)
    assert len(results[0][2]) == 400 and results[0][1] == 401


def test_expunge_during_deliveries_never_reuses_uids(tmp_path):
    md = Maildir(tmp_path / "box")
    for i in range(30):
        md.deliver(f"m {i}\n")
    _, _, msgs = store_list(md.root)
    stop = threading.Event()
    delivered = []

    def writer():
        for i in range(200):
            if stop.is_set():
                break
            delivered.append(md.deliver(f"late {i}\n"))
            time.sleep(0.002)

    t = threading.Thread(target=writer)
    t.start()
    gone = set()
    for uid in sorted(msgs)[::-3]:
        assert run("expunge", md.root, uid).stdout == "removed 1\n"
        gone.add(uid)
    t.join(timeout=60)
    stop.set()
    uv, nxt, after = store_list(md.root)
    assert not gone & set(after)
    assert len(after) == 30 - len(gone) + len(delivered)
    # the highest UID goes, the index is lost, new mail comes: no reuse
    top = max(after)
    run("expunge", md.root, top)
    (md.root / "posthorn-index").unlink()
    md.deliver("after the loss\n")
    uv2, _, final = store_list(md.root)
    assert uv2 == uv
    assert max(final) > top
    assert set(final) - {max(final)} == set(after) - {top}


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "binary"])
def test_damaged_index_rebuilt_without_losing_mail(tmp_path, damage):
    md = Maildir(tmp_path / "box")
    for i in range(50):
        md.deliver(f"m {i}\n")
    uv, nxt, msgs = store_list(md.root)
    run("flags", md.root, 7, "+SF")
    index = md.root / "posthorn-index"
    data = index.read_bytes()
    if damage == "truncate":
        index.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        index.write_bytes(data[:200] + b"!!! not an index line\n" + data[200:])
    elif damage == "empty":
        index.write_bytes(b"")
    else:
        index.write_bytes(os.urandom(len(data)))
    md.deliver("new one\n")
    res = run("list", md.root)
    assert "damaged" in res.stderr
    uv2, nxt2, after = parse_list(res.stdout)
    assert uv2 == uv
    assert {u: key(m[3]) for u, m in after.items() if u < nxt} == \
        {u: key(m[3]) for u, m in msgs.items()}
    assert sorted(after) == list(range(1, 52))
    assert after[7][2] == "FS"
    # and the rebuilt index is whole again: no warning the next time
    res = run("list", md.root)
    assert "damaged" not in res.stderr
    assert parse_list(res.stdout) == (uv2, nxt2, after)


def test_flags_seen_by_other_processes(tmp_path):
    md = Maildir(tmp_path / "box")
    md.deliver("a\n")
    md.deliver("b\n")
    run("flags", md.root, 2, "+RS")
    _, _, msgs = store_list(md.root)
    assert msgs[2][2] == "RS" and msgs[2][3].endswith(":2,RS")
    run("flags", md.root, 2, "-R")
    _, _, msgs = store_list(md.root)
    assert msgs[2][2] == "S" and msgs[1][2] == "-"


def test_session_lock_one_holder(tmp_path):
    md = Maildir(tmp_path / "box")
    md.deliver("a\n")
    holder = subprocess.Popen([str(PH_STORE), "lock", str(md.root), "pop3", "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        res = run("lock", md.root, "pop3", "0", check=False)
        assert res.returncode == 3 and res.stdout == "busy\n"
        # a reader is not kept out by a session lock
        assert len(store_list(md.root)[2]) == 1
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert run("lock", md.root, "pop3", "0").stdout == "locked\n"


def test_folders_are_separate_mailboxes(tmp_path):
    md = Maildir(tmp_path / "box")
    md.deliver("inbox\n")
    sent = Maildir(tmp_path / "box" / ".Sent")
    (sent.root / "maildirfolder").write_bytes(b"")
    sent.deliver("sent 1\n")
    sent.deliver("sent 2\n")
    out = run("list", md.root, "Sent").stdout
    _, _, msgs = parse_list(out)
    assert sorted(msgs) == [1, 2]
    assert len(store_list(md.root)[2]) == 1
    assert run("list", md.root, "../x", check=False).returncode == 1

"""local-delivery end to end: a test client plays qmgr.

Each test writes a queue file (docs/queue-file.md) into active/ of an
instance whose master.cf runs only local-delivery, connects to
private/local as qmgr does (the deliver protocol of mail_proto.h, IPC
netstring framing of docs/ipc.md) and checks the per-recipient results
and the mailboxes: virtual Maildirs (+extension, quota, unknown users),
aliases (lists, |command, /file, :include:, loops), Delivered-To loop
detection, forwarding to another host through a fake cleanup, the verify
request, and, when run as root, system users (mbox in the spool with
locks, .forward) and the uid that owns every delivered file.
"""
import grp
import os
import pathlib
import pwd
import signal
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest

import phwire
from conftest import BUILD, IS_ROOT, all_pids, mkinstance, pid_alive, proc_stat
from phwire import IpcReader, build_queue_file, connect, encode, hello

POSTHORN = BUILD / "bin" / "posthorn"
LOCAL_DELIVERY = BUILD / "libexec" / "local-delivery"
VMAIL_USER = "posthorn-vmail"
MYHOST = "mx.example.test"
VDOMAIN = "example.test"


# -- IPC framing (docs/ipc.md) -------------------------------------------------

class DeliverClient:
    """qmgr's side of the deliver protocol."""

    def __init__(self, path, timeout=30):
        self.sock, self.rd = connect(path, "deliver", timeout)

    def call(self, attrs):
        self.sock.sendall(encode(attrs))
        return self.rd.message()

    def close(self):
        self.sock.close()


# -- queue files (docs/queue-file.md) ------------------------------------------

def make_queue_file(path, sender, rcpts, content):
    """Write a queue file; return (data_offset, [rcpt_offset...])."""
    data, data_offset, offsets = build_queue_file(sender, rcpts, content.split("\n"))
    path.write_bytes(data)
    return data_offset, offsets


def queue_id(seq):
    """A valid queue ID (lib/mail/queue_id.h): seconds, microseconds, inode."""
    now = time.time()
    return phwire.queue_id(int(now), int(now * 1e6) % 1000000, 1000 + seq)


# -- the instance ----------------------------------------------------------------

def ensure_user(name, home):
    """A throwaway login user with a home directory."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--shell", "/bin/sh", "--home-dir", str(home),
                        "--create-home", name], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return pwd.getpwnam(name)


class LocalSetup:
    def __init__(self, inst):
        self.inst = inst
        self.dir = inst.dir
        self.vbase = self.dir / "vmail"
        self.spool = self.dir / "spool"
        self.out = self.dir / "out"          # commands and files write here
        self.users = []                      # throwaway system users
        self.seq = 0
        self.seq_lock = threading.Lock()
        # the users policy of every instance (tools/mkinstance.py)
        self.vmail = pwd.getpwnam(mkinstance.ensure_accounts(VMAIL_USER)[2])
        self.nobody = pwd.getpwnam("nobody") if IS_ROOT else self.vmail
        for d in (self.vbase, self.spool, self.out, inst.queue / "active",
                  inst.queue / "public"):
            d.mkdir(exist_ok=True)
        self.out.chmod(0o1777)
        if IS_ROOT:
            os.chown(self.vbase, self.vmail.pw_uid, self.vmail.pw_gid)
            os.chown(self.spool, 0, grp.getgrnam("mail").gr_gid)
            self.spool.chmod(0o2775)
        inst.set_main(
            myhostname=MYHOST,
            mydestination=f"{MYHOST}, localhost",
            virtual_mailbox_domains=VDOMAIN,
            virtual_mailbox_maps=f"cdb:{inst.etc}/vmailbox",
            virtual_mailbox_base=str(self.vbase),
            virtual_mailbox_owner=self.vmail.pw_name,
            alias_maps=f"cdb:{inst.etc}/aliases",
            mail_spool_directory=str(self.spool),
            deliver_lock_attempts="3",
        )
        self.vmailbox = {
            "alice@example.test": "example.test/alice/",
            "bob@example.test": "example.test/bob/ quota=300",
            "full@example.test": "example.test/full/ quota=1000",
            "mboxuser@example.test": "example.test/mboxuser",
            "fwd@example.test": "example.test/fwd/",
        }
        self.aliases = {
            "list": "alice@example.test, carol, bob@example.test",
            "carol": "alice@example.test",
            "cmd": f'"|cat > {self.out}/cmd.$$; echo \\"$SENDER $RECIPIENT $LOCAL $EXTENSION\\" '
                   f'> {self.out}/cmd.env; mv {self.out}/cmd.$$ {self.out}/cmd.out"',
            "file": f"{self.out}/archive",
            "inc": f":include:{self.dir}/inc.list",
            "loop1": "loop2",
            "loop2": "loop1",
            "fail": '"|echo no such mailbox here >&2; exit 67"',
            "later": '"|exit 75"',
            "ext": "someone@remote.example, alice@example.test",
            "olist": "someone@remote.example, alice@example.test",
            "owner-olist": "alice@example.test",
            "tagged+full": "alice@example.test",
            "pre": "alice+own@example.test",
        }
        (self.dir / "inc.list").write_text("# members\nalice@example.test\n")
        inst.write_master_cf("local unix - n n - - local-delivery\n")

    def build_tables(self):
        (self.inst.etc / "vmailbox").write_text(
            "".join(f"{k} {v}\n" for k, v in self.vmailbox.items()))
        (self.inst.etc / "aliases").write_text(
            "".join(f"{k}: {v}\n" for k, v in self.aliases.items()))
        for name, opts in (("vmailbox", []), ("aliases", ["-a"])):
            subprocess.run([str(POSTHORN), "-c", str(self.inst.etc), "map", *opts,
                            f"cdb:{self.inst.etc}/{name}"], check=True, capture_output=True)

    def start(self):
        self.build_tables()
        self.inst.start()
        sock = self.inst.queue / "private" / "local"
        deadline = time.monotonic() + 5
        while not sock.exists():
            assert time.monotonic() < deadline, "private/local did not appear"
            time.sleep(0.05)

    def client(self):
        return DeliverClient(self.inst.queue / "private" / "local")

    def deliver(self, rcpts, content=None, sender="sender@remote.example", client=None):
        """Queue a file with these recipients and deliver it; returns a
        list of result dicts in recipient order."""
        with self.seq_lock:                  # tests may deliver from threads
            self.seq += 1
            qid = queue_id(self.seq)
        if content is None:
            content = "From: sender@remote.example\nSubject: test\n\nFrom the start\nhello\n.\nbye"
        qfile = self.inst.queue / "active" / qid
        data_offset, offsets = make_queue_file(qfile, sender, rcpts, content)
        attrs = [("request", "deliver"), ("queue_id", qid), ("queue_file", f"active/{qid}"),
                 ("sender", sender), ("arrival_time", "1700000000"), ("dsn_envid", ""),
                 ("dsn_ret", ""), ("data_offset", str(data_offset)),
                 ("data_size", str(len(content))), ("nexthop", MYHOST)]
        for r, off in zip(rcpts, offsets):
            attrs += [("rcpt_address", r), ("rcpt_orig", r), ("rcpt_orcpt", ""),
                      ("rcpt_notify", ""), ("rcpt_offset", str(off))]
        own = client is None
        c = client or self.client()
        try:
            reply = c.call(attrs)
        finally:
            if own:
                c.close()
        # after the results: the next hop's status (deliver protocol v3),
        # no SMTP session's TLS (v5)
        assert reply[-4:] == [("dest_status", "ok"), ("dest_reason", ""), ("conn_use", "0"),
                              ("tls", "")], reply
        reply = reply[:-4]
        results = []
        for i in range(0, len(reply), 5):
            chunk = reply[i:i + 5]
            assert [k for k, _ in chunk] == ["rcpt_offset", "rcpt_status", "rcpt_dsn",
                                              "rcpt_reason", "relay"], reply
            results.append(dict(chunk))
        assert [int(r["rcpt_offset"]) for r in results] == offsets
        # the agent never marks recipients done
        assert qfile.read_bytes()[offsets[0]:offsets[0] + 1] == b"R"
        return results

    def verify(self, address, size=0):
        c = self.client()
        try:
            return dict(c.call([("request", "verify"), ("rcpt_address", address),
                                ("size", str(size))]))
        finally:
            c.close()

    def maildir(self, user, domain=VDOMAIN):
        return self.vbase / domain / user

    def messages(self, maildir):
        new = pathlib.Path(maildir) / "new"
        if not new.is_dir():
            return []
        return [p for p in sorted(new.iterdir())]

    def add_system_user(self):
        name = "pht" + uuid.uuid4().hex[:8]
        home = self.dir / "home" / name
        home.parent.mkdir(exist_ok=True)
        home.parent.chmod(0o755)
        pw = ensure_user(name, home)
        self.users.append(name)
        return pw

    def cleanup(self):
        for name in self.users:
            subprocess.run(["userdel", "--force", name], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def local(instance):
    if not LOCAL_DELIVERY.exists() or not POSTHORN.exists():
        pytest.skip("local-delivery or posthorn not built")
    setup = LocalSetup(instance)
    try:
        yield setup
    finally:
        instance.stop()
        setup.cleanup()


def owner_uid(path):
    return os.stat(path).st_uid


# -- virtual mailboxes -------------------------------------------------------------

def test_virtual_maildir_delivery(local):
    local.start()
    res = local.deliver(["alice@example.test"])
    assert res[0]["rcpt_status"] == "sent", res
    assert res[0]["rcpt_dsn"] == "2.0.0"
    assert res[0]["rcpt_reason"] == "delivered to maildir"
    assert res[0]["relay"] == "local"
    md = local.maildir("alice")
    msgs = local.messages(md)
    assert len(msgs) == 1
    assert not list((md / "tmp").iterdir()) and (md / "cur").is_dir()
    name = msgs[0].name
    assert re.fullmatch(r"\d+\.M\d{6}P\d+R[0-9a-f]{16}\.mx\.example\.test,S=\d+", name), name
    data = msgs[0].read_bytes()
    assert int(name.rsplit("S=", 1)[1]) == len(data)
    assert b"\r" not in data
    assert data.startswith(b"Return-Path: <sender@remote.example>\n"
                           b"Delivered-To: alice@example.test\n"
                           b"From: sender@remote.example\nSubject: test\n\n")
    assert data.endswith(b"\nFrom the start\nhello\n.\nbye\n")   # no quoting in Maildir
    if IS_ROOT:
        assert owner_uid(msgs[0]) == local.vmail.pw_uid
        assert owner_uid(md) == local.vmail.pw_uid
        assert os.stat(msgs[0]).st_mode & 0o777 == 0o600


def attacker_tree(local):
    """A Maildir-shaped directory outside the store, owned by the
    mailbox owner (who could plant a symlink to it)."""
    evil = local.dir / "attacker"
    for d in (evil, evil / "new", evil / "tmp", evil / "cur"):
        d.mkdir(exist_ok=True)
        if IS_ROOT:
            os.chown(d, local.vmail.pw_uid, local.vmail.pw_gid)
    return evil


def plant_symlink(local, link, target):
    """A symlink made by the mailbox owner (as root: lchown to it, since
    a root-owned symlink is the administrator's and is followed)."""
    link.symlink_to(target)
    if IS_ROOT:
        os.lchown(link, local.vmail.pw_uid, local.vmail.pw_gid)


def files_under(d):
    return sorted(str(p) for p in pathlib.Path(d).rglob("*") if not p.is_dir())


def test_maildir_new_symlink_lands_nothing_outside(local):
    """new/ replaced by a symlink: every attempt defers with the reason
    and not one copy lands in the symlink's target or stays in tmp/."""
    local.start()
    md = local.maildir("alice")
    assert local.deliver(["alice@example.test"])[0]["rcpt_status"] == "sent"
    evil = attacker_tree(local)
    (md / "new").rename(md / "new.real")
    plant_symlink(local, md / "new", evil / "new")
    for _ in range(3):
        res = local.deliver(["alice@example.test"])
        assert res[0]["rcpt_status"] == "defer", res
        assert res[0]["rcpt_dsn"] == "4.2.0", res
        assert "new: is a symbolic link" in res[0]["rcpt_reason"], res
    assert files_under(evil) == []
    assert list((md / "tmp").iterdir()) == []
    assert len(list((md / "new.real").iterdir())) == 1


def test_maildir_that_is_a_symlink_lands_nothing_outside(local):
    """The whole Maildir path a symlink: deferred, never 'sent' into the
    other tree; also when the Maildir is missing and would be created."""
    local.start()
    md = local.maildir("alice")
    md.parent.mkdir(parents=True, exist_ok=True)
    if IS_ROOT:
        os.chown(md.parent, local.vmail.pw_uid, local.vmail.pw_gid)
    evil = attacker_tree(local)
    plant_symlink(local, md, evil)
    plant_symlink(local, local.maildir("fwd"), local.dir / "attacker-new")
    for _ in range(2):
        res = local.deliver(["alice@example.test", "fwd@example.test"])
        for r in res:
            assert r["rcpt_status"] == "defer", res
            assert "is a symbolic link" in r["rcpt_reason"], res
    assert files_under(evil) == []
    assert not (local.dir / "attacker-new").exists()


SHIM_SRC = pathlib.Path(__file__).with_name("shim_maildir.c")


def load_maildir_shim(local, **env):
    """Compile tests/shim_maildir.c and have master pass LD_PRELOAD (and
    the shim's settings) to local-delivery through import_environment."""
    so = local.dir / "shim_maildir.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(SHIM_SRC), "-ldl"],
                   check=True, capture_output=True)
    so.chmod(0o755)
    items = [local.inst.main["import_environment"], f"LD_PRELOAD={so}"]
    items += [f"{k}={v}" for k, v in env.items()]
    if os.environ.get("ASAN_OPTIONS") is not None or "build-asan" in str(BUILD):
        # a sanitized build wants its runtime first; the shim comes first
        items = [i for i in " ".join(items).split() if i != "ASAN_OPTIONS"]
        items.append("ASAN_OPTIONS=" + ":".join(
            filter(None, [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"])))
    local.inst.set_main(import_environment=" ".join(items))


def test_maildir_new_fsync_eio_leaves_one_copy_per_ack(local):
    """EIO on the fsync of new/ after the move: the message is taken out
    of new/ again and deferred, so N messages acknowledged as sent leave
    exactly N files, however many attempts failed."""
    load_maildir_shim(local, SHIM_FAIL_NEW_FSYNC=3)
    local.start()
    acked = deferred = 0
    for _ in range(40):
        if acked == 6:
            break
        res = local.deliver(["alice@example.test"])[0]
        if res["rcpt_status"] == "sent":
            acked += 1
        else:
            assert res["rcpt_status"] == "defer" and res["rcpt_dsn"] == "4.3.0", res
            assert "fsync" in res["rcpt_reason"], res
            assert "Input/output error" in res["rcpt_reason"], res
            deferred += 1
    md = local.maildir("alice")
    assert acked == 6 and deferred >= 2, (acked, deferred)
    assert len(local.messages(md)) == acked
    assert list((md / "tmp").iterdir()) == []


def test_maildir_message_complete_before_it_appears_in_new(local):
    """The order that makes a Maildir delivery atomic, seen from inside
    the agent (LD_PRELOAD shim): at the moment of the move (the link of
    the unnamed O_TMPFILE file into new/) the file holds the whole
    message and was fsynced, new/ does not show it yet, and new/ is
    fsynced after the move, before the next delivery; tmp/ stays empty."""
    log = local.dir / "shimlog"
    log.mkdir()
    log.chmod(0o1777)
    load_maildir_shim(local, SHIM_LOG=log)
    local.start()
    body = "From: a@b\nSubject: big\n\n" + "".join(f"line {i:05d} " + "x" * 60 + "\n"
                                                     for i in range(3000))
    c = local.client()
    try:
        for _ in range(3):
            res = local.deliver(["alice@example.test"], content=body, client=c)
            assert res[0]["rcpt_status"] == "sent", res
    finally:
        c.close()
    msgs = local.messages(local.maildir("alice"))
    assert len(msgs) == 3
    events = (log / "events").read_text().splitlines()
    renames = [i for i, e in enumerate(events) if e.startswith("move ")]
    assert len(renames) == 3, events
    for k, i in enumerate(renames):
        f = dict(kv.split("=") for kv in events[i].split()[2:])
        assert f["how"] == "link", events[i]        # an unnamed O_TMPFILE file, linked
        name = events[i].split()[1]
        final = local.maildir("alice") / "new" / name
        assert final.exists()
        assert f["target_exists"] == "0" and int(f["new_entries"]) == k, events[i]
        assert f["synced"] == "1", events[i]                 # fsync of the file came first
        assert int(f["size"]) == final.stat().st_size       # complete at the move
        assert (log / name).read_bytes() == final.read_bytes()
        assert events[i + 1] == "fsync_new OK", events       # then new/ is synced
        assert events[i - 1].startswith("fsync_file "), events
    assert list((local.maildir("alice") / "tmp").iterdir()) == []


def test_maildir_without_o_tmpfile_uses_named_tmp_files(local):
    """A file system without O_TMPFILE (the shim makes openat fail with
    EOPNOTSUPP): local-delivery says so once and writes under tmp/ names,
    fsynced before the rename into new/; the messages arrive whole and
    tmp/ is left empty."""
    log = local.dir / "shimlog"
    log.mkdir()
    log.chmod(0o1777)
    load_maildir_shim(local, SHIM_LOG=log, SHIM_NO_TMPFILE=1)
    local.start()
    c = local.client()
    try:
        for i in range(2):
            res = local.deliver(["alice@example.test"], content=f"Subject: m{i}\n\nhi {i}\n",
                                client=c)
            assert res[0]["rcpt_status"] == "sent", res
    finally:
        c.close()
    md = local.maildir("alice")
    assert len(local.messages(md)) == 2
    events = (log / "events").read_text().splitlines()
    moves = [e for e in events if e.startswith("move ")]
    assert len(moves) == 2 and all("how=rename" in e and "synced=1" in e for e in moves), events
    assert list((md / "tmp").iterdir()) == []
    local.inst.wait_log(r"maildir: no O_TMPFILE here .*: files are written under tmp/ names")


def test_extension_and_several_recipients_on_one_connection(local):
    local.start()
    c = local.client()
    try:
        r1 = local.deliver(["alice+news@example.test", "ALICE@Example.Test"], client=c)
        r2 = local.deliver(["nosuch@example.test"], client=c)
    finally:
        c.close()
    assert [r["rcpt_status"] for r in r1] == ["sent", "sent"]
    assert r2[0]["rcpt_status"] == "bounce"
    assert r2[0]["rcpt_dsn"] == "5.1.1"
    assert "unknown user" in r2[0]["rcpt_reason"]
    msgs = [m.read_bytes() for m in local.messages(local.maildir("alice"))]
    assert len(msgs) == 2
    assert sorted(m.split(b"\n")[1] for m in msgs) == [
        b"Delivered-To: alice+news@example.test", b"Delivered-To: alice@example.test"]


def test_unknown_local_user_bounces(local):
    local.start()
    res = local.deliver([f"nosuchuser{uuid.uuid4().hex[:6]}@{MYHOST}"])
    assert res[0]["rcpt_status"] == "bounce"
    assert res[0]["rcpt_dsn"] == "5.1.1"


def test_delivered_to_loop_bounces(local):
    local.start()
    content = ("Delivered-To: someone@else.example\nDelivered-To: Alice@Example.TEST\n"
               "Subject: loop\n\nbody")
    res = local.deliver(["alice@example.test", "mboxuser@example.test"], content=content)
    assert res[0]["rcpt_status"] == "bounce", res
    assert res[0]["rcpt_dsn"] == "5.4.6"
    assert "mail forwarding loop" in res[0]["rcpt_reason"]
    assert res[1]["rcpt_status"] == "sent", res
    assert local.messages(local.maildir("alice")) == []


def test_virtual_mbox_delivery(local):
    local.start()
    local.deliver(["mboxuser@example.test"])
    res = local.deliver(["mboxuser@example.test"], content="Subject: two\n\nFrom me\n>From you")
    assert res[0]["rcpt_status"] == "sent"
    mbox = local.maildir("mboxuser")
    text = mbox.read_text()
    froms = re.findall(r"^From sender@remote\.example \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$",
                       text, re.M)
    assert len(froms) == 2
    assert "\n>From the start\n" in text and "\n>From me\n>>From you\n\n" not in text
    assert text.endswith("\n>From me\n>From you\n\n")
    assert not pathlib.Path(str(mbox) + ".lock").exists()
    if IS_ROOT:
        assert owner_uid(mbox) == local.vmail.pw_uid


# -- quota and verify ------------------------------------------------------------

def test_quota_exceeded_bounces_and_verify(local):
    local.start()
    big = "Subject: big\n\n" + ("x" * 70 + "\n") * 10
    res = local.deliver(["bob@example.test"], content=big)
    assert res[0]["rcpt_status"] == "bounce", res
    assert res[0]["rcpt_dsn"] == "5.2.2"
    assert "mailbox full" in res[0]["rcpt_reason"]
    md = local.maildir("bob")
    assert local.messages(md) == [] and list((md / "tmp").iterdir()) == []
    assert (md / "maildirsize").read_text().startswith("300S\n")
    small = local.deliver(["bob@example.test"], content="Subject: s\n\nhi")
    assert small[0]["rcpt_status"] == "sent", small

    v = local.verify("bob@example.test", 0)
    assert v["rcpt_status"] == "ok", v
    v = local.verify("bob@example.test", 5000)
    assert v == {"rcpt_status": "over_quota", "rcpt_dsn": "5.2.2",
                 "rcpt_reason": v["rcpt_reason"]} and "mailbox full" in v["rcpt_reason"]

    # a mailbox already over its quota: over_quota even for size 0
    full = local.maildir("full")
    for sub in ("", "tmp", "new", "cur"):
        (full / sub).mkdir(parents=True, exist_ok=True)
    (full / "cur" / "1700000000.M1P1.host,S=2000:2,S").write_text("x")
    if IS_ROOT:
        for p in (full.parent, full, full / "tmp", full / "new", full / "cur"):
            os.chown(p, local.vmail.pw_uid, local.vmail.pw_gid)
    assert local.verify("full@example.test", 0)["rcpt_status"] == "over_quota"
    res = local.deliver(["full@example.test"])
    assert res[0]["rcpt_dsn"] == "5.2.2"


def test_verify_request(local):
    local.start()
    assert local.verify("alice@example.test") == {
        "rcpt_status": "ok", "rcpt_dsn": "2.1.5", "rcpt_reason": "recipient ok"}
    assert local.verify("Alice+tag@example.test")["rcpt_status"] == "ok"
    v = local.verify("nosuch@example.test")
    assert v["rcpt_status"] == "unknown" and v["rcpt_dsn"] == "5.1.1"
    assert local.verify(f"list@{MYHOST}")["rcpt_status"] == "ok"
    assert local.verify(f"nosuchuser{uuid.uuid4().hex[:6]}@{MYHOST}")["rcpt_status"] == "unknown"
    assert local.verify("root@localhost")["rcpt_status"] == "ok"
    # verify and deliver share one connection
    c = local.client()
    try:
        v = dict(c.call([("request", "verify"), ("rcpt_address", "alice@example.test"),
                         ("size", "10")]))
        assert v["rcpt_status"] == "ok"
        res = local.deliver(["alice@example.test"], client=c)
        assert res[0]["rcpt_status"] == "sent"
    finally:
        c.close()


def test_protocol_errors_close_the_connection(local):
    local.start()
    c = local.client()
    try:
        c.sock.sendall(encode([("request", "frobnicate")]))
        with pytest.raises((EOFError, ConnectionResetError)):
            c.rd.message()
    finally:
        c.close()
    c = local.client()
    try:
        # a queue file outside the queue is refused, recipient deferred
        res = c.call([("request", "deliver"), ("queue_id", queue_id(1)),
                      ("queue_file", "../../etc/passwd"), ("sender", ""),
                      ("arrival_time", "0"), ("dsn_envid", ""), ("dsn_ret", ""),
                      ("data_offset", "0"), ("data_size", "0"), ("nexthop", ""),
                      ("rcpt_address", "alice@example.test"), ("rcpt_orig", ""),
                      ("rcpt_orcpt", ""), ("rcpt_notify", ""), ("rcpt_offset", "10")])
        assert dict(res)["rcpt_status"] == "defer"
    finally:
        c.close()


def test_fifo_as_queue_file_is_refused_at_once(local):
    """A FIFO where the queue file should be never blocks the agent: it
    is refused (not a regular file) and the recipient deferred."""
    local.start()
    qid = queue_id(77)
    os.mkfifo(local.inst.queue / "active" / qid, 0o600)
    c = local.client()
    c.sock.settimeout(5)
    try:
        t0 = time.monotonic()
        res = dict(c.call([("request", "deliver"), ("queue_id", qid),
                           ("queue_file", f"active/{qid}"), ("sender", ""),
                           ("arrival_time", "0"), ("dsn_envid", ""), ("dsn_ret", ""),
                           ("data_offset", "0"), ("data_size", "0"), ("nexthop", ""),
                           ("rcpt_address", "alice@example.test"), ("rcpt_orig", ""),
                           ("rcpt_orcpt", ""), ("rcpt_notify", ""), ("rcpt_offset", "10")]))
        assert time.monotonic() - t0 < 3
        assert res["rcpt_status"] == "defer" and res["rcpt_dsn"] == "4.3.0", res
        assert "not a regular file" in res["rcpt_reason"], res
        # and the connection still serves the next request
        assert local.deliver(["alice@example.test"], client=c)[0]["rcpt_status"] == "sent"
    finally:
        c.close()


# -- aliases -------------------------------------------------------------------------

def test_alias_list_with_nested_alias_and_duplicates(local):
    local.start()
    res = local.deliver([f"list@{MYHOST}"])
    assert res[0]["rcpt_status"] == "sent", res
    # list -> alice, carol (-> alice: a duplicate), bob
    alice = local.messages(local.maildir("alice"))
    bob = local.messages(local.maildir("bob"))
    assert len(alice) == 1 and len(bob) == 1
    assert b"Delivered-To: alice@example.test\n" in alice[0].read_bytes()


def test_alias_list_logs_each_final_recipient(local):
    """Postfix's shape: one line per final destination, with orig_to=,
    instead of one 'delivered ... and more' line for the list."""
    local.start()
    mark = local.inst.log_mark()
    res = local.deliver([f"list@{MYHOST}"])
    assert res[0]["rcpt_status"] == "sent", res
    assert res[0]["rcpt_reason"].startswith("delivered to 2 destinations"), res
    text = local.inst.log_text()[mark:]
    for user in ("alice", "bob"):
        assert re.search(rf": to=<{user}@example\.test>, orig_to=<list@{re.escape(MYHOST)}>, "
                         r"relay=local, .*status=sent \(delivered to maildir\)", text), text
    assert "and more" not in text


def test_alias_command_runs_with_default_privs_and_env(local):
    local.start()
    res = local.deliver([f"cmd+x@{MYHOST}"], sender="o'neil;$(reboot)@remote.example")
    assert res[0]["rcpt_status"] == "sent", res
    assert res[0]["rcpt_reason"].startswith("delivered to command: ")
    out = local.out / "cmd.out"
    data = out.read_text()
    assert data.startswith("From o'neil;$(reboot)@remote.example ")
    assert f"Delivered-To: cmd+x@{MYHOST}\n" in data
    assert "\nFrom the start\n" in data                  # commands get no quoting
    env = (local.out / "cmd.env").read_text()
    # client text arrives only in variables, never interpreted
    assert env == f"o'neil;$(reboot)@remote.example cmd+x@{MYHOST} cmd+x x\n"
    if IS_ROOT:
        assert owner_uid(out) == local.nobody.pw_uid


def test_alias_command_exit_codes(local):
    local.start()
    res = local.deliver([f"fail@{MYHOST}", f"later@{MYHOST}"])
    assert res[0]["rcpt_status"] == "bounce"
    assert res[0]["rcpt_dsn"] == "5.1.1"
    assert "EX_NOUSER" in res[0]["rcpt_reason"]
    assert "no such mailbox here" in res[0]["rcpt_reason"]
    assert res[1]["rcpt_status"] == "defer"
    assert res[1]["rcpt_dsn"] == "4.3.0"


def test_alias_file_and_include(local):
    local.start()
    res = local.deliver([f"file@{MYHOST}", f"inc@{MYHOST}"])
    assert [r["rcpt_status"] for r in res] == ["sent", "sent"], res
    archive = local.out / "archive"
    text = archive.read_text()
    assert text.startswith("From sender@remote.example ")
    assert "\n>From the start\n" in text and text.endswith("bye\n\n")
    if IS_ROOT:
        assert owner_uid(archive) == local.nobody.pw_uid
    assert len(local.messages(local.maildir("alice"))) == 1


def test_include_file_writable_by_group_or_others_defers(local):
    """An :include: file that its group or others may write is not
    obeyed (its commands would run as its owner): the same rule as for
    .forward, deferred 4.7.0."""
    local.start()
    inc = local.dir / "inc.list"
    for mode, word in ((0o664, "group"), (0o646, "others")):
        inc.chmod(mode)
        res = local.deliver([f"inc@{MYHOST}"])
        assert res[0]["rcpt_status"] == "defer", (mode, res)
        assert res[0]["rcpt_dsn"] == "4.7.0", res
        assert "writable by group or others" in res[0]["rcpt_reason"], res
    assert local.messages(local.maildir("alice")) == []
    inc.chmod(0o644)
    assert local.deliver([f"inc@{MYHOST}"])[0]["rcpt_status"] == "sent"


def fifo_refused_at_once(local, rcpt, client):
    """Deliver to rcpt, whose file target is a FIFO: bounced 5.2.0 as
    not a regular file, within seconds."""
    t0 = time.monotonic()
    res = local.deliver([rcpt], client=client)
    assert time.monotonic() - t0 < 5
    assert res[0]["rcpt_status"] == "bounce", res
    assert res[0]["rcpt_dsn"] == "5.2.0", res
    assert "not a regular file" in res[0]["rcpt_reason"], res


def test_fifo_file_target_is_refused_not_waited_on(local):
    """A /file target that is a FIFO (no reader, or a reader that never
    reads) is refused at once as not a regular file; nothing blocks."""
    fifo = local.out / "fifo"
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    local.aliases["pipe"] = str(fifo)
    local.start()
    c = local.client()
    c.sock.settimeout(10)
    try:
        fifo_refused_at_once(local, f"pipe@{MYHOST}", c)
        # with a reader that holds the FIFO open but never reads
        rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            fifo_refused_at_once(local, f"pipe@{MYHOST}", c)
        finally:
            os.close(rd)
    finally:
        c.close()


def test_alias_loop_bounces(local):
    local.start()
    res = local.deliver([f"loop1@{MYHOST}"])
    assert res[0]["rcpt_status"] == "bounce"
    assert res[0]["rcpt_dsn"] == "5.4.6"


def test_commands_and_files_can_be_disallowed(local):
    local.inst.set_main(allow_mail_to_commands="forward", allow_mail_to_files="")
    local.start()
    res = local.deliver([f"cmd@{MYHOST}", f"file@{MYHOST}"])
    assert [r["rcpt_status"] for r in res] == ["bounce", "bounce"]
    assert [r["rcpt_dsn"] for r in res] == ["5.7.1", "5.7.1"]
    assert not (local.out / "cmd.out").exists() and not (local.out / "archive").exists()


class FakeCleanup(threading.Thread):
    """Listens on public/cleanup, records one message, answers status 0."""

    def __init__(self, path):
        super().__init__(daemon=True)
        if path.exists():
            path.unlink()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        os.chmod(path, 0o666)
        self.srv.listen(5)
        self.srv.settimeout(15)
        self.records = []
        self.begin = None

    def run(self):
        conn, _ = self.srv.accept()
        conn.settimeout(10)
        conn.sendall(hello("cleanup"))
        rd = IpcReader(conn)
        self.begin = rd.message()
        while True:
            t, data = rd.record()
            self.records.append((t, data.decode()))
            if t == "E":
                break
        conn.sendall(encode([("status", "0"), ("queue_id", "1r31eq0W7E5BAN"),
                                 ("reason", "")]))
        conn.close()


def test_alias_to_remote_address_goes_through_cleanup(local):
    local.start()
    fake = FakeCleanup(local.inst.queue / "public" / "cleanup")
    fake.start()
    res = local.deliver([f"ext@{MYHOST}"])
    fake.join(15)
    assert res[0]["rcpt_status"] == "sent", res
    assert res[0]["rcpt_reason"].startswith("delivered to 2 destinations")
    assert dict(fake.begin)["origin"] == "local-delivery"
    recs = fake.records
    assert ("S", "sender@remote.example") in recs
    assert [d for t, d in recs if t == "R"] == ["someone@remote.example"]
    lines = [d for t, d in recs if t == "L"]
    assert lines[0] == f"Delivered-To: ext@{MYHOST}"
    assert lines[1:3] == ["From: sender@remote.example", "Subject: test"]
    assert [t for t, _ in recs][-2:] == ["X", "E"]
    assert len(local.messages(local.maildir("alice"))) == 1


def forward_once(local, rcpt, sender="sender@remote.example"):
    """Deliver to rcpt with a fake cleanup; (result, records of the copy)."""
    fake = FakeCleanup(local.inst.queue / "public" / "cleanup")
    fake.start()
    res = local.deliver([rcpt], sender=sender)
    fake.join(15)
    assert not fake.is_alive()
    return res[0], fake.records


def test_owner_alias_becomes_sender_of_forwarded_copies(local):
    local.start()
    res, recs = forward_once(local, f"olist@{MYHOST}")
    assert res["rcpt_status"] == "sent", res
    # bounces of the copy go to the list owner (myorigin = myhostname)
    assert [d for t, d in recs if t == "S"] == [f"owner-olist@{MYHOST}"]
    assert [d for t, d in recs if t == "R"] == ["someone@remote.example"]
    assert [d for t, d in recs if t == "L"][0] == f"Delivered-To: olist@{MYHOST}"
    # the local delivery is made as before, from the original sender
    msgs = local.messages(local.maildir("alice"))
    assert len(msgs) == 1
    assert b"Return-Path: <sender@remote.example>\n" in msgs[0].read_bytes()
    # list+ext finds the alias "olist", and so its owner
    res, recs = forward_once(local, f"olist+x@{MYHOST}")
    assert [d for t, d in recs if t == "S"] == [f"owner-olist@{MYHOST}"]
    # a bounce (null sender) stays a bounce: never a sender that bounces can reach
    res, recs = forward_once(local, f"olist@{MYHOST}", sender="")
    assert res["rcpt_status"] == "sent", res
    assert [d for t, d in recs if t == "S"] == [""]


def test_owner_alias_sender_uses_myorigin(local):
    local.inst.set_main(myorigin="lists.example.test")
    local.start()
    res, recs = forward_once(local, f"olist@{MYHOST}")
    assert res["rcpt_status"] == "sent", res
    assert [d for t, d in recs if t == "S"] == ["owner-olist@lists.example.test"]


def delivered_to(local, user):
    """The Delivered-To: values of every message in a virtual Maildir."""
    return sorted(re.search(rb"Delivered-To: (\S+)", m.read_bytes()).group(1).decode()
                  for m in local.messages(local.maildir(user)))


def test_unmatched_extension_propagates_to_alias_targets(local):
    local.start()
    res = local.deliver([f"list+x@{MYHOST}", f"tagged+full@{MYHOST}", f"pre+x@{MYHOST}",
                         f"inc+y@{MYHOST}"])
    assert [r["rcpt_status"] for r in res] == ["sent"] * 4, res
    # list+x matched "list": alice, carol (-> alice, a duplicate) and bob get +x;
    # tagged+full matched itself: nothing to add; pre -> alice+own keeps its own;
    # inc+y -> :include: file -> alice+y
    assert delivered_to(local, "alice") == ["alice+own@example.test", "alice+x@example.test",
                                            "alice+y@example.test", "alice@example.test"]
    assert delivered_to(local, "bob") == ["bob+x@example.test"]


def test_unmatched_extension_propagates_to_forwarded_copies(local):
    local.start()
    res, recs = forward_once(local, f"ext+tag@{MYHOST}")
    assert res["rcpt_status"] == "sent", res
    assert [d for t, d in recs if t == "R"] == ["someone+tag@remote.example"]
    assert [d for t, d in recs if t == "L"][0] == f"Delivered-To: ext+tag@{MYHOST}"


def test_propagation_can_be_limited(local):
    local.inst.set_main(propagate_unmatched_extensions="canonical, virtual, alias")
    local.start()
    res = local.deliver([f"carol+x@{MYHOST}", f"inc+y@{MYHOST}"])
    assert [r["rcpt_status"] for r in res] == ["sent"] * 2, res
    # alias: yes; the addresses of an :include: file: not without "include"
    assert delivered_to(local, "alice") == ["alice+x@example.test", "alice@example.test"]


def test_propagation_off(local):
    local.inst.set_main(propagate_unmatched_extensions="none")
    local.start()
    res = local.deliver([f"list+x@{MYHOST}"])
    assert res[0]["rcpt_status"] == "sent", res
    assert delivered_to(local, "alice") == ["alice@example.test"]
    assert delivered_to(local, "bob") == ["bob@example.test"]


# -- system users (root only) -------------------------------------------------------

def needs_root():
    if not IS_ROOT:
        pytest.skip("system users and privilege switching need root")


def test_system_user_mbox_in_spool(local):
    needs_root()
    pw = local.add_system_user()
    local.start()
    res = local.deliver([f"{pw.pw_name}@{MYHOST}", f"{pw.pw_name}+tag@localhost"])
    assert [r["rcpt_status"] for r in res] == ["sent", "sent"], res
    mbox = local.spool / pw.pw_name
    st = os.stat(mbox)
    assert st.st_uid == pw.pw_uid and st.st_mode & 0o777 == 0o600
    text = mbox.read_text()
    assert len(re.findall(r"^From sender@remote\.example ", text, re.M)) == 2
    assert f"Delivered-To: {pw.pw_name}@{MYHOST}\n" in text
    assert f"Delivered-To: {pw.pw_name}+tag@localhost\n" in text
    assert "\n>From the start\n" in text and text.endswith("bye\n\n")
    assert not (local.spool / (pw.pw_name + ".lock")).exists()


def test_system_user_home_maildir(local):
    needs_root()
    pw = local.add_system_user()
    local.inst.set_main(home_mailbox="Maildir/")
    local.start()
    res = local.deliver([f"{pw.pw_name}@{MYHOST}"])
    assert res[0]["rcpt_status"] == "sent", res
    md = pathlib.Path(pw.pw_dir) / "Maildir"
    msgs = local.messages(md)
    assert len(msgs) == 1
    for p in (md, md / "new", md / "cur", md / "tmp", msgs[0]):
        assert owner_uid(p) == pw.pw_uid, p


def test_system_user_forward(local):
    needs_root()
    pw = local.add_system_user()
    home = pathlib.Path(pw.pw_dir)
    fwd = home / ".forward"
    fwd.write_text(f"# forward\n\\{pw.pw_name}, alice@example.test,\n"
                   f"\"|id -u > {local.out}/fwd.uid\"\n")
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    fwd.chmod(0o644)
    local.start()
    res = local.deliver([f"{pw.pw_name}@{MYHOST}"])
    assert res[0]["rcpt_status"] == "sent", res
    assert (local.spool / pw.pw_name).exists()
    assert len(local.messages(local.maildir("alice"))) == 1
    assert (local.out / "fwd.uid").read_text().strip() == str(pw.pw_uid)
    assert owner_uid(local.out / "fwd.uid") == pw.pw_uid

    # a .forward that others may write is not obeyed: deferred
    fwd.chmod(0o666)
    res = local.deliver([f"{pw.pw_name}@{MYHOST}"])
    assert res[0]["rcpt_status"] == "defer"
    assert "writable" in res[0]["rcpt_reason"]


def test_system_user_forward_plus_extension(local):
    needs_root()
    pw = local.add_system_user()
    home = pathlib.Path(pw.pw_dir)
    fwd = home / ".forward+lists"
    fwd.write_text("alice@example.test\n")
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    local.start()
    res = local.deliver([f"{pw.pw_name}+lists@{MYHOST}", f"{pw.pw_name}+other@{MYHOST}"])
    assert [r["rcpt_status"] for r in res] == ["sent", "sent"], res
    assert len(local.messages(local.maildir("alice"))) == 1
    assert (local.spool / pw.pw_name).read_text().count("\nDelivered-To: ") == 1


def write_forward(pw, path, text, mode=0o644):
    path.parent.mkdir(exist_ok=True)
    os.chown(path.parent, pw.pw_uid, pw.pw_gid)
    path.write_text(text)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(mode)


def test_forward_extension_propagates_only_when_unmatched(local):
    needs_root()
    pw = local.add_system_user()
    home = pathlib.Path(pw.pw_dir)
    write_forward(pw, home / ".forward", "alice@example.test\n")
    write_forward(pw, home / ".forward+lists", "bob@example.test\n")
    local.start()
    res = local.deliver([f"{pw.pw_name}+x@{MYHOST}", f"{pw.pw_name}+lists@{MYHOST}"])
    assert [r["rcpt_status"] for r in res] == ["sent", "sent"], res
    # .forward answered for +x: the target gets +x; .forward+lists matched
    assert delivered_to(local, "alice") == ["alice+x@example.test"]
    assert delivered_to(local, "bob") == ["bob@example.test"]


def test_forward_path_candidates(local):
    needs_root()
    pw = local.add_system_user()
    home = pathlib.Path(pw.pw_dir)
    local.inst.set_main(forward_path="${extension?$home/.fwd/$extension}, "
                                     "$home/.forward-$domain")
    write_forward(pw, home / ".fwd" / "lists", "alice@example.test\n")
    write_forward(pw, home / f".forward-{MYHOST}", "fwd@example.test\n")
    write_forward(pw, home / ".forward", "nobody-reads-this@example.test\n")
    local.start()
    res = local.deliver([f"{pw.pw_name}+lists@{MYHOST}", f"{pw.pw_name}@{MYHOST}",
                         f"{pw.pw_name}+other@{MYHOST}", f"{pw.pw_name}+..@{MYHOST}"])
    assert [r["rcpt_status"] for r in res] == ["sent"] * 4, res
    assert delivered_to(local, "alice") == [f"alice@example.test"]
    # the second candidate for no extension, a missing ~/.fwd/other, and
    # an extension ".." that must not name ~/.fwd/.. (the element is skipped)
    assert delivered_to(local, "fwd") == ["fwd+..@example.test", "fwd+other@example.test",
                                          "fwd@example.test"]
    assert not (local.spool / pw.pw_name).exists()
    # each candidate is checked as strictly as ~/.forward: writable by others -> defer
    (home / ".fwd" / "lists").chmod(0o664)
    res = local.deliver([f"{pw.pw_name}+lists@{MYHOST}"])
    assert res[0]["rcpt_status"] == "defer", res
    assert "writable" in res[0]["rcpt_reason"]
    (home / ".fwd" / "lists").chmod(0o644)
    os.chown(home / ".fwd" / "lists", local.nobody.pw_uid, local.nobody.pw_gid)
    res = local.deliver([f"{pw.pw_name}+lists@{MYHOST}"])
    assert res[0]["rcpt_status"] == "defer", res
    assert "owned by uid" in res[0]["rcpt_reason"]


def test_stale_dotlock_is_removed(local):
    needs_root()
    pw = local.add_system_user()
    lock = local.spool / (pw.pw_name + ".lock")
    lock.write_text("12345\n")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    local.start()
    res = local.deliver([f"{pw.pw_name}@{MYHOST}"])
    assert res[0]["rcpt_status"] == "sent", res
    assert not lock.exists()
    assert "removed stale lock file" in local.inst.log_text()

    lock.write_text("12345\n")              # a fresh lock: wait, then defer
    res = local.deliver([f"{pw.pw_name}@{MYHOST}"])
    assert res[0]["rcpt_status"] == "defer"
    assert lock.exists()

    # a fresh lock of ours whose holder is gone (killed between its
    # write and its unlock) is broken at once, not after stale_lock_time
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(f"{dead.pid} {MYHOST}\n")
    t0 = time.monotonic()
    res = local.deliver([f"{pw.pw_name}@{MYHOST}"])
    assert res[0]["rcpt_status"] == "sent", res
    assert time.monotonic() - t0 < 1
    assert not lock.exists()
    assert f"of process {dead.pid}, which no longer exists" in local.inst.log_text()


# -- deadlines on processes and files a user controls (root only) ---------------------

def stopped_pids(uid):
    """Processes of uid in state T (stopped)."""
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        if st is not None and st[0] == "T" and owner == uid:
            out.append(pid)
    return out


def test_forward_to_a_fifo_does_not_block(local):
    """A user's .forward naming a FIFO the user made: refused at once
    (not a regular file), neither the worker nor the parent blocks."""
    needs_root()
    pw = local.add_system_user()
    home = pathlib.Path(pw.pw_dir)
    fifo = home / "fifo"
    os.mkfifo(fifo, 0o600)
    os.chown(fifo, pw.pw_uid, pw.pw_gid)
    write_forward(pw, home / ".forward", f"{fifo}\n")
    local.start()
    c = local.client()
    c.sock.settimeout(10)
    try:
        fifo_refused_at_once(local, f"{pw.pw_name}@{MYHOST}", c)
        assert local.deliver(["alice@example.test"], client=c)[0]["rcpt_status"] == "sent"
    finally:
        c.close()


def test_stopped_command_process_is_killed_and_deferred(local):
    """'|kill -STOP $PPID' stops the process that runs the command for
    the user. The parent gives it command_time_limit plus
    local_delivery_timeout, then kills it and defers (4.3.0); with both
    local-delivery processes (maxproc 2) stuck that way, an unrelated
    recipient is still delivered within that deadline."""
    needs_root()
    pw = local.add_system_user()
    home = pathlib.Path(pw.pw_dir)
    write_forward(pw, home / ".forward", '"|kill -STOP $PPID; cat >/dev/null"\n')
    local.inst.set_main(command_time_limit="2s", local_delivery_timeout="2s")
    local.inst.write_master_cf("local unix - n n - 2 local-delivery\n")
    local.start()
    results = {}

    def stuck(i):
        results[i] = (local.deliver([f"{pw.pw_name}@{MYHOST}"]), time.monotonic())

    t0 = time.monotonic()
    threads = [threading.Thread(target=stuck, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(stopped_pids(pw.pw_uid)) < 2:
        assert time.monotonic() < deadline, "the command processes did not stop"
        time.sleep(0.05)
    c = DeliverClient(local.inst.queue / "private" / "local", timeout=15)
    try:
        res = local.deliver(["alice@example.test"], client=c)
    finally:
        c.close()
    took = time.monotonic() - t0
    assert res[0]["rcpt_status"] == "sent", res
    assert took < 12, took
    for t in threads:
        t.join(15)
        assert not t.is_alive()
    for i in range(2):
        res, at = results[i]
        assert res[0]["rcpt_status"] == "defer", res
        assert res[0]["rcpt_dsn"] == "4.3.0", res
        assert "local_delivery_timeout" in res[0]["rcpt_reason"], res
        assert at - t0 < 12
    deadline = time.monotonic() + 5
    while stopped_pids(pw.pw_uid):
        assert time.monotonic() < deadline, "stopped processes left behind"
        time.sleep(0.1)


def test_stopped_worker_is_killed_and_deferred(local):
    """A worker runs with the user's ids, so the user can SIGSTOP it: the
    parent waits local_delivery_timeout for its answer, then kills it
    (SIGKILL works on a stopped process), defers, and the next delivery
    gets a new worker."""
    needs_root()
    local.inst.set_main(local_delivery_timeout="2s", max_idle="2s")
    local.start()
    c = local.client()
    c.sock.settimeout(15)
    try:
        assert local.deliver(["alice@example.test"], client=c)[0]["rcpt_status"] == "sent"
        (ld,) = local.inst.children("local")
        (worker,) = child_pids(ld)
        os.kill(worker, signal.SIGSTOP)
        t0 = time.monotonic()
        res = local.deliver(["alice@example.test"], client=c)
        took = time.monotonic() - t0
        assert res[0]["rcpt_status"] == "defer", res
        assert res[0]["rcpt_dsn"] == "4.3.0", res
        assert "local_delivery_timeout" in res[0]["rcpt_reason"], res
        assert 1.5 < took < 6, took
        assert not pid_alive(worker)
        assert local.deliver(["alice@example.test"], client=c)[0]["rcpt_status"] == "sent"
        assert child_pids(ld) != [worker]
        # a stopped idle worker does not block its retirement either
        (worker,) = child_pids(ld)
        os.kill(worker, signal.SIGSTOP)
    finally:
        c.close()
    # retiring it when local-delivery leaves (max_idle) does not wait
    # for the stopped worker: it is killed after a second
    deadline = time.monotonic() + 6
    for pid in (ld, worker):
        while pid_alive(pid):
            assert time.monotonic() < deadline, f"process {pid} hangs on a stopped worker"
            time.sleep(0.05)


# -- delivery workers (root only) ------------------------------------------------------

def maildir_pids(md):
    """The P<pid> of every message in a Maildir's new/, in name order."""
    return [int(re.search(r"\.M\d+P(\d+)R", p.name).group(1)) for p in local_messages(md)]


def local_messages(md):
    new = pathlib.Path(md) / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def proc_ids(pid):
    """(uids, gids, groups) from /proc/PID/status."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    field = {k: v.split() for k, v in
             (line.split(":", 1) for line in status.splitlines() if ":" in line)}
    return ([int(x) for x in field["Uid"]], [int(x) for x in field["Gid"]],
            [int(x) for x in field["Groups"]])


def child_pids(ppid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == ppid and rest[0] not in ("Z", "X"):
            out.append(int(name))
    return out


def test_worker_is_reused_and_fully_dropped(local):
    """Virtual deliveries do not fork per message: one worker process per
    user serves them all, running with vmail's ids only, holding nothing
    but stdio, its socket and the log file."""
    needs_root()
    local.start()
    c = local.client()
    try:
        for rcpt in ("alice@example.test", "alice@example.test", "bob@example.test",
                     "alice@example.test", "mboxuser@example.test"):
            res = local.deliver([rcpt], client=c)
            assert res[0]["rcpt_status"] == "sent", res
        (ld,) = local.inst.children("local")
        workers = child_pids(ld)
        assert len(workers) == 1, workers
        (worker,) = workers
        pids = maildir_pids(local.maildir("alice")) + maildir_pids(local.maildir("bob"))
        assert pids == [worker] * 4
        uids, gids, groups = proc_ids(worker)
        assert uids == [local.vmail.pw_uid] * 4 and gids == [local.vmail.pw_gid] * 4
        assert groups == []
        fds = {}
        for fd in os.listdir(f"/proc/{worker}/fd"):
            fds[int(fd)] = os.readlink(f"/proc/{worker}/fd/{fd}")
        extra = {fd: t for fd, t in fds.items() if fd > 2}
        sockets = [t for t in extra.values() if t.startswith("socket:")]
        assert len(sockets) == 1, fds
        # besides: the group commit state of the Maildirs it delivered
        # into (their .posthorn-sync and new/, the mailbox owner's own)
        boxes = {str(local.maildir(u)) for u in ("alice", "bob")}
        kept = {t for t in extra.values()
                if t.rsplit("/", 1)[0] in boxes and t.rsplit("/", 1)[1] in (".posthorn-sync", "new")}
        assert len(kept) == 4, fds
        assert all(t.startswith("socket:") or t == str(local.inst.maillog) or t in kept
                   for t in extra.values()), fds
        assert fds[0] == "/dev/null" and fds[1] == "/dev/null", fds
        # a verify that measures a mailbox (quota) uses the same worker
        assert local.verify("bob@example.test", size=10)["rcpt_status"] == "ok"
    finally:
        c.close()

    # the worker leaves with its parent
    os.kill(ld, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pathlib.Path(f"/proc/{worker}").exists() and \
            pathlib.Path(f"/proc/{worker}/stat").read_text().split(") ")[1][0] not in "ZX":
        assert time.monotonic() < deadline, "worker outlived its parent"
        time.sleep(0.05)


def test_worker_killed_during_delivery_defers(local):
    """A worker that dies in the middle of a job is never 'sent': the
    recipient defers, and the next delivery gets a new worker."""
    needs_root()
    local.inst.set_main(deliver_lock_attempts="10", deliver_lock_delay="1s")
    local.start()
    mbox = local.maildir("mboxuser")
    mbox.parent.mkdir(parents=True, exist_ok=True)
    os.chown(mbox.parent, local.vmail.pw_uid, local.vmail.pw_gid)
    lock = pathlib.Path(str(mbox) + ".lock")
    lock.write_text("1\n")                  # a fresh lock: the worker waits
    c = local.client()
    try:
        assert local.deliver(["alice@example.test"], client=c)[0]["rcpt_status"] == "sent"
        (ld,) = local.inst.children("local")
        (worker,) = child_pids(ld)
        threading.Timer(0.5, os.kill, (worker, signal.SIGKILL)).start()
        res = local.deliver(["mboxuser@example.test"], client=c)
        assert res[0]["rcpt_status"] == "defer", res
        assert res[0]["rcpt_dsn"] == "4.3.0"
        assert "killed by signal 9" in res[0]["rcpt_reason"], res
        lock.unlink()
        res = local.deliver(["mboxuser@example.test"], client=c)
        assert res[0]["rcpt_status"] == "sent", res
        assert child_pids(ld) != [worker]
        assert mbox.read_text().count("\nDelivered-To: mboxuser@example.test\n") == 1
    finally:
        c.close()

"""Durability order, seen from the system calls (issue 7, item 19a).

docs/queue.md promises: a maildrop file (or Maildir file) is fsynced, then
renamed to its final name, then its directory is fsynced, and only then is
success told (postdrop's and sendmail's exit 0, local-delivery's "sent").
cleanup's queue file goes the other way round (architecture.md decision
51): created with mode 0200 and renamed to its ID at once, then written,
made ready (fchmod 0600), fsynced, and then incoming/ is fsynced, before
cleanup's status=0 and smtpd's 250. Nothing else in the suite can tell the
order apart: a build that fsyncs the file before its fchmod, or forgets the
directory fsync when group commit is unavailable, passes every other test.
Here strace(1) watches the real processes (-f -y: every child, with the
path behind each descriptor) and the test checks the order line by line.

The fault cases inject EIO into fsync (strace -e inject=fsync:error=EIO, -P
to aim at one directory): a failed commit leaves nothing in incoming/,
active/ or deferred/ (or maildrop/), and the client is told to retry (SMTP
4xx, sendmail exits non-zero).

strace needs ptrace: the tests run as root (or where the kernel lets the
user trace the processes) and are skipped otherwise.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import IS_ROOT
from mailsuite import mail  # noqa: F401  (the fixture)

STRACE = shutil.which("strace")
TRACE = ("trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat,"
         "write,writev,sendto,sendmsg,exit_group,openat,fchmod")

pytestmark = pytest.mark.skipif(STRACE is None, reason="strace not installed "
                                "(tools/install-deps.sh installs it)")


# ---------------------------------------------------------------- strace

class Event:
    """One system call: pid, name, argument text, result, and the line
    numbers of its start and its end (they differ when strace printed it
    as <unfinished ...> / <... resumed>)."""

    def __init__(self, pid, name, args, ret, start, end):
        self.pid, self.name, self.args, self.ret = pid, name, args, ret
        self.start, self.end = start, end

    def __repr__(self):
        return f"<{self.pid} {self.name}({self.args[:100]}) = {self.ret} @{self.start}-{self.end}>"


LINE = re.compile(r"^(\d+) +(.*)$")
CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
EXITED = re.compile(r"^\+\+\+ exited with (\d+) \+\+\+$")


def parse_strace(text):
    events, pending = [], {}
    for i, line in enumerate(text.splitlines()):
        m = LINE.match(line)
        if not m:
            continue
        pid, rest = int(m[1]), m[2]
        if rest.endswith("<unfinished ...>"):
            pending[pid] = (i, rest[:-len("<unfinished ...>")].rstrip())
            continue
        start = i
        r = RESUMED.match(rest)
        if r:
            start, head = pending.pop(pid, (i, r[1] + "("))
            rest = head + r[2]
        x = EXITED.match(rest)
        if x:
            events.append(Event(pid, "+exit", "", int(x[1]), start, i))
            continue
        c = CALL.match(rest)
        if c:
            ret = c[3] if c[3] == "?" else int(c[3])
            events.append(Event(pid, c[1], c[2], ret, start, i))
    return events


class Strace:
    """strace -f attached to running processes (attach) or running a
    command (run); .events() parses what it saw."""

    def __init__(self, workdir, extra=()):
        self.out = workdir / f"strace.{time.monotonic_ns()}.out"
        self.err = workdir / f"strace.{time.monotonic_ns()}.err"
        self.base = [STRACE, "-f", "-y", "-s", "200", "-o", str(self.out), "-e", TRACE, *extra]
        self.proc = None

    def attach(self, pids, timeout=10):
        args = list(self.base)
        for p in pids:
            args += ["-p", str(p)]
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.err.read_text(errors="replace")
            if "Operation not permitted" in text:
                self.stop()
                pytest.skip(f"strace cannot attach here: {text.strip()[:200]}")
            if text.count("attached") >= len(pids):
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"strace ended: {text}")
            time.sleep(0.05)
        raise AssertionError(f"strace did not attach within {timeout}s: "
                             f"{self.err.read_text(errors='replace')}")

    def run(self, cmd, env=None, input=b"", timeout=30):
        """Run cmd under strace -f; its CompletedProcess."""
        return subprocess.run(self.base + list(cmd), env=env, input=input,
                              capture_output=True, timeout=timeout)

    def stop(self, timeout=10):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)       # detaches, the tracees go on
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def events(self):
        return parse_strace(self.out.read_text(errors="replace"))

    def dump(self, limit=120):
        lines = [l for l in self.out.read_text(errors="replace").splitlines()
                 if "/log/maillog>" not in l]
        return "\n".join(lines[-limit:])


def trace_instance(inst, extra=()):
    """strace -f on master and every child it has now (new children are
    followed through master)."""
    pids = [inst.master_pid(), *inst.children()]
    return Strace(inst.dir, extra).attach(pids)


def fd_path(args):
    """The path strace -y shows for the first descriptor argument."""
    m = re.match(r"-?\w+<([^>]*)>", args)
    return m[1] if m else ""


def first(events, pred, what, trace):
    for e in events:
        if pred(e):
            return e
    raise AssertionError(f"no {what} in the trace:\n{trace.dump()}")


def is_send(e):
    return e.name in ("write", "writev", "sendto", "sendmsg") and "socket:[" in e.args


def check_commit_order(events, trace, directory, final_name):
    """fsync(tmp file) -> rename(tmp -> final_name) -> fsync(directory), one
    after the other and all complete: returns (file fsync, rename, dir
    fsync), each as an Event."""
    ren = first(events, lambda e: e.name in ("rename", "renameat", "renameat2", "link", "linkat")
                and e.ret == 0 and final_name in e.args and directory in e.args,
                f"rename to {final_name} in {directory}", trace)
    tmp = re.findall(r'"([^"]*)"', ren.args)[0].rsplit("/", 1)[-1]
    # the file's first fsync, under either name (-y shows the name it has)
    fsync_file = [e for e in events if e.name in ("fsync", "fdatasync") and e.pid == ren.pid
                  and e.ret == 0 and (fd_path(e.args).endswith("/" + tmp)
                                      or fd_path(e.args).endswith("/" + final_name))]
    assert fsync_file, f"{tmp} was never fsynced:\n{trace.dump()}"
    assert fsync_file[0].end < ren.start, \
        f"{tmp} fsynced after its rename:\n{fsync_file[0]}\n{ren}\n{trace.dump()}"
    fsync_dir = [e for e in events if e.name == "fsync" and fd_path(e.args) == directory
                 and e.start > ren.end and e.ret == 0]
    assert fsync_dir, f"{directory} not fsynced after the rename:\n{trace.dump()}"
    return fsync_file[0], ren, fsync_dir[0]


def check_cleanup_commit_order(events, trace, directory, qid):
    """cleanup's queue file: openat(tmp, O_CREAT, 0200) -> rename(tmp ->
    qid) -> the content written under the ID -> fchmod(0600) ->
    fsync(file) -> fsync(directory); returns (rename, fchmod, file fsync,
    dir fsync), each as an Event."""
    ren = first(events, lambda e: e.name in ("rename", "renameat", "renameat2", "link", "linkat")
                and e.ret == 0 and qid in e.args and directory in e.args,
                f"rename to {qid} in {directory}", trace)
    tmp = re.findall(r'"([^"]*)"', ren.args)[0].rsplit("/", 1)[-1]
    assert tmp.startswith("tmp."), ren
    create = first(events, lambda e: e.name == "openat" and e.pid == ren.pid and f'"{tmp}"' in e.args,
                   f"the creation of {tmp}", trace)
    assert "O_CREAT" in create.args and create.args.rstrip().endswith("0200"), create
    assert create.end < ren.start
    mine = lambda e: e.pid == ren.pid and fd_path(e.args) == f"{directory}/{qid}"  # noqa: E731
    writes = [e for e in events if e.name in ("write", "writev") and mine(e)]
    assert writes, f"nothing written to {qid}:\n{trace.dump()}"
    assert writes[0].start > ren.end, f"content written before the rename:\n{trace.dump()}"
    chmod = first(events, lambda e: e.name == "fchmod" and mine(e) and e.ret == 0,
                  f"fchmod of {qid}", trace)
    assert chmod.args.endswith("0600"), chmod
    assert chmod.start > writes[-1].end, f"ready before the content:\n{trace.dump()}"
    fsync_file = first(events, lambda e: e.name in ("fsync", "fdatasync") and mine(e)
                       and e.ret == 0, f"fsync of {qid}", trace)
    assert fsync_file.start > chmod.end, \
        f"{qid} fsynced before its fchmod:\n{fsync_file}\n{chmod}\n{trace.dump()}"
    fsync_dir = [e for e in events if e.name == "fsync" and fd_path(e.args) == directory
                 and e.start > ren.end and e.ret == 0]
    assert fsync_dir, f"{directory} not fsynced after the rename:\n{trace.dump()}"
    return ren, chmod, fsync_file, fsync_dir[0]


# ---------------------------------------------------------------- cleanup

def disable_group_sync(inst):
    """Make incoming/.group-sync unusable (a directory), so that cleanup
    falls back to its own fsync of incoming/."""
    inst.posthorn("check", check=False)        # creates the queue directories
    state = inst.queue / "incoming" / ".group-sync"
    if state.exists():
        state.unlink()
    state.mkdir()


@pytest.mark.parametrize("group_sync", [True, False], ids=["group-sync", "no-group-sync"])
def test_cleanup_commits_before_250(mail, group_sync):
    if not group_sync:
        disable_group_sync(mail)
    mail.start()
    trace = trace_instance(mail)
    try:
        qid = mail.smtp_send("a@remote.test", ["alice@example.test"],
                             "Subject: order\r\n\r\nhi\r\n")
    finally:
        trace.stop()
    events = trace.events()
    incoming = str(mail.queue / "incoming")
    ren, chmod, fsync_file, fsync_dir = check_cleanup_commit_order(events, trace, incoming, qid)
    assert fsync_dir.pid == ren.pid or group_sync    # alone: nobody else can cover it
    reply = first(events, lambda e: e.pid == ren.pid and is_send(e) and qid in e.args
                  and "status" in e.args, "cleanup's reply", trace)
    assert reply.start > fsync_dir.end, \
        f"cleanup replied before incoming/ was fsynced:\n{fsync_dir}\n{reply}\n{trace.dump()}"
    smtp250 = first(events, lambda e: is_send(e) and f"250 2.0.0 Ok: queued as {qid}" in e.args,
                    "smtpd's 250", trace)
    assert smtp250.start > reply.start and smtp250.start > fsync_dir.end
    if not group_sync:
        mail.wait_log(r"cleanup\[\d+\]: warning: \S+/\.group-sync: .* -- every commit "
                      r"fsyncs incoming/ on its own")
    mail.wait_maildir("alice@example.test", 1)


def test_cleanup_commit_covered_by_another_cleanups_fsync(mail):
    """Group commit with an early arrival (group_sync_arrive at the
    rename): message A is named in incoming/ and still being received
    when message B, in another session and so another cleanup, commits.
    B's fsync of incoming/ starts after A's rename, so it covers A's
    entry: A's cleanup fsyncs its file but not the directory, and A's
    250 still comes only after an fsync of incoming/ that started after
    A's rename had ended."""
    mail.start()
    incoming = str(mail.queue / "incoming")
    trace = trace_instance(mail)
    try:
        a = mail.smtp()
        a.ehlo("client.example")
        assert a.mail("a@remote.test")[0] == 250
        assert a.rcpt("alice@example.test")[0] == 250
        code, _ = a.docmd("DATA")
        assert code == 354
        # more than smtpd's buffer: cleanup opens and names A's file now
        a.send(b"Subject: A\r\n\r\n" + b"a" * 78 + b"\r\n")
        a.send((b"x" * 998 + b"\r\n") * 300)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                not n.startswith(("tmp.", ".")) for n in os.listdir(incoming)):
            time.sleep(0.02)
        qid_b = mail.smtp_send("b@remote.test", ["alice@example.test"],
                               "Subject: B\r\n\r\nhi\r\n")
        a.send(b".\r\n")
        code, text = a.getreply()
        assert code == 250, (code, text)
        qid_a = text.decode().rsplit(" ", 1)[-1]
        a.quit()
    finally:
        trace.stop()
    events = trace.events()
    ren_a, _, fsync_a, cover = check_cleanup_commit_order(events, trace, incoming, qid_a)
    ren_b, _, _, fsync_dir_b = check_cleanup_commit_order(events, trace, incoming, qid_b)
    assert ren_a.pid != ren_b.pid, "A and B must be in different cleanup processes"
    assert cover.pid == ren_b.pid and cover.start > ren_a.end, (cover, ren_a, trace.dump())
    own = [e for e in events if e.name == "fsync" and e.pid == ren_a.pid
           and fd_path(e.args) == incoming and e.start > fsync_a.end]
    assert own == [], f"A's commit synced incoming/ although B's fsync covered it: {own}"
    smtp250 = first(events, lambda e: is_send(e) and f"250 2.0.0 Ok: queued as {qid_a}" in e.args,
                    "smtpd's 250 for A", trace)
    assert smtp250.start > cover.end and smtp250.start > fsync_a.end
    mail.wait_maildir("alice@example.test", 2)


def visible_queue(inst, subdirs=("incoming", "active", "deferred", "hold", "maildrop")):
    return {s: inst.queue_files(s) for s in subdirs if inst.queue_files(s)}


@pytest.mark.parametrize("where", ["file", "directory"])
def test_cleanup_fsync_eio_gives_4xx_and_leaves_nothing(mail, where):
    mail.start()
    incoming = str(mail.queue / "incoming")
    # file: every fsync fails (the queue file's is the first one there is);
    # directory: only the fsync of incoming/ itself.
    extra = ["-e", "inject=fsync:error=EIO"]
    if where == "directory":
        extra += ["-P", incoming]
    trace = trace_instance(mail, extra)
    try:
        with mail.smtp() as s:
            s.ehlo("client.example")
            assert s.mail("a@remote.test")[0] == 250
            assert s.rcpt("alice@example.test")[0] == 250
            code, text = s.data(b"Subject: eio\r\n\r\nhi\r\n")
    finally:
        trace.stop()
    assert 400 <= code < 500, (code, text)
    events = trace.events()
    failed = [e for e in events if e.name == "fsync" and e.ret == -1]
    assert failed and all(fd_path(e.args).startswith(incoming) for e in failed), trace.dump()
    if where == "directory":
        assert all(fd_path(e.args) == incoming for e in failed)
    else:
        # the first to fail is the queue file's, under its ID, after its
        # fchmod: the file was already ready when cleanup took it back
        qfile = failed[0]
        assert fd_path(qfile.args).startswith(incoming + "/"), trace.dump()
        name = fd_path(qfile.args).rsplit("/", 1)[-1]
        assert not name.startswith("tmp."), trace.dump()
        chmod = first(events, lambda e: e.name == "fchmod" and e.pid == qfile.pid
                      and fd_path(e.args) == fd_path(qfile.args), "the fchmod", trace)
        assert chmod.end < qfile.start
    time.sleep(0.5)                 # qmgr would have had time to see a file
    assert visible_queue(mail) == {}, visible_queue(mail)
    assert mail.maildir_messages("alice@example.test") == []
    # and the system works again without the fault
    mail.smtp_send("a@remote.test", ["alice@example.test"], "Subject: after\r\n\r\nhi\r\n")
    mail.wait_maildir("alice@example.test", 1)


# ---------------------------------------------------------------- postdrop

def sendmail_env(inst):
    env = dict(os.environ, POSTHORN_CONFIG_DIR=str(inst.etc))
    # these commands run under strace, and LeakSanitizer cannot run under
    # ptrace (make check-asan): it would abort the traced program at exit
    if env.get("ASAN_OPTIONS"):
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    return env


def test_postdrop_commits_before_exit(mail):
    mail.posthorn("check", check=False)
    trace = Strace(mail.dir)
    res = trace.run([str(mail.bin / "sendmail"), "-i", "alice@example.test"],
                    env=sendmail_env(mail), input=b"Subject: drop\n\nhi\n")
    assert res.returncode == 0, res.stderr
    events = trace.events()
    maildrop = str(mail.queue / "maildrop")
    (qid,) = mail.queue_files("maildrop")
    fsync_file, ren, fsync_dir = check_commit_order(events, trace, maildrop, qid)
    assert fsync_dir.pid == ren.pid
    exits = [e for e in events if e.name == "+exit"]
    postdrop_exit = first(exits, lambda e: e.pid == ren.pid, "postdrop's exit", trace)
    assert postdrop_exit.ret == 0 and postdrop_exit.start > fsync_dir.end
    # sendmail (the traced command: the last to exit) exits 0 after that
    assert exits[-1].pid != ren.pid and exits[-1].ret == 0
    assert exits[-1].start > postdrop_exit.end


@pytest.mark.parametrize("where", ["file", "directory"])
def test_postdrop_fsync_eio_fails_and_leaves_nothing(mail, where):
    mail.posthorn("check", check=False)
    maildrop = str(mail.queue / "maildrop")
    extra = ["-e", "inject=fsync:error=EIO"]
    if where == "directory":
        extra += ["-P", maildrop]
    trace = Strace(mail.dir, extra)
    res = trace.run([str(mail.bin / "sendmail"), "-i", "alice@example.test"],
                    env=sendmail_env(mail), input=b"Subject: drop\n\nhi\n")
    failed = [e for e in trace.events() if e.name == "fsync" and e.ret == -1]
    assert failed, trace.dump()
    if where == "directory":
        assert all(fd_path(e.args) == maildrop for e in failed)
    assert res.returncode != 0, res
    assert res.stderr, "sendmail failed without saying why"
    entries = [p.name for p in (mail.queue / "maildrop").iterdir()]
    assert entries == [], entries


# ---------------------------------------------------------------- local-delivery

def test_local_delivery_commits_before_sent(mail):
    mail.start()
    trace = trace_instance(mail)
    try:
        mail.smtp_send("a@remote.test", ["alice@example.test"], "Subject: md\r\n\r\nhi\r\n")
        mail.wait_maildir("alice@example.test", 1)
        mail.wait_queue_empty()
    finally:
        trace.stop()
    events = trace.events()
    maildir = mail.maildir("alice@example.test")
    (name,) = os.listdir(maildir / "new")
    # by path ("/new/NAME") or, as local-delivery does, relative to a
    # directory descriptor (strace -y: '<.../new>, "NAME"')
    ren = first(events, lambda e: e.name in ("rename", "renameat", "renameat2", "link", "linkat")
                and e.ret == 0 and (f"/new/{name}" in e.args or f'/new>, "{name}"' in e.args),
                "the Maildir rename", trace)
    proc = re.search(r'"/proc/self/fd/(\d+)"', ren.args)
    if proc:
        # an unnamed file (O_TMPFILE in tmp/), written, fsynced, then linked
        fd = proc.group(1)
        created = [e for e in events if e.name == "openat" and e.pid == ren.pid
                   and "O_TMPFILE" in e.args and e.ret == int(fd) and e.end < ren.start]
        assert created, f"fd {fd} is not an O_TMPFILE file:\n{trace.dump()}"
        assert "/tmp>" in created[-1].args, created[-1]
        fsync_file = first(events, lambda e: e.name in ("fsync", "fdatasync") and e.ret == 0
                           and e.pid == ren.pid and e.args.startswith(f"{fd}<")
                           and e.start > created[-1].end, "fsync of the file", trace)
    else:
        tmpname = re.findall(r'"([^"]*)"', ren.args)[0].rsplit("/", 1)[-1]
        fsync_file = first(events, lambda e: e.name in ("fsync", "fdatasync") and e.ret == 0
                           and fd_path(e.args).endswith(f"/tmp/{tmpname}"), "fsync of the file",
                           trace)
    assert fsync_file.pid == ren.pid and fsync_file.end < ren.start, trace.dump()
    fsync_new = first(events, lambda e: e.name == "fsync" and e.ret == 0 and e.pid == ren.pid
                      and fd_path(e.args) == str(maildir / "new") and e.start > ren.end,
                      "fsync of new/ after the rename", trace)
    # the result goes up only after that: worker -> local-delivery -> qmgr
    result = first(events, lambda e: is_send(e) and "delivered to maildir" in e.args,
                   "the delivery result", trace)
    assert result.start > fsync_new.end, f"{fsync_new}\n{result}\n{trace.dump()}"
    sent = first(events, lambda e: is_send(e) and "rcpt_status,4:sent" in e.args,
                 "the 'sent' to qmgr", trace)
    assert sent.start > fsync_new.end


def test_local_delivery_fsync_eio_on_new_defers_and_loses_nothing(mail):
    """The fsync of the Maildir's new/ (a group commit since decision 46)
    fails: the delivery is deferred, not reported sent, its file is taken
    out of new/ again, the message waits in deferred/; without the fault a
    queue flush delivers it, once."""
    mail.start()
    new = str(mail.maildir("alice@example.test") / "new")
    trace = trace_instance(mail, ["-e", "inject=fsync:error=EIO", "-P", new])
    try:
        mark = mail.log_mark()
        qid = mail.smtp_send("a@remote.test", ["alice@example.test"],
                             "Subject: eio new\r\n\r\nhi\r\n")
        st = mail.wait_status(qid, "alice@example.test", "deferred", since=mark)
    finally:
        trace.stop()
    assert "cannot fsync" in st["reason"] and "will retry" in st["reason"], st
    failed = [e for e in trace.events() if e.name == "fsync" and e.ret == -1]
    assert failed and all(fd_path(e.args) == new for e in failed), trace.dump()
    assert not [e for e in trace.events() if is_send(e) and "rcpt_status,4:sent" in e.args]
    assert mail.maildir_messages("alice@example.test") == []
    assert mail.queue_files("deferred") == [qid]
    mail.posthorn("queue", "flush")
    mail.wait_maildir("alice@example.test", 1)
    mail.wait_queue_empty(subdirs=("incoming", "active", "deferred"))
    assert len(mail.maildir_messages("alice@example.test")) == 1

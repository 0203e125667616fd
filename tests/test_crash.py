"""Crash test: a flood of messages while qmgr and local-delivery are
killed with SIGKILL at random moments (master restarts them), and now
and then cleanup and smtpd as well.

Every message that got 250 over SMTP must end up in exactly the Maildir of its
recipient: none lost, none misdelivered, no queue file in corrupt/.
Duplicates are allowed (at-least-once: a kill between a delivery and
its done mark repeats it); they are counted and printed. The flood is
bounded (300 messages, at most 60 s of submitting), and so is the
drain; the whole test takes well under 2 minutes.

test_crash_relay_flood does the same for the sending side: smtp-client
is killed at random while it relays a flood to Postfix's smtp-sink, and
every message accepted with 250 must reach the sink at least once."""
import os
import random
import re
import smtplib
import stat
import threading
import time

import pytest

import dnsfix
import phwire
from conftest import BUILD
from mailsuite import mail, net  # noqa: F401  (the fixtures)

MESSAGES = 300
SUBMIT_SECONDS = 60
DRAIN_SECONDS = 45
USERS = ("alice", "bob", "carol")
MARKER = re.compile(rb"^X-Crash-Marker: (\d+)\r?$", re.M)


def need(*programs):
    for p in programs:
        if not (BUILD / "libexec" / p).exists():
            pytest.skip(f"{BUILD}/libexec/{p} is not built: the crash test needs "
                        f"{', '.join(programs)}")


def message(n, rcpt):
    return (f"From: flood@remote.test\r\nTo: {rcpt}\r\nSubject: crash test {n}\r\n"
            f"X-Crash-Marker: {n}\r\n\r\nmessage {n}\r\n" + "x" * 200 + "\r\n").encode()


def relay_message(n, rcpt):
    return message(n, rcpt) + f"message {n} end\r\n".encode()


def submit_smtp(mail, jobs, accepted, lock, deadline, pace, make=message):
    """Send (n, rcpt) jobs over one SMTP session at a time; record 250s.
    pace() is a short pause between messages, so that the flood lasts a
    few seconds and the kills land in the middle of it."""
    while jobs and time.monotonic() < deadline:
        time.sleep(pace())
        with lock:
            if not jobs:
                return
            n, rcpt = jobs.pop()
        try:
            with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as s:
                s.ehlo("client.example")
                s.mail("flood@remote.test")
                code, _ = s.rcpt(rcpt)
                if code != 250:
                    continue
                code, _ = s.data(make(n, rcpt))
                if code == 250:
                    with lock:
                        accepted[n] = rcpt
        except (smtplib.SMTPException, OSError):
            pass        # not accepted: no promise was made


def kill_children(mail, service):
    killed = 0
    for pid in mail.children(service):
        try:
            os.kill(pid, 9)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def queued(mail, state):
    """Queue files of a state; without what a killed cleanup leaves in
    incoming/: a temporary file, or a queue file still in progress (mode
    0200, its owner may not read it). Neither was acknowledged, neither
    is delivered: qmgr's scan removes them after 2 x daemon_timeout."""
    def in_progress(name):
        try:
            st = os.lstat(mail.queue / state / name)
        except FileNotFoundError:
            return True             # gone meanwhile
        return stat.S_ISREG(st.st_mode) and not st.st_mode & stat.S_IRUSR
    return [f for f in mail.queue_files(state) if not f.startswith("tmp.")
            and not (state == "incoming" and in_progress(f))]


def poke_qmgr(mail, what=b"F"):
    """A wake-up request on public/qmgr: a fifo (the suite's master.cf)
    or a unix socket; a failure only means the timers do the work."""
    try:
        phwire.trigger(mail.queue / "public" / "qmgr", what, timeout=2)
    except OSError:
        pass


def drain(inst, seconds, pause):
    """Flush and wait until the queue is empty, at most seconds; what is
    left ({queue: count}). qmgr is started again by a wake-up; deferred
    mail is flushed. One look at the three directories is not atomic: a
    message that moves from deferred/ to active/ between the reads is
    seen in neither. So the queue counts as drained only when it is empty
    twice in a row, half a second apart, and the result is that last look."""
    def queue_left():
        return {d: queued(inst, d) for d in ("incoming", "active", "deferred")}

    deadline = time.monotonic() + seconds
    while True:
        poke_qmgr(inst, b"F")
        left = queue_left()
        if not any(left.values()):
            time.sleep(0.5)
            left = queue_left()
            if not any(left.values()):
                return left
        if time.monotonic() >= deadline:
            return left
        time.sleep(pause)


def test_crash_flood(mail):
    need("smtpd", "cleanup", "qmgr", "local-delivery")
    mail.set_main(minimal_backoff_time="1s", maximal_backoff_time="2s",
                  queue_run_delay="1s", qmgr_incoming_scan_delay="1s",
                  # a child killed right after its start looks like a broken
                  # command to master: keep the throttle short
                  service_throttle_time="1s")
    mail.start()
    seed = int(os.environ.get("CRASH_SEED", time.time()))
    print(f"test_crash_flood: CRASH_SEED={seed} (set it to replay this run's choices)")
    rng = random.Random(seed)
    jobs = [(n, f"{rng.choice(USERS)}@example.test") for n in range(MESSAGES)]
    accepted, lock = {}, threading.Lock()
    stop = threading.Event()
    kills = {"qmgr": 0, "local": 0, "cleanup": 0, "smtp": 0}

    def killer():
        while not stop.wait(rng.uniform(0.02, 0.25)):
            service = rng.choice(("qmgr", "local", "local", "local", "cleanup", "smtp"))
            name = f"127.0.0.1:{mail.smtp_port}" if service == "smtp" else service
            kills[service] += kill_children(mail, name)

    deadline = time.monotonic() + SUBMIT_SECONDS
    kt = threading.Thread(target=killer, daemon=True)
    kt.start()
    senders = [threading.Thread(target=submit_smtp, args=(mail, jobs, accepted, lock, deadline,
                                                        lambda: rng.uniform(0, 0.08)))
               for _ in range(6)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(SUBMIT_SECONDS + 15)
    # On a fast machine the flood may end before the killer got its minimum
    # of kills in; keep killing (bounded) while the queue still drains.
    enough_deadline = time.monotonic() + 15
    while (kills["qmgr"] < 2 or kills["local"] < 1) and time.monotonic() < enough_deadline:
        poke_qmgr(mail)                    # (re)starts qmgr, and it local-delivery
        time.sleep(0.1)
    stop.set()
    kt.join(5)
    if os.environ.get("CRASH_LOG"):        # keep the whole log for a post-mortem
        with open(os.environ["CRASH_LOG"], "w") as f:
            f.write(mail.log_text())
    assert len(accepted) >= MESSAGES * 0.8, \
        f"only {len(accepted)} of {MESSAGES} accepted; log:\n{mail.log_text()[-6000:]}"

    left = drain(mail, DRAIN_SECONDS, pause=1)
    corrupt = mail.queue_files("corrupt")

    # Count each marker in every mailbox.
    seen = {}
    for user in USERS:
        addr = f"{user}@example.test"
        for data in mail.maildir_messages(addr):
            for m in MARKER.finditer(data):
                seen.setdefault(int(m.group(1)), []).append(addr)
    lost = sorted(n for n in accepted if n not in seen)
    wrong = sorted(n for n, boxes in seen.items()
                   if n in accepted and any(b != accepted[n] for b in boxes))
    dups = {n: len(b) for n, b in seen.items() if len(b) > 1}
    print(f"\ncrash test: {len(accepted)} accepted, {sum(len(b) for b in seen.values())} "
          f"delivered, kills: qmgr {kills['qmgr']}, local-delivery {kills['local']}, "
          f"cleanup {kills['cleanup']}, smtpd {kills['smtp']}")
    print(f"crash test: {len(dups)} duplicated message(s)"
          + (": " + ", ".join(f"#{n} x{c}" for n, c in sorted(dups.items())) if dups else ""))
    assert not corrupt, f"corrupt queue files: {corrupt}"
    if any(left.values()):                  # what the log says of them
        ids = [i for files in left.values() for i in files]
        story = [line for line in mail.log_text().splitlines() if any(i in line for i in ids)]
        pytest.fail(f"queue did not drain in {DRAIN_SECONDS}s: {left}; their log lines:\n"
                    + "\n".join(story[-60:]) + "\nlast lines of the log:\n"
                    + "\n".join(mail.log_text().splitlines()[-40:]))
    assert not lost, f"LOST {len(lost)} accepted message(s): {lost[:50]}"
    assert not wrong, f"misdelivered: {wrong[:50]}"
    assert kills["qmgr"] >= 2 and kills["local"] >= 1, \
        f"too few kills to prove anything: {kills}"


# ------------------------------------------------------------- smtp-client
RELAY_MESSAGES = 150
RELAY_SUBMIT_SECONDS = 25
RELAY_DRAIN_SECONDS = 40


def test_crash_relay_flood(net):  # noqa: F811
    """smtp-client killed with SIGKILL at random (and qmgr now and then)
    while it relays a flood to Postfix's smtp-sink, found through an MX
    record: every message the sending instance accepted with 250 reaches
    the sink at least once (a kill after the sink's 250 and before the
    result reached qmgr repeats a delivery: counted, allowed), none is
    bounced, the queue drains, nothing lands in corrupt/."""
    need("smtpd", "cleanup", "qmgr", "smtp-client")
    sink = net.sink(args=["-W", ".:1:30"])     # now and then 1 s before the final 250
    net.start_dns([dnsfix.mx("sink.phtest", "mx.sink.phtest", 10),
                   dnsfix.a("mx.sink.phtest", sink.host)])
    inst = net.sender(main={"service_throttle_time": "1s", "smtp_connection_cache_time_limit": "1s"})
    inst.start()
    seed = int(os.environ.get("CRASH_SEED", time.time()))
    print(f"test_crash_relay_flood: CRASH_SEED={seed}")
    rng = random.Random(seed)
    jobs = [(n, f"u{n % 7}@sink.phtest") for n in range(RELAY_MESSAGES)]
    accepted, lock = {}, threading.Lock()
    stop = threading.Event()
    kills = {"smtp-client": 0, "qmgr": 0}

    def killer():
        while not stop.wait(rng.uniform(0.05, 0.25)):
            if rng.random() < 0.08:
                kills["qmgr"] += kill_children(inst, "qmgr")
                continue
            pids = inst.children("smtp")            # one of them, so others finish
            if pids:
                try:
                    os.kill(rng.choice(pids), 9)
                    kills["smtp-client"] += 1
                except ProcessLookupError:
                    pass

    deadline = time.monotonic() + RELAY_SUBMIT_SECONDS
    kt = threading.Thread(target=killer, daemon=True)
    kt.start()
    senders = [threading.Thread(target=submit_smtp, args=(inst, jobs, accepted, lock, deadline,
                                                        lambda: rng.uniform(0.05, 0.2),
                                                        relay_message))
               for _ in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(RELAY_SUBMIT_SECONDS + 15)
    enough_deadline = time.monotonic() + 10
    while kills["smtp-client"] < 10 and time.monotonic() < enough_deadline:
        poke_qmgr(inst)
        time.sleep(0.1)
    stop.set()
    kt.join(5)
    assert len(accepted) >= RELAY_MESSAGES * 0.8, \
        f"only {len(accepted)} of {RELAY_MESSAGES} accepted; log:\n{inst.log_text()[-6000:]}"

    left = drain(inst, RELAY_DRAIN_SECONDS, pause=0.5)

    # A dump counts only when complete: the message's last line is there
    # (smtp-sink may keep a partial dump of a transaction that broke off).
    seen = {}
    for data in sink.messages():
        for m in MARKER.finditer(data):
            n = int(m.group(1))
            if re.search(rb"^message %d end\r?$" % n, data, re.M):
                seen[n] = seen.get(n, 0) + 1
    lost = sorted(n for n in accepted if n not in seen)
    dups = {n: c for n, c in seen.items() if c > 1}
    print(f"\nrelay crash test: {len(accepted)} accepted, {sum(seen.values())} at the sink, "
          f"kills: smtp-client {kills['smtp-client']}, qmgr {kills['qmgr']}; "
          f"{len(dups)} duplicated")
    assert not inst.queue_files("corrupt"), inst.queue_files("corrupt")
    if any(left.values()):
        ids = [i for files in left.values() for i in files]
        story = [line for line in inst.log_text().splitlines() if any(i in line for i in ids)]
        pytest.fail(f"queue did not drain in {RELAY_DRAIN_SECONDS}s: {left}; their log lines:\n"
                    + "\n".join(story[-60:]))
    assert not lost, f"LOST {len(lost)} accepted message(s): {lost[:50]}"
    assert inst.count_log(r"status=bounced") == 0, \
        "\n".join(l for l in inst.log_text().splitlines() if "status=bounced" in l)[:3000]
    assert kills["smtp-client"] >= 10, f"too few kills to prove anything: {kills}"

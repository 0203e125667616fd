"""auth: the authentication service over private/auth (auth_proto.h),
the users file and `posthorn users`, `posthorn pw`, `posthorn auth test`.

Each test starts an instance whose master.cf has only the auth service,
with a users file built by `posthorn users` from hashes `posthorn pw`
made, and talks to private/auth with tests/phwire.py attribute lists:
PLAIN, LOGIN and SCRAM-SHA-256 (a client written here from RFC 5802),
the one failure answer, the growing delay and the limits, tokens
(redeemed once, bound to the service, expiring), and, as root, the
auth table's owner and mode and the auth process's uid."""
import base64
import hashlib
import hmac
import os
import pwd
import secrets
import socket
import statistics
import subprocess
import time

import pytest

from conftest import BUILD, IS_ROOT, as_nobody_or_skip, mkinstance, pid_alive
import phwire

POSTHORN = BUILD / "bin" / "posthorn"
AUTH_USER = "posthorn-auth"
MASTER_CF = "auth unix - - n - 1 auth\n"
FAIL_TEXT = "authentication failed"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def unb64(text):
    return base64.b64decode(text)


def posthorn(inst, *args, input=None, check=True):
    res = subprocess.run([str(POSTHORN), "-c", str(inst.etc), *args], input=input,
                         capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def setup_auth(inst, users, **main):
    """users: {address: (password or None for locked, scram bool)}; write
    etc/users, build it, configure and start the auth service."""
    if IS_ROOT:
        mkinstance._create_user(AUTH_USER, "posthorn authentication")  # pylint: disable=protected-access
    params = dict(auth_user_maps=f"cdb:{inst.etc}/users.auth",
                  virtual_mailbox_base=str(inst.dir / "mail"),
                  virtual_mailbox_owner=inst.mail_owner,
                  auth_password_scheme="sha512-crypt",
                  auth_failure_delay="0", auth_token_lifetime="5s")
    params.update(main)
    inst.set_main(**params)
    lines = ["# test users\n"]
    for addr, (password, scram) in users.items():
        local = addr.split("@")[0]
        if password is None:
            hashed, secret = "!", ""
        else:
            out = posthorn(inst, "pw", *(["-s"] if scram else []), input=password + "\n").stdout
            hashed, _, secret = out.strip().partition("\n")
        lines.append(f"{addr}:{hashed}:::{local}/:1M:{secret}\n")
    (inst.etc / "users").write_text("".join(lines))
    posthorn(inst, "users", f"cdb:{inst.etc}/users")
    inst.write_master_cf(MASTER_CF)
    inst.start()


class Auth:
    """One connection to private/auth."""

    def __init__(self, inst, timeout=20):
        self.sock, self.reader = phwire.connect(inst.queue / "private" / "auth", "auth",
                                                timeout=timeout)

    def call(self, pairs):
        self.sock.sendall(phwire.encode(pairs))
        return self.reader.message_dict()

    def start(self, mech, response="", service="pop3", client="127.0.0.9"):
        return self.call([("request", "auth"), ("service", service), ("mechanism", mech),
                          ("client_address", client), ("response", response)])

    def cont(self, response):
        return self.call([("request", "continue"), ("response", response)])

    def redeem(self, token, service="pop3"):
        return self.call([("request", "redeem"), ("token", token), ("service", service)])

    def plain(self, user, password, **kw):
        return self.start("PLAIN", b64(f"\0{user}\0{password}"), **kw)

    def close(self):
        self.sock.close()


def scram_login(conn, user, password, nonce=None, tamper=False, **kw):
    """A SCRAM-SHA-256 client (RFC 5802): the final reply."""
    cnonce = nonce or secrets.token_urlsafe(18)
    first_bare = f"n={user},r={cnonce}"
    r = conn.start("SCRAM-SHA-256", b64("n,," + first_bare), **kw)
    if r["status"] != "continue":
        return r
    server_first = unb64(r["challenge"]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), unb64(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    sig = hmac.new(stored, auth_msg, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    if tamper:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    r = conn.cont(b64(f"{without_proof},p={b64(proof)}"))
    if r["status"] != "continue":
        return r
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    want = "v=" + b64(hmac.new(server_key, auth_msg, "sha256").digest())
    assert unb64(r["challenge"]).decode() == want
    return conn.cont("")


USERS = {"demo@example.test": ("s3cret-pw", True), "plain@example.test": ("pl4in", False),
         "locked@example.test": (None, False)}


def test_plain_login_and_failures(instance):
    setup_auth(instance, USERS)
    a = Auth(instance)
    r = a.plain("demo@example.test", "s3cret-pw")
    assert r["status"] == "ok" and r["user"] == "demo@example.test", r
    assert len(r["token"]) == 32 and int(r["token"], 16) >= 0
    # PLAIN without an initial response: an empty challenge first
    r = a.start("PLAIN")
    assert r == {"status": "continue", "challenge": ""}
    r = a.cont(b64("\0Demo@Example.TEST\0s3cret-pw"))
    assert r["status"] == "ok" and r["user"] == "demo@example.test"
    # authzid equal to the user is fine, another one is not
    assert a.start("PLAIN", b64("demo@example.test\0demo@example.test\0s3cret-pw"))["status"] == "ok"
    fails = [a.plain("demo@example.test", "wrong"),
             a.plain("nobody@example.test", "s3cret-pw"),
             a.plain("locked@example.test", "anything"),
             a.start("PLAIN", b64("other@example.test\0demo@example.test\0s3cret-pw")),
             a.start("PLAIN", "!!notbase64")]
    for r in fails:
        assert r == {"status": "fail", "reason": FAIL_TEXT}, r
    assert a.start("CRAM-MD5")["status"] == "fail"
    assert a.cont("")["status"] == "fail"          # no exchange in progress
    a.close()
    log = instance.log_text()
    assert "unknown user" in log and "wrong password" in log and "locked or disabled" in log


def test_login_mechanism(instance):
    setup_auth(instance, USERS)
    a = Auth(instance)
    r = a.start("LOGIN")
    assert unb64(r["challenge"]) == b"Username:"
    r = a.cont(b64("plain@example.test"))
    assert unb64(r["challenge"]) == b"Password:"
    r = a.cont(b64("pl4in"))
    assert r["status"] == "ok" and r["user"] == "plain@example.test"
    # the user name as initial response
    r = a.start("LOGIN", b64("plain@example.test"))
    assert unb64(r["challenge"]) == b"Password:"
    assert a.cont(b64("nope")) == {"status": "fail", "reason": FAIL_TEXT}
    a.close()


def test_scram_sha_256(instance):
    setup_auth(instance, USERS)
    a = Auth(instance)
    r = scram_login(a, "demo@example.test", "s3cret-pw", service="imap")
    assert r["status"] == "ok" and r["user"] == "demo@example.test", r
    assert scram_login(a, "demo@example.test", "wrong") == {"status": "fail", "reason": FAIL_TEXT}
    assert scram_login(a, "demo@example.test", "s3cret-pw", tamper=True)["status"] == "fail"
    # unknown user and a user with only a crypt hash: the same exchange, the same answer
    assert scram_login(a, "nobody@example.test", "x") == {"status": "fail", "reason": FAIL_TEXT}
    assert scram_login(a, "plain@example.test", "pl4in") == {"status": "fail", "reason": FAIL_TEXT}
    # channel binding is refused
    assert a.start("SCRAM-SHA-256", b64("p=tls-unique,,n=demo@example.test,r=abc"))["status"] == "fail"
    a.close()


def test_unknown_user_and_wrong_password_take_the_same_time(instance):
    setup_auth(instance, USERS, auth_password_scheme="sha512-crypt",
               auth_client_failure_limit="1000", auth_user_failure_limit="1000")
    a = Auth(instance)
    times = {"wrong": [], "unknown": [], "locked": []}
    for _ in range(12):
        for kind, user in (("wrong", "demo@example.test"), ("unknown", "ghost@example.test"),
                           ("locked", "locked@example.test")):
            t0 = time.perf_counter()
            r = a.plain(user, "not-the-password")
            times[kind].append(time.perf_counter() - t0)
            assert r == {"status": "fail", "reason": FAIL_TEXT}
    a.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    # every path runs one crypt of the same scheme: well within 2x of each other
    assert med["unknown"] < 2 * med["wrong"] and med["wrong"] < 2 * med["unknown"], med
    assert med["locked"] < 2 * med["wrong"] and med["wrong"] < 2 * med["locked"], med


def test_growing_delay_and_limits(instance):
    setup_auth(instance, USERS, auth_failure_delay="150", auth_failure_delay_max="600",
               auth_user_failure_limit="5", auth_client_failure_limit="1000")
    a = Auth(instance)
    took = []
    for _ in range(4):
        t0 = time.monotonic()
        assert a.plain("plain@example.test", "bad")["status"] == "fail"
        took.append(time.monotonic() - t0)
    # 150, 300, 600, 600 ms (capped)
    assert 0.13 < took[0] < 0.45, took
    assert 0.28 < took[1] < 0.6, took
    assert 0.55 < took[2] < 0.95 and 0.55 < took[3] < 0.95, took
    # a success is not delayed, and the per-user count is forgotten
    t0 = time.monotonic()
    assert a.plain("plain@example.test", "pl4in")["status"] == "ok"
    assert time.monotonic() - t0 < 0.3
    # over the per-user limit: tempfail even with the right password
    for _ in range(5):
        assert a.plain("plain@example.test", "bad", client="10.0.0.%d" % _)["status"] == "fail"
    r = a.plain("plain@example.test", "pl4in", client="10.9.9.9")
    assert r["status"] == "tempfail", r
    # another user from the same client is not affected by that limit
    assert a.plain("demo@example.test", "s3cret-pw", client="10.9.9.8")["status"] == "ok"
    a.close()


def test_scram_without_a_secret_is_not_counted(instance):
    """A SCRAM attempt for an account that has no SCRAM secret can never
    succeed, so it is answered as a failure (same text, base delay) but
    not counted: clients that try SCRAM first and fall back to PLAIN
    (mutt) are not slowed down or locked out."""
    setup_auth(instance, USERS, auth_failure_delay="150", auth_failure_delay_max="2000",
               auth_client_failure_limit="3", auth_user_failure_limit="3")
    a = Auth(instance)
    for _ in range(4):
        t0 = time.monotonic()
        assert scram_login(a, "plain@example.test", "pl4in") == {"status": "fail",
                                                                "reason": FAIL_TEXT}
        assert 0.13 < time.monotonic() - t0 < 0.45      # the base delay, not growing
    assert a.plain("plain@example.test", "pl4in")["status"] == "ok"     # not over a limit
    # a wrong SCRAM proof for an account with a secret is a guess: counted
    for _ in range(3):
        assert scram_login(a, "demo@example.test", "wrong")["status"] == "fail"
    assert a.plain("demo@example.test", "s3cret-pw", client="10.1.1.1")["status"] == "tempfail"
    a.close()


def test_client_limit(instance):
    setup_auth(instance, USERS, auth_client_failure_limit="3", auth_user_failure_limit="1000")
    a = Auth(instance)
    for i in range(3):
        assert a.plain(f"u{i}@example.test", "x", client="192.0.2.7")["status"] == "fail"
    assert a.plain("demo@example.test", "s3cret-pw", client="192.0.2.7")["status"] == "tempfail"
    assert a.plain("demo@example.test", "s3cret-pw", client="192.0.2.8")["status"] == "ok"
    a.close()


def test_delayed_answer_does_not_block_others(instance):
    setup_auth(instance, USERS, auth_failure_delay="2000", auth_failure_delay_max="2000")
    slow = Auth(instance)
    slow.sock.sendall(phwire.encode([("request", "auth"), ("service", "pop3"),
                                     ("mechanism", "PLAIN"), ("client_address", "192.0.2.1"),
                                     ("response", b64("\0demo@example.test\0bad"))]))
    time.sleep(0.2)
    fast = Auth(instance)
    t0 = time.monotonic()
    assert fast.plain("demo@example.test", "s3cret-pw", client="192.0.2.2")["status"] == "ok"
    assert time.monotonic() - t0 < 1.0
    assert slow.reader.message_dict()["status"] == "fail"
    slow.close()
    fast.close()


def test_tokens(instance):
    setup_auth(instance, USERS, auth_token_lifetime="1s")
    a = Auth(instance)
    token = a.plain("demo@example.test", "s3cret-pw")["token"]
    b = Auth(instance)
    r = b.redeem(token)
    assert r == {"status": "ok", "user": "demo@example.test",
                 "mail_location": str(instance.dir / "mail" / "demo") + "/",
                 "uid": str(pwd.getpwnam(instance.mail_owner).pw_uid),
                 "gid": str(pwd.getpwnam(instance.mail_owner).pw_gid),
                 "quota": str(1 << 20)}, r
    assert b.redeem(token)["status"] == "fail"                  # replay
    token = a.plain("demo@example.test", "s3cret-pw")["token"]
    assert b.redeem(token, service="imap")["status"] == "fail"  # other service
    assert b.redeem(token)["status"] == "fail"                  # consumed by that try
    assert b.redeem("0" * 32)["status"] == "fail"              # forged
    assert b.redeem("zz")["status"] == "fail"
    token = a.plain("demo@example.test", "s3cret-pw")["token"]
    time.sleep(2.1)
    assert b.redeem(token)["status"] == "fail"                  # expired
    a.close()
    b.close()


def test_posthorn_auth_test_and_pw(instance):
    setup_auth(instance, USERS)
    ok = posthorn(instance, "auth", "test", "demo@example.test", input="s3cret-pw\n")
    assert "password ok" in ok.stdout and "secret matches" in ok.stdout
    for user, pw, text in (("demo@example.test", "bad", "wrong password"),
                           ("ghost@example.test", "x", "no such user"),
                           ("locked@example.test", "x", "locked or disabled")):
        res = posthorn(instance, "auth", "test", user, input=pw + "\n", check=False)
        assert res.returncode == 1 and text in res.stdout, res.stdout
    for scheme, prefix in (("yescrypt", "$y$"), ("sha512-crypt", "$6$"), ("bcrypt", "$2b$")):
        out = posthorn(instance, "pw", "-S", scheme, input="pw\n").stdout
        assert out.startswith(prefix) and out.count("\n") == 1, out
    assert posthorn(instance, "pw", "-S", "md5", input="x\n", check=False).returncode == 1
    # a bad users file names the line
    (instance.etc / "bad").write_text("a@b:x:1::m/::\n")
    res = posthorn(instance, "users", f"cdb:{instance.etc}/bad", check=False)
    assert res.returncode == 1 and "bad:1:" in res.stderr and "uid and gid" in res.stderr


def test_tables_mode_owner_and_confinement(instance):
    setup_auth(instance, USERS)
    # the mailbox table keeps the virtual_mailbox_maps format
    text = (instance.etc / "users.mailbox").read_text()
    assert "demo@example.test demo/ quota=1048576\n" in text
    assert "$6$" not in text and "$" not in text
    for name in ("users.auth", "users.auth.cdb"):
        st = os.stat(instance.etc / name)
        assert st.st_mode & 0o777 == 0o600, name
        if IS_ROOT:
            assert st.st_uid == pwd.getpwnam(AUTH_USER).pw_uid, name
    if not IS_ROOT:
        pytest.skip("owner, uid and EACCES checks need root")
    a = Auth(instance)                  # master starts auth on demand
    assert a.plain("demo@example.test", "s3cret-pw")["status"] == "ok"
    a.close()
    pids = [p for p in instance.children() if b"auth" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert pids, instance.children()
    with open(f"/proc/{pids[0]}/status") as f:
        uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(pwd.getpwnam(AUTH_USER).pw_uid)}, uids
    prefix = as_nobody_or_skip("/bin/cat")
    owner = pwd.getpwnam(instance.mail_owner)
    mail_prefix = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--clear-groups"]
    prefixes = [prefix, mail_prefix]
    try:                                # the login process's uid and group (pop3d-login)
        login = pwd.getpwnam(mkinstance.service_accounts()[1])
        prefixes.append(["setpriv", f"--reuid={login.pw_uid}", f"--regid={login.pw_gid}",
                         "--clear-groups"])
    except (KeyError, TypeError):
        pass
    for pre in prefixes:
        res = subprocess.run(pre + ["/bin/cat", str(instance.etc / "users.auth.cdb")],
                             capture_output=True, text=True)
        assert res.returncode != 0 and "Permission denied" in res.stderr, res


def test_exit_closes_clients_idle_between_requests(instance):
    """A reload or a changed table makes auth exit: a persistent client
    that is between requests is closed at once (a pooled login
    connection must not keep the old process); a client still waiting
    for a delayed answer gets it first."""
    setup_auth(instance, USERS, auth_failure_delay="1500", auth_failure_delay_max="1500")
    idle = Auth(instance)
    assert idle.plain("demo@example.test", "s3cret-pw")["status"] == "ok"
    [old] = instance.wait_children(1, "auth")
    slow = Auth(instance)
    slow.sock.sendall(phwire.encode([("request", "auth"), ("service", "pop3"),
                                     ("mechanism", "PLAIN"), ("client_address", "192.0.2.1"),
                                     ("response", b64("\0demo@example.test\0bad"))]))
    time.sleep(0.2)
    t0 = time.monotonic()
    instance.reload()
    idle.sock.settimeout(5)
    assert idle.sock.recv(100) == b""                  # closed, not left waiting
    assert time.monotonic() - t0 < 1.2
    assert slow.reader.message_dict()["status"] == "fail"  # the delayed answer came
    deadline = time.monotonic() + 5
    while pid_alive(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(old)
    slow.close()
    idle.close()
    # a rebuilt table is noticed after a request, without a new connection
    a = Auth(instance)
    assert a.plain("demo@example.test", "s3cret-pw")["status"] == "ok"
    [pid] = instance.wait_children(1, "auth")
    time.sleep(1.1)
    posthorn(instance, "users", f"cdb:{instance.etc}/users")
    assert a.plain("demo@example.test", "s3cret-pw")["status"] == "ok"
    a.sock.settimeout(5)
    assert a.sock.recv(100) == b""
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
    a.close()


def _auth_pid(inst):
    pids = [p for p in inst.children() if b"auth" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert len(pids) == 1, pids
    return pids[0]


def _maps_nettle(pid):
    with open(f"/proc/{pid}/maps") as f:
        return [l.split()[-1] for l in f if "libnettle" in l]


def _pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return int(next(l for l in f if l.startswith("Pss:")).split()[1])


def test_nettle_is_loaded_only_for_scram(instance):
    """libnettle is dlopen(3)ed by the first SCRAM exchange: PLAIN with a
    crypt hash and a token redeem (constant-time compare) never map it."""
    setup_auth(instance, USERS)
    a = Auth(instance)
    r = a.plain("plain@example.test", "pl4in")
    assert r["status"] == "ok", r
    pid = _auth_pid(instance)
    assert a.redeem(r["token"])["status"] == "ok"
    assert a.plain("plain@example.test", "wrong")["status"] == "fail"
    assert _maps_nettle(pid) == [], _maps_nettle(pid)
    print(f"auth PSS after PLAIN: {_pss_kib(pid)} KiB")
    assert scram_login(a, "demo@example.test", "s3cret-pw")["status"] == "ok"
    assert any("libnettle.so.8" in m for m in _maps_nettle(pid)), _maps_nettle(pid)
    print(f"auth PSS after SCRAM: {_pss_kib(pid)} KiB")
    assert _auth_pid(instance) == pid
    a.close()


def test_chrooted_auth_loads_nettle_at_start(instance):
    """chroot y: the library would not be found after the chroot, so auth
    loads it in pre_init, and SCRAM works."""
    if not IS_ROOT:
        pytest.skip("chroot needs root")
    setup_auth(instance, USERS)
    instance.stop()
    instance.write_master_cf("auth unix - - y - 1 auth\n")
    instance.start()
    a = Auth(instance)
    assert a.plain("plain@example.test", "pl4in")["status"] == "ok"
    pid = _auth_pid(instance)
    assert os.readlink(f"/proc/{pid}/root") == str(instance.queue)
    assert any("libnettle.so.8" in m for m in _maps_nettle(pid))
    assert scram_login(a, "demo@example.test", "s3cret-pw")["status"] == "ok"
    a.close()


def _heap_rss_kib(pid):
    with open(f"/proc/{pid}/smaps") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.endswith("[heap]"):
            return int(next(l for l in lines[i + 1:] if l.startswith("Rss:")).split()[1])
    return 0


@pytest.mark.skipif(bool(os.environ.get("POSTHORN_SANITIZED")),
                    reason="ASan's allocator replaces glibc's: its heap is not what is measured")
def test_heap_given_back_after_a_burst_of_clients(instance):
    """The MULTI skeleton trims the heap (malloc_trim) a second after
    clients leave: a burst of connections, each with its stream buffers,
    does not stay resident below a client that stays (the hole it leaves
    is not at the top of the heap, where free() alone would give it
    back)."""
    setup_auth(instance, USERS)
    burst = [Auth(instance) for _ in range(60)]
    for a in burst:
        assert a.redeem("0" * 32)["status"] != "ok"
    keeper = Auth(instance)
    assert keeper.redeem("1" * 32)["status"] != "ok"
    pid = _auth_pid(instance)
    peak = _heap_rss_kib(pid)
    for a in burst:
        a.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _heap_rss_kib(pid) > peak / 2:
        time.sleep(0.1)
    after = _heap_rss_kib(pid)
    print(f"auth heap: {peak} KiB with 61 clients, {after} KiB after 60 left")
    assert peak >= 400, peak
    assert after <= peak / 2, (peak, after)
    assert keeper.redeem("2" * 32)["status"] != "ok"
    keeper.close()

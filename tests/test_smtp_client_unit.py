"""smtp-client alone: the agent run with -S (one qmgr conversation on a
socket pair), a queue file written by the test, and a scripted SMTP peer
on 127.0.0.1. Covers what the instance scenarios of test_smtp_client.py
do not reach easily: verify refusals, greeting failures and the dead
address memory, the HELO fall-back in lock-step, the connection cache
(reuse, time limit, peer close, another next hop), a malformed next hop
and a long recipient list."""

import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import phwire  # noqa: E402  pylint: disable=wrong-import-position

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("POSTHORN_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
AGENT = BUILD / "libexec" / "smtp-client"

pytestmark = pytest.mark.skipif(not AGENT.exists(), reason="smtp-client is not built")


class Conn:
    """One accepted SMTP connection, read line by line (10 s each)."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)
        self.buf = b""
        self.log = []

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.log.append(line.decode("latin-1"))
        return self.log[-1]

    def pending(self):
        """True if more input is buffered (the client pipelined)."""
        return bool(self.buf)


class Peer:
    """A listener on 127.0.0.1 running handler(conn) per connection."""

    def __init__(self, handler):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.handler = handler
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                sock, _ = self.ls.accept()
            except OSError:
                return
            conn = Conn(sock)
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handler(conn)
        except (EOFError, OSError):
            pass
        finally:
            conn.sock.close()

    def close(self):
        self.ls.close()


def smtp_server(ext=("PIPELINING", "ENHANCEDSTATUSCODES"), greeting="220 peer ESMTP",
                ehlo_ok=True, lockstep_check=None):
    """A well-behaved server; lockstep_check (a list) gets True appended
    whenever a command arrived with another one already buffered."""
    def handler(c):
        c.send(greeting)
        if not greeting.startswith("220"):
            c.line()
            return
        while True:
            line = c.line()
            if lockstep_check is not None:
                lockstep_check.append(c.pending())
            cmd = line.upper()
            if cmd.startswith("EHLO"):
                if not ehlo_ok:
                    c.send("502 5.5.1 EHLO not here")
                    continue
                lines = ["peer.example"] + list(ext)
                for i, x in enumerate(lines):
                    c.send(("250 " if i == len(lines) - 1 else "250-") + x)
            elif cmd.startswith("HELO"):
                c.send("250 peer.example")
            elif cmd.startswith("MAIL") or cmd == "RSET":
                c.send("250 2.0.0 Ok")
            elif cmd.startswith("RCPT"):
                c.send("550 5.1.1 unknown" if "bad@" in line else "250 2.1.5 Ok")
            elif cmd == "DATA":
                c.send("354 go ahead")
                while c.line() != ".":
                    pass
                c.send("250 2.0.0 Ok: queued")
            elif cmd == "QUIT":
                c.send("221 2.0.0 Bye")
                return
            else:
                c.send("502 5.5.2 what")
    return handler


class Agent:
    """smtp-client -S with a queue directory and main.cf of its own."""

    def __init__(self, tmp_path, extra=""):
        self.etc = tmp_path / "etc"
        self.queue = tmp_path / "queue"
        self.etc.mkdir(parents=True)
        (self.queue / "active").mkdir(parents=True)
        (self.etc / "main.cf").write_text(
            f"queue_directory = {self.queue}\nmyhostname = client.example\n"
            "smtp_connect_timeout = 5s\nsmtp_greeting_timeout = 5s\n" + extra)
        self.sock, theirs = socket.socketpair()
        self.sock.settimeout(30)
        self.proc = subprocess.Popen([str(AGENT), "-S", "-c", str(self.etc)],
                                     stdin=theirs, stdout=theirs, stderr=subprocess.PIPE)
        theirs.close()
        self.reader = phwire.IpcReader(self.sock)
        assert self.reader.message_dict()["proto"] == "deliver"

    def message(self, rcpts, lines=("Subject: test", "", "body")):
        data, doff, offs = phwire.build_queue_file("s@client.example", rcpts, list(lines))
        qid = phwire.write_queue_file(self.queue / "active", data)
        return {"qid": qid, "doff": doff, "offs": offs, "size": len(data), "rcpts": rcpts}

    def deliver(self, msg, nexthop):
        """The reply: ([{status, dsn, reason, relay}], {dest_status, ...})."""
        pairs = [("request", "deliver"), ("queue_id", msg["qid"]),
                 ("queue_file", "active/" + msg["qid"]), ("sender", "s@client.example"),
                 ("arrival_time", "1700000000"), ("dsn_envid", ""), ("dsn_ret", ""),
                 ("data_offset", msg["doff"]), ("data_size", msg["size"]), ("nexthop", nexthop)]
        for addr, off in zip(msg["rcpts"], msg["offs"]):
            pairs += [("rcpt_address", addr), ("rcpt_orig", ""), ("rcpt_orcpt", ""),
                      ("rcpt_notify", ""), ("rcpt_offset", off)]
        self.sock.sendall(phwire.encode(pairs))
        results, status = [], {}
        for name, value in self.reader.message():
            if name == "rcpt_offset":
                results.append({})
            elif name.startswith("rcpt_") or name == "relay":
                results[-1][name.replace("rcpt_", "")] = value
            else:
                status[name] = value
        return results, status

    def close(self):
        self.sock.close()
        self.proc.wait(timeout=30)
        return self.proc.stderr.read().decode(errors="replace")


@pytest.fixture
def agent(tmp_path):
    agents = []

    def make(extra=""):
        a = Agent(tmp_path / str(len(agents)), extra)
        agents.append(a)
        return a
    yield make
    for a in agents:
        if a.proc.poll() is None:
            a.close()


def test_verify_is_refused_with_a_deferral(agent):
    a = agent()
    a.sock.sendall(phwire.encode([("request", "verify"), ("rcpt_address", "x@example.com"),
                                  ("size", "10")]))
    reply = a.reader.message_dict()
    assert reply["rcpt_status"] == "defer" and reply["rcpt_dsn"] == "4.3.0"
    assert "does not verify" in reply["rcpt_reason"]


def test_delivery_and_reply_attributes(agent):
    peer = Peer(smtp_server())
    a = agent()
    msg = a.message(["good@dest.example", "bad@dest.example"])
    results, status = a.deliver(msg, f"[127.0.0.1]:{peer.port}")
    assert [r["status"] for r in results] == ["relayed", "bounce"]
    assert results[0]["reason"] == "250 2.0.0 Ok: queued"
    assert results[1]["reason"] == ("host 127.0.0.1[127.0.0.1] said: 550 5.1.1 unknown "
                                    "(in reply to RCPT TO command)")
    assert results[0]["relay"] == f"127.0.0.1[127.0.0.1]:{peer.port}"
    assert status == {"dest_status": "ok", "dest_reason": "", "conn_use": "1", "tls": "none"}


def test_success_to_a_dsn_peer_is_relayed_dsn(agent):
    """RFC 3461 6.2: a peer that offers DSN took the NOTIFY request and
    reports success itself ("relayed_dsn": qmgr sends no success notice);
    one without DSN gets "relayed" (qmgr's notice says relayed)."""
    peer = Peer(smtp_server(ext=("PIPELINING", "ENHANCEDSTATUSCODES", "DSN")))
    a = agent()
    msg = a.message(["good@dest.example", "bad@dest.example"])
    results, _ = a.deliver(msg, f"[127.0.0.1]:{peer.port}")
    assert [r["status"] for r in results] == ["relayed_dsn", "bounce"]


def test_421_greeting_is_dead_and_the_address_is_skipped_next_time(agent):
    peer = Peer(smtp_server(greeting="421 4.3.2 not now"))
    a = agent()
    msg = a.message(["good@dest.example"])
    results, status = a.deliver(msg, f"[127.0.0.1]:{peer.port}")
    assert results[0]["status"] == "defer" and results[0]["dsn"] == "4.4.1"
    assert "refused to talk to me: 421 4.3.2 not now" in results[0]["reason"]
    assert status["dest_status"] == "dead" and status["conn_use"] == "0"
    assert "421 4.3.2 not now" in status["dest_reason"]
    results, status = a.deliver(msg, f"[127.0.0.1]:{peer.port}")
    assert results[0]["status"] == "defer" and status["dest_status"] == "dead"
    # the reason of the failed attempt, not "skipped"
    assert "refused to talk to me: 421 4.3.2 not now" in results[0]["reason"]
    assert len(peer.conns) == 1          # not tried again
    assert "refused to talk to me" in a.close()


def test_5xx_greeting_defers_but_the_host_answered(agent):
    peer = Peer(smtp_server(greeting="554 5.7.1 go away"))
    a = agent()
    results, status = a.deliver(a.message(["good@dest.example"]), f"[127.0.0.1]:{peer.port}")
    assert results[0]["status"] == "defer"
    assert "refused to talk to me: 554 5.7.1 go away" in results[0]["reason"]
    assert status["dest_status"] == "ok"


def test_refused_connection_is_dead(agent):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    a = agent()
    results, status = a.deliver(a.message(["good@dest.example"]), f"[127.0.0.1]:{port}")
    assert results[0]["status"] == "defer" and results[0]["dsn"] == "4.4.1"
    assert results[0]["reason"] == f"connect to 127.0.0.1[127.0.0.1]:{port}: Connection refused"
    assert status["dest_status"] == "dead"


def test_helo_fallback_goes_lock_step(agent):
    buffered = []
    peer = Peer(smtp_server(ehlo_ok=False, lockstep_check=buffered))
    a = agent()
    results, _ = a.deliver(a.message(["good@dest.example", "bad@dest.example",
                                      "good2@dest.example"]), f"[127.0.0.1]:{peer.port}")
    assert [r["status"] for r in results] == ["relayed", "bounce", "relayed"]
    log = peer.conns[0].log
    assert log[:3] == ["EHLO client.example", "HELO client.example",
                       "MAIL FROM:<s@client.example>"]
    assert not any(buffered), "a command came before the previous reply"


def test_pipelining_sends_the_commands_together(agent):
    buffered = []
    peer = Peer(smtp_server(lockstep_check=buffered))
    a = agent()
    results, _ = a.deliver(a.message(["good@dest.example", "good2@dest.example"]),
                           f"[127.0.0.1]:{peer.port}")
    assert [r["status"] for r in results] == ["relayed", "relayed"]
    assert any(buffered)


def test_connection_cache_reuse_time_limit_and_other_next_hop(agent):
    peer = Peer(smtp_server())
    other = Peer(smtp_server())
    a = agent("smtp_connection_cache_time_limit = 1s\n")
    msg = a.message(["good@dest.example"])
    nexthop = f"[127.0.0.1]:{peer.port}"
    assert a.deliver(msg, nexthop)[1]["conn_use"] == "1"
    assert a.deliver(msg, nexthop)[1]["conn_use"] == "2"
    assert len(peer.conns) == 1 and "RSET" in peer.conns[0].log
    time.sleep(2.5)                      # the time limit ends the session
    assert peer.conns[0].log[-1] == "QUIT"
    assert a.deliver(msg, nexthop)[1]["conn_use"] == "1"
    assert len(peer.conns) == 2
    # another next hop: QUIT the cached session, a new one there
    assert a.deliver(msg, f"[127.0.0.1]:{other.port}")[1]["conn_use"] == "1"
    deadline = time.time() + 5
    while peer.conns[1].log[-1] != "QUIT" and time.time() < deadline:
        time.sleep(0.05)
    assert peer.conns[1].log[-1] == "QUIT"


def test_cached_session_closed_by_the_peer_is_replaced(agent):
    normal = smtp_server()

    def once(c):
        if len(closer.conns) == 1:
            # serve one transaction, then hang up while idle
            c.send("220 x")
            c.line()
            c.send("250-x\r\n250 PIPELINING")
            for _ in range(3):
                c.line()
            c.send("250 ok\r\n250 ok\r\n354 go")
            while c.line() != ".":
                pass
            c.send("250 2.0.0 queued")
            time.sleep(0.3)
            return
        normal(c)
    closer = Peer(once)
    a = agent("smtp_connection_cache_time_limit = 30s\n")
    msg = a.message(["good@dest.example"])
    nexthop = f"[127.0.0.1]:{closer.port}"
    assert a.deliver(msg, nexthop)[0][0]["status"] == "relayed"
    time.sleep(1)
    results, status = a.deliver(msg, nexthop)
    assert results[0]["status"] == "relayed" and status["conn_use"] == "1"
    assert len(closer.conns) == 2


def test_malformed_next_hop_defers(agent):
    a = agent()
    results, status = a.deliver(a.message(["good@dest.example"]), "[bad host")
    assert results[0]["status"] == "defer" and results[0]["dsn"] == "4.3.5"
    assert "next hop" in results[0]["reason"]


def test_many_recipients_keep_their_order(agent):
    peer = Peer(smtp_server())
    a = agent()
    rcpts = [f"r{i}@dest.example" for i in range(240)] + ["bad@dest.example"]
    results, _ = a.deliver(a.message(rcpts), f"[127.0.0.1]:{peer.port}")
    assert [r["status"] for r in results] == ["relayed"] * 240 + ["bounce"]


def test_control_character_in_an_address_is_never_sent(agent):
    peer = Peer(smtp_server())
    a = agent()
    msg = a.message(["good@dest.example", "evil@dest.example\tx"])
    results, _ = a.deliver(msg, f"[127.0.0.1]:{peer.port}")
    assert [r["status"] for r in results] == ["relayed", "bounce"]
    assert results[1]["dsn"] == "5.1.3"
    assert not any("evil" in line for line in peer.conns[0].log)
    msg = a.message(["evil@dest.example\tx"])
    results, status = a.deliver(msg, f"[127.0.0.1]:{peer.port}")
    assert results[0]["status"] == "bounce" and status["conn_use"] == "0"

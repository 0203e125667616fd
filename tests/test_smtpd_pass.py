"""smtpd serving clients passed by a front (pass_proto.h; master.cf type
"pass"), with a tiny front written here in Python: it accepts the
client, greets it itself, reads its first command (and whatever the
client pipelined behind it), and hands socket and bytes to smtpd over
private/smtpd with SCM_RIGHTS.

  - a greeted client gets no second 220; the handed-over pipelined
    commands (EHLO, MAIL, RCPT, DATA in one packet) are answered as if
    smtpd had read them itself, and the message is queued
  - the log and the Received: header name the real client (127.0.0.2),
    never the front
  - a client that was not greeted (greeted=0) gets smtpd's greeting
  - passed clients are counted by the client limits like any other

Loopback only; every socket has a deadline."""
import re
import socket
import time

import pytest

import phwire
from mailsuite import MailInstance, have, MASTER

pytestmark = pytest.mark.skipif(
    not all(have(p) for p in ("smtpd", "cleanup", "qmgr", "local-delivery"))
    or not MASTER.exists(), reason="needs smtpd, cleanup, qmgr, local-delivery built")

ALICE = "alice@example.test"
HOST = "mail.example.test"
TIMEOUT = 10


class Front:
    """The front's side of the hand-over, one client at a time."""

    def __init__(self, inst):
        self.inst = inst
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]

    def client(self, source="127.0.0.2"):
        """A client connection from source, and the front's end of it."""
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(TIMEOUT)
        c.bind((source, 0))
        c.connect(("127.0.0.1", self.port))
        conn, _ = self.listener.accept()
        conn.settimeout(TIMEOUT)
        return c, conn

    def hand_over(self, conn, greeted, data):
        """Pass conn with the bytes read from it; the server's status."""
        addr, port = conn.getpeername()
        try:
            return phwire.pass_client(self.inst.queue / "private" / "smtpd", conn, addr,
                                      str(port), greeted=greeted, input=data, timeout=TIMEOUT)
        finally:
            conn.close()                # the front's copy

    def close(self):
        self.listener.close()


@pytest.fixture
def passing():
    inst = MailInstance(main={"mynetworks": "127.0.0.1/32",
                              # one connection per client: test_passed_clients_are_limited
                              "smtpd_client_connection_count_limit": "1"})
    inst.write_master_cf(inst.default_master_cf() + "smtpd   pass  -  -  n  -  -  smtpd\n")
    front = None
    try:
        inst.start()
        front = Front(inst)
        inst.front = front
        yield inst
    finally:
        if front:
            front.close()
        inst.cleanup()


def lines_until(f, count):
    """count reply lines (continuations included) from the client's file."""
    return [f.readline().decode().rstrip("\r\n") for _ in range(count)]


def test_greeted_client_with_pipelined_input(passing):
    front = passing.front
    c, conn = front.client()
    conn.sendall(f"220 {HOST} ESMTP front\r\n".encode())
    f = c.makefile("rb")
    assert f.readline().startswith(b"220 ")
    c.sendall(b"EHLO client.example\r\nMAIL FROM:<someone@remote.example>\r\n"
              b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while not data.endswith(b"DATA\r\n"):
        assert time.monotonic() < deadline, data
        data += conn.recv(4096)
    mark = passing.log_mark()
    assert front.hand_over(conn, True, data) == {"status": "ok"}
    ehlo = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        ehlo.append(line)
        if line[3:4] == " ":
            break
    assert ehlo[0] == f"250-{HOST}", ehlo                   # no second 220
    assert lines_until(f, 3) == ["250 2.1.0 Ok", "250 2.1.5 Ok",
                                 "354 End data with <CR><LF>.<CR><LF>"]
    c.sendall(b"Subject: passed\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    assert f.readline().startswith(b"250 2.0.0 Ok: queued as ")
    assert f.readline().startswith(b"221 ")
    c.close()
    msg = passing.wait_maildir(ALICE, 1)[0].decode()
    assert re.search(r"Received: from client\.example \(\[127\.0\.0\.2\]\)", msg), msg
    passing.wait_log(r"connect from unknown\[127\.0\.0\.2\]", since=mark)
    passing.wait_log(r"disconnect from unknown\[127\.0\.0\.2\] ehlo=1 mail=1 rcpt=1 data=1 "
                     r"quit=1 commands=5", since=mark)
    # pipelining after EHLO is the client's, logged as for any client
    passing.wait_log(r"improper command pipelining after EHLO from unknown\[127\.0\.0\.2\]",
                     since=mark)


def test_ungreeted_client_gets_the_greeting(passing):
    front = passing.front
    c, conn = front.client()
    assert front.hand_over(conn, False, b"") == {"status": "ok"}
    f = c.makefile("rb")
    assert f.readline().startswith(f"220 {HOST} ".encode())
    c.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221 ")
    c.close()


def test_passed_clients_are_limited(passing):
    """smtpd_client_connection_count_limit applies to passed clients under
    the pass service's name."""
    if not have("client-limits"):
        pytest.skip("client-limits is not built")
    front = passing.front
    held = []
    try:
        c, conn = front.client()
        held.append(c)
        assert front.hand_over(conn, False, b"") == {"status": "ok"}
        assert c.makefile("rb").readline().startswith(b"220 ")
        c, conn = front.client()
        held.append(c)
        mark = passing.log_mark()
        front.hand_over(conn, True, b"EHLO client.example\r\n")
        assert c.makefile("rb").readline() == \
            f"421 4.7.0 {HOST} Error: too many connections from 127.0.0.2\r\n".encode()
        passing.wait_log(r"warning: Connection count limit exceeded: 2 from \[127\.0\.0\.2\] "
                         r"for service smtpd \(smtpd_client_connection_count_limit = 1\)",
                         since=mark)
    finally:
        for c in held:
            c.close()

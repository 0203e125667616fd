"""master.cf type "pass" and the skeleton's receiving half of a client
hand-over (lib/mail/pass_proto.h): a tiny Python sender plays the
port-25 front against the ph-echo test daemon run by a real master with
-t pass. The handed-over input is read before the socket; a sender that
breaks the protocol is refused (no status=ok, a warning) and the process
goes on serving the next hand-over."""
import socket
import subprocess
import time

import pytest

import phwire
from conftest import BUILD, proc_cmdline

POSTHORN = BUILD / "bin" / "posthorn"


def tcp_pair():
    """(client side, server side) of a fresh loopback TCP connection."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    cli = socket.create_connection(lst.getsockname(), timeout=5)
    srv, _ = lst.accept()
    lst.close()
    return cli, srv


def read_line(sock, timeout=5):
    sock.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        buf += data
    return buf.decode().rstrip("\r\n")


def start_pass_service(instance, extra=""):
    instance.write_master_cf(f"phpass pass - - n - 2 ph-echo -o ipc_timeout=2s {extra}\n")
    instance.start()
    return instance.queue / "private" / "phpass"


def hand_over(path, greeted=True, input=b"", addr=None, port=None):
    """A TCP client handed over to the pass service: (client socket,
    reply). The server copy is closed after the reply, as the front does."""
    cli, srv = tcp_pair()
    a, p = srv.getpeername()[:2]
    try:
        reply = phwire.pass_client(path, srv, addr or a, str(port or p), greeted=greeted,
                                   input=input)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        reply = None
    srv.close()
    return cli, reply


def test_pass_handover_input_first(instance):
    path = start_pass_service(instance)
    cli, reply = hand_over(path, input=b"echo first\r\necho second\n")
    assert reply == {"status": "ok"}
    # ph-echo greets (it knows nothing of greeted), then answers the
    # handed-over lines before anything read from the socket.
    pid = int(read_line(cli).split("pid=")[1].split()[0])
    assert read_line(cli) == "first"
    assert read_line(cli) == "second"
    cli.sendall(b"passinfo\n")
    line = read_line(cli)
    local_port = cli.getsockname()[1]
    assert line == f"pass 127.0.0.1 {local_port} greeted=1"
    argv = [a.decode() for a in proc_cmdline(pid) if a]
    assert argv[argv.index("-t") + 1] == "pass"
    cli.sendall(b"quit\n")
    assert read_line(cli) == "bye"
    cli.close()
    # greeted=0 and no input; the same (now idle) process takes it
    instance.wait_log(rf"ph-echo\[{pid}\]: disconnect")
    cli, reply = hand_over(path, greeted=False)
    assert reply == {"status": "ok"}
    assert read_line(cli).startswith(f"ph-echo ready pid={pid} ")
    cli.sendall(b"passinfo\n")
    assert read_line(cli).endswith(" greeted=0")
    cli.close()


def test_pass_input_limit_and_pipelining(instance):
    path = start_pass_service(instance)
    # 8192 bytes of input (PASS_INPUT_MAX): every line answered in order
    lines = [f"echo {i:06d}".encode() + b"\n" for i in range(600)]
    data = b"".join(lines)
    data += b"echo " + b"x" * (8192 - len(data) - 6) + b"\n"
    assert len(data) == 8192
    cli, reply = hand_over(path, input=data)
    assert reply == {"status": "ok"}
    read_line(cli)
    for i in range(600):
        assert read_line(cli) == f"{i:06d}"
    assert read_line(cli) == "x" * (8192 - 600 * 12 - 6)
    cli.close()
    # one byte more is refused: no status=ok, the client stays ours
    cli, reply = hand_over(path, input=data + b"\n")
    assert reply is None
    instance.wait_log(r"warning: pass service phpass: bad hand-over: .*input.*too long")
    cli.close()


def raw_sender(path, steps, timeout=10):
    """Speak to the pass socket by hand; steps is a function (sock) that
    does the sending, at once after the connect (the server speaks only
    after the request). Returns the reply dict, or None when the server
    closed after its announcement alone (a refusal: the front keeps the
    client and does not try another process)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    reader = phwire.IpcReader(sock)
    try:
        steps(sock)
        assert reader.message() == [("proto", "pass"), ("version", "2")]
        try:
            return reader.message_dict()
        except (EOFError, ConnectionResetError):
            return None
    finally:
        sock.close()


def test_pass_answer_comes_after_the_request(instance):
    """The server says nothing until the request is in, then answers with
    its announcement and status=ok together (pass_proto.h, version 2)."""
    path = start_pass_service(instance)
    cli, srv = tcp_pair()
    a, p = srv.getpeername()[:2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    try:
        sock.setblocking(False)
        time.sleep(0.5)
        with pytest.raises(BlockingIOError):
            sock.recv(1)
        sock.setblocking(True)
        sock.settimeout(5)
        socket.send_fds(sock, [b"F" + phwire.encode(
            [("client_address", a), ("client_port", str(p)), ("greeted", "1"),
             ("input", b"echo together\n")])], [srv.fileno()])
        time.sleep(0.3)
        data = sock.recv(4096)
        assert data == phwire.hello("pass") + phwire.encode([("status", "ok")])
    finally:
        sock.close()
        srv.close()
    read_line(cli)
    assert read_line(cli) == "together"
    cli.close()


def test_pass_bad_senders(instance):
    path = start_pass_service(instance)
    cli, srv = tcp_pair()
    a, p = srv.getpeername()[:2]
    good = [("client_address", a), ("client_port", str(p)), ("greeted", "1"),
            ("input", b"")]
    cases = [
        # silence: cut after ipc_timeout (2 s)
        ("timeout", lambda s: None, r"timeout waiting for the client socket"),
        # the byte without a descriptor
        ("no fd", lambda s: s.sendall(b"F" + phwire.encode(good)), r"no descriptor"),
        # a wrong byte with the descriptor
        ("byte", lambda s: socket.send_fds(s, [b"X"], [srv.fileno()]), r"wrong byte"),
        # an extra attribute
        ("extra", lambda s: (socket.send_fds(s, [b"F"], [srv.fileno()]),
                             s.sendall(phwire.encode(good + [("x", "1")]))),
         r'unexpected attribute "x"'),
        # a missing attribute
        ("missing", lambda s: (socket.send_fds(s, [b"F"], [srv.fileno()]),
                               s.sendall(phwire.encode(good[:3]))), r'missing attribute "input"'),
        # greeted must be 0 or 1
        ("greeted", lambda s: (socket.send_fds(s, [b"F"], [srv.fileno()]),
                               s.sendall(phwire.encode(good[:2] + [("greeted", "yes"),
                                                                   good[3]]))),
         r'attribute "greeted": value too long'),
        # an address that is not the socket's peer
        ("peer", lambda s: (socket.send_fds(s, [b"F"], [srv.fileno()]),
                            s.sendall(phwire.encode([("client_address", "192.0.2.1")]
                                                    + good[1:]))),
         r"client 192\.0\.2\.1 port .*, but the socket's peer is 127\.0\.0\.1"),
        # not a socket at all
        ("notsock", lambda s: (socket.send_fds(s, [b"F"], [0]),
                               s.sendall(phwire.encode(good))), r"not a socket"),
    ]
    pids = set()
    for name, steps, why in cases:
        mark = instance.log_mark()
        t0 = time.monotonic()
        assert raw_sender(path, steps) is None, name
        took = time.monotonic() - t0
        instance.wait_log(r"warning: pass service phpass: bad hand-over: .*(" + why
                          + r").* -- connection closed", since=mark)
        if name == "timeout":
            assert 1.5 < took < 4, took
        pids.update(instance.children("phpass"))
    # the client socket was never taken: it is still ours, untouched
    srv.sendall(b"still here\n")
    assert read_line(cli) == "still here"
    cli.close()
    srv.close()
    # the processes went on: a good hand-over is served by one of them
    cli, reply = hand_over(path, input=b"echo ok\n")
    assert reply == {"status": "ok"}
    pid = int(read_line(cli).split("pid=")[1].split()[0])
    assert pid in pids
    assert read_line(cli) == "ok"
    cli.close()
    assert "panic" not in instance.log_text() and "fatal" not in instance.log_text()


def test_pass_type_in_check_and_master_cf(instance):
    """posthorn check accepts a pass service; a wakeup on one is an
    error, and so is a pass service sharing a unix service's socket."""
    def check():
        return subprocess.run([str(POSTHORN), "-c", str(instance.etc), "check"],
                              capture_output=True, text=True, timeout=20)

    instance.write_master_cf("phpass pass - - n - - ph-echo\n")
    res = check()
    assert res.returncode == 0, res.stdout + res.stderr
    instance.write_master_cf("phpass pass - - n 60 - ph-echo\n")
    res = check()
    assert res.returncode != 0 and "wakeup column must be 0" in res.stdout + res.stderr
    instance.write_master_cf("phpass unix - - n - - ph-echo\nphpass pass - - n - - ph-echo\n")
    res = check()
    assert res.returncode != 0
    assert "the same private/phpass socket as type unix" in res.stdout + res.stderr
    # a public pass listener is another file: allowed
    instance.write_master_cf("phpass unix - - n - - ph-echo\nphpass pass n - n - - ph-echo\n")
    res = check()
    assert res.returncode == 0, res.stdout + res.stderr


def test_pass_refused_for_multi(instance):
    """-t pass is for single-client servers only."""
    instance.write_master_cf("phmpass pass - - n - 1 ph-multi-echo\n")
    instance.start()
    path = instance.queue / "private" / "phmpass"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))                  # master spawns; the child refuses
    instance.wait_log(r"only a single-client server can take handed-over clients")
    sock.close()


def test_pass_to_real_smtpd(instance):
    """smtpd as a pass service: a client handed over ungreeted with its
    pipelined EHLO gets the greeting, then the EHLO answer from the
    handed-over bytes, and the session goes on over the socket."""
    instance.set_main(myhostname="mail.example.test")
    instance.write_master_cf("smtpd pass - - n - 2 smtpd\n")
    instance.start()
    path = instance.queue / "private" / "smtpd"
    cli, reply = hand_over(path, greeted=False, input=b"EHLO client.example\r\nNOOP\r\n")
    assert reply == {"status": "ok"}
    assert read_line(cli).startswith("220 mail.example.test ")
    lines = []
    while True:
        line = read_line(cli)
        lines.append(line)
        if line[3:4] == " ":
            break
    assert lines[0] == "250-mail.example.test" and lines[-1].startswith("250 ")
    assert read_line(cli).startswith("250 ")          # NOOP
    cli.sendall(b"QUIT\r\n")
    assert read_line(cli).startswith("221 ")
    cli.close()
    instance.wait_log(r"smtpd\[\d+\]: connect from unknown\[127\.0\.0\.1\]")
    pid = instance.children("smtpd")[0]
    argv = [a.decode() for a in proc_cmdline(pid) if a]
    assert argv[argv.index("-t") + 1] == "pass"

"""Wire formats shared by the pytest files: one Python implementation of

- the IPC framing of docs/ipc.md: a message is a list of attributes, each
  attribute two netstrings (name, value), and the empty netstring "0:,"
  ends the message; a server first sends the handshake {proto, version};
- the queue file format of docs/queue-file.md: records of one type byte,
  a 4-byte big-endian length and that many data bytes;
- queue IDs (lib/mail/queue_id.h) and writing a queue file the way
  cleanup does (temporary name, then rename to its ID);
- triggers (mail_proto.h, conversation 4): a few bytes on a fifo or a
  unix socket.

This is a helper module, not a test file (pytest collects test_*.py only).
The readers are strict on purpose: a malformed netstring or a truncated
record fails the test instead of being skipped over.
"""
import os
import pathlib
import re
import socket
import stat
import struct
import time

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# -- IPC framing (docs/ipc.md) ---------------------------------------------------
def netstring(data):
    """One netstring; str is UTF-8 encoded."""
    if isinstance(data, str):
        data = data.encode()
    return str(len(data)).encode() + b":" + data + b","


def _value_bytes(value):
    return value if isinstance(value, bytes) else str(value).encode()


def encode(pairs=(), **attrs):
    """One IPC message from (name, value) pairs and/or keyword attributes
    (pairs first). Values: bytes as they are, anything else as str()."""
    out = b""
    for name, value in list(pairs) + list(attrs.items()):
        out += netstring(name) + netstring(_value_bytes(value))
    return out + b"0:,"


def _proto_versions():
    """{protocol name: version} from lib/mail/mail_proto.h and
    pass_proto.h, the places that declare them (FOO_PROTO "name" and
    FOO_VERSION n)."""
    mail = pathlib.Path(__file__).resolve().parent.parent / "lib" / "mail"
    text = (mail / "mail_proto.h").read_text() + (mail / "pass_proto.h").read_text()
    names = dict(re.findall(r'#define\s+(\w+)_PROTO\s+"(\w+)"', text))
    numbers = dict(re.findall(r"#define\s+(\w+)_VERSION\s+(\d+)", text))
    return {name: int(numbers[key]) for key, name in names.items() if key in numbers}


PROTO_VERSIONS = _proto_versions()


def hello(proto, version=None):
    """The handshake a server sends first (the version of mail_proto.h
    unless given)."""
    if version is None:
        version = PROTO_VERSIONS[proto]
    return encode([("proto", proto), ("version", version)])


class IpcReader:
    """Buffered, strict reads of IPC messages (and queue file records, as
    a cleanup client sends them after its request) from a socket.
    EOFError when the peer closes before a complete item."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def need(self, n):
        """Buffer at least n bytes."""
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buf += data

    def take(self, n):
        self.need(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def netstring(self):
        """The data of one netstring: decimal digits, ':', data, ','."""
        while b":" not in self.buf:
            assert self.buf.isdigit() or self.buf == b"", self.buf[:32]
            self.need(len(self.buf) + 1)
        head = self.buf.split(b":", 1)[0]
        assert head.isdigit(), head[:32]
        n = int(head)
        self.take(len(head) + 1)
        data = self.take(n)
        comma = self.take(1)
        assert comma == b",", (data[:64], comma)
        return data

    def message_raw(self):
        """[(name str, value bytes)] of one message."""
        out = []
        while True:
            name = self.netstring()
            if name == b"":
                return out
            out.append((name.decode(), self.netstring()))

    def message(self):
        """[(name, value)] strings of one message, in order."""
        return [(k, v.decode()) for k, v in self.message_raw()]

    def message_dict(self):
        """{name: value} strings of one message (a later name wins)."""
        return dict(self.message())

    def record(self):
        """One queue file record: (type, bytes)."""
        hdr = self.take(5)
        (n,) = struct.unpack(">I", hdr[1:])
        return chr(hdr[0]), self.take(n)


def connect(path, proto, timeout=10):
    """A client connection to the unix socket path: (sock, IpcReader),
    after checking the server's handshake exactly."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    reader = IpcReader(sock)
    got = reader.message()
    assert got == [("proto", proto), ("version", str(PROTO_VERSIONS[proto]))], got
    return sock, reader


def pass_client(path, client, client_address, client_port, greeted=False, input=b"",
                timeout=10, fd_byte=b"F", attrs=None):
    """Hand the connected socket client over to the pass service at path
    (lib/mail/pass_proto.h), as smtp-front does: send the byte with the
    descriptor at once after the connect, then the attributes (attrs
    replaces them, for abuse tests); then check the announcement exactly.
    Returns the reply {name: value}; EOFError if the server closed without
    one (then the caller still owns client)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
        fds = [client.fileno()] if client is not None else []
        socket.send_fds(sock, [fd_byte], fds)
        if attrs is None:
            attrs = [("client_address", client_address), ("client_port", client_port),
                     ("greeted", "1" if greeted else "0"), ("input", input)]
        sock.sendall(encode(attrs))
        reader = IpcReader(sock)
        got = reader.message()
        assert got == [("proto", "pass"), ("version", str(PROTO_VERSIONS["pass"]))], got
        return reader.message_dict()
    finally:
        sock.close()


def trigger(path, what, timeout=None):
    """Write a trigger request to path: a fifo (written without blocking:
    a fifo nobody reads is an OSError) or a unix socket."""
    if stat.S_ISFIFO(os.stat(path).st_mode):
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, what)
        finally:
            os.close(fd)
        return
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(what)
    finally:
        s.close()


# -- queue files (docs/queue-file.md) ---------------------------------------------
def record(rtype, data=b""):
    """One record; str data is UTF-8 encoded."""
    if isinstance(data, str):
        data = data.encode()
    return rtype.encode() + struct.pack(">I", len(data)) + data


def parse_records_at(data):
    """[(offset, type, bytes)] of a whole queue file; fails on a truncated one."""
    out, pos = [], 0
    while pos < len(data):
        assert pos + 5 <= len(data), ("truncated record header", pos, len(data))
        (n,) = struct.unpack(">I", data[pos + 1:pos + 5])
        assert pos + 5 + n <= len(data), ("truncated record", pos, n, len(data))
        out.append((pos, chr(data[pos]), data[pos + 5:pos + 5 + n]))
        pos += 5 + n
    assert pos == len(data)
    return out


def parse_records(data):
    """[(type, bytes)] of a whole queue file (or maildrop file)."""
    return [(t, d) for _, t, d in parse_records_at(data)]


def build_queue_file(sender, rcpts, lines, arrival="1700000000.000000", attrs=()):
    """A complete queue file V T S A* (A O N R|D)* M L* X E:
    (bytes, offset of M, [offset of each R/D record]).
    attrs: "name=value" strings. rcpts: addresses, or dicts with address
    and optional orig (an A rcpt_orig= record), orcpt (O), notify (N),
    done (a D record instead of R)."""
    out = record("V", "posthorn-queue 1") + record("T", str(arrival)) + record("S", sender)
    for a in attrs:
        out += record("A", a)
    offsets = []
    for r in rcpts:
        if isinstance(r, str):
            r = {"address": r}
        if r.get("orig"):
            out += record("A", "rcpt_orig=" + r["orig"])
        if r.get("orcpt"):
            out += record("O", r["orcpt"])
        if r.get("notify"):
            out += record("N", r["notify"])
        offsets.append(len(out))
        out += record("D" if r.get("done") else "R", r["address"])
    data_offset = len(out)
    out += record("M")
    for line in lines:
        out += record("L", line)
    return out + record("X") + record("E"), data_offset, offsets


def queue_file(sender, rcpts, lines, arrival="1700000000.000000", attrs=()):
    """The bytes of build_queue_file()."""
    return build_queue_file(sender, rcpts, lines, arrival, attrs)[0]


def b62(n, width=0):
    """n in base 62 (queue ID digits), left-padded with '0' to width."""
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = B62[r] + s
    return (s or "0").rjust(width, "0")


def queue_id(sec, usec, inode):
    """The ID format of lib/mail/queue_id.h."""
    return b62(sec, 6) + b62(usec, 4) + b62(inode)


def write_queue_file(directory, data, uid=None, gid=-1, mode=0o600):
    """Write data into directory as a complete queue file (under a
    temporary name, fsync, chown if uid is given, rename to an ID made of
    the time and the inode); returns the ID. mode 0o200 makes a file that
    looks like one cleanup is still writing (docs/queue.md)."""
    tmp = os.path.join(str(directory), f"tmp.{os.getpid()}.{time.time_ns()}.0")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
        ino = os.fstat(fd).st_ino
    finally:
        os.close(fd)
    if uid is not None:
        os.chown(tmp, uid, gid)
    now = time.time_ns() // 1000
    qid = queue_id(now // 1000000, now % 1000000, ino)
    os.rename(tmp, os.path.join(str(directory), qid))
    return qid

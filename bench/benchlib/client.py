"""benchlib.client - the load and probe side: message bodies, a
one-message SMTP client that times connect, end of DATA and the 250
(latency probes), the asyncio load client (the fallback when Postfix's
smtp-source is not installed), the smtp-source command line, and a
Maildir watcher (inotify through ctypes, polling as the fallback) that
says when a message landed.  Standard library only."""
import asyncio
import ctypes
import ctypes.util
import os
import select
import socket
import struct
import time

from .util import SENDER, SMTP_SOURCE

def make_body(size, n=0):
    """A message of headers plus size bytes of 78-column payload lines."""
    hdr = (f"From: <{SENDER}>\r\nSubject: ingest benchmark {n}\r\n"
           f"Message-ID: <bench-{os.getpid()}-{n}-{time.time_ns()}@client.test>\r\n"
           f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n\r\n")
    line = "x" * 78 + "\r\n"
    body = (line * (size // len(line) + 1))[:size]
    if not body.endswith("\r\n"):
        body = body[:-2] + "\r\n" if len(body) >= 2 else "\r\n"
    return (hdr + body).encode()


class SmtpError(Exception):
    pass


def _reply(f):
    lines = []
    while True:
        line = f.readline(4096)
        if not line:
            raise SmtpError("connection closed; got " + repr(b"".join(lines)))
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            code = int(line[:3])
            return code, b"".join(lines).decode(errors="replace").strip()


def smtp_one(port, rcpt, message, timeout=10.0):
    """One SMTP transaction; (t_connect, t_end_of_data, t_250) monotonic."""
    t_conn = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")

        def cmd(line, want):
            if line is not None:
                s.sendall(line.encode() + b"\r\n")
            code, text = _reply(f)
            if code != want:
                raise SmtpError(f"{line or 'greeting'}: {text}")
            return text
        cmd(None, 220)
        cmd("EHLO client.test", 250)
        cmd(f"MAIL FROM:<{SENDER}>", 250)
        cmd(f"RCPT TO:<{rcpt}>", 250)
        cmd("DATA", 354)
        t_eod = time.monotonic()
        s.sendall(message + b".\r\n")
        cmd(None, 250)
        t_ack = time.monotonic()
        try:
            cmd("QUIT", 221)
        except (SmtpError, OSError):
            pass
        return t_conn, t_eod, t_ack
    finally:
        s.close()


async def _async_session(port, rcpt, message, queue_, persistent, timeout):
    async def reply(reader):
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                raise SmtpError("connection closed")
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), line

    async def cmd(reader, writer, line, want):
        if line is not None:
            writer.write(line.encode() + b"\r\n")
        code, text = await reply(reader)
        if code != want:
            raise SmtpError(f"{line or 'greeting'}: {text!r}")

    reader = writer = None
    while True:
        try:
            queue_.get_nowait()
        except asyncio.QueueEmpty:
            break
        if reader is None:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout)
            await cmd(reader, writer, None, 220)
            await cmd(reader, writer, "EHLO client.test", 250)
        await cmd(reader, writer, f"MAIL FROM:<{SENDER}>", 250)
        await cmd(reader, writer, f"RCPT TO:<{rcpt}>", 250)
        await cmd(reader, writer, "DATA", 354)
        writer.write(message + b".\r\n")
        await cmd(reader, writer, None, 250)
        if not persistent:
            await cmd(reader, writer, "QUIT", 221)
            writer.close()
            reader = writer = None
    if writer is not None:
        await cmd(reader, writer, "QUIT", 221)
        writer.close()


def python_load(port, rcpt, count, sessions, size, persistent, timeout):
    """The fallback load client: count messages over sessions parallel
    asyncio SMTP sessions.  Raises on the first failed reply."""
    message = make_body(size)

    async def main():
        q = asyncio.Queue()
        for i in range(count):
            q.put_nowait(i)
        await asyncio.gather(*[_async_session(port, rcpt, message, q, persistent, 30)
                               for _ in range(sessions)])
    asyncio.run(asyncio.wait_for(main(), timeout))


IN_CREATE = 0x100
IN_MOVED_TO = 0x80
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000


class DirWatch:
    """Counts entries arriving in a directory; wait(count, deadline) returns
    the monotonic time at which the directory first held count entries."""

    _libc = None

    def __init__(self, path):
        self.path = str(path)
        self.fd = -1
        self.seen = len(os.listdir(self.path))
        if DirWatch._libc is None:
            DirWatch._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                                         use_errno=True)
        libc = DirWatch._libc
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd >= 0:
            wd = libc.inotify_add_watch(fd, self.path.encode(), IN_CREATE | IN_MOVED_TO)
            if wd < 0:
                os.close(fd)
            else:
                self.fd = fd
        # entries that arrived before the watch existed
        self.seen = len(os.listdir(self.path))

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def count(self):
        return len(os.listdir(self.path))

    def _drain(self):
        """Read pending events; True if the kernel queue overflowed."""
        overflow = False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return overflow
            off = 0
            while off + 16 <= len(buf):
                _wd, mask, _cookie, ln = struct.unpack_from("iIII", buf, off)
                off += 16 + ln
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                elif mask & (IN_CREATE | IN_MOVED_TO):
                    self.seen += 1

    def wait(self, count, deadline, poll=0.02):
        """Block until count entries are present; the monotonic time of the
        event that made it so, or None at the deadline."""
        while True:
            if self.fd >= 0:
                if self.seen >= count:
                    now = time.monotonic()
                    if self.count() >= count:
                        return now
                    self.seen = self.count()      # some entry left again
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                r, _, _ = select.select([self.fd], [], [], min(left, 1.0))
                t = time.monotonic()
                if r:
                    if self._drain():
                        self.seen = self.count()
                    if self.seen >= count and self.count() >= count:
                        return t
                elif self.count() >= count:       # missed events: trust the directory
                    return time.monotonic()
            else:
                if self.count() >= count:
                    return time.monotonic()
                if time.monotonic() >= deadline:
                    return None
                time.sleep(poll)


def smtp_source_command(port, rcpt, count, sessions, size, persistent=False, cpus=None):
    """The argv of Postfix's smtp-source for a rate run: count messages of
    size bytes over sessions parallel sessions (-d: all of a session's
    messages on one connection); cpus: a set of CPUs it is confined to
    (taskset -c)."""
    cmd = [SMTP_SOURCE, "-l", str(size), "-m", str(count), "-s", str(sessions),
           "-f", SENDER, "-t", rcpt, "-M", "client.test"]
    if persistent:
        cmd.append("-d")
    cmd.append(f"127.0.0.1:{port}")
    if cpus:
        cmd = ["taskset", "-c", ",".join(str(c) for c in sorted(cpus))] + cmd
    return cmd

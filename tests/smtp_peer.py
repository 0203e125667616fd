"""smtp_peer.py - a scripted SMTP server for smtp-client tests (threads,
standard library only), bound to HOST:PORT (tests use 127.0.0.N and one
shared port), recording everything the client does.

    peer = Peer("127.0.0.10", port, ext=("PIPELINING", "8BITMIME"), size=1000)
    peer.start()
    ...                                   # the client delivers
    msg = peer.wait_messages(1)[0]        # accepted transactions
    assert msg.mail_from == "alice@example.test" and msg.rcpt_addrs == [...]
    peer.stop()

Advertised extensions: ext (EHLO keywords, default PIPELINING, 8BITMIME,
ENHANCEDSTATUSCODES), plus "SIZE n" with size=n, "AUTH PLAIN LOGIN"
with auth={"user": "password"} (auth_mechs: the mechanisms offered, default
PLAIN and LOGIN; auth_required: MAIL without AUTH gets 530). Any of PIPELINING, 8BITMIME, BINARYMIME, CHUNKING, SMTPUTF8, DSN,
ENHANCEDSTATUSCODES may be given; the peer accepts BDAT only with
CHUNKING, and MAIL/RCPT parameters only with the extension that defines
them (else 555), as a strict server does. Protocol faults it notices
(8-bit data without BODY=8BITMIME, bare CR or LF, a line over 998
octets, a parameter not offered) are appended to peer.violations.

Behaviour (attributes, read at each use, so a test may change them
while the peer runs):
    greeting      "220 ..." reply text, or HANG (accept, never greet)
    replies       verb -> reply for EHLO, HELO, MAIL, RCPT, DATA (the
                  354 step), DOT (after the final "."), BDAT (the final
                  reply to BDAT LAST), RSET, QUIT, AUTH; a reply is a
                  string ("450 4.2.0 busy"; several lines joined by
                  "\\n" become a multi-line reply), HANG (never answer:
                  the peer reads and discards until the client goes),
                  DROP (close the connection), or a callable
                  (session, line) -> one of those
    rcpt_replies  recipient address (lower case) -> reply, before replies
    drop_in_data  after the 354, close the connection once some data has
                  arrived (never answer the final dot)

STARTTLS: tls=an ssl.SSLContext (server side) makes the peer offer
STARTTLS before TLS (not after); replies["STARTTLS"] may refuse it. A
session's tls is then (version, cipher) after the handshake, tls_error
the handshake's exception text when it failed.

Records: connections (count of accepted TCP connections), sessions (one
Session per connection: helo, auth, commands, transactions),
transactions (every MAIL transaction, finished or not), messages()
(those whose final reply was 2xx). A Transaction has mail (the MAIL
line), mail_from, mail_params (dict, upper-case keys), rcpts (list of
(address, params dict, reply)), rcpt_addrs (accepted ones), data (the
raw bytes as sent, dot-stuffed for DATA, up to and with the CRLF
before the final ".", chunks joined for BDAT),
content (the message: unstuffed), bdat (bool), chunks (BDAT sizes),
reply (final reply), accepted (bool)."""
import base64
import re
import socket
import threading
import time

HANG = "<hang>"
DROP = "<drop>"
DEFAULT_EXT = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES")
DEFAULT_REPLIES = {
    "EHLO": None,           # computed: 250-NAME + extensions
    "HELO": None,
    "MAIL": "250 2.1.0 Ok",
    "RCPT": "250 2.1.5 Ok",
    "DATA": "354 End data with <CR><LF>.<CR><LF>",
    "DOT": "250 2.0.0 Ok: queued as PEER{n}",
    "BDAT": "250 2.0.0 Ok: {size} octets, queued as PEER{n}",
    "RSET": "250 2.0.0 Ok",
    "NOOP": "250 2.0.0 Ok",
    "QUIT": "221 2.0.0 Bye",
    "STARTTLS": "220 2.0.0 Ready to start TLS",
}
MAIL_PARAM_EXT = {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8", "RET": "DSN",
                  "ENVID": "DSN", "AUTH": "AUTH"}
RCPT_PARAM_EXT = {"NOTIFY": "DSN", "ORCPT": "DSN"}


class Transaction:
    """One MAIL FROM .. end of data (or abort) of a session."""

    def __init__(self, line, session):
        self.session = session
        self.mail = line
        m = re.match(r"(?i)MAIL FROM:\s*<([^>]*)>\s*(.*)$", line)
        self.mail_from = m.group(1) if m else None
        self.mail_params = parse_params(m.group(2) if m else "")
        self.rcpts = []
        self.data = b""
        self.bdat = False
        self.chunks = []
        self.reply = None
        self.accepted = False

    @property
    def rcpt_addrs(self):
        return [a for a, _p, r in self.rcpts if r.startswith("2")]

    @property
    def content(self):
        return self.data if self.bdat else unstuff(self.data)

    def __repr__(self):
        return (f"<Transaction from={self.mail_from!r} rcpts={[r[0] for r in self.rcpts]} "
                f"{len(self.data)} bytes reply={self.reply!r}>")


class Session:
    """One connection."""

    def __init__(self, addr):
        self.client_addr = addr
        self.helo = None            # ("EHLO", name)
        self.auth = None            # (mechanism, user, password, ok)
        self.commands = []          # every command line, in order
        self.transactions = []
        self.closed = False
        self.tls = None             # (version, cipher) after STARTTLS
        self.tls_error = None


def parse_params(text):
    out = {}
    for word in text.split():
        key, _eq, value = word.partition("=")
        out[key.upper()] = value if _eq else None
    return out


def unstuff(data):
    """DATA content as sent (CRLF lines, dot-stuffed) -> the message."""
    lines = data.split(b"\r\n")
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


def check_canonical(data, eightbit_ok, violations):
    """Bare CR/LF, over-long lines and undeclared 8-bit bytes in data."""
    if re.search(rb"\r(?!\n)|(?<!\r)\n", data):
        violations.append("bare CR or LF in the data")
    if any(len(l) > 998 for l in data.split(b"\r\n")):
        violations.append("a line longer than 998 octets")
    if not eightbit_ok and re.search(rb"[\x80-\xff]", data):
        violations.append("8-bit data without BODY=8BITMIME/BINARYMIME")


class _Conn:
    """Line and byte reads from a socket with a stop flag."""

    def __init__(self, sock, stopping):
        self.sock, self.stopping, self.buf = sock, stopping, b""
        sock.settimeout(0.2)

    def _fill(self):
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return False
            if not data:
                return False
            self.buf += data
            return True
        return False

    def readline(self):
        """One line with its CRLF/LF, or None at EOF/stop."""
        while b"\n" not in self.buf:
            if len(self.buf) > 1 << 20 or not self._fill():
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def discard_until_eof(self):
        self.buf = b""
        while self._fill():
            self.buf = b""

    def send(self, text):
        lines = text.split("\n")
        out = "".join(f"{l[:3]}-{l[4:]}\r\n" for l in lines[:-1]) + lines[-1] + "\r\n"
        try:
            self.sock.sendall(out.encode())
            return True
        except OSError:
            return False


class Peer:
    """See the module docstring."""

    def __init__(self, host, port, *, name=None, ext=DEFAULT_EXT, size=None, auth=None,
                 auth_mechs=("PLAIN", "LOGIN"), auth_required=False, greeting=None,
                 replies=None, rcpt_replies=None, drop_in_data=False, tls=None):
        self.host, self.port = host, port
        self.name = name or f"peer-{host}.phtest"
        self.ext = list(ext)
        self.size = size
        self.auth = auth
        self.auth_mechs = tuple(auth_mechs)
        self.auth_required = auth_required
        self.greeting = greeting or f"220 {self.name} ESMTP scripted peer"
        self.replies = dict(replies or {})
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.drop_in_data = drop_in_data
        self.tls = tls
        self.connections = 0
        self.sessions = []
        self.violations = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listener = None
        self.threads = []
        self.socks = []

    # -- control -----------------------------------------------------------------
    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.settimeout(0.1)
        self.listener = s
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        if self.listener is not None:
            self.listener.close()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(3)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- records -----------------------------------------------------------------
    @property
    def transactions(self):
        with self.lock:
            return [t for s in self.sessions for t in s.transactions]

    def messages(self):
        return [t for t in self.transactions if t.accepted]

    def wait_messages(self, count, timeout=15):
        """At least count accepted transactions, within timeout; the list."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= count:
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError(f"peer {self.host}: {len(msgs)} accepted messages after "
                                     f"{timeout}s, want {count}; sessions: {self.describe()}")
            time.sleep(0.05)

    def wait_connections(self, count, timeout=15):
        deadline = time.monotonic() + timeout
        while self.connections < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"peer {self.host}: {self.connections} connections "
                                     f"after {timeout}s, want {count}")
            time.sleep(0.05)

    def wait_closed(self, timeout=15):
        """Every session so far has ended (its handshake, if any, settled)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                open_ = [s for s in self.sessions if not s.closed]
            if not open_:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"peer {self.host}: {len(open_)} sessions still open "
                                     f"after {timeout}s; {self.describe()}")
            time.sleep(0.05)

    def wait_transactions(self, count, timeout=15):
        """At least count transactions that got a final reply or ended."""
        deadline = time.monotonic() + timeout
        while True:
            done = [t for t in self.transactions if t.reply is not None]
            if len(done) >= count:
                return done
            if time.monotonic() > deadline:
                raise AssertionError(f"peer {self.host}: {len(done)} finished transactions "
                                     f"after {timeout}s, want {count}; {self.describe()}")
            time.sleep(0.05)

    def describe(self):
        with self.lock:
            return "; ".join(f"[{' | '.join(s.commands[:12])}]" for s in self.sessions)

    # -- the server ----------------------------------------------------------------
    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, addr = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            session = Session(addr)
            with self.lock:
                self.connections += 1
                self.sessions.append(session)
                self.socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock, session), daemon=True)
            t.start()
            self.threads.append(t)

    def _reply_for(self, verb, session, line, **fmt):
        reply = self.replies.get(verb, DEFAULT_REPLIES.get(verb))
        if callable(reply):
            reply = reply(session, line)
        if isinstance(reply, str) and reply not in (HANG, DROP):
            try:
                reply = reply.format(**fmt)
            except (KeyError, IndexError, ValueError):
                pass
        return reply

    def _ehlo_lines(self, session=None):
        ext = list(self.ext)
        if self.tls is not None and (session is None or session.tls is None):
            ext.append("STARTTLS")
        if self.size is not None:
            ext.append(f"SIZE {self.size}")
        if self.auth is not None:
            ext.append("AUTH " + " ".join(self.auth_mechs))
        return "\n".join([f"250 {self.name}"] + [f"250 {e}" for e in ext])

    def _offers(self, keyword):
        if keyword == "SIZE":
            return self.size is not None or "SIZE" in self.ext
        if keyword == "AUTH":
            return self.auth is not None
        return keyword in self.ext

    def _serve(self, sock, session):
        conn = _Conn(sock, self.stopping)
        try:
            self._dialogue(conn, session)
        finally:
            session.closed = True
            try:
                conn.sock.close()       # the TLS socket after STARTTLS
                sock.close()
            except OSError:
                pass

    def _starttls(self, conn, session):
        """The server handshake on conn's socket; False when it failed."""
        conn.buf = b""                 # RFC 3207: nothing from before counts
        sock = conn.sock
        sock.settimeout(10)
        try:
            tls = self.tls.wrap_socket(sock, server_side=True)
        except (OSError, ValueError) as e:
            session.tls_error = str(e)
            return False
        tls.settimeout(0.2)
        conn.sock = tls
        with self.lock:
            self.socks.append(tls)
        session.tls = (tls.version(), tls.cipher()[0])
        return True

    def _answer(self, conn, reply):
        """Send reply; False when the session is over (HANG, DROP, error)."""
        if reply == HANG:
            conn.discard_until_eof()
            return False
        if reply == DROP or reply is None:
            return False
        return conn.send(reply)

    def _dialogue(self, conn, session):
        greeting = self.greeting
        if greeting == HANG:
            conn.discard_until_eof()
            return
        if not conn.send(greeting) or not greeting.startswith("2"):
            if greeting.startswith("4") or greeting.startswith("5"):
                # RFC 5321 3.1: a 554 greeting still waits for QUIT; keep simple
                while (line := conn.readline()) is not None:
                    if line.strip().upper() == b"QUIT":
                        conn.send("221 2.0.0 Bye")
                        return
                    conn.send("503 5.5.1 Bad sequence of commands")
            return
        txn = None
        authed = False
        while True:
            raw = conn.readline()
            if raw is None:
                return
            line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
            if not raw.endswith(b"\r\n"):
                self.violations.append(f"command without CRLF: {line!r}")
            with self.lock:
                session.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                session.helo = (verb, line[5:].strip())
                txn = None
                reply = self._reply_for(verb, session, line)
                if reply is None:
                    reply = self._ehlo_lines(session) if verb == "EHLO" else f"250 {self.name}"
            elif verb == "STARTTLS" and self.tls is not None and session.tls is None:
                reply = self._reply_for("STARTTLS", session, line)
                if not isinstance(reply, str) or not reply.startswith("220"):
                    if not self._answer(conn, reply):
                        return
                    continue
                if not conn.send(reply):
                    return
                if not self._starttls(conn, session):
                    return
                txn = None
                continue
            elif verb == "AUTH":
                reply = self._auth(conn, session, line)
                if reply is False:
                    return
                authed = authed or (session.auth is not None and session.auth[3])
            elif verb == "MAIL":
                if txn is not None:
                    reply = "503 5.5.1 Error: nested MAIL command"
                elif self.auth_required and not authed:
                    reply = "530 5.7.0 Authentication required"
                else:
                    t = Transaction(line, session)
                    reply = self._check_params(t.mail_params, MAIL_PARAM_EXT)
                    if reply is None and self.size is not None and \
                            int(t.mail_params.get("SIZE") or 0) > self.size:
                        reply = "552 5.3.4 Message size exceeds fixed limit"
                    if reply is None:
                        reply = self._reply_for("MAIL", session, line)
                    if isinstance(reply, str) and reply.startswith("2"):
                        txn = t
                        with self.lock:
                            session.transactions.append(t)
            elif verb == "RCPT":
                m = re.match(r"(?i)RCPT TO:\s*<([^>]*)>\s*(.*)$", line)
                if txn is None:
                    reply = "503 5.5.1 Error: need MAIL command"
                elif not m:
                    reply = "501 5.5.4 Syntax: RCPT TO:<address>"
                else:
                    addr, params = m.group(1), parse_params(m.group(2))
                    reply = self._check_params(params, RCPT_PARAM_EXT)
                    if reply is None:
                        reply = self.rcpt_replies.get(addr.lower())
                    if reply is None:
                        reply = self._reply_for("RCPT", session, line)
                    if isinstance(reply, str) and reply not in (HANG, DROP):
                        txn.rcpts.append((addr, params, reply))
            elif verb == "DATA":
                if txn is None or not txn.rcpt_addrs:
                    reply = "503 5.5.1 Error: need RCPT command" if txn else \
                        "503 5.5.1 Error: need MAIL command"
                    if txn is not None:
                        txn.reply = reply
                        txn = None
                else:
                    reply = self._reply_for("DATA", session, line)
                    if not isinstance(reply, str) or not reply.startswith("3"):
                        if isinstance(reply, str) and reply not in (HANG, DROP):
                            txn.reply = reply
                            txn = None
                    else:
                        if not conn.send(reply):
                            return
                        if not self._data(conn, session, txn):
                            return
                        txn = None
                        continue
            elif verb == "BDAT":
                if not self._offers("CHUNKING"):
                    self.violations.append("BDAT without CHUNKING")
                result = self._bdat(conn, session, txn, line)
                if result is False:
                    return
                reply, done = result
                if done:
                    txn = None
            elif verb == "RSET":
                txn = None
                reply = self._reply_for("RSET", session, line)
            elif verb == "QUIT":
                reply = self._reply_for("QUIT", session, line)
                self._answer(conn, reply)
                return
            elif verb == "NOOP":
                reply = self._reply_for("NOOP", session, line)
            else:
                reply = "502 5.5.2 Error: command not recognized"
            if not self._answer(conn, reply):
                if txn is not None and txn.reply is None:
                    txn.reply = "(connection closed)"
                return

    def _check_params(self, params, table):
        for key in params:
            ext = table.get(key)
            if ext is None or not self._offers(ext):
                self.violations.append(f"parameter {key} not offered")
                return f"555 5.5.4 Unsupported option: {key}"
            if key == "BODY" and params[key] and params[key].upper() == "BINARYMIME" \
                    and not self._offers("BINARYMIME"):
                self.violations.append("BODY=BINARYMIME not offered")
                return "555 5.5.4 Unsupported option: BODY=BINARYMIME"
        return None

    def _eightbit_ok(self, txn):
        body = (txn.mail_params.get("BODY") or "").upper()
        return body in ("8BITMIME", "BINARYMIME")

    def _finish(self, session, txn, line):
        """The final reply to a complete message; records it."""
        verb = "BDAT" if txn.bdat else "DOT"
        n = sum(1 for s in self.sessions for t in s.transactions if t.accepted) + 1
        reply = self._reply_for(verb, session, line, n=n, size=sum(txn.chunks))
        if isinstance(reply, str) and reply not in (HANG, DROP):
            txn.reply = reply
            txn.accepted = reply.startswith("2")
        return reply

    def _data(self, conn, session, txn):
        """Read DATA content to the final dot and answer; False: session over."""
        chunks = []
        while True:
            raw = conn.readline()
            if raw is None:
                txn.data = b"".join(chunks)
                txn.reply = "(connection closed in DATA)"
                return False
            if self.drop_in_data:
                txn.data = b"".join(chunks) + raw
                txn.reply = "(dropped in DATA)"
                return False
            if raw == b".\r\n":
                break
            chunks.append(raw)
        data = b"".join(chunks)
        txn.data = data
        check_canonical(data, self._eightbit_ok(txn), self.violations)
        if self.size is not None and len(data) > self.size:
            reply = "552 5.3.4 Message size exceeds fixed limit"
            txn.reply = reply
        else:
            reply = self._finish(session, txn, ".")
        return self._answer(conn, reply)

    def _bdat(self, conn, session, txn, line):
        """(reply, transaction over) or False when the session is over."""
        m = re.match(r"(?i)BDAT (\d+)( LAST)?\s*$", line)
        if not m:
            return "501 5.5.4 Syntax: BDAT size [LAST]", False
        size, last = int(m.group(1)), bool(m.group(2))
        chunk = conn.read(size)
        if chunk is None:
            if txn is not None:
                txn.reply = "(connection closed in BDAT)"
            return False
        if txn is None or not txn.rcpt_addrs:
            return "503 5.5.1 Error: need MAIL and RCPT", True
        if self.drop_in_data:
            txn.data += chunk
            txn.reply = "(dropped in BDAT)"
            return False
        txn.bdat = True
        txn.chunks.append(size)
        txn.data += chunk
        if not last:
            return f"250 2.0.0 {size} octets received", False
        check_canonical(txn.data, self._eightbit_ok(txn), self.violations)
        if self.size is not None and len(txn.data) > self.size:
            txn.reply = "552 5.3.4 Message size exceeds fixed limit"
            return txn.reply, True
        return self._finish(session, txn, line), True

    def _auth(self, conn, session, line):
        """The AUTH exchange; the reply to send, or False (session over)."""
        if self.auth is None:
            return "503 5.5.1 Error: authentication not enabled"
        parts = line.split()
        mech = parts[1].upper() if len(parts) > 1 else ""
        if mech not in self.auth_mechs:
            self.violations.append(f"AUTH {mech} not offered")
            return "504 5.5.4 Unrecognized authentication type"
        reply = self._reply_for("AUTH", session, line)
        if reply in (HANG, DROP):
            return reply
        try:
            if mech == "PLAIN":
                if len(parts) > 2:
                    blob = parts[2]
                else:
                    conn.send("334 ")
                    got = conn.readline()
                    if got is None:
                        return False
                    blob = got.strip().decode()
                _authz, user, password = base64.b64decode(blob).decode().split("\0")
            elif mech == "LOGIN":
                if len(parts) > 2:
                    user = base64.b64decode(parts[2]).decode()
                else:
                    conn.send("334 VXNlcm5hbWU6")
                    got = conn.readline()
                    if got is None:
                        return False
                    user = base64.b64decode(got.strip()).decode()
                conn.send("334 UGFzc3dvcmQ6")
                got = conn.readline()
                if got is None:
                    return False
                password = base64.b64decode(got.strip()).decode()
            else:
                return "504 5.5.4 Unrecognized authentication type"
        except (ValueError, UnicodeDecodeError):
            session.auth = (mech, None, None, False)
            return "501 5.5.2 Cannot decode response"
        ok = self.auth.get(user) == password
        session.auth = (mech, user, password, ok)
        if not ok:
            return "535 5.7.8 Error: authentication failed"
        return reply if isinstance(reply, str) and reply.startswith("2") else \
            "235 2.7.0 Authentication successful"


def shared_port(hosts, tries=50):
    """A TCP port free on every one of hosts (to be bound later)."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on every test address")

"""dnsfix.py - a real DNS server for tests: dnsmasq on 127.0.0.1 and a
free UDP+TCP port, serving the test zone "phtest." (unbound answers
"test." itself, as a special-use name, without asking any server).

    from dnsfix import DnsServer, mx, null_mx, a, aaaa, cname, servfail
    dns = DnsServer.start(tmpdir, [mx("b.phtest", "mx1.b.phtest", 10),
                                   a("mx1.b.phtest", "127.0.0.10"),
                                   null_mx("null.phtest"), servfail("fail.phtest")])
    main.cf: dns_servers = dns.servers          # "127.0.0.1@PORT"
    ...
    dns.stop()

Records are dnsmasq arguments; the helpers below write them:
    mx(name, host, pref)     MX pref host
    null_mx(name)            MX 0 "." (RFC 7505)
    a(name, *addrs)          A and/or AAAA (one --host-record; give every
    aaaa(name, *addrs)       address of a name in one call)
    cname(alias, target)     CNAME
    servfail(name)           every query for name (and below) answers
                             SERVFAIL at once: dnsmasq forwards it to a
                             tiny responder in this process that answers
                             every query with rcode 2
Names not given are NXDOMAIN (--local=/phtest/: never forwarded).
dead_port is a port nobody listens on (a DNS server that never answers).

start() skips the test (pytest.skip) when dnsmasq is not installed or
does not start; stop() ends dnsmasq and the responder."""
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

ZONE = "phtest"


def mx(name, host, pref=10):
    return f"--mx-host={name},{host},{pref}"


def null_mx(name):
    return f"--dns-rr={name},15,0000:00"


def a(name, *addrs):
    return f"--host-record={name},{','.join(addrs)}"


aaaa = a


def cname(alias, target):
    return f"--cname={alias},{target}"


class _Servfail:
    """A marker record: queries for name get SERVFAIL."""

    def __init__(self, name):
        self.name = name


def servfail(name):
    return _Servfail(name)


def dnsmasq_path():
    found = shutil.which("dnsmasq")
    if found:
        return found
    return "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None


def udp_tcp_free_port(avoid=()):
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq takes both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            if port in avoid:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    pytest.skip("no free port for dnsmasq")
    return None


def query(port, name, qtype=1, timeout=0.2):
    """(rcode, answer bytes) of a UDP query to 127.0.0.1:port, or None."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"
    pkt = bytes.fromhex("123401000001000000000000") + qname + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(pkt, ("127.0.0.1", port))
            data = s.recv(4096)
        except OSError:
            return None
    return data[3] & 0x0F, data


class _Responder:
    """A UDP DNS server on 127.0.0.1 that answers every query SERVFAIL."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            head = bytearray(data[:12])
            head[2] = 0x80 | (data[2] & 0x79)      # QR, keep opcode and RD
            head[3] = 0x80 | 2                      # RA, rcode SERVFAIL
            head[6:12] = bytes(6)                   # no answers of any kind
            try:
                self.sock.sendto(bytes(head) + data[12:], peer)
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


class DnsServer:
    """A running dnsmasq; see the module docstring."""

    def __init__(self, proc, port, dead_port, responder, log):
        self.proc, self.port, self.dead_port = proc, port, dead_port
        self.responder, self.log = responder, log
        self.servers = f"127.0.0.1@{port}"

    @classmethod
    def start(cls, workdir, records=()):
        """dnsmasq with records (see the helpers), its log in
        workdir/dnsmasq.log; skips the test if it cannot run."""
        dnsmasq = dnsmasq_path()
        if dnsmasq is None:
            pytest.skip("dnsmasq is not installed (Debian: dnsmasq-base)")
        log = os.path.join(str(workdir), "dnsmasq.log")
        responder = None
        args = [f"--local=/{ZONE}/"]
        for rec in records:
            if isinstance(rec, _Servfail):
                if responder is None:
                    responder = _Responder()
                args.append(f"--server=/{rec.name}/127.0.0.1#{responder.port}")
            else:
                args.append(rec)
        dead = udp_tcp_free_port()
        for _attempt in range(5):
            port = udp_tcp_free_port(avoid=(dead,))
            cmd = [dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--pid-file=",
                   "--no-resolv", "--no-hosts", f"--port={port}",
                   "--listen-address=127.0.0.1", "--bind-interfaces", "--log-queries"] + args
            with open(log, "ab") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            for _ in range(50):               # up to 5 s for the first answer
                if proc.poll() is not None or query(port, f"probe.{ZONE}") is not None:
                    break
                time.sleep(0.1)
            if proc.poll() is None:
                return cls(proc, port, dead, responder, log)
        if responder is not None:
            responder.stop()
        with open(log, errors="replace") as f:
            pytest.skip(f"dnsmasq does not start: {f.read()[-500:]}")
        return None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if self.responder is not None:
            self.responder.stop()
            self.responder = None

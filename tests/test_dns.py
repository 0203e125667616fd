"""lib/mail/dns.c against a real DNS server: a dnsmasq on 127.0.0.1 and a
free port, with the test zone "phtest" (unbound answers "test." itself,
as a special-use name, without asking any server), driven through
build/testbin/ph-dns. The server is tests/dnsfix.py's. Skipped when
dnsmasq is not installed or does not start."""
import os
import pathlib
import subprocess
import time

import pytest

from dnsfix import DnsServer, a, aaaa, cname, mx, null_mx, servfail

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("POSTHORN_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
PH_DNS = BUILD / "testbin" / "ph-dns"

RECORDS = [
    mx("multi.phtest", "first.multi.phtest", 5),
    mx("multi.phtest", "mx1.multi.phtest", 10),
    mx("multi.phtest", "mx2.multi.phtest", 10),
    mx("multi.phtest", "mx3.multi.phtest", 10),
    mx("multi.phtest", "mx4.multi.phtest", 10),
    mx("multi.phtest", "backup.multi.phtest", 20),
    a("plain.phtest", "192.0.2.1"),
    a("both.phtest", "192.0.2.2", "2001:db8::2"),
    aaaa("v6.phtest", "2001:db8::6"),
    cname("alias.phtest", "both.phtest"),
    null_mx("null.phtest"),               # MX 0 "." (RFC 7505)
    servfail("fail.phtest"),
]


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    """(port, dead_port) of a running dnsmasq (tests/dnsfix.py); stopped at
    the end."""
    if not PH_DNS.exists():
        pytest.fail(f"{PH_DNS} missing; run make test-programs")
    dns = DnsServer.start(tmp_path_factory.mktemp("dnsmasq"), RECORDS)
    yield dns.port, dns.dead_port
    dns.stop()


def ph_dns(servers, *args, timeout="3s", config_dir=None):
    """ph-dns's stdout lines, with dns_servers and dns_timeout set by -o
    (or from config_dir/main.cf when servers is None)."""
    cmd = [str(PH_DNS)]
    if config_dir is not None:
        cmd += ["-c", str(config_dir)]
    if servers is not None:
        cmd += ["-o", f"dns_servers={servers}"]
    cmd += ["-o", f"dns_timeout={timeout}"] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def server(dns_server):
    return f"127.0.0.1@{dns_server[0]}"


def test_mx_sorted_by_preference(dns_server):
    lines = ph_dns(server(dns_server), "mx", "multi.phtest")
    assert lines[0] == "status=ok kind=list"
    mx = [line.split() for line in lines[1:]]
    assert [m[0] for m in mx] == ["mx"] * 6
    assert [int(m[1]) for m in mx] == [5, 10, 10, 10, 10, 20]
    assert mx[0][2] == "first.multi.phtest"
    assert mx[-1][2] == "backup.multi.phtest"
    assert sorted(m[2] for m in mx[1:5]) == [f"mx{i}.multi.phtest" for i in range(1, 5)]


def test_mx_equal_preferences_in_varying_order(dns_server):
    """4 exchangers at preference 10: 24 orders; 40 lookups (in 4
    processes, through the cache too) that all gave one order would
    happen by chance with a probability of 24**-39."""
    orders = set()
    for _ in range(4):
        lines = ph_dns(server(dns_server), "mx", "multi.phtest", "10")
        group = []
        for line in lines:
            if line.startswith("status="):
                assert line == "status=ok kind=list"
                group = []
            elif line.startswith("mx 10 "):
                group.append(line.split()[2])
                if len(group) == 4:
                    orders.add(tuple(group))
    assert len(orders) > 1, orders


def test_mx_none_is_implicit_mx(dns_server):
    assert ph_dns(server(dns_server), "mx", "plain.phtest") == ["status=ok kind=none"]


def test_null_mx_is_permanent(dns_server):
    lines = ph_dns(server(dns_server), "mx", "null.phtest")
    assert len(lines) == 1
    assert lines[0].startswith("status=permanent kind=null error=")
    assert "null MX" in lines[0]


def test_nxdomain_is_permanent(dns_server):
    lines = ph_dns(server(dns_server), "mx", "nx.phtest")
    assert lines == ["status=permanent kind=nxdomain error=MX lookup of nx.phtest: "
                     "domain not found (NXDOMAIN)"]
    assert ph_dns(server(dns_server), "addrs", "nx.phtest") == [
        "status=permanent error=host nx.phtest not found (NXDOMAIN)"]


def test_server_failure_is_temporary(dns_server):
    """fail.phtest answers SERVFAIL (dnsfix forwards it to a responder
    that answers nothing else): a temporary failure, well within dns_timeout."""
    start = time.monotonic()
    lines = ph_dns(server(dns_server), "mx", "fail.phtest", timeout="2s")
    assert time.monotonic() - start < 10
    assert len(lines) == 1
    assert lines[0].startswith("status=temporary kind=fail error=MX lookup of fail.phtest")
    lines = ph_dns(server(dns_server), "addrs", "fail.phtest", timeout="2s")
    assert lines[0].startswith("status=temporary error=")


def test_dead_server_is_temporary(dns_server):
    start = time.monotonic()
    lines = ph_dns(f"127.0.0.1@{dns_server[1]}", "mx", "multi.phtest", timeout="1s")
    assert time.monotonic() - start < 10
    assert lines == ["status=temporary kind=fail error=MX lookup of multi.phtest: "
                     "no answer within 1s"]


def test_a_and_aaaa(dns_server):
    assert ph_dns(server(dns_server), "addrs", "both.phtest") == [
        "status=ok", "addr 192.0.2.2", "addr 2001:db8::2"]
    assert ph_dns(server(dns_server), "addrs", "both.phtest", "4") == [
        "status=ok", "addr 192.0.2.2"]
    assert ph_dns(server(dns_server), "addrs", "both.phtest", "6") == [
        "status=ok", "addr 2001:db8::2"]
    assert ph_dns(server(dns_server), "addrs", "v6.phtest") == [
        "status=ok", "addr 2001:db8::6"]
    assert ph_dns(server(dns_server), "addrs", "plain.phtest", "6") == [
        "status=permanent error=host plain.phtest has no IPv6 address"]


def test_cname_followed(dns_server):
    assert ph_dns(server(dns_server), "addrs", "alias.phtest") == [
        "status=ok", "addr 192.0.2.2", "addr 2001:db8::2"]


def test_servers_from_main_cf(dns_server, tmp_path):
    (tmp_path / "main.cf").write_text(f"dns_servers = 127.0.0.1@{dns_server[0]}\n")
    assert ph_dns(None, "addrs", "plain.phtest", config_dir=tmp_path) == [
        "status=ok", "addr 192.0.2.1"]


@pytest.mark.parametrize("bad", ["not-an-address", "127.0.0.1@0", "127.0.0.1@99999",
                                 "127.0.0.1@"])
def test_bad_servers_item_is_temporary(bad):
    if not PH_DNS.exists():
        pytest.fail(f"{PH_DNS} missing; run make test-programs")
    lines = ph_dns(bad, "mx", "multi.phtest")
    assert lines == [f"status=temporary kind=fail error=dns: bad dns_servers item \"{bad}\" "
                     "(want ADDR or ADDR@PORT)"]

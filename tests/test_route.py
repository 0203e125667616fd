"""posthorn route (tools/posthorn/cmd_route.c): how an address routes,
checked against a real DNS server: a dnsmasq on 127.0.0.1 and a free port
with the zone "phtest" (the fixture pattern of tests/test_dns.py), and a
private configuration directory (main.cf, master.cf, cdb tables built
with posthorn map). Skipped when dnsmasq is not installed or does not
start."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import as_nobody_or_skip

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("POSTHORN_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
POSTHORN = BUILD / "bin" / "posthorn"

pytestmark = pytest.mark.skipif(not POSTHORN.exists(), reason=f"{POSTHORN} not built")

SMTP_PORT = 2525            # smtp_tcp_port of the configuration

RECORDS = [
    "--local=/phtest/",                   # never forwarded: unknown names are NXDOMAIN
    "--mx-host=multi.phtest,first.multi.phtest,5",
    "--mx-host=multi.phtest,mx1.multi.phtest,10",
    "--mx-host=multi.phtest,mx2.multi.phtest,10",
    "--mx-host=multi.phtest,backup.multi.phtest,20",   # has no address
    "--host-record=first.multi.phtest,127.0.0.2",
    "--host-record=mx1.multi.phtest,127.0.0.3",
    "--host-record=mx2.multi.phtest,127.0.0.4,2001:db8::4",
    "--host-record=plain.phtest,127.0.0.5",            # no MX: implicit MX
    "--host-record=gw.phtest,127.0.0.9",
    "--dns-rr=null.phtest,15,0000:00",                 # MX 0 "." (RFC 7505)
]

TRANSPORT = """\
special.phtest   smtp:[gw.phtest]:2600
literal.phtest   smtp:[127.0.0.7]:2601
v6.phtest        smtp:[IPv6:2001:db8::7]
viarelay.phtest  relay:
refused.phtest   error:5.7.1 no mail for refused.phtest, please
dropped.phtest   discard:dropped by policy
nowhere.phtest   nosuchservice:
jane@split.phtest  smtp:[127.0.0.8]
badport.phtest   smtp:[gw.phtest]:99999
"""

MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
smtp      unix  -       -       n       -       -       smtp-client
relay     unix  -       -       n       -       -       smtp-client -o smtp_tcp_port=587
local     unix  -       n       n       -       -       local-delivery
"""


def udp_tcp_free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq takes both)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    pytest.skip("no free port for dnsmasq")
    return None


def ask(port):
    """An answer from 127.0.0.1:port to an A query for gw.phtest, or None."""
    query = (bytes.fromhex("123401000001000000000000") + b"\x02gw\x06phtest\x00"
             + b"\x00\x01\x00\x01")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(query, ("127.0.0.1", port))
            return s.recv(512)
        except OSError:
            return None


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    """(port, dead_port) of a running dnsmasq; killed at the end."""
    dnsmasq = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq")
                                          else None)
    if dnsmasq is None:
        pytest.skip("dnsmasq is not installed (Debian: dnsmasq-base)")
    log = tmp_path_factory.mktemp("dnsmasq") / "log"
    dead = udp_tcp_free_port()            # nobody listens there
    for _attempt in range(5):
        port = udp_tcp_free_port()
        if port == dead:
            continue
        args = [dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--pid-file=",
                "--no-resolv", "--no-hosts", f"--port={port}",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--log-queries",
                f"--server=/fail.phtest/127.0.0.1#{dead}"] + RECORDS
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        for _ in range(50):               # up to 5 s for the first answer
            if proc.poll() is not None or ask(port) is not None:
                break
            time.sleep(0.1)
        if proc.poll() is None:
            break
    else:
        pytest.skip(f"dnsmasq does not start: {log.read_text(errors='replace')[-500:]}")
    yield port, dead
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run(config_dir, *args, timeout=60):
    return subprocess.run([str(POSTHORN), "-c", str(config_dir)] + list(args),
                          capture_output=True, text=True, timeout=timeout, check=False)


def make_config(base, dns_port, **extra):
    """A configuration directory: main.cf (dns_servers = the test server),
    master.cf, and built transport, virtual mailbox and virtual alias
    tables."""
    etc = base / "etc"
    etc.mkdir()
    main = {
        "queue_directory": str(base / "queue"),
        "data_directory": str(base / "data"),
        "mydestination": "localhost, my.phtest",
        "virtual_mailbox_domains": "vm.phtest",
        "virtual_mailbox_maps": f"cdb:{etc}/vmailbox",
        "virtual_alias_maps": f"cdb:{etc}/virtual",
        "transport_maps": f"cdb:{etc}/transport",
        "alias_maps": f"cdb:{etc}/aliases",
        "relay_domains": "relayed.phtest",
        "dns_servers": f"127.0.0.1@{dns_port}",
        "dns_timeout": "3s",
        "smtp_tcp_port": str(SMTP_PORT),
        "inet_protocols": "all",
    }
    main.update(extra)
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
    (etc / "master.cf").write_text(MASTER_CF)
    (etc / "vmailbox").write_text("alice@vm.phtest vm.phtest/alice/\n")
    (etc / "virtual").write_text("sales@vm.phtest alice@vm.phtest\n")
    (etc / "transport").write_text(TRANSPORT)
    (etc / "aliases").write_text("webmaster: root\n")
    for table, flags in (("vmailbox", []), ("virtual", []), ("transport", []), ("aliases", ["-a"])):
        proc = run(etc, "map", *flags, f"cdb:{etc}/{table}")
        assert proc.returncode == 0, proc.stderr
    return etc


@pytest.fixture
def config(dns_server, tmp_path):
    return make_config(tmp_path, dns_server[0])


def route_json(config_dir, *addresses, want_rc=0):
    proc = run(config_dir, "route", "-j", *addresses)
    assert proc.returncode == want_rc, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(addresses), proc.stdout
    return [json.loads(line) for line in lines]


def addrs(host):
    return [a["addr"] for a in host["addresses"]]


def test_local_address(config):
    (r,) = route_json(config, "postmaster@my.phtest")
    assert (r["class"], r["transport"], r["nexthop"]) == ("local", "local", "my.phtest")
    assert r["recipient"] == "known"
    assert r["service"] == "local-delivery"
    assert r["smtp"] is None
    assert r["result"] == "deliver"


def test_unknown_local_user_bounces(config):
    (r,) = route_json(config, "no-such-user-xq7@my.phtest")
    assert r["recipient"] == "unknown"
    assert r["result"] == "bounce"


def test_virtual_mailbox_address(config):
    alice, bob = route_json(config, "alice@vm.phtest", "bob@vm.phtest")
    assert (alice["class"], alice["transport"]) == ("virtual mailbox", "local")
    assert alice["recipient"] == "known" and alice["result"] == "deliver"
    assert bob["class"] == "virtual mailbox"
    assert bob["recipient"] == "unknown" and bob["result"] == "bounce"


def test_virtual_alias_is_a_rewrite(config):
    (r,) = route_json(config, "sales@vm.phtest")
    assert r["virtual_alias"] == "alice@vm.phtest"
    assert r["result"] == "rewrite"


def test_mx_domain_in_preference_order(config):
    (r,) = route_json(config, "user@multi.phtest")
    assert (r["class"], r["transport"], r["nexthop"]) == ("default", "smtp", "multi.phtest")
    assert r["service"] == "smtp-client"
    smtp = r["smtp"]
    assert (smtp["host"], smtp["port"], smtp["mx_lookup"]) == ("multi.phtest", SMTP_PORT, True)
    assert (smtp["dns"], smtp["status"]) == ("mx", "ok")
    hosts = smtp["hosts"]
    assert [h["pref"] for h in hosts] == [5, 10, 10, 20]
    assert hosts[0]["name"] == "first.multi.phtest"
    assert sorted(h["name"] for h in hosts[1:3]) == ["mx1.multi.phtest", "mx2.multi.phtest"]
    byname = {h["name"]: h for h in hosts}
    assert addrs(byname["first.multi.phtest"]) == ["127.0.0.2"]
    assert addrs(byname["mx2.multi.phtest"]) == ["127.0.0.4", "2001:db8::4"]
    assert byname["backup.multi.phtest"]["status"] == "permanent"
    assert "NXDOMAIN" in byname["backup.multi.phtest"]["error"]
    assert addrs(byname["backup.multi.phtest"]) == []
    assert r["result"] == "deliver"


def test_mx_text_output(config):
    proc = run(config, "route", "user@multi.phtest")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "address: user@multi.phtest"
    assert "  class: default" in lines
    assert "  transport: smtp" in lines
    assert "  nexthop: multi.phtest" in lines
    assert f"  smtp: multi.phtest port {SMTP_PORT}, MX lookup" in lines
    assert "  mx: 4 records" in lines
    assert lines.index("  host: 5 first.multi.phtest") < lines.index(
        "  host: 20 backup.multi.phtest")
    assert f"    addr: 127.0.0.2:{SMTP_PORT}" in lines
    assert f"    addr: [2001:db8::4]:{SMTP_PORT}" in lines
    assert lines[-1] == f"  result: deliver (4 addresses to try, port {SMTP_PORT})"


def test_inet_protocols_and_address_limit(dns_server, tmp_path):
    config = make_config(tmp_path, dns_server[0], inet_protocols="ipv4",
                         smtp_mx_address_limit="2")
    (r,) = route_json(config, "user@multi.phtest")
    byname = {h["name"]: h for h in r["smtp"]["hosts"]}
    assert addrs(byname["mx2.multi.phtest"]) == ["127.0.0.4"]
    tried = [a["tried"] for h in r["smtp"]["hosts"] for a in h["addresses"]]
    assert tried == [True, True, False]
    assert r["result"] == "deliver"


def test_mx_host_that_is_this_host(dns_server, tmp_path):
    """An exchanger named $myhostname and the worse ones are not tried; if
    it is the best one, the mail would loop: a bounce."""
    config = make_config(tmp_path, dns_server[0], myhostname="backup.multi.phtest")
    (r,) = route_json(config, "user@multi.phtest")
    assert [h["status"] for h in r["smtp"]["hosts"]] == ["ok", "ok", "ok", "self"]
    assert r["result"] == "deliver"
    (tmp_path / "best").mkdir()
    config = make_config(tmp_path / "best", dns_server[0], myhostname="FIRST.multi.phtest")
    (r,) = route_json(config, "user@multi.phtest")
    assert [h["status"] for h in r["smtp"]["hosts"]] == ["self"] * 4
    assert r["result"] == "bounce"
    assert "loops back to myself" in r["reason"]


def test_implicit_mx(config):
    (r,) = route_json(config, "user@plain.phtest")
    smtp = r["smtp"]
    assert (smtp["dns"], smtp["status"]) == ("implicit", "ok")
    assert [(h["pref"], h["name"], addrs(h)) for h in smtp["hosts"]] == [
        (None, "plain.phtest", ["127.0.0.5"])]
    assert r["result"] == "deliver"


def test_null_mx_bounces(config):
    (r,) = route_json(config, "user@null.phtest")
    assert (r["smtp"]["dns"], r["smtp"]["status"]) == ("null", "permanent")
    assert r["smtp"]["hosts"] == []
    assert r["result"] == "bounce"
    assert "null MX" in r["reason"]


def test_nxdomain_bounces(config):
    (r,) = route_json(config, "user@nx.phtest")
    assert (r["smtp"]["dns"], r["smtp"]["status"]) == ("nxdomain", "permanent")
    assert r["result"] == "bounce"
    assert "NXDOMAIN" in r["reason"]


def test_bracketed_nexthop_with_port_from_transport_maps(config):
    special, literal, v6, split, other = route_json(
        config, "user@special.phtest", "user@literal.phtest", "user@v6.phtest",
        "jane@split.phtest", "joe@split.phtest")
    assert (special["transport"], special["nexthop"]) == ("smtp", "[gw.phtest]:2600")
    smtp = special["smtp"]
    assert (smtp["host"], smtp["port"], smtp["mx_lookup"], smtp["dns"]) == (
        "gw.phtest", 2600, False, "none")
    assert [(h["name"], addrs(h)) for h in smtp["hosts"]] == [("gw.phtest", ["127.0.0.9"])]
    assert special["result"] == "deliver"

    smtp = literal["smtp"]
    assert (smtp["host"], smtp["port"], smtp["literal"], smtp["dns"]) == (
        "127.0.0.7", 2601, True, "literal")
    assert addrs(smtp["hosts"][0]) == ["127.0.0.7"]

    smtp = v6["smtp"]
    assert (smtp["literal"], smtp["port"]) == (True, SMTP_PORT)
    assert addrs(smtp["hosts"][0]) == ["2001:db8::7"]

    # an address key wins over the domain's routing
    assert split["nexthop"] == "[127.0.0.8]"
    assert addrs(split["smtp"]["hosts"][0]) == ["127.0.0.8"]
    assert other["nexthop"] == "split.phtest"


def test_service_overrides_apply(config):
    """relay: runs smtp-client with -o smtp_tcp_port=587; its empty
    next hop is the recipient domain."""
    (r,) = route_json(config, "user@viarelay.phtest")
    assert (r["transport"], r["service"]) == ("relay", "smtp-client")
    assert r["smtp"]["host"] == "viarelay.phtest"
    assert r["smtp"]["port"] == 587


def test_relay_domain(config):
    (r,) = route_json(config, "user@relayed.phtest")
    assert (r["class"], r["transport"]) == ("relay", "smtp")
    assert r["smtp"]["dns"] == "nxdomain"


def test_relayhost_and_default_transport(dns_server, tmp_path):
    """route prints what resolve_address gives: relayhost for the default
    and relay classes, default_transport's own next hop first, and
    transport_maps over both."""
    config = make_config(tmp_path, dns_server[0], relayhost="[gw.phtest]:2600")
    default, relay, direct = route_json(config, "user@multi.phtest", "user@relayed.phtest",
                                        "user@viarelay.phtest")
    if default["nexthop"] == "multi.phtest":
        pytest.skip("resolve_address has no relayhost yet (before the i10-qmgr merge)")
    for r in (default, relay):
        assert r["nexthop"] == "[gw.phtest]:2600"
        assert (r["smtp"]["host"], r["smtp"]["port"], r["smtp"]["mx_lookup"]) == (
            "gw.phtest", 2600, False)
        assert addrs(r["smtp"]["hosts"][0]) == ["127.0.0.9"]
    assert direct["nexthop"] == "viarelay.phtest"        # "relay:" in transport_maps

    (tmp_path / "dt").mkdir()
    config = make_config(tmp_path / "dt", dns_server[0], relayhost="[gw.phtest]",
                         default_transport="smtp:[127.0.0.9]:26")
    default, relay = route_json(config, "user@multi.phtest", "user@relayed.phtest")
    assert default["nexthop"] == "[127.0.0.9]:26"
    assert (default["smtp"]["literal"], default["smtp"]["port"]) == (True, 26)
    assert relay["nexthop"] == "[gw.phtest]"
    assert relay["smtp"]["port"] == SMTP_PORT

    (tmp_path / "err").mkdir()
    config = make_config(tmp_path / "err", dns_server[0],
                         default_transport="error:5.7.1 no outbound mail")
    (r,) = route_json(config, "user@multi.phtest")
    assert (r["transport"], r["result"], r["dsn"], r["reason"]) == (
        "error", "bounce", "5.7.1", "no outbound mail")


def test_error_and_discard_entries(config):
    refused, dropped = route_json(config, "user@refused.phtest", "user@dropped.phtest")
    assert refused["transport"] == "error"
    assert (refused["result"], refused["dsn"]) == ("bounce", "5.7.1")
    assert refused["reason"] == "no mail for refused.phtest, please"
    assert refused["smtp"] is None
    assert dropped["transport"] == "discard"
    assert (dropped["result"], dropped["reason"]) == ("discard", "dropped by policy")
    proc = run(config, "route", "user@refused.phtest")
    assert proc.stdout.splitlines()[-1] == \
        "  result: bounce 5.7.1 (no mail for refused.phtest, please)"


def test_transport_without_service_is_an_error(config):
    (r,) = route_json(config, "user@nowhere.phtest", want_rc=1)
    assert r["result"] == "defer"
    assert "nosuchservice" in r["reason"]


def test_dns_server_failure_exits_2(dns_server, tmp_path):
    """A SERVFAIL (fail.phtest is forwarded to a dead port) and a server
    that does not answer at all: exit 2, within dns_timeout."""
    config = make_config(tmp_path, dns_server[0], dns_timeout="2s")
    start = time.monotonic()
    ok, fail = route_json(config, "user@plain.phtest", "user@fail.phtest", want_rc=2)
    assert time.monotonic() - start < 20
    assert ok["result"] == "deliver"
    assert (fail["smtp"]["dns"], fail["smtp"]["status"]) == ("fail", "temporary")
    assert fail["result"] == "defer"

    (tmp_path / "dead").mkdir()
    config = make_config(tmp_path / "dead", dns_server[1], dns_timeout="1s")
    start = time.monotonic()
    (r,) = route_json(config, "user@multi.phtest", want_rc=2)
    assert time.monotonic() - start < 15
    assert r["result"] == "defer"
    assert r["reason"] == "MX lookup of multi.phtest: no answer within 1s"
    # no DNS at all for a literal: still fine
    route_json(config, "user@literal.phtest", "postmaster@localhost")


def test_bad_nexthop_is_an_error(config):
    (r,) = route_json(config, "user@badport.phtest", want_rc=1)
    assert r["result"] == "error"
    assert r["reason"] == 'next hop "[gw.phtest]:99999": bad port "99999"'


def test_json_escapes(config):
    odd = 'a"b\\c\td@refused.phtest'
    (r,) = route_json(config, odd)
    assert r["address"] == odd and r["result"] == "bounce"
    proc = run(config, "route", odd)
    assert proc.stdout.splitlines()[0] == 'address: a"b\\c?d@refused.phtest'


def test_usage_errors_exit_1(config):
    proc = run(config, "route")
    assert proc.returncode == 1
    assert "usage: posthorn" in proc.stderr and "route" in proc.stderr
    proc = run(config, "route", "-x", "a@b")
    assert proc.returncode == 1
    proc = run(config, "route", "")
    assert proc.returncode == 1
    assert "empty address" in proc.stderr


def test_config_error_exits_1(dns_server, tmp_path):
    config = make_config(tmp_path, dns_server[0], inet_protocols="ipv5")
    (r,) = route_json(config, "user@plain.phtest", want_rc=1)
    assert r["result"] == "deliver"
    proc = run(config, "route", "user@plain.phtest")
    assert 'posthorn: error: inet_protocols: unknown protocol "ipv5"' in proc.stderr


def test_runs_as_any_user(dns_server):
    """An unprivileged user who can read the configuration gets the whole
    answer; a table that user cannot read is an error that names it."""
    prefix = []
    base = pathlib.Path(tempfile.mkdtemp(prefix="ph-route-"))
    try:
        if os.geteuid() == 0:
            prefix = as_nobody_or_skip(POSTHORN)
            base.chmod(0o755)
        config = make_config(base, dns_server[0])
        for path in [base, config] + list(config.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        cmd = prefix + [str(POSTHORN), "-c", str(config), "route", "-j", "user@multi.phtest"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["smtp"]["hosts"][0]["name"] == "first.multi.phtest"
        (config / "transport.cdb").chmod(0)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "posthorn: error: user@multi.phtest: transport_maps" in proc.stderr
        assert "transport.cdb" in proc.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)

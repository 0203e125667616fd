"""posthorn conf with a realistic main.cf: every flag combination (issue 7,
item 18). The shipped conf/main.cf plus the overrides an operator writes,
myhostname among them (a computed default: `conf -d` used to crash on it),
and main.cf conditionals nested beyond the limit (a clear file:line error,
not a stack overflow)."""
import itertools
import os
import pathlib
import subprocess

import pytest

from conftest import BUILD

ROOT = pathlib.Path(__file__).resolve().parent.parent
POSTHORN = BUILD / "bin" / "posthorn"

OVERRIDES = {
    "myhostname": "mail.example.test",
    "myorigin": "$mydomain",
    "mydestination": "$myhostname, localhost.$mydomain, localhost",
    "max_use": "7",
    "relay_domains": "${mydomain?relay.$mydomain}",
    "smtpd_banner": "$myhostname ESMTP ${empty_thing:posthorn}",
    "empty_thing": "",
}
NAMES = ["myhostname", "mydomain", "myorigin", "max_use", "relay_domains"]


def run(config_dir, *args):
    proc = subprocess.run([str(POSTHORN), "-c", str(config_dir), "conf", *args],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode >= 0, f"conf {' '.join(args)}: killed by signal {-proc.returncode}"
    return proc


def parse(out):
    values = {}
    for line in out.splitlines():
        name, sep, value = line.partition(" =")
        assert sep, line
        assert name not in values, f"{name} printed twice"
        values[name] = value.strip()
    return values


@pytest.fixture
def confdirs(tmp_path):
    if not POSTHORN.exists():
        pytest.skip("posthorn not built")
    real = tmp_path / "etc"
    real.mkdir()
    text = (ROOT / "conf/main.cf").read_text()
    text += "".join(f"{k} = {v}\n" for k, v in OVERRIDES.items())
    (real / "main.cf").write_text(text)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "main.cf").write_text("")
    return real, empty


def test_every_flag_combination(confdirs):
    real, empty = confdirs
    # What the built-in defaults are, from a main.cf that sets nothing.
    dflt = parse(run(empty, "-d").stdout)
    dflt_x = parse(run(empty, "-d", "-x").stdout)
    host = parse(run(empty, "-x", "myhostname").stdout)["myhostname"]
    assert host and host != "mail.example.test"
    assert dflt_x["myhostname"] == host
    assert dflt_x["mydomain"] == (host.split(".", 1)[1] if "." in host else "localdomain")
    assert dflt_x["myorigin"] == host                      # default myorigin = $myhostname
    assert dflt["myorigin"] == "$myhostname" and dflt["max_use"] == "100"

    for flags in ([], ["-n"], ["-d"], ["-x"], ["-n", "-x"], ["-d", "-x"]):
        for names in ([], NAMES):
            proc = run(real, *flags, *names)
            what = f"conf {' '.join(flags + names)}"
            assert proc.returncode == 0, (what, proc.stderr)
            assert proc.stderr == "", (what, proc.stderr)
            got = parse(proc.stdout)
            if names and "-n" in flags:
                assert list(got) == [n for n in names if n in OVERRIDES], what
            elif names:
                assert list(got) == names, what
            else:
                assert list(got) == sorted(got), what
            if "-d" in flags:
                # Defaults: main.cf plays no part, with or without -x.
                want = dflt_x if "-x" in flags else dflt
                for n in got:
                    assert got[n] == want[n], (what, n)
                assert got["max_use"] == "100"
                assert "empty_thing" not in got
                continue
            if "-n" in flags and not names:
                assert set(got) == set(OVERRIDES), what
            if "-x" in flags:
                want = {"myhostname": "mail.example.test", "mydomain": "example.test",
                        "myorigin": "example.test", "relay_domains": "relay.example.test",
                        "mydestination": "mail.example.test, localhost.example.test, localhost",
                        "smtpd_banner": "mail.example.test ESMTP posthorn"}
            else:
                want = {"myhostname": "mail.example.test", "myorigin": "$mydomain",
                        "relay_domains": "${mydomain?relay.$mydomain}",
                        "mydomain": "example.test",
                        "mydestination": "$myhostname, localhost.$mydomain, localhost",
                        "smtpd_banner": "$myhostname ESMTP ${empty_thing:posthorn}"}
            for n, v in want.items():
                if n in got:
                    assert got[n] == v, (what, n)
            assert "myorigin" in got and "relay_domains" in got
            assert got["max_use"] == "7", what


def test_unknown_name_with_every_flag(confdirs):
    real, _ = confdirs
    for flags in ([], ["-n"], ["-d"], ["-x"], ["-n", "-x"], ["-d", "-x"]):
        proc = run(real, *flags, "myhostname", "no_such_param")
        assert proc.returncode == 1
        assert "unknown parameter: no_such_param" in proc.stderr
        assert "myhostname =" in proc.stdout


@pytest.mark.parametrize("depth,ok", [(50, True), (100, True), (101, False), (5000, False)])
def test_nested_conditionals_are_bounded(confdirs, depth, ok):
    real, _ = confdirs
    value = "${a?" * depth + "x" + "}" * depth
    text = (real / "main.cf").read_text()
    (real / "main.cf").write_text(text + f"a = 1\ndeep = {value}\nsmtpd_banner = $deep\n")
    line = len(text.splitlines()) + 3
    proc = run(real, "-x", "smtpd_banner")
    if ok:
        assert proc.returncode == 0, proc.stderr
        assert parse(proc.stdout) == {"smtpd_banner": "x"}
        return
    assert proc.returncode == 1
    assert (f"{real}/main.cf:{line}: parameter smtpd_banner: "
            "conditionals nested more than 100 levels deep") in proc.stderr, proc.stderr
    # posthorn check refuses the file the same way
    proc = subprocess.run([str(POSTHORN), "-c", str(real), "check"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0 and "nested more than 100 levels deep" in proc.stderr

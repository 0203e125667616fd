"""The manual pages: main.cf(5) documents every parameter of
lib/mail/params.def with its default, the generated section is current,
every page in man/ renders without groff warnings, and no page cites a
file of the source tree (an operator has only what make install puts
on the host)."""
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
PARAMS = ROOT / "lib" / "mail" / "params.def"
CONFIG_H = ROOT / "lib" / "mail" / "config.h"
MAIN_CF_5 = MAN / "main.cf.5"

STRING = r'"(?:[^"\\]|\\.)*"'
PARAM_RE = re.compile(r"^[ \t]*PARAM\(\s*(\w+)\s*,\s*(\w+)\s*,\s*(NULL|\w+|(?:%s\s*)+)\s*," % STRING,
                      re.M)


def c_string(token):
    """Value of adjacent C string literals (simple escapes only)."""
    parts = re.findall(STRING, token)
    return "".join(re.sub(r"\\(.)", r"\1", p[1:-1]) for p in parts)


def params():
    """[(name, default or None for computed)] from params.def."""
    text = re.sub(r"/\*.*?\*/", "", PARAMS.read_text(encoding="utf-8"), flags=re.S)
    macros = dict((m.group(1), c_string(m.group(2))) for m in re.finditer(
        r"^\s*#\s*define\s+(DEF_\w+)\s+(%s)" % STRING, CONFIG_H.read_text(encoding="utf-8"), re.M))
    found = []
    for m in PARAM_RE.finditer(text):
        raw = m.group(3)
        if raw == "NULL":
            default = None
        elif raw.startswith('"'):
            default = c_string(raw)
        else:
            default = macros.get(raw, raw)
        found.append((m.group(2), default))
    return found


def plain(line):
    """A groff text line without font escapes."""
    line = re.sub(r"\\f[BIRP]", "", line)
    return line.replace("\\e", "\\").replace("\\-", "-").replace("\\&", "")


def test_params_def_parses():
    names = [n for n, _ in params()]
    assert len(names) >= 20
    assert "queue_directory" in names
    assert len(names) == len(set(names)), "duplicate PARAM names"
    declared = len(re.findall(r"^[ \t]*PARAM\(", PARAMS.read_text(encoding="utf-8"), re.M))
    assert declared == len(names), "some PARAM lines were not understood by this test"


def test_main_cf_documents_every_parameter_with_its_default():
    lines = MAIN_CF_5.read_text(encoding="utf-8").splitlines()
    entries = {}
    for raw in lines:
        m = re.match(r"\\fB(\w+)\\fR \(", raw)
        if m:
            entries[m.group(1)] = plain(raw)
    missing, wrong = [], []
    for name, default in params():
        if name not in entries:
            missing.append(name)
            continue
        if default is None:
            want = "default computed"
        elif default == "":
            want = "default (empty)"
        else:
            want = "default " + default
        if want not in entries[name]:
            wrong.append(f"{name}: want '{want}' in '{entries[name]}'")
    assert not missing, ("parameters missing from man/main.cf.5 "
                         "(run tools/mkman-params --update man/main.cf.5): " + ", ".join(missing))
    assert not wrong, "wrong defaults in man/main.cf.5:\n" + "\n".join(wrong)


def test_main_cf_parameter_section_is_current():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "mkman-params"), "--check", str(MAIN_CF_5)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_master_cf_page_exists():
    page = MAN / "master.cf.5"
    assert page.is_file()
    text = page.read_text(encoding="utf-8")
    for word in ("private", "unpriv", "chroot", "wakeup", "maxproc", "-o", "RELOAD", "EXAMPLES"):
        assert word in text.replace("\\-", "-"), word


PAGES = sorted(p for p in MAN.iterdir() if re.search(r"\.[1-8]$", p.name)) if MAN.is_dir() else []


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_renders_without_warnings(page):
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    proc = subprocess.run(["groff", "-t", "-man", "-Tutf8", "-ww", "-z", str(page)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def test_every_page_is_found_by_apropos_posthorn():
    """The whatis line (what apropos searches) of every page names
    posthorn, so `apropos posthorn` lists them all once installed."""
    if shutil.which("lexgrog") is None:
        pytest.skip("lexgrog (man-db) is not installed")
    for page in sorted(MAN.glob("*.[1-8]")):
        proc = subprocess.run(["lexgrog", str(page)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "posthorn" in proc.stdout.split(":", 1)[1], proc.stdout


DOC_PREFIX = "/usr/share/doc/posthorn/"
SYSTEM_HEADERS = {"sysexits.h"}     # in /usr/include, not in this tree


def shown_text(page):
    """What a reader of the page can see: the source less comments, with
    the escapes that split words (\\-, \\&, \\%, font changes) undone."""
    out = []
    for raw in page.read_text(encoding="utf-8").splitlines():
        if re.match(r"^[.']\s*\\\"", raw):
            continue
        out.append(plain(re.sub(r'\\".*', "", raw)).replace("\\%", ""))
    return "\n".join(out)


def source_paths(text):
    """Names of files of the source tree that text cites."""
    found = re.findall(r"(?<![\w/.-])(?:lib|tests|tools|docs)/[\w./-]*", text)
    found += [name for name in re.findall(r"(?<![\w/.-])[\w/.-]*\w\.[ch]\b", text)
              if name not in SYSTEM_HEADERS]
    return sorted(set(found))


def test_source_paths_are_recognised():
    assert source_paths("see lib/mail/mail_proto.h and docs/queue.md") == \
        ["docs/queue.md", "lib/mail/mail_proto.h"]
    assert source_paths("mapped by cleanup_stat.c; tools/install.sh; tests/x") == \
        ["cleanup_stat.c", "tests/x", "tools/install.sh"]
    assert source_paths("/usr/share/doc/posthorn/queue.md, /var/lib/posthorn, "
                        "main.cf, sysexits.h, e.g. 5.7.1, master.cf(5)") == []


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_cites_no_source_path(page):
    """An operator has the installed pages and docs, not the source tree:
    a page cites another page or /usr/share/doc/posthorn/NAME, and that
    NAME is a file make install puts there (docs/NAME)."""
    text = shown_text(page)
    assert source_paths(text) == [], f"{page.name} cites source paths; " \
        "state the fact, or cite a man page or " + DOC_PREFIX + "NAME"
    for name in re.findall(re.escape(DOC_PREFIX) + r"([\w.-]*\w)", text):
        assert (ROOT / "docs" / name).is_file(), f"{page.name}: {DOC_PREFIX}{name} is not installed"


def test_cleanup_status_table_matches_the_code():
    """cleanup(8) states the status bits -> SMTP reply table of
    lib/mail/cleanup_stat.c (row order decides, so it must match too)."""
    header = (ROOT / "lib/mail/cleanup_stat.h").read_text(encoding="utf-8")
    bits = {m.group(1): 1 << int(m.group(2)) for m in
            re.finditer(r"#define\s+CLEANUP_STAT_(\w+)\s+\(1u << (\d+)\)", header)}
    code = (ROOT / "lib/mail/cleanup_stat.c").read_text(encoding="utf-8")
    want = [(m.group(1), bits[m.group(1)], f"{m.group(2)} {m.group(3)}",
             "temporary" if m.group(4) == "true" else "permanent")
            for m in re.finditer(r'\{CLEANUP_STAT_(\w+), "\w+", (\d+), "([\d.]+)", "[^"]*", \w+, (true|false)\}',
                                 code)]
    assert len(want) >= 9
    page = (MAN / "cleanup.8").read_text(encoding="utf-8")
    table = page[page.index(".TS\n"):page.index(".TE\n")].splitlines()
    got = [(f[0], int(f[1]), f[3], f[4]) for f in (row.split("\t") for row in table) if len(f) == 5
           and f[1].isdigit()]
    assert got == want

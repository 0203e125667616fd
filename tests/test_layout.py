"""Source-tree rules that the compiler does not check.

- lib/base/ never includes a lib/mail/ or lib/store/ header (the base
  layer has no mail knowledge); lib/mail/ never includes a lib/store/
  header (the store builds on the mail layer, not the other way);
- no daemon directory includes another program's source or headers;
- no unbounded string call (strcpy, strcat, sprintf, vsprintf, gets, stpcpy);
- every .c file starts with a comment saying what it is for."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAM_DIRS = ["master", "smtpd", "cleanup", "pickup", "qmgr", "bounce",
                "smtp-client", "local-delivery", "auth", "pop3d", "imapd",
                "pop3d-login", "imapd-login", "client-limits", "tools"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
UNSAFE = re.compile(r'\b(strcpy|strcat|sprintf|vsprintf|gets|stpcpy)\s*\(')


def c_files(*dirs):
    for d in dirs:
        base = ROOT / d
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*.[ch]"))


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return text


def layer_violations(lower, *upper):
    """Includes in lib/LOWER of a header of the layers above it."""
    headers = {p.name for u in upper for p in (ROOT / "lib" / u).glob("*.h")}
    bad = []
    for path in c_files("lib/" + lower):
        for inc in INCLUDE.findall(path.read_text()):
            if pathlib.Path(inc).name in headers or any(u + "/" in inc for u in upper):
                bad.append(f"{path.relative_to(ROOT)} includes {inc}")
    return bad


def test_base_layer_has_no_mail_includes():
    bad = layer_violations("base", "mail", "store")
    assert not bad, "\n".join(bad)


def test_mail_layer_does_not_include_the_store():
    bad = layer_violations("mail", "store")
    assert not bad, "\n".join(bad)


def test_programs_do_not_include_each_other():
    bad = []
    for prog in PROGRAM_DIRS:
        for path in c_files(prog):
            for inc in INCLUDE.findall(path.read_text()):
                if "/" in inc and not inc.startswith(prog + "/"):
                    bad.append(f"{path.relative_to(ROOT)} includes {inc}")
    assert not bad, "\n".join(bad)


def test_no_unbounded_string_calls():
    bad = []
    for path in c_files("lib", *PROGRAM_DIRS):
        code = strip_comments(path.read_text())
        for n, line in enumerate(code.splitlines(), 1):
            if UNSAFE.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_every_c_file_starts_with_a_comment():
    bad = [str(p.relative_to(ROOT)) for p in c_files("lib", "tests/bin", *PROGRAM_DIRS)
           if p.suffix == ".c" and not p.read_text().lstrip().startswith("/*")]
    assert not bad, "files without a leading comment: " + ", ".join(bad)

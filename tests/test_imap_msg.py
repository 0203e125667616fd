"""imapd's message layer (imapd/imap_msg.h) against Dovecot: real-world
and broken messages, each in a Maildir of its own, fetched through
Dovecot's imap (PREAUTH on stdin) and through build/unit/test-imap_msg
--fetch, item by item (RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY and
BODY[section]<partial>), compared as parsed IMAP values (a quoted string
and a literal with the same bytes are equal); random MIME trees the same
way; and SEARCH BODY / TEXT / HEADER on a nested message (--search). Where we differ on purpose
the item is listed in DIFFERENT with the reason. Needs root (Dovecot's
imap drops to a mail uid) and Dovecot; skips otherwise."""
import os
import pathlib
import random
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD, IS_ROOT

DOVECOT_IMAP = pathlib.Path("/usr/lib/dovecot/imap")
TOOL = BUILD / "unit" / "test-imap_msg"

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="needs root (Dovecot's imap runs as a mail uid)"),
    pytest.mark.skipif(not DOVECOT_IMAP.exists(), reason="Dovecot is not installed"),
    pytest.mark.skipif(not TOOL.exists(), reason="make test-programs first"),
]

M = {}
M['nested'] = (
"Return-Path: <alice@example.org>\n"
"Received: from mx.example.org by mail.example.net; Tue, 3 Dec 2024 10:00:00 +0100\n"
"From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\n"
"To: \"Bob, the builder\" <bob@example.net>, carol@example.net (Carol C.)\n"
"Cc: Friends:dave@example.com, \"Eve\" <eve@example.com>;\n"
"Subject: =?UTF-8?B?R3LDvMOfZQ==?= and\n"
" =?utf-8?q?caf=C3=A9?= news\n"
"Date: Tue, 03 Dec 2024 09:59:58 +0100\n"
"Message-ID: <nested.1@example.org>\n"
"In-Reply-To: <prev@example.net>\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed;\n"
"\tboundary=\"=-outer-=\"\n"
"\n"
"This is a multi-part message in MIME format.\n"
"\n"
"--=-outer-=\n"
"Content-Type: multipart/alternative; boundary=\"=-outer-=alt\"\n"
"\n"
"--=-outer-=alt\n"
"Content-Type: text/plain; charset=utf-8\n"
"Content-Transfer-Encoding: quoted-printable\n"
"\n"
"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, caf=C3=A9 tonight? This line is long enough=\n"
" to be soft-broken.\n"
"--=-outer-=alt\n"
"Content-Type: text/html; charset=\"iso-8859-1\"\n"
"Content-Transfer-Encoding: base64\n"
"\n"
"PGI+R3L832U8L2I+IGF1cyBL9mxuCg==\n"
"--=-outer-=alt--\n"
"\n"
"--=-outer-=\n"
"Content-Type: message/rfc822\n"
"Content-Disposition: inline\n"
"Content-Description: forwarded message\n"
"\n"
"From: Dave <dave@example.com>\n"
"To: alice@example.org\n"
"Subject: inner\n"
"Date: 1 Dec 2024 08:00 -0500\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=inner\n"
"\n"
"--inner\n"
"Content-Type: text/plain; charset=windows-1252\n"
"Content-Transfer-Encoding: 8bit\n"
"\n"
"\x93smart quotes\x94 and \x80uro\n"
"--inner\n"
"Content-Type: application/pdf; name=\"doc.pdf\"\n"
"Content-Transfer-Encoding: base64\n"
"Content-Disposition: attachment; filename=\"doc.pdf\"; size=12\n"
"\n"
"JVBERi0xLjQKJSVFT0YK\n"
"--inner--\n"
"--=-outer-=\n"
"Content-Type: application/octet-stream;\n"
" name*0*=utf-8'de'%C3%BCber;\n"
" name*1=\" sicht.txt\"\n"
"Content-Disposition: attachment;\n"
" filename*=UTF-8''%C3%BCbersicht.txt\n"
"Content-Language: de, en\n"
"Content-Location: http://example.org/u.txt\n"
"Content-ID: <part3@example.org>\n"
"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
"Content-Transfer-Encoding: base64\n"
"\n"
"w7xiZXJzaWNodAo=\n"
"--=-outer-=--\n"
"epilogue\n")
M['broken'] = (
"From: x@y\n"
"Subject: broken mime\n"
"Content-Type: multipart/mixed; boundary=\"b1\"\n"
"\n"
"--b1\n"
"Content-Type: multipart/related; boundary=b1x\n"
"\n"
"--b1x\n"
"Content-Type: text/plain\n"
"\n"
"inner text, no close delimiter\n"
"--b1\n"
"Content-Type: text/plain\n"
"Content-Transfer-Encoding: base64\n"
"\n"
"bad base64 !!!\n"
"--b1\n"
"Content-Type: multipart/mixed\n"
"\n"
"no boundary here\n"
"--b1\n"
"no header blank line")
M['crlf'] = M['nested'].replace("\n", "\r\n")
M['digest'] = (
"From: list@example.com\nSubject: digest\nContent-Type: multipart/digest; boundary=\"d\"\n\n"
"--d\n\nFrom: a@example.com\nSubject: one\n\nfirst\n"
"--d\nContent-Type: text/plain\n\nnot a message\n"
"--d--\n")
M['headeronly'] = "Subject: no body\nFrom: <>\nTo: undisclosed-recipients:;\n"
M['eightbit'] = "Subject: Gr\xc3\xbc\xc3\x9fe \"quoted\" \\ back\nFrom: \"M\xc3\xbcller\" <m@example.de>\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nK\xc3\xb6ln\n"
M['empty'] = ""
M['onlynl'] = "\n"
M['notype'] = "Content-Type: text\nSubject: x\n\nbody\n"
M['samebound'] = ("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\ninner\n--b--\n--b--\n")
M['prefix'] = ("Content-Type: multipart/mixed; boundary=ab\n\n--ab\nContent-Type: multipart/alternative; boundary=abc\n\n--abc\n\none\n--abc\n\ntwo\n--abc--\n--ab\n\nthree\n--ab--  \n")
M['trailing'] = ("Content-Type: multipart/mixed; boundary=\"x y\"\n\n--x y   \n\nA\n--x yjunk\n\nB\n--x y--junk\nepi\n")
M['baremsg'] = "Content-Type: message/rfc822\n\n"
M['msgnohdr'] = "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: message/rfc822\n\n--q--\n"
M['deep'] = "".join("Content-Type: multipart/mixed; boundary=%d\n\n--%d\n" % (i, i) for i in range(40)) + "\nleaf\n" + "".join("--%d--\n" % i for i in reversed(range(40)))
M['deepmsg'] = "Content-Type: message/rfc822\n\n" * 40 + "Subject: bottom\n\nbody\n"
M['barecr'] = "Subject: a\rb\nContent-Type: text/plain\n\nline\rwith cr\r\nmixed\nend"
M['params'] = ("Content-Type: text/plain; charset=\"utf-8\" ; format=flowed; delsp=yes; (comment) name=\"a\\\"b\"; x*=us-ascii'en'%41%42; y*0=\"a\"; y*1=\"b\"; y*3=\"d\"\n"
               "Content-Disposition: ATTACHMENT; FILENAME=\"x.txt\"; creation-date=\"Wed, 12 Feb 1997 16:29:51 -0500\"\n\nb\n")
M['addr'] = ("From: \"A\" <a@b>, , <c@d>, e@f.g (Name (nested) x), Undisclosed:;, \"Quoted Local\"@x.y, <@route1,@route2:r@s>, bad@, @bad, \"x\" <>, =?utf-8?b?w6k=?= <enc@x>\n"
             "Sender: \nReply-To: (only comment)\nTo: a@[127.0.0.1], \"weird\\\\\" <w@w>\nSubject:\nDate:  \nMessage-ID:<id@x>   \n\n")
M['longsubj'] = "Subject: " + "x" * 2000 + "\n\n"
M['lf_in_header'] = "Subject: a\n  b\n\tc\nX: y\n\n"
M['nul'] = "Subject: a\x00b\n\nbody\x00x\n"

ITEMS = ["RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY"] + [
    "BODY.PEEK[%s]" % s for s in (
        "", "HEADER", "TEXT", "1", "1.1", "1.2", "2", "2.1", "2.1.1", "2.2", "3", "3.1", "4",
        "1.MIME", "2.MIME", "3.MIME", "1.2.MIME", "4.MIME", "1.HEADER", "1.TEXT", "2.HEADER",
        "2.TEXT", "1.1.1", "9", "HEADER.FIELDS (Subject From X-None)",
        "HEADER.FIELDS.NOT (Subject From Received)", "2.HEADER.FIELDS (SUBJECT)")
] + ["BODY.PEEK[]<5.17>", "BODY.PEEK[1]<0.3>", "BODY.PEEK[TEXT]<10.100000>",
     "BODY.PEEK[1.2]<1.1>"]

# (message, item): why we differ from Dovecot 2.3
DIFFERENT = {
    ("notype", "BODYSTRUCTURE"): 'Content-Type "text" without a subtype: text/plain here, "text" "" there',
    ("notype", "BODY"): "the same",
    ("params", "BODYSTRUCTURE"): "RFC 2231 continuations with a gap: joined up to the gap here, raw there",
    ("params", "BODY"): "the same",
    ("addr", "ENVELOPE"): 'empty fields: "" here, " " there; ", ," is no address here',
}


def tokens(b):
    """Parse the items of a FETCH response into nested lists of
    bytes / None."""
    i = 0

    def value():
        nonlocal i
        while b[i:i + 1] == b" ":
            i += 1
        c = b[i:i + 1]
        if c == b"(":
            i += 1
            out = []
            while True:
                while b[i:i + 1] == b" ":
                    i += 1
                if b[i:i + 1] == b")":
                    i += 1
                    return out
                out.append(value())
        if c == b'"':
            i += 1
            s = b""
            while b[i:i + 1] != b'"':
                if b[i:i + 1] == b"\\":
                    i += 1
                s += b[i:i + 1]
                i += 1
            i += 1
            return s
        if c == b"{":
            j = b.index(b"}", i)
            n = int(b[i + 1:j])
            i = j + 3
            s = b[i:i + n]
            i += n
            return s
        t = re.match(rb"[^ ()\[<]+(\[[^\]]*\](<\d+>)?)?", b[i:]).group(0)
        i += len(t)
        return None if t == b"NIL" else t

    out = []
    while i < len(b):
        while b[i:i + 1] in (b" ", b"\r", b"\n"):
            i += 1
        if i >= len(b):
            break
        out.append(value())
    return {re.sub(rb"^BODY\.PEEK", b"BODY", out[k].upper()).decode(): out[k + 1]
            for k in range(0, len(out), 2)}


def dovecot_fetch(name, msg, items=ITEMS):
    """FETCH ITEMS of msg through Dovecot's imap. The directory is one
    the mail uid can reach (pytest's tmp_path is not)."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ph-imapmsg-"))
    try:
        os.chmod(tmp, 0o755)
        return dovecot_fetch_in(tmp / name, msg, items)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def dovecot_fetch_in(home, msg, items):
    for sub in ("cur", "new", "tmp"):
        (home / "Maildir" / sub).mkdir(parents=True)
    (home / "Maildir" / "cur" / "1.msg:2,").write_bytes(msg)
    conf = home / "dovecot.conf"
    conf.write_text(f"""mail_location = maildir:{home}/Maildir
ssl = no
log_path = {home}/log
base_dir = {home}/run
state_dir = {home}/state
mail_uid = 65534
mail_gid = 65534
first_valid_uid = 0
first_valid_gid = 0
protocols =
""")
    for p in [home] + list(home.rglob("*")):
        os.chown(p, 65534, 65534)
    cmd = "a select inbox\r\nb fetch 1 (%s)\r\nc logout\r\n" % " ".join(items)
    res = subprocess.run([str(DOVECOT_IMAP), "-c", str(conf)], input=cmd.encode(),
                         capture_output=True, timeout=30,
                         env={"USER": "root", "HOME": str(home), "PATH": "/usr/bin:/bin"})
    out = res.stdout
    start = out.find(b"* 1 FETCH (")
    end = out.find(b"\r\nb OK")
    assert start >= 0 and end > start, out[-500:] + res.stderr[-500:]
    return tokens(out[start + len(b"* 1 FETCH ("):end - 1])


# Random MIME trees (seeded): nesting, digests, shared and prefixed
# boundaries, junk after delimiters, missing close delimiters, headers
# without an empty line, CRLF files.
def part(r, depth):
    """One random part at depth: its header and body."""
    kind = r.choice(['text', 'text', 'multi', 'msg', 'bin']) if depth < 4 else 'text'
    h = []
    if r.random() < 0.2:
        h.append('Content-Description: d%d' % r.randint(0, 9))
    body = ''
    if kind == 'text':
        h.append('Content-Type: text/plain; charset=%s' % r.choice(['us-ascii', 'utf-8', '"iso-8859-1"']))
        if r.random() < 0.3:
            h.append('Content-Transfer-Encoding: quoted-printable')
        body = ''.join(r.choice(['line\n', 'x=\n', '\n', 'word ', '--notb\n', '- -\n', 'a\r\n'])
                       for _ in range(r.randint(0, 6)))
    elif kind == 'bin':
        h.append('Content-Type: application/octet-stream; name="a b.bin"')
        h.append('Content-Disposition: attachment; filename*=utf-8\'\'a%20b')
        h.append('Content-Transfer-Encoding: base64')
        body = 'QUJD\n' * r.randint(0, 3)
    elif kind == 'msg':
        h.append('Content-Type: message/rfc822')
        inner = part(r, depth + 1)
        body = 'From: x%d@y\nSubject: s%d\n' % (r.randint(0, 9), depth) + inner
        return '\n'.join(h) + '\n\n' + body
    else:
        b = r.choice(['b', 'bb', 'b%d' % depth, 'xyz', '=_%d' % r.randint(0, 3)])
        h.append('Content-Type: multipart/%s; boundary="%s"' % (r.choice(['mixed', 'alternative', 'digest']), b))
        pre = r.choice(['', 'preamble\n', '\n'])
        kids = [part(r, depth + 1) for _ in range(r.randint(0, 3))]
        body = pre
        for k in kids:
            body += '--' + b + r.choice(['', '', ' ', 'junk']) + '\n' + k + r.choice(['\n', '\n', '', '\n\n'])
        if r.random() < 0.8:
            body += '--' + b + '--' + r.choice(['', ' ']) + '\n'
        body += r.choice(['', 'epilogue\n', '\n'])
    sep = '\n' if r.random() < 0.95 else ''
    return '\n'.join(h) + '\n' + sep + body


def random_message(seed):
    r = random.Random(seed)
    m = "From: a@b\nSubject: t%d\n" % seed + part(r, 0)
    return m.replace("\n", "\r\n") if r.random() < 0.3 else m


RANDOM_ITEMS = ["RFC822.SIZE", "BODYSTRUCTURE"] + ["BODY.PEEK[%s]" % s for s in (
    "1", "1.1", "1.MIME", "2", "1.2.MIME", "TEXT", "1.1.1", "2.1", "2.HEADER", "1.HEADER",
    "1.TEXT")]


@pytest.mark.parametrize("seed", range(40))
def test_random_mime_same_as_dovecot(tmp_path, seed):
    msg = random_message(seed).encode("latin-1")
    path = tmp_path / "m.eml"
    path.write_bytes(msg)
    ours = tokens(subprocess.run([str(TOOL), "--fetch", str(path)] + RANDOM_ITEMS,
                                 capture_output=True, timeout=30, check=True).stdout)
    theirs = dovecot_fetch("random%d" % seed, msg, RANDOM_ITEMS)
    wrong = [k for k in theirs if ours.get(k) != theirs[k]]
    assert not wrong, msg.decode("latin-1") + "\n".join(
        f"{k}:\n  dovecot {theirs[k]!r}\n  ours    {ours.get(k)!r}" for k in wrong)


@pytest.mark.parametrize("name", sorted(M))
def test_same_as_dovecot(tmp_path, name):
    msg = M[name].encode("latin-1")
    path = tmp_path / (name + ".eml")
    path.write_bytes(msg)
    ours = subprocess.run([str(TOOL), "--fetch", str(path)] + ITEMS, capture_output=True,
                          timeout=30, check=True).stdout
    ours = tokens(ours)
    theirs = dovecot_fetch(name, msg)
    assert set(ours) == set(theirs)
    wrong = [k for k in theirs if ours[k] != theirs[k] and (name, k) not in DIFFERENT]
    assert not wrong, "\n".join(f"{k}:\n  dovecot {theirs[k]!r}\n  ours    {ours[k]!r}"
                                 for k in wrong)


SEARCHES = [("body", k) for k in (
    "PDF-1.4", "Content-Type", "subject: inner", "nested.1@", "SMART QUOTES", "boundary",
    "preamble", "tonight", "This is a multi-part", "JVBERi0", "K=C3=B6ln", "aus K", "epilogue",
    "<B>", "soft-broken", "long enough to be", "")] + [("text", k) for k in (
    "subject: inner", "INNER", "Content-Type: message", "PDF-1.4", "forwarded message",
    "dave@EXAMPLE.com", "JVBERi0", "preamble", "nested.1@", "Received: from")] + [
    ("subject", "caf"), ("subject", "GR"), ("from", "j"), ("from", "example.org"),
    ("cc", "EVE"), ("to", "carol"), ("to", "builder"), ("bcc", ""), ("subject", ""),
    ("x-none", ""), ("message-id", "NESTED.1")]


def dovecot_search(msg, searches):
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ph-imapmsg-"))
    try:
        os.chmod(tmp, 0o755)
        home = tmp / "s"
        for sub in ("cur", "new", "tmp"):
            (home / "Maildir" / sub).mkdir(parents=True)
        (home / "Maildir" / "cur" / "1.msg:2,").write_bytes(msg)
        conf = home / "dovecot.conf"
        conf.write_text(f"""mail_location = maildir:{home}/Maildir
ssl = no
log_path = {home}/log
base_dir = {home}/run
state_dir = {home}/state
mail_uid = 65534
mail_gid = 65534
first_valid_uid = 0
first_valid_gid = 0
protocols =
""")
        for p in [home] + list(home.rglob("*")):
            os.chown(p, 65534, 65534)
        cmd = "a select inbox\r\n"
        for n, (what, key) in enumerate(searches):
            crit = f'{what} "{key}"' if what in ("body", "text") else f'header {what} "{key}"'
            cmd += f"s{n} search {crit}\r\n"
        cmd += "c logout\r\n"
        out = subprocess.run([str(DOVECOT_IMAP), "-c", str(conf)], input=cmd.encode(),
                             capture_output=True, timeout=30,
                             env={"USER": "root", "HOME": str(home), "PATH": "/usr/bin:/bin"}).stdout
        return [line.strip() == b"* SEARCH 1" for line in out.split(b"\r\n")
                if line.startswith(b"* SEARCH")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_search_same_as_dovecot(tmp_path):
    msg = M["nested"].encode("latin-1")
    path = tmp_path / "m.eml"
    path.write_bytes(msg)
    theirs = dovecot_search(msg, SEARCHES)
    assert len(theirs) == len(SEARCHES)
    ours = [subprocess.run([str(TOOL), "--search", str(path), what, key], capture_output=True,
                           timeout=30, check=True).stdout.strip() == b"1"
            for what, key in SEARCHES]
    wrong = [(s, t, o) for s, t, o in zip(SEARCHES, theirs, ours) if t != o]
    assert not wrong, "\n".join(f"SEARCH {s}: dovecot {t}, ours {o}" for s, t, o in wrong)

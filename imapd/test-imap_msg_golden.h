/* test-imap_msg_golden.h - golden data for test-imap_msg.c: real-world
 * and broken messages with their ENVELOPE, BODYSTRUCTURE, BODY,
 * RFC822.SIZE and sections, as Dovecot 2.3 gives them (compared item by
 * item with Dovecot's imap on the same Maildir files when written; the
 * few places where we differ on purpose are listed in test-imap_msg.c).
 * Generated; included by test-imap_msg.c only. */

struct golden {
    const char *name;
    const char *msg;
    size_t len;
    const char *envelope, *bodystructure, *body;
    unsigned long long size;
};

struct golden_section {
    const char *name, *section;
    const char *data;
    size_t len;
};

/* generated from messages checked against Dovecot 2.3 (see the top) */
static const struct golden golden[] = {
    {"nested",
    "Return-Path: <alice@example.org>\n"
    "Received: from mx.example.org by mail.example.net; Tue, 3 Dec 2024 10:0"
    "0:00 +0100\n"
    "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\n"
    "To: \"Bob, the builder\" <bob@example.net>, carol@example.net (Carol C."
    ")\n"
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
    "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, caf=C3=A9 tonight? This line is long eno"
    "ugh=\n"
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
    "\223smart quotes\224 and \200uro\n"
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
    "epilogue\n",
     1954,
    "(\"Tue, 03 Dec 2024 09:59:58 +0100\" \"=?UTF-8?B?R3LDvMOfZQ==?= and =?u"
    "tf-8?q?caf=C3=A9?= news\" ((\"=?ISO-8859-1?Q?J=F6rg_M=FCller?=\" NIL \""
    "joerg\" \"example.org\")) ((\"=?ISO-8859-1?Q?J=F6rg_M=FCller?=\" NIL \""
    "joerg\" \"example.org\")) ((\"=?ISO-8859-1?Q?J=F6rg_M=FCller?=\" NIL \""
    "joerg\" \"example.org\")) ((\"Bob, the builder\" NIL \"bob\" \"example."
    "net\")(\"Carol C.\" NIL \"carol\" \"example.net\")) ((NIL NIL \"Friends"
    "\" NIL)(NIL NIL \"dave\" \"example.com\")(\"Eve\" NIL \"eve\" \"example"
    ".com\")(NIL NIL NIL NIL)) NIL \"<prev@example.net>\" \"<nested.1@exampl"
    "e.org>\")",
    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printabl"
    "e\" 96 1 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"iso-8859-1\""
    ") NIL NIL \"base64\" 32 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\""
    " \"=-outer-=alt\") NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL \"forwar"
    "ded message\" \"7bit\" 473 (\"1 Dec 2024 08:00 -0500\" \"inner\" ((\"Da"
    "ve\" NIL \"dave\" \"example.com\")) ((\"Dave\" NIL \"dave\" \"example.c"
    "om\")) ((\"Dave\" NIL \"dave\" \"example.com\")) ((NIL NIL \"alice\" \""
    "example.org\")) NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" \"wi"
    "ndows-1252\") NIL NIL \"8bit\" 23 0 NIL NIL NIL NIL)(\"application\" \""
    "pdf\" (\"name\" \"doc.pdf\") NIL NIL \"base64\" 20 NIL (\"attachment\" "
    "(\"filename\" \"doc.pdf\" \"size\" \"12\")) NIL NIL) \"mixed\" (\"bound"
    "ary\" \"inner\") NIL NIL NIL) 19 NIL (\"inline\" NIL) NIL NIL)(\"applic"
    "ation\" \"octet-stream\" (\"name*\" \"utf-8'de'%C3%BCber sicht.txt\") \""
    "<part3@example.org>\" NIL \"base64\" 16 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\""
    "attachment\" (\"filename*\" \"UTF-8''%C3%BCbersicht.txt\")) (\"de\" \"e"
    "n\") \"http://example.org/u.txt\") \"mixed\" (\"boundary\" \"=-outer-=\""
    ") NIL NIL NIL)",
    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printabl"
    "e\" 96 1)(\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL \"base"
    "64\" 32 0) \"alternative\")(\"message\" \"rfc822\" NIL NIL \"forwarded "
    "message\" \"7bit\" 473 (\"1 Dec 2024 08:00 -0500\" \"inner\" ((\"Dave\""
    " NIL \"dave\" \"example.com\")) ((\"Dave\" NIL \"dave\" \"example.com\""
    ")) ((\"Dave\" NIL \"dave\" \"example.com\")) ((NIL NIL \"alice\" \"exam"
    "ple.org\")) NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" \"window"
    "s-1252\") NIL NIL \"8bit\" 23 0)(\"application\" \"pdf\" (\"name\" \"do"
    "c.pdf\") NIL NIL \"base64\" 20) \"mixed\") 19)(\"application\" \"octet-"
    "stream\" (\"name*\" \"utf-8'de'%C3%BCber sicht.txt\") \"<part3@example."
    "org>\" NIL \"base64\" 16) \"mixed\")",
     2025},
    {"broken",
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
    "no header blank line",
     350,
    "(NIL \"broken mime\" ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) (("
    "NIL NIL \"x\" \"y\")) NIL NIL NIL NIL NIL)",
    "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 30 0 "
    "NIL NIL NIL NIL) \"related\" (\"boundary\" \"b1x\") NIL NIL NIL)(\"text"
    "\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 14 0 NIL NIL"
    " NIL NIL)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit"
    "\" 0 0 NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)(\"text\" \"plain\" ("
    "\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed"
    "\" (\"boundary\" \"b1\") NIL NIL NIL)",
    "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 30 0)"
    " \"related\")(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"b"
    "ase64\" 14 0)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \""
    "7bit\" 0 0) \"mixed\")(\"text\" \"plain\" (\"charset\" \"us-ascii\") NI"
    "L NIL \"7bit\" 0 0) \"mixed\")",
     371},
    {"digest",
    "From: list@example.com\n"
    "Subject: digest\n"
    "Content-Type: multipart/digest; boundary=\"d\"\n"
    "\n"
    "--d\n"
    "\n"
    "From: a@example.com\n"
    "Subject: one\n"
    "\n"
    "first\n"
    "--d\n"
    "Content-Type: text/plain\n"
    "\n"
    "not a message\n"
    "--d--\n",
     180,
    "(NIL \"digest\" ((NIL NIL \"list\" \"example.com\")) ((NIL NIL \"list\""
    " \"example.com\")) ((NIL NIL \"list\" \"example.com\")) NIL NIL NIL NIL"
    " NIL)",
    "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 42 (NIL \"one\" ((NIL NIL"
    " \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \""
    "a\" \"example.com\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"chars"
    "et\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL) 3 NIL NIL NIL "
    "NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 "
    "0 NIL NIL NIL NIL) \"digest\" (\"boundary\" \"d\") NIL NIL NIL)",
    "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 42 (NIL \"one\" ((NIL NIL"
    " \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \""
    "a\" \"example.com\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"chars"
    "et\" \"us-ascii\") NIL NIL \"7bit\" 5 0) 3)(\"text\" \"plain\" (\"chars"
    "et\" \"us-ascii\") NIL NIL \"7bit\" 13 0) \"digest\")",
     195},
    {"headeronly",
    "Subject: no body\n"
    "From: <>\n"
    "To: undisclosed-recipients:;\n",
     55,
    "(NIL \"no body\" ((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) ((N"
    "IL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) ((NIL NIL \"MISSING_MAI"
    "LBOX\" \"MISSING_DOMAIN\")) ((NIL NIL \"undisclosed-recipients\" NIL)(N"
    "IL NIL NIL NIL)) NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL"
    " NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
     58},
    {"eightbit",
    "Subject: Gr\303\274\303\237e \"quoted\" \\ back\n"
    "From: \"M\303\274ller\" <m@example.de>\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "K\303\266ln\n",
     143,
    "(NIL {23}\r\n"
    "Gr\303\274\303\237e \"quoted\" \\ back (({7}\r\n"
    "M\303\274ller NIL \"m\" \"example.de\")) (({7}\r\n"
    "M\303\274ller NIL \"m\" \"example.de\")) (({7}\r\n"
    "M\303\274ller NIL \"m\" \"example.de\")) NIL NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 7 1 NIL NI"
    "L NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 7 1)",
     149},
    {"params",
    "Content-Type: text/plain; charset=\"utf-8\" ; format=flowed; delsp=yes;"
    " (comment) name=\"a\\\"b\"; x*=us-ascii'en'%41%42; y*0=\"a\"; y*1=\"b\""
    "; y*3=\"d\"\n"
    "Content-Disposition: ATTACHMENT; FILENAME=\"x.txt\"; creation-date=\"We"
    "d, 12 Feb 1997 16:29:51 -0500\"\n"
    "\n"
    "b\n",
     244,
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\" \"dels"
    "p\" \"yes\" \"name\" {3}\r\n"
    "a\"b \"x*\" \"us-ascii'en'%41%42\" \"y\" \"ab\") NIL NIL \"7bit\" 3 1 N"
    "IL (\"ATTACHMENT\" (\"FILENAME\" \"x.txt\" \"creation-date\" \"Wed, 12 "
    "Feb 1997 16:29:51 -0500\")) NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\" \"dels"
    "p\" \"yes\" \"name\" {3}\r\n"
    "a\"b \"x*\" \"us-ascii'en'%41%42\" \"y\" \"ab\") NIL NIL \"7bit\" 3 1)",
     248},
    {"addr",
    "From: \"A\" <a@b>, , <c@d>, e@f.g (Name (nested) x), Undisclosed:;, \"Q"
    "uoted Local\"@x.y, <@route1,@route2:r@s>, bad@, @bad, \"x\" <>, =?utf-8"
    "?b?w6k=?= <enc@x>\n"
    "Sender: \n"
    "Reply-To: (only comment)\n"
    "To: a@[127.0.0.1], \"weird\\\\\" <w@w>\n"
    "Subject:\n"
    "Date:  \n"
    "Message-ID:<id@x>   \n"
    "\n",
     262,
    "(\"\" \"\" ((\"A\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")(\"Name (nested"
    ") x\" NIL \"e\" \"f.g\")(NIL NIL \"Undisclosed\" NIL)(NIL NIL NIL NIL)("
    "NIL NIL \"Quoted Local\" \"x.y\")(NIL \"@route1,@route2\" \"r\" \"s\")("
    "NIL NIL \"bad\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" \"bad\""
    ")(\"x\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")(\"=?utf-8?b?w6k=?=\""
    " NIL \"enc\" \"x\")) ((\"A\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")(\"Na"
    "me (nested) x\" NIL \"e\" \"f.g\")(NIL NIL \"Undisclosed\" NIL)(NIL NIL"
    " NIL NIL)(NIL NIL \"Quoted Local\" \"x.y\")(NIL \"@route1,@route2\" \"r"
    "\" \"s\")(NIL NIL \"bad\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX"
    "\" \"bad\")(\"x\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")(\"=?utf-8"
    "?b?w6k=?=\" NIL \"enc\" \"x\")) ((\"A\" NIL \"a\" \"b\")(NIL NIL \"c\" "
    "\"d\")(\"Name (nested) x\" NIL \"e\" \"f.g\")(NIL NIL \"Undisclosed\" N"
    "IL)(NIL NIL NIL NIL)(NIL NIL \"Quoted Local\" \"x.y\")(NIL \"@route1,@r"
    "oute2\" \"r\" \"s\")(NIL NIL \"bad\" \"MISSING_DOMAIN\")(NIL NIL \"MISS"
    "ING_MAILBOX\" \"bad\")(\"x\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\""
    ")(\"=?utf-8?b?w6k=?=\" NIL \"enc\" \"x\")) ((NIL NIL \"a\" \"[127.0.0.1"
    "]\")({6}\r\n"
    "weird\\ NIL \"w\" \"w\")) NIL NIL NIL \"<id@x>\")",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL"
    " NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
     270},
    {"samebound",
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "\n"
    "inner\n"
    "--b--\n"
    "--b--\n",
     113,
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 N"
    "IL NIL NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL) \"mixed\" ("
    "\"boundary\" \"b\") NIL NIL NIL)",
    "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0) "
    "\"mixed\") \"mixed\")",
     123},
    {"prefix",
    "Content-Type: multipart/mixed; boundary=ab\n"
    "\n"
    "--ab\n"
    "Content-Type: multipart/alternative; boundary=abc\n"
    "\n"
    "--abc\n"
    "\n"
    "one\n"
    "--abc\n"
    "\n"
    "two\n"
    "--abc--\n"
    "--ab\n"
    "\n"
    "three\n"
    "--ab--  \n",
     151,
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0 N"
    "IL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \""
    "7bit\" 3 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"abc\") NIL "
    "NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\""
    " 5 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"ab\") NIL NIL NIL)",
    "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0)("
    "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0) \"a"
    "lternative\")(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7"
    "bit\" 5 0) \"mixed\")",
     167},
    {"trailing",
    "Content-Type: multipart/mixed; boundary=\"x y\"\n"
    "\n"
    "--x y   \n"
    "\n"
    "A\n"
    "--x yjunk\n"
    "\n"
    "B\n"
    "--x y--junk\n"
    "epi\n",
     88,
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NI"
    "L NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \""
    "7bit\" 1 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"x y\") NIL NIL NI"
    "L)",
    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)(\""
    "text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) \"mix"
    "ed\")",
     98},
    {"msgnohdr",
    "Content-Type: multipart/mixed; boundary=q\n"
    "\n"
    "--q\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "--q--\n",
     83,
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NI"
    "L NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL N"
    "IL \"7bit\" 0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL) \"mixed\" (\"bounda"
    "ry\" \"q\") NIL NIL NIL)",
    "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NI"
    "L NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL N"
    "IL \"7bit\" 0 0) 0) \"mixed\")",
     89},
    {"barecr",
    "Subject: a\rb\n"
    "Content-Type: text/plain\n"
    "\n"
    "line\rwith cr\r\n"
    "mixed\n"
    "end",
     62,
    "(NIL \"a b\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 24 2 NI"
    "L NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 24 2)",
     66},
    {"lf_in_header",
    "Subject: a\n"
    "  b\n"
    "\tc\n"
    "X: y\n"
    "\n",
     24,
    "(NIL \"a b c\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL"
    " NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
     29},
    {"nul",
    "Subject: a\000b\n"
    "\n"
    "body\000x\n",
     21,
    "(NIL {5}\r\n"
    "a\357\277\275b NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1 NIL"
    " NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1)",
     24},
    {"empty",
    "",
     0,
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL"
    " NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
     0},
    {"onlynl",
    "\n",
     1,
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL"
    " NIL NIL NIL)",
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
     2},
};
static const struct golden_section golden_sections[] = {
    {"nested", "",
     "Return-Path: <alice@example.org>\r\n"
     "Received: from mx.example.org by mail.example.net; Tue, 3 Dec 2024 10:0"
     "0:00 +0100\r\n"
     "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\r\n"
     "To: \"Bob, the builder\" <bob@example.net>, carol@example.net (Carol C."
     ")\r\n"
     "Cc: Friends:dave@example.com, \"Eve\" <eve@example.com>;\r\n"
     "Subject: =?UTF-8?B?R3LDvMOfZQ==?= and\r\n"
     " =?utf-8?q?caf=C3=A9?= news\r\n"
     "Date: Tue, 03 Dec 2024 09:59:58 +0100\r\n"
     "Message-ID: <nested.1@example.org>\r\n"
     "In-Reply-To: <prev@example.net>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed;\r\n"
     "\tboundary=\"=-outer-=\"\r\n"
     "\r\n"
     "This is a multi-part message in MIME format.\r\n"
     "\r\n"
     "--=-outer-=\r\n"
     "Content-Type: multipart/alternative; boundary=\"=-outer-=alt\"\r\n"
     "\r\n"
     "--=-outer-=alt\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: quoted-printable\r\n"
     "\r\n"
     "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, caf=C3=A9 tonight? This line is long eno"
     "ugh=\r\n"
     " to be soft-broken.\r\n"
     "--=-outer-=alt\r\n"
     "Content-Type: text/html; charset=\"iso-8859-1\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "PGI+R3L832U8L2I+IGF1cyBL9mxuCg==\r\n"
     "--=-outer-=alt--\r\n"
     "\r\n"
     "--=-outer-=\r\n"
     "Content-Type: message/rfc822\r\n"
     "Content-Disposition: inline\r\n"
     "Content-Description: forwarded message\r\n"
     "\r\n"
     "From: Dave <dave@example.com>\r\n"
     "To: alice@example.org\r\n"
     "Subject: inner\r\n"
     "Date: 1 Dec 2024 08:00 -0500\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed; boundary=inner\r\n"
     "\r\n"
     "--inner\r\n"
     "Content-Type: text/plain; charset=windows-1252\r\n"
     "Content-Transfer-Encoding: 8bit\r\n"
     "\r\n"
     "\223smart quotes\224 and \200uro\r\n"
     "--inner\r\n"
     "Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "Content-Disposition: attachment; filename=\"doc.pdf\"; size=12\r\n"
     "\r\n"
     "JVBERi0xLjQKJSVFT0YK\r\n"
     "--inner--\r\n"
     "--=-outer-=\r\n"
     "Content-Type: application/octet-stream;\r\n"
     " name*0*=utf-8'de'%C3%BCber;\r\n"
     " name*1=\" sicht.txt\"\r\n"
     "Content-Disposition: attachment;\r\n"
     " filename*=UTF-8''%C3%BCbersicht.txt\r\n"
     "Content-Language: de, en\r\n"
     "Content-Location: http://example.org/u.txt\r\n"
     "Content-ID: <part3@example.org>\r\n"
     "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "w7xiZXJzaWNodAo=\r\n"
     "--=-outer-=--\r\n"
     "epilogue\r\n", 2025},
    {"nested", "HEADER",
     "Return-Path: <alice@example.org>\r\n"
     "Received: from mx.example.org by mail.example.net; Tue, 3 Dec 2024 10:0"
     "0:00 +0100\r\n"
     "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\r\n"
     "To: \"Bob, the builder\" <bob@example.net>, carol@example.net (Carol C."
     ")\r\n"
     "Cc: Friends:dave@example.com, \"Eve\" <eve@example.com>;\r\n"
     "Subject: =?UTF-8?B?R3LDvMOfZQ==?= and\r\n"
     " =?utf-8?q?caf=C3=A9?= news\r\n"
     "Date: Tue, 03 Dec 2024 09:59:58 +0100\r\n"
     "Message-ID: <nested.1@example.org>\r\n"
     "In-Reply-To: <prev@example.net>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed;\r\n"
     "\tboundary=\"=-outer-=\"\r\n"
     "\r\n", 557},
    {"nested", "TEXT",
     "This is a multi-part message in MIME format.\r\n"
     "\r\n"
     "--=-outer-=\r\n"
     "Content-Type: multipart/alternative; boundary=\"=-outer-=alt\"\r\n"
     "\r\n"
     "--=-outer-=alt\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: quoted-printable\r\n"
     "\r\n"
     "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, caf=C3=A9 tonight? This line is long eno"
     "ugh=\r\n"
     " to be soft-broken.\r\n"
     "--=-outer-=alt\r\n"
     "Content-Type: text/html; charset=\"iso-8859-1\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "PGI+R3L832U8L2I+IGF1cyBL9mxuCg==\r\n"
     "--=-outer-=alt--\r\n"
     "\r\n"
     "--=-outer-=\r\n"
     "Content-Type: message/rfc822\r\n"
     "Content-Disposition: inline\r\n"
     "Content-Description: forwarded message\r\n"
     "\r\n"
     "From: Dave <dave@example.com>\r\n"
     "To: alice@example.org\r\n"
     "Subject: inner\r\n"
     "Date: 1 Dec 2024 08:00 -0500\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed; boundary=inner\r\n"
     "\r\n"
     "--inner\r\n"
     "Content-Type: text/plain; charset=windows-1252\r\n"
     "Content-Transfer-Encoding: 8bit\r\n"
     "\r\n"
     "\223smart quotes\224 and \200uro\r\n"
     "--inner\r\n"
     "Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "Content-Disposition: attachment; filename=\"doc.pdf\"; size=12\r\n"
     "\r\n"
     "JVBERi0xLjQKJSVFT0YK\r\n"
     "--inner--\r\n"
     "--=-outer-=\r\n"
     "Content-Type: application/octet-stream;\r\n"
     " name*0*=utf-8'de'%C3%BCber;\r\n"
     " name*1=\" sicht.txt\"\r\n"
     "Content-Disposition: attachment;\r\n"
     " filename*=UTF-8''%C3%BCbersicht.txt\r\n"
     "Content-Language: de, en\r\n"
     "Content-Location: http://example.org/u.txt\r\n"
     "Content-ID: <part3@example.org>\r\n"
     "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "w7xiZXJzaWNodAo=\r\n"
     "--=-outer-=--\r\n"
     "epilogue\r\n", 1468},
    {"nested", "1",
     "--=-outer-=alt\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: quoted-printable\r\n"
     "\r\n"
     "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, caf=C3=A9 tonight? This line is long eno"
     "ugh=\r\n"
     " to be soft-broken.\r\n"
     "--=-outer-=alt\r\n"
     "Content-Type: text/html; charset=\"iso-8859-1\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "PGI+R3L832U8L2I+IGF1cyBL9mxuCg==\r\n"
     "--=-outer-=alt--\r\n", 354},
    {"nested", "1.1",
     "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, caf=C3=A9 tonight? This line is long eno"
     "ugh=\r\n"
     " to be soft-broken.", 96},
    {"nested", "1.2",
     "PGI+R3L832U8L2I+IGF1cyBL9mxuCg==", 32},
    {"nested", "1.2.MIME",
     "Content-Type: text/html; charset=\"iso-8859-1\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n", 84},
    {"nested", "2",
     "From: Dave <dave@example.com>\r\n"
     "To: alice@example.org\r\n"
     "Subject: inner\r\n"
     "Date: 1 Dec 2024 08:00 -0500\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed; boundary=inner\r\n"
     "\r\n"
     "--inner\r\n"
     "Content-Type: text/plain; charset=windows-1252\r\n"
     "Content-Transfer-Encoding: 8bit\r\n"
     "\r\n"
     "\223smart quotes\224 and \200uro\r\n"
     "--inner\r\n"
     "Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "Content-Disposition: attachment; filename=\"doc.pdf\"; size=12\r\n"
     "\r\n"
     "JVBERi0xLjQKJSVFT0YK\r\n"
     "--inner--\r\n", 473},
    {"nested", "2.HEADER",
     "From: Dave <dave@example.com>\r\n"
     "To: alice@example.org\r\n"
     "Subject: inner\r\n"
     "Date: 1 Dec 2024 08:00 -0500\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed; boundary=inner\r\n"
     "\r\n", 168},
    {"nested", "2.TEXT",
     "--inner\r\n"
     "Content-Type: text/plain; charset=windows-1252\r\n"
     "Content-Transfer-Encoding: 8bit\r\n"
     "\r\n"
     "\223smart quotes\224 and \200uro\r\n"
     "--inner\r\n"
     "Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "Content-Disposition: attachment; filename=\"doc.pdf\"; size=12\r\n"
     "\r\n"
     "JVBERi0xLjQKJSVFT0YK\r\n"
     "--inner--\r\n", 305},
    {"nested", "2.1",
     "\223smart quotes\224 and \200uro", 23},
    {"nested", "2.1.1",
     "\223smart quotes\224 and \200uro", 23},
    {"nested", "2.2",
     "JVBERi0xLjQKJSVFT0YK", 20},
    {"nested", "2.2.MIME",
     "Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "Content-Disposition: attachment; filename=\"doc.pdf\"; size=12\r\n"
     "\r\n", 146},
    {"nested", "3",
     "w7xiZXJzaWNodAo=", 16},
    {"nested", "3.MIME",
     "Content-Type: application/octet-stream;\r\n"
     " name*0*=utf-8'de'%C3%BCber;\r\n"
     " name*1=\" sicht.txt\"\r\n"
     "Content-Disposition: attachment;\r\n"
     " filename*=UTF-8''%C3%BCbersicht.txt\r\n"
     "Content-Language: de, en\r\n"
     "Content-Location: http://example.org/u.txt\r\n"
     "Content-ID: <part3@example.org>\r\n"
     "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n", 344},
    {"nested", "3.1",
     "w7xiZXJzaWNodAo=", 16},
    {"nested", "4",
     "", 0},
    {"nested", "1.1.1",
     "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, caf=C3=A9 tonight? This line is long eno"
     "ugh=\r\n"
     " to be soft-broken.", 96},
    {"nested", "HEADER.FIELDS (Subject From x-none)",
     "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\r\n"
     "Subject: =?UTF-8?B?R3LDvMOfZQ==?= and\r\n"
     " =?utf-8?q?caf=C3=A9?= news\r\n"
     "\r\n", 130},
    {"nested", "HEADER.FIELDS.NOT (Received Subject Return-Path)",
     "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\r\n"
     "To: \"Bob, the builder\" <bob@example.net>, carol@example.net (Carol C."
     ")\r\n"
     "Cc: Friends:dave@example.com, \"Eve\" <eve@example.com>;\r\n"
     "Date: Tue, 03 Dec 2024 09:59:58 +0100\r\n"
     "Message-ID: <nested.1@example.org>\r\n"
     "In-Reply-To: <prev@example.net>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed;\r\n"
     "\tboundary=\"=-outer-=\"\r\n"
     "\r\n", 372},
    {"nested", "2.HEADER.FIELDS (SUBJECT)",
     "Subject: inner\r\n"
     "\r\n", 18},
    {"nested", "1.HEADER",
     "", 0},
    {"nested", "1.TEXT",
     "", 0},
    {"broken", "1",
     "--b1x\r\n"
     "Content-Type: text/plain\r\n"
     "\r\n"
     "inner text, no close delimiter", 65},
    {"broken", "1.1",
     "inner text, no close delimiter", 30},
    {"broken", "2",
     "bad base64 !!!", 14},
    {"broken", "3",
     "no boundary here", 16},
    {"broken", "3.1",
     "", 0},
    {"broken", "4",
     "", 0},
    {"broken", "4.MIME",
     "no header blank line", 20},
    {"broken", "2.1.1",
     "", 0},
    {"digest", "1",
     "From: a@example.com\r\n"
     "Subject: one\r\n"
     "\r\n"
     "first", 42},
    {"digest", "1.HEADER",
     "From: a@example.com\r\n"
     "Subject: one\r\n"
     "\r\n", 37},
    {"digest", "1.TEXT",
     "first", 5},
    {"digest", "1.1",
     "first", 5},
    {"digest", "1.1.1",
     "", 0},
    {"digest", "2",
     "not a message", 13},
    {"digest", "2.1",
     "not a message", 13},
    {"headeronly", "HEADER",
     "Subject: no body\r\n"
     "From: <>\r\n"
     "To: undisclosed-recipients:;\r\n", 58},
    {"headeronly", "TEXT",
     "", 0},
    {"headeronly", "1",
     "", 0},
    {"headeronly", "HEADER.FIELDS (Subject)",
     "Subject: no body\r\n"
     "\r\n", 20},
    {"headeronly", "HEADER.FIELDS.NOT (Subject)",
     "From: <>\r\n"
     "To: undisclosed-recipients:;\r\n", 40},
    {"eightbit", "1",
     "K\303\266ln\r\n", 7},
    {"eightbit", "1.1",
     "", 0},
    {"eightbit", "1.MIME",
     "Subject: Gr\303\274\303\237e \"quoted\" \\ back\r\n"
     "From: \"M\303\274ller\" <m@example.de>\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: 8bit\r\n"
     "\r\n", 142},
    {"nul", "",
     "Subject: a\200b\r\n"
     "\r\n"
     "body\200x\r\n", 24},
    {"nul", "HEADER",
     "Subject: a\200b\r\n"
     "\r\n", 16},
};

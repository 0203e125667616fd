#!/bin/sh
# sandbox.sh - set up and start a posthorn instance under the checkout
# (`make run`): configuration in run/etc, queue in run/queue, mail in
# run/mail, log in run/log/maillog, loopback ports only, and a demo user
# demo@example.test (an entry of run/etc/users, users(5)) whose password
# is generated once and kept in run/demo.password: it receives mail on
# 2525 and reads it over POP3 on 2110 and over IMAP on 2143.
#
# Environment:
#   POSTHORN_BUILD            build directory, relative to the checkout or
#                             absolute (default: build)
#   POSTHORN_SANDBOX_DIR      where the instance lives (default: <checkout>/run,
#                             see below)
#   POSTHORN_SANDBOX_STATE_BASE
#                             where a root run puts the instance when the
#                             checkout is private (default /var/lib/posthorn-sandbox)
#   POSTHORN_SANDBOX_NO_START=1
#                             set everything up, run `posthorn check`, print
#                             how to connect, but do not start (for tests)
#
# tools/mkinstance.py builds the instance (the same generator as the
# tests' and bench/'s); this script picks the place, prints how to connect
# and starts it. Running it again keeps the password and the mail,
# regenerates run/etc (main.cf and master.cf are generated: put local additions in
# run/etc/main.cf.local and run/etc/master.cf.local, which are appended)
# and picks up daemons that were built since. As root it creates the
# system user "posthorn" and group "posthorn-drop" if missing, and runs
# the daemons as posthorn (auth as "posthorn-auth", pop3d-login as
# "posthorn-login", also created); as a normal user everything runs as
# that user.
#
# A checkout that the mail owner cannot reach (a clone under /root, mode
# 0700, is the usual case on a fresh machine) keeps its instance in
# $POSTHORN_SANDBOX_STATE_BASE/<checkout name>-<hash of its path> instead,
# and run/ in the checkout becomes a symbolic link to it, so run/etc,
# run/log/maillog and the rest are where the README says. No mode is
# changed to make this work.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=${POSTHORN_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
RUN=${POSTHORN_SANDBOX_DIR:-}
STATE_BASE=${POSTHORN_SANDBOX_STATE_BASE:-/var/lib/posthorn-sandbox}
NO_START=${POSTHORN_SANDBOX_NO_START:-0}

die() { echo "sandbox: $*" >&2; exit 1; }

PH=$BUILD/bin/posthorn
[ -x "$PH" ] || die "$PH is missing; run make first"
[ -x "$BUILD/libexec/master" ] || die "$BUILD/libexec/master is missing; run make first"

# ------------------------------------------------------------------ accounts
# tools/mkinstance.py builds the instance; as root it first makes sure the
# accounts exist ("posthorn", "posthorn-drop" and the mailbox owner "vmail").
MKINSTANCE=$ROOT/tools/mkinstance.py
[ -f "$MKINSTANCE" ] || die "$MKINSTANCE is missing"
command -v python3 >/dev/null 2>&1 || die "python3 is missing (sh tools/install-deps.sh)"
ACCOUNTS=$(python3 "$MKINSTANCE" --accounts --vmail-owner vmail) || die "cannot set up the accounts"
set -- $ACCOUNTS
MAIL_OWNER=$1
if [ "$(id -u)" = 0 ]; then
    # The daemons drop to $MAIL_OWNER and must reach the queue and the
    # log. A private checkout keeps the instance outside it (see above).
    if [ -z "$RUN" ]; then
        RUN=$ROOT/run
        if ! runuser -u "$MAIL_OWNER" -- test -x "$ROOT" 2>/dev/null \
            && ! { [ -d "$RUN" ] && runuser -u "$MAIL_OWNER" -- test -x "$RUN/." 2>/dev/null; }; then
            KEY=$(basename "$ROOT")-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
            if [ ! -d "$STATE_BASE" ]; then
                (umask 022 && mkdir -p "$STATE_BASE")
            fi
            # Only a directory that only root can change is a safe home.
            { [ "$(stat -c %u "$STATE_BASE")" = 0 ] && [ ! -L "$STATE_BASE" ] \
                && [ -z "$(find "$STATE_BASE" -maxdepth 0 -perm /022)" ]; } \
                || die "$STATE_BASE must be a directory owned by root and writable only by root"
            (umask 022 && mkdir -p "$STATE_BASE/$KEY")
            if [ -L "$RUN" ] || [ ! -e "$RUN" ]; then
                ln -sfn "$STATE_BASE/$KEY" "$RUN"
                RUN=$STATE_BASE/$KEY
                echo "sandbox: $ROOT is private to root; the instance lives in $RUN ($ROOT/run links to it)"
            else
                # an earlier run/ directory: left as it is (it may hold mail)
                RUN=$STATE_BASE/$KEY
                echo "sandbox: $ROOT is private to root; the instance lives in $RUN" \
                    "(the old $ROOT/run is left as it is)"
            fi
        fi
    fi
    mkdir -p "$RUN"
    if ! runuser -u "$MAIL_OWNER" -- test -x "$RUN/." 2>/dev/null; then
        die "user $MAIL_OWNER cannot reach $RUN: a directory on that path is not searchable by other users; choose another POSTHORN_SANDBOX_DIR"
    fi
else
    RUN=${RUN:-$ROOT/run}
fi

mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd -P)
ETC=$RUN/etc
DOMAIN=example.test
MAILDIR=$RUN/mail/$DOMAIN/demo/

# ------------------------------------------------------------ the instance
# Loopback ports 2525..., every service (those not built yet commented
# out; smtp-client, the "smtp" unix service, included once built),
# self-signed RSA and ECDSA certificates (run/etc/tls, kept across runs),
# cleartext logins on 2110 and 2143 only (--cleartext-login: loopback, for
# the demo commands and the tests), the demo user in the users file
# $ETC/users (built into users.auth for auth and users.mailbox for
# delivery) with its password in $RUN/demo.password; main.cf.local and
# master.cf.local are appended.
python3 "$MKINSTANCE" "$RUN" --build "$BUILD" --sandbox-ports --tls --cleartext-login \
    --commands link \
    --vmail-owner vmail --param inet_protocols=ipv4 \
    --user "demo@$DOMAIN" \
    --alias "postmaster: demo@$DOMAIN" --alias "root: demo@$DOMAIN" \
    --alias "MAILER-DAEMON: postmaster" --alias "abuse: postmaster" \
    || die "tools/mkinstance.py could not build the instance in $RUN"
PWFILE=$RUN/demo.password
PASSWORD=$(cat "$PWFILE")

# An mbsync (isync) configuration for the demo user: every folder of the
# IMAP account, both ways, with a local Maildir copy in $RUN/demo-sync.
MBSYNCRC=$RUN/demo.mbsyncrc
(umask 077 && cat >"$MBSYNCRC" <<EOF
# demo.mbsyncrc - made by tools/sandbox.sh: mbsync -c $MBSYNCRC -a
IMAPAccount demo
Host 127.0.0.1
Port 2143
User demo@$DOMAIN
PassCmd "cat $PWFILE"
SSLType None
AuthMechs PLAIN LOGIN

IMAPStore demo-remote
Account demo

MaildirStore demo-local
Path $RUN/demo-sync/
Inbox $RUN/demo-sync/INBOX
SubFolders Verbatim

Channel demo
Far :demo-remote:
Near :demo-local:
Patterns *
Create Both
Expunge Both
SyncState *
EOF
)
mkdir -p "$RUN/demo-sync"

# -------------------------------------------------- check (and repair)
if ! "$PH" -c "$ETC" check; then
    die "posthorn check found errors (above); not starting"
fi

# ------------------------------------------------------------------ TLS
# tools/mkinstance.py --tls made $ETC/tls once (kept across runs): a
# self-signed RSA and ECDSA certificate for localhost and 127.0.0.1, their
# keys root-only, and trust.pem (both certificates) for the clients.
TLS=$ETC/tls
TRUST=$TLS/trust.pem
FP_RSA=$(openssl x509 -noout -fingerprint -sha256 -in "$TLS/cert.pem" | sed 's/^.*=//')
FP_EC=$(openssl x509 -noout -fingerprint -sha256 -in "$TLS/eccert.pem" | sed 's/^.*=//')
# a note for each sandbox port master.cf does not serve (its line is
# commented out: the daemon, or what the port needs, is not built yet)
not_served() {
    for p in 2525 2587 2465 2110 2995 2143 2993; do
        grep -q "^$p[[:space:]]" "$ETC/master.cf" \
            || echo "  $p is commented out in master.cf: this build cannot serve it yet"
    done
}

cat <<EOF

posthorn sandbox in $RUN (loopback only, 127.0.0.1):
  smtp        2525 (STARTTLS offered)     submission  2587 (STARTTLS, then AUTH: required)
  smtps       2465 (implicit TLS, AUTH)
  pop3        2110 (STLS offered)         pop3s       2995 (implicit TLS)
  imap        2143 (STARTTLS offered)     imaps       2993 (implicit TLS)
EOF
not_served
if grep -q "^2525[[:space:]].*smtp-front" "$ETC/master.cf"; then
    cat <<EOF
  2525 is held by smtp-front (the role of Postfix's postscreen) and
  passed on to smtpd after the client's first command: clients outside
  mynetworks (here all of 127.0.0.0/8 is inside) wait smtp_front_greet_wait
  for the end of the 220 greeting and are refused if they talk first
  (smtp-front(8); tools/mkinstance.py --no-front runs smtpd on it instead)
EOF
fi
cat <<EOF
  services whose daemons are not built yet are commented out in
  $ETC/master.cf
  cleartext logins: POP3 USER/PASS on 2110 and IMAP LOGIN on 2143 work
  without TLS here, only because the sandbox listens on loopback and the
  demo commands below (and the tests) use them; SMTP AUTH needs TLS (2587
  after STARTTLS, or 2465)
  mail for other domains leaves through smtp-client (the "smtp" service)
  to their MX hosts; to keep it local set relayhost (e.g. [127.0.0.1]:2526
  for an smtp-sink) in $ETC/main.cf.local
certificate:  self-signed, for localhost and 127.0.0.1 (kept in $TLS)
  RSA    SHA256 $FP_RSA
  ECDSA  SHA256 $FP_EC
  clients trust it with $TRUST
try:          swaks --server 127.0.0.1:2525 --to demo@$DOMAIN
              echo hi | POSTHORN_CONFIG_DIR=$ETC $RUN/bin/sendmail demo@$DOMAIN
demo user:    demo@$DOMAIN
password:     $PASSWORD   (kept in $PWFILE)
mailbox:      $MAILDIR
send with TLS and AUTH (submission 2587, submissions 2465):
  swaks:      swaks --server 127.0.0.1:2587 --tls --auth PLAIN -au demo@$DOMAIN -ap '$PASSWORD' \\
                  --from demo@$DOMAIN --to demo@$DOMAIN
              swaks --server 127.0.0.1:2465 --tlsc --auth PLAIN -au demo@$DOMAIN -ap '$PASSWORD' \\
                  --from demo@$DOMAIN --to demo@$DOMAIN
  curl:       curl --ssl-reqd --cacert $TRUST smtp://localhost:2587 -u 'demo@$DOMAIN:$PASSWORD' \\
                  --mail-from demo@$DOMAIN --mail-rcpt demo@$DOMAIN -T msg.eml
look at a TLS handshake (certificate, verification, protocol, cipher):
  openssl s_client -connect 127.0.0.1:2525 -starttls smtp -CAfile $TRUST -verify_hostname localhost
  openssl s_client -connect 127.0.0.1:2465 -CAfile $TRUST       (implicit TLS: 2465, 2995, 2993)
  openssl s_client -connect 127.0.0.1:2110 -starttls pop3 -CAfile $TRUST    (-starttls imap: 2143)
read it over POP3 on 2110 (the user name is the whole address):
  curl:       curl -s pop3://127.0.0.1:2110/ -u 'demo@$DOMAIN:$PASSWORD'      (list)
              curl -s pop3://127.0.0.1:2110/1 -u 'demo@$DOMAIN:$PASSWORD'     (message 1)
              curl -s --ssl-reqd --cacert $TRUST pop3://localhost:2110/ -u 'demo@$DOMAIN:$PASSWORD'  (STLS)
              curl -s --cacert $TRUST pop3s://localhost:2995/ -u 'demo@$DOMAIN:$PASSWORD'   (pop3s)
  fetchmail:  fetchmail -p POP3 -P 2110 -u demo@$DOMAIN --keep --sslproto '' \\
                  --mda 'cat >> demo.mbox' 127.0.0.1        (asks for the password)
              fetchmail -p POP3 -P 2995 --ssl --sslcertck --sslcertfile $TRUST -u demo@$DOMAIN \\
                  --keep --mda 'cat >> demo.mbox' localhost (pop3s)
  mutt:       mutt -f 'pop://demo%40$DOMAIN@127.0.0.1:2110/' \\
                  -e 'set ssl_starttls=no ssl_force_tls=no pop_authenticators=plain:user'
  python3:    python3 -c 'import poplib; p = poplib.POP3("127.0.0.1", 2110); p.user("demo@$DOMAIN"); p.pass_(open("$PWFILE").read().strip()); print(p.stat())'
read it over IMAP on 2143 (the same user name and password):
  curl:       curl -s imap://127.0.0.1:2143/ -u 'demo@$DOMAIN:$PASSWORD'            (folders)
              curl -s 'imap://127.0.0.1:2143/INBOX;UID=1' -u 'demo@$DOMAIN:$PASSWORD' (message 1)
              curl -s 'imap://127.0.0.1:2143/INBOX?UNSEEN' -u 'demo@$DOMAIN:$PASSWORD' (search)
              curl -s -T msg.eml imap://127.0.0.1:2143/INBOX -u 'demo@$DOMAIN:$PASSWORD' (append)
              curl -s --ssl-reqd --cacert $TRUST imap://localhost:2143/ -u 'demo@$DOMAIN:$PASSWORD'  (STARTTLS)
              curl -s --cacert $TRUST imaps://localhost:2993/ -u 'demo@$DOMAIN:$PASSWORD'   (imaps)
  mutt:       mutt -f 'imap://demo%40$DOMAIN@127.0.0.1:2143/INBOX' \\
                  -e 'set ssl_starttls=no ssl_force_tls=no imap_authenticators=plain:login'
  mbsync:     mbsync -c $MBSYNCRC -a      (both ways, every folder, into $RUN/demo-sync/)
  fetchmail:  fetchmail -p IMAP -P 2143 -u demo@$DOMAIN --keep --sslproto '' \\
                  --mda 'cat >> demo.mbox' 127.0.0.1        (asks for the password)
  python3:    python3 -c 'import imaplib; m = imaplib.IMAP4("127.0.0.1", 2143); m.login("demo@$DOMAIN", open("$PWFILE").read().strip()); print(m.select("INBOX"))'
              python3 -c 'import imaplib, ssl; m = imaplib.IMAP4_SSL("localhost", 2993, ssl_context=ssl.create_default_context(cafile="$TRUST")); m.login("demo@$DOMAIN", open("$PWFILE").read().strip()); print(m.select("INBOX"))'
log:          $RUN/log/maillog  (each TLS session logs its protocol, cipher and SNI)
config:       $ETC  (try: $PH -c $ETC conf -n)
about TLS:    man -l man/posthorn-tls.7 (certificates, policies, how to test them)
stop:         Ctrl-C, or from another terminal: $PH -c $ETC stop
EOF

if [ "$NO_START" = 1 ]; then
    echo "sandbox: POSTHORN_SANDBOX_NO_START=1: set up, not started"
    exit 0
fi
if "$PH" -c "$ETC" status >/dev/null 2>&1; then
    die "already running; stop it first: $PH -c $ETC stop"
fi
echo "starting posthorn in the foreground..."
exec "$PH" -c "$ETC" start -F

#!/bin/sh
# sandbox.sh - set up and start a posthorn instance under the checkout
# (`make run`): configuration in run/etc, queue in run/queue, mail in
# run/mail, log in run/log/maillog, loopback ports only, and a demo user
# demo@example.test whose password is generated once and kept in
# run/demo.password.
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
# Running it again keeps the password and the mail, regenerates run/etc
# (main.cf and master.cf are generated: put local additions in
# run/etc/main.cf.local and run/etc/master.cf.local, which are appended)
# and picks up daemons that were built since. As root it creates the
# system user "posthorn" and group "posthorn-drop" if missing, and runs
# the daemons as posthorn; as a normal user everything runs as that user.
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
if [ "$(id -u)" = 0 ]; then
    MAIL_OWNER=posthorn
    SETGID_GROUP=posthorn-drop
    if ! getent group "$SETGID_GROUP" >/dev/null; then
        groupadd --system "$SETGID_GROUP"
        echo "sandbox: created system group $SETGID_GROUP"
    fi
    NOLOGIN=/usr/sbin/nologin
    [ -x "$NOLOGIN" ] || NOLOGIN=/bin/false
    if ! getent passwd "$MAIL_OWNER" >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell "$NOLOGIN" --comment "posthorn mail system" "$MAIL_OWNER"
        echo "sandbox: created system user $MAIL_OWNER"
    fi
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
    # Virtual mailboxes belong to one mail store account of their own.
    VMAIL_OWNER=vmail
    if ! getent passwd "$VMAIL_OWNER" >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell "$NOLOGIN" --comment "posthorn virtual mailboxes" "$VMAIL_OWNER"
        echo "sandbox: created system user $VMAIL_OWNER"
    fi
else
    MAIL_OWNER=$(id -un)
    SETGID_GROUP=$(id -gn)
    VMAIL_OWNER=$MAIL_OWNER
    RUN=${RUN:-$ROOT/run}
fi

mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd -P)
ETC=$RUN/etc
DOMAIN=example.test
MAILDIR=$RUN/mail/$DOMAIN/demo/
mkdir -p "$ETC" "$RUN/log" "$RUN/mail" "$RUN/spool"
chmod 1777 "$RUN/spool"

# known PARAM - true if this build knows the main.cf parameter
known() { "$PH" -c "$ETC" conf -d "$1" >/dev/null 2>&1; }

# --------------------------------------------------------------- TLS (demo)
TLS_CERT=$ETC/tls/cert.pem
TLS_KEY=$ETC/tls/key.pem
if [ ! -s "$TLS_CERT" ] || [ ! -s "$TLS_KEY" ]; then
    mkdir -p "$ETC/tls"
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,DNS:mail.$DOMAIN,IP:127.0.0.1" \
        -keyout "$TLS_KEY" -out "$TLS_CERT" >/dev/null 2>&1) \
        || die "openssl could not make a self-signed certificate"
fi
chmod 0644 "$TLS_CERT"
chmod 0600 "$TLS_KEY"
[ "$(id -u)" = 0 ] && chown "$MAIL_OWNER" "$TLS_KEY"

# ---------------------------------------------------------------- main.cf
# opt NAME VALUE - a parameter line, active only if this build knows NAME
opt() {
    if known "$1"; then
        echo "$1 = $2"
    else
        echo "#$1 = $2	# not known to this build yet"
    fi
}

{
    cat <<EOF
# main.cf for the posthorn sandbox - GENERATED by tools/sandbox.sh on each
# "make run"; put local additions in $ETC/main.cf.local.
queue_directory = $RUN/queue
data_directory = $RUN/data
daemon_directory = $BUILD/libexec
command_directory = $BUILD/bin
maillog_file = $RUN/log/maillog
mail_owner = $MAIL_OWNER
setgid_group = $SETGID_GROUP
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
mydestination = localhost
EOF
    opt virtual_mailbox_domains "$DOMAIN"
    opt virtual_mailbox_maps "cdb:$ETC/vmailbox"
    opt virtual_mailbox_owner "$VMAIL_OWNER"
    opt auth_user_maps "cdb:$ETC/users"
    opt alias_maps "cdb:$ETC/aliases"
    # local (system-user) mail stays inside the sandbox too
    opt mail_spool_directory "$RUN/spool"
    if [ -f "$ETC/main.cf.local" ]; then
        echo "# ---- from main.cf.local"
        cat "$ETC/main.cf.local"
    fi
} > "$ETC/main.cf.new"
mv "$ETC/main.cf.new" "$ETC/main.cf"

# -------------------------------------------------------------- master.cf
# svc SERVICE TYPE PRIVATE UNPRIV CHROOT WAKEUP MAXPROC COMMAND [-o N=V]...
# Writes the entry, or comments it out if the daemon is not built yet.
# An -o override whose parameter this build does not know is left out.
svc() {
    _line=$(printf '%-15s %-5s %-7s %-7s %-7s %-7s %-7s %s' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8")
    _cmd=$8
    shift 8
    _pre=""
    if [ ! -x "$BUILD/libexec/$_cmd" ]; then
        _pre="#"
        echo "# $_cmd: not built yet"
    fi
    echo "$_pre$_line"
    while [ $# -ge 2 ] && [ "$1" = "-o" ]; do
        _name=${2%%=*}
        if known "$_name"; then
            echo "$_pre  -o $2"
        else
            echo "#  -o $2	# not known to this build yet"
        fi
        shift 2
    done
}

{
    cat <<EOF
# master.cf for the posthorn sandbox - GENERATED by tools/sandbox.sh on each
# "make run"; put local additions in $ETC/master.cf.local.
# Daemons that are not built yet are commented out.
# service      type  private unpriv  chroot  wakeup  maxproc command + args
EOF
    svc 2525 inet n - n - - smtpd -o syslog_name=posthorn/smtp
    svc 2587 inet n - n - - smtpd -o syslog_name=posthorn/submission \
        -o smtpd_sasl_auth_enable=yes
    svc 2465 inet n - n - - smtpd -o syslog_name=posthorn/smtps \
        -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes
    svc pickup fifo n - n 60 1 pickup
    svc cleanup unix n - n - 0 cleanup
    svc qmgr fifo n - n 300 1 qmgr
    svc bounce unix - - n - 0 bounce
    svc smtp unix - - n - - smtp-client
    svc local unix - n n - - local-delivery
    svc auth unix - - n - - auth
    svc 2110 inet n - n - - pop3d-login
    svc 2995 inet n - n - - pop3d-login -o pop3d_tls_wrappermode=yes
    svc 2143 inet n - n - - imapd-login
    svc 2993 inet n - n - - imapd-login -o imapd_tls_wrappermode=yes
    svc pop3d unix - - n - - pop3d
    svc imapd unix - - n - - imapd
    if [ -f "$ETC/master.cf.local" ]; then
        echo "# ---- from master.cf.local"
        cat "$ETC/master.cf.local"
    fi
} > "$ETC/master.cf.new"
mv "$ETC/master.cf.new" "$ETC/master.cf"

# ------------------------------------------------------------- demo user
PWFILE=$RUN/demo.password
if [ ! -s "$PWFILE" ]; then
    (umask 077 && openssl rand -base64 18 | tr -d '/+=\n' | cut -c1-16 > "$PWFILE.new")
    mv "$PWFILE.new" "$PWFILE"
fi
chmod 0600 "$PWFILE"
PASSWORD=$(cat "$PWFILE")

USERS=$ETC/users
# Rehash only when the password changed (or the file is missing), so a
# re-run leaves the users table as it was.
if [ ! -s "$USERS" ] || [ "$PWFILE" -nt "$USERS" ] || ! grep -q "maildir=$MAILDIR\$" "$USERS"; then
    HASH=$(printf '%s' "$PASSWORD" | openssl passwd -6 -stdin 2>/dev/null) \
        || HASH=$(printf '%s' "$PASSWORD" | python3 -c \
            'import crypt,sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_SHA512)))' 2>/dev/null) \
        || die "neither openssl nor python3 can make a SHA-512 crypt hash"
    case $HASH in '$6$'*) ;; *) die "unexpected password hash format" ;; esac
    (umask 077 && {
        echo "# users - virtual mail users: address, password hash, mailbox."
        echo "# Build with: $PH -c $ETC map cdb:$USERS"
        echo "demo@$DOMAIN {SHA512-CRYPT}$HASH  maildir=$MAILDIR"
    } > "$USERS.new")
    mv "$USERS.new" "$USERS"
fi
if [ "$(id -u)" = 0 ]; then
    chown "root:$MAIL_OWNER" "$USERS"
    chmod 0640 "$USERS"
else
    chmod 0600 "$USERS"
fi
"$PH" -c "$ETC" map "cdb:$USERS"
[ "$(id -u)" = 0 ] && chown "root:$MAIL_OWNER" "$USERS.cdb"

# The virtual mailbox table: address -> Maildir (no secrets in it).
{
    echo "# vmailbox - virtual mailboxes: address, Maildir path (ends in /)."
    echo "demo@$DOMAIN $MAILDIR"
} > "$ETC/vmailbox.new"
if ! cmp -s "$ETC/vmailbox.new" "$ETC/vmailbox" 2>/dev/null || [ ! -s "$ETC/vmailbox.cdb" ]; then
    mv "$ETC/vmailbox.new" "$ETC/vmailbox"
    chmod 0644 "$ETC/vmailbox"
    "$PH" -c "$ETC" map "cdb:$ETC/vmailbox"
else
    rm -f "$ETC/vmailbox.new"
fi

# Local aliases (aliases(5) syntax), for mail to postmaster@localhost.
if [ ! -s "$ETC/aliases" ]; then
    cat > "$ETC/aliases" <<EOF
# aliases - local aliases for the sandbox (rebuild: newaliases, or
# posthorn -c $ETC map -a cdb:$ETC/aliases)
postmaster: demo@$DOMAIN
root: demo@$DOMAIN
MAILER-DAEMON: postmaster
abuse: postmaster
EOF
fi
if [ ! -s "$ETC/aliases.cdb" ] || [ "$ETC/aliases" -nt "$ETC/aliases.cdb" ]; then
    "$PH" -c "$ETC" map -a "cdb:$ETC/aliases"
fi

for sub in cur new tmp; do
    mkdir -p "$MAILDIR$sub"
done
chmod 0700 "$RUN/mail/$DOMAIN/demo" "$MAILDIR"cur "$MAILDIR"new "$MAILDIR"tmp
[ "$(id -u)" = 0 ] && chown -R "$VMAIL_OWNER:" "$RUN/mail"

# -------------------------------------------------- check (and repair)
if ! "$PH" -c "$ETC" check; then
    die "posthorn check found errors (above); not starting"
fi

cat <<EOF

posthorn sandbox in $RUN (loopback only, 127.0.0.1):
  smtp        2525        submission  2587          smtps  2465
  pop3        2110        pop3s       2995
  imap        2143        imaps       2993
  services whose daemons are not built yet are commented out in
  $ETC/master.cf (TLS, AUTH, POP3 and IMAP come with later daemons)
try:          swaks --server 127.0.0.1:2525 --to demo@$DOMAIN
              echo hi | POSTHORN_CONFIG_DIR=$ETC $BUILD/bin/sendmail demo@$DOMAIN
demo user:    demo@$DOMAIN
password:     $PASSWORD   (kept in $PWFILE)
mailbox:      $MAILDIR
log:          $RUN/log/maillog
config:       $ETC  (try: $PH -c $ETC conf -n)
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

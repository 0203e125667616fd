#!/bin/sh
# install-deps.sh - install the Debian packages posthorn needs to build and test.
#
# As root: apt-get update, then apt-get install what is missing.
# As another user: print the exact apt-get line and fail, changing nothing.
# POSTHORN_SKIP_DEPS=1 skips the step (for packagers who manage builds).
set -e
[ "${POSTHORN_SKIP_DEPS:-0}" = 1 ] && exit 0

PKGS="make gcc libc6-dev pkg-config libssl-dev libdb-dev libcdb-dev tinycdb libcrypt-dev libunbound-dev \
python3 python3-pytest openssl swaks curl procps iproute2 groff-base man-db strace dnsmasq-base postfix \
fetchmail mutt isync dovecot-core dovecot-pop3d dovecot-imapd"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PKGS="$PKGS nodejs npm"
fi
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# imapflow (npm), the strict third-party IMAP parser of
# tests/test_conformance.py, goes into tests/node_modules (not tracked);
# node and npm come from Debian when the machine has neither. Best
# effort: without them that one test skips.
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
IMAPFLOW_VERSION=2.10.2
imapflow() {
    [ -f "$ROOT/tests/node_modules/imapflow/package.json" ] \
        && grep -q "\"version\": \"$IMAPFLOW_VERSION\"" "$ROOT/tests/node_modules/imapflow/package.json" \
        && return 0
    command -v npm >/dev/null 2>&1 || return 0
    echo "posthorn: installing imapflow $IMAPFLOW_VERSION (npm) into tests/node_modules for the tests"
    npm install --prefix "$ROOT/tests" --no-save --no-package-lock --no-audit --no-fund \
        --loglevel=error "imapflow@$IMAPFLOW_VERSION" >/dev/null \
        || echo "posthorn: npm could not install imapflow; its conformance test will skip" >&2
}

[ -z "$missing" ] && { imapflow; exit 0; }

if [ "$(id -u)" != 0 ]; then
    echo "posthorn: missing Debian packages:$missing" >&2
    echo "posthorn: run as root:  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
echo "posthorn: installing missing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# postfix is here for its test and bench programs (smtp-sink, smtp-source)
# and bench/'s side-by-side runs: "No configuration" installs it without
# a main.cf and starts nothing, so it never takes port 25 or the mail log.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# fetchmail and mutt are POP3 and IMAP clients for tests/test_pop3_clients.py
# and tests/test_imap_clients.py, isync (mbsync) an IMAP one;
# dovecot-core, dovecot-pop3d and dovecot-imapd are bench/access's and
# tests/test_conformance.py's reference server, which they run privately
# on ports of their own. Their maintainer scripts
# would start dovecot (on 110, 143, 993, 995) and fetchmail's init
# script: a policy-rc.d that answers 101 ("action forbidden") for the
# time of the install keeps every service stopped, and on a systemd host
# dovecot is then disabled too, so nothing of theirs ever listens.
# A policy-rc.d that is there already (containers ship one) is left alone.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# posthorn install-deps.sh: start no service while installing\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
if [ "$made_policy" = 1 ]; then
    rm -f "$policy"
    trap - EXIT
fi
case " $missing " in
*" dovecot-core "* | *" dovecot-pop3d "* | *" dovecot-imapd "*)
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    fi ;;
esac
imapflow

#!/bin/sh
# install-deps.sh - install the Debian packages posthorn needs to build and test.
#
# As root: apt-get update, then apt-get install what is missing.
# As another user: print the exact apt-get line and fail, changing nothing.
# POSTHORN_SKIP_DEPS=1 skips the step (for packagers who manage builds).
set -e
[ "${POSTHORN_SKIP_DEPS:-0}" = 1 ] && exit 0

PKGS="make gcc libc6-dev pkg-config libssl-dev libdb-dev libcdb-dev tinycdb libcrypt-dev libunbound-dev \
python3 python3-pytest openssl swaks curl procps iproute2 groff-base man-db strace dnsmasq-base postfix"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

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
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/sh
# dev.sh - the README's two commands, for a fresh Debian 12 machine.
#
#   sh tools/dev.sh run     build and start a sandbox instance under run/
#   sh tools/dev.sh check   build and run the whole test suite
#
# It first makes sure make and a compiler exist (a fresh Debian may lack
# them), then hands over to the Makefile, which installs the remaining
# packages (tools/install-deps.sh).
set -e
cd "$(dirname "$0")/.."
if ! command -v make >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends make gcc libc6-dev >/dev/null
    else
        echo "posthorn: run as root first:  apt-get update && apt-get install -y make gcc libc6-dev" >&2
        exit 1
    fi
fi
case "${1:-}" in
run)   shift; exec make --no-print-directory -j2 run "$@" ;;
check) shift; exec make --no-print-directory -j2 check "$@" ;;
*)     echo "usage: sh tools/dev.sh run|check" >&2; exit 2 ;;
esac

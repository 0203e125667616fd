#!/bin/sh
# build.sh - build the fuzz targets (see README.md) into build-fuzz/
# (or $FUZZ_OUT). `make fuzz` runs it through run.sh; `make check` does
# not need it (the Makefile builds replay binaries in $(B)/fuzz/).
#
#   sh tests/fuzz/build.sh libfuzzer   clang, -fsanitize=fuzzer,address,undefined
#   sh tests/fuzz/build.sh plain       cc + ASan/UBSan, with driver.c's main()
#                                      (replay, and its blind mutation loop)
#   sh tests/fuzz/build.sh auto        libfuzzer if clang can link it, else plain
#
# Prints the mode it used on its last line ("mode: libfuzzer|plain").
set -eu
mode=${1:-auto}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$top/build-fuzz}
cd "$top"

if [ "$mode" = auto ]; then
    mode=plain
    probe=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void) d; (void) n; return 0; }\n' >"$probe/t.c"
    if ${CLANG:-clang} -fsanitize=fuzzer -o "$probe/t" "$probe/t.c" >/dev/null 2>&1; then
	mode=libfuzzer
    fi
    rm -rf "$probe"
fi
case $mode in
libfuzzer)
    CC_FUZZ=${CLANG:-clang}
    SAN="-fsanitize=fuzzer-no-link,address,undefined"
    LINK_SAN="-fsanitize=fuzzer,address,undefined"
    MAIN="" ;;
plain)
    CC_FUZZ=${CC:-cc}
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
    LINK_SAN="$SAN"
    MAIN=tests/fuzz/driver.c ;;
*)
    echo "usage: $0 libfuzzer|plain|auto" >&2; exit 2 ;;
esac

BDB_FLAG=""
BDB_LIB=""
if [ -e /usr/include/db.h ]; then BDB_FLAG="-DHAVE_BDB=1"; BDB_LIB="-ldb"; fi
FLAGS="-std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Ilib/base -Ilib/mail -fno-omit-frame-pointer
 -DDEF_CONFIG_DIR=\"/etc/posthorn\" -DDEF_DAEMON_DIR=\"/usr/libexec/posthorn\"
 -DDEF_COMMAND_DIR=\"/usr/sbin\" $BDB_FLAG $(pkg-config --cflags openssl 2>/dev/null || true)"
LIBS="-lcdb -lcrypt $(pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto) -lunbound $BDB_LIB"

# the library and the helpers, compiled once per mode
obj="$out/obj-$mode"
mkdir -p "$obj"
objs=""
for src in lib/base/*.c lib/mail/*.c tests/fuzz/mem_stream.c $MAIN; do
    case $src in */test-*) continue ;; esac
    o="$obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')"
    if [ ! -e "$o" ] || [ "$src" -nt "$o" ]; then
	$CC_FUZZ $FLAGS $SAN -c -o "$o" "$src"
    fi
    objs="$objs $o"
done
for t in tests/fuzz/fuzz_*.c; do
    name=$(basename "$t" .c)
    $CC_FUZZ $FLAGS $SAN -c -o "$obj/$name.o" "$t"
    $CC_FUZZ $LINK_SAN -o "$out/$name" "$obj/$name.o" $objs $LIBS
done
echo "built in $out"
echo "mode: $mode"

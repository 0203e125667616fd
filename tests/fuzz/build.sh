#!/bin/sh
# build.sh - build the fuzz targets (see README.md). Never run by make.
#
#   sh tests/fuzz/build.sh libfuzzer   clang, -fsanitize=fuzzer,address,undefined
#   sh tests/fuzz/build.sh plain       cc + ASan/UBSan, with driver.c's main()
#
# Output goes to build-fuzz/ (or $FUZZ_OUT) in the top directory.
set -eu
mode=${1:-plain}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$top/build-fuzz}
mkdir -p "$out"
cd "$top"
LIB="lib/mail/address.c lib/mail/smtp_params.c lib/mail/xtext.c lib/base/str.c lib/base/mem.c lib/base/msg.c"
FLAGS="-std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Ilib/base -Ilib/mail -fno-omit-frame-pointer"
for t in fuzz_address fuzz_smtp_params; do
    case $mode in
    libfuzzer)
	${CLANG:-clang} $FLAGS -fsanitize=fuzzer,address,undefined \
	    -o "$out/$t" "tests/fuzz/$t.c" $LIB ;;
    plain)
	${CC:-cc} $FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	    -o "$out/$t-plain" "tests/fuzz/$t.c" tests/fuzz/driver.c $LIB ;;
    *)
	echo "usage: $0 libfuzzer|plain" >&2; exit 2 ;;
    esac
done
echo "built in $out"

#!/bin/sh
# install.sh - `make install`: copy the built programs, man pages and
# default configuration into place.
#
#   sh tools/install.sh DESTDIR PREFIX SYSCONFDIR LIBEXECDIR SBINDIR BINDIR MANDIR BUILD
#
#   SBINDIR/posthorn              the administrator's command (0755)
#   SBINDIR/sendmail.posthorn     the sendmail command, if built; INSTALL
#                                 shows how to make it /usr/sbin/sendmail
#   SBINDIR/postdrop              if built; setgid posthorn-drop (2755)
#                                 when installed by root without DESTDIR
#   SBINDIR/<tool>                any other tool in BUILD/bin
#   LIBEXECDIR/<daemon>           every daemon in BUILD/libexec (0755)
#   MANDIR/man{1,5,8}/            the man pages
#   PREFIX/share/doc/posthorn/    docs/*.md, which the man pages cite
#   SYSCONFDIR/main.cf, master.cf, aliases
#                                 only if they do not exist yet (an
#                                 operator's files are never overwritten)
#   PREFIX/lib/systemd/system/posthorn.service
#
# Everything goes under DESTDIR when it is set (for packages); that never
# needs root: ownership and the setgid bit are left to the packager (the
# script says so). It does not create the queue: `posthorn check` (or
# `posthorn start`) does that from the manifest, see INSTALL.
set -eu

[ $# -eq 8 ] || {
    echo "usage: sh tools/install.sh DESTDIR PREFIX SYSCONFDIR LIBEXECDIR SBINDIR BINDIR MANDIR BUILD" >&2
    exit 2
}
DESTDIR=$1 PREFIX=$2 SYSCONFDIR=$3 LIBEXECDIR=$4 SBINDIR=$5 BINDIR=$6 MANDIR=$7 BUILD=$8
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*"; }

[ -x "$BUILD/bin/posthorn" ] || die "$BUILD/bin/posthorn is missing; run make first"
for d in "$PREFIX" "$SYSCONFDIR" "$LIBEXECDIR" "$SBINDIR" "$BINDIR" "$MANDIR"; do
    case $d in /*) ;; *) die "not an absolute path: $d" ;; esac
done

# Ownership changes only for a real (not staged) installation by root.
AS_ROOT=0
[ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && AS_ROOT=1

# inst MODE SRC DEST - copy atomically: a running program keeps its inode
inst() {
    install -d -m 0755 "$(dirname "$3")"
    install -m "$1" "$2" "$3.new.$$"
    mv -f "$3.new.$$" "$3"
}

# Commands.
inst 0755 "$BUILD/bin/posthorn" "$DESTDIR$SBINDIR/posthorn"
say "$DESTDIR$SBINDIR/posthorn"
for prog in "$BUILD"/bin/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    name=$(basename "$prog")
    case $name in
    posthorn) ;;
    sendmail)
        inst 0755 "$prog" "$DESTDIR$SBINDIR/sendmail.posthorn"
        say "$DESTDIR$SBINDIR/sendmail.posthorn (see INSTALL: replacing /usr/sbin/sendmail)" ;;
    postdrop)
        inst 0755 "$prog" "$DESTDIR$SBINDIR/postdrop"
        if [ "$AS_ROOT" = 1 ] && getent group posthorn-drop >/dev/null; then
            chgrp posthorn-drop "$DESTDIR$SBINDIR/postdrop"
            chmod 2755 "$DESTDIR$SBINDIR/postdrop"
            say "$DESTDIR$SBINDIR/postdrop (setgid posthorn-drop)"
        else
            say "$DESTDIR$SBINDIR/postdrop: make it root:posthorn-drop mode 2755 (see INSTALL)"
        fi ;;
    *)
        inst 0755 "$prog" "$DESTDIR$SBINDIR/$name"
        say "$DESTDIR$SBINDIR/$name" ;;
    esac
done

# Daemons.
n=0
for prog in "$BUILD"/libexec/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    inst 0755 "$prog" "$DESTDIR$LIBEXECDIR/$(basename "$prog")"
    n=$((n + 1))
done
say "$n daemons in $DESTDIR$LIBEXECDIR"

# Man pages.
n=0
for page in man/*.[158]; do
    [ -f "$page" ] || continue
    section=${page##*.}
    inst 0644 "$page" "$DESTDIR$MANDIR/man$section/$(basename "$page")"
    n=$((n + 1))
done
say "$n man pages in $DESTDIR$MANDIR"
# apropos and whatis find them only after the index is updated
if [ -z "$DESTDIR" ] && command -v mandb >/dev/null 2>&1; then
    mandb -q 2>/dev/null || true
fi

# Documentation: the man pages refer to these by their installed path.
DOCDIR=$PREFIX/share/doc/posthorn
n=0
for doc in docs/*.md; do
    [ -f "$doc" ] || continue
    inst 0644 "$doc" "$DESTDIR$DOCDIR/$(basename "$doc")"
    n=$((n + 1))
done
say "$n documents in $DESTDIR$DOCDIR"

# Configuration: never overwrite the operator's files. Defaults that
# point at the installed directories.
install -d -m 0755 "$DESTDIR$SYSCONFDIR"
for f in main.cf master.cf aliases; do
    if [ -e "$DESTDIR$SYSCONFDIR/$f" ]; then
        say "$DESTDIR$SYSCONFDIR/$f exists, kept (the new default is $ROOT/conf/$f)"
    else
        inst 0644 "conf/$f" "$DESTDIR$SYSCONFDIR/$f"
        say "$DESTDIR$SYSCONFDIR/$f"
    fi
done

# The systemd unit names the installed posthorn.
UNITDIR=$PREFIX/lib/systemd/system
install -d -m 0755 "$DESTDIR$UNITDIR"
sed "s|/usr/sbin/posthorn|$SBINDIR/posthorn|g" conf/posthorn.service > "$DESTDIR$UNITDIR/posthorn.service.new.$$"
chmod 0644 "$DESTDIR$UNITDIR/posthorn.service.new.$$"
mv -f "$DESTDIR$UNITDIR/posthorn.service.new.$$" "$DESTDIR$UNITDIR/posthorn.service"
say "$DESTDIR$UNITDIR/posthorn.service"

if [ -z "$DESTDIR" ]; then
    cat <<EOF
install: done. Next (see INSTALL): create the accounts posthorn and
install: posthorn-drop, edit $SYSCONFDIR/main.cf, then run
install:     $SBINDIR/posthorn check && $SBINDIR/posthorn start
EOF
fi

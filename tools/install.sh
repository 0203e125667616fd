#!/bin/sh
# install.sh - `make install` and `make uninstall`: copy the built
# programs, man pages and default configuration into place, recording
# every path created; remove exactly those paths again.
#
#   sh tools/install.sh [--uninstall] DESTDIR PREFIX SYSCONFDIR LIBEXECDIR SBINDIR BINDIR MANDIR BUILD
#
#   SBINDIR/posthorn              the administrator's command (0755)
#   SBINDIR/sendmail.posthorn     the sendmail command, if built (it acts
#                                 as mailq and newaliases when called so)
#   SBINDIR/<tool>                any other command in BUILD/bin
#   LIBEXECDIR/<daemon>           every daemon in BUILD/libexec (0755), and the
#                                 TLS plugin posthorn-tls.so (0755)
#   LIBEXECDIR/postdrop           if built: a helper that sendmail runs
#                                 from daemon_directory; setgid
#                                 posthorn-drop (2755) when installed by
#                                 root without DESTDIR
#   MANDIR/man{1,5,7,8}/          the man pages; sendmail.1 as
#                                 sendmail.posthorn.1, and a page whose name
#                                 another package's page has (postfix's
#                                 master(8), say) as NAME.SECTIONposthorn
#                                 (man 8posthorn master)
#   PREFIX/share/doc/posthorn/    docs/*.md, which the man pages cite
#   SYSCONFDIR/main.cf, master.cf, aliases
#                                 only if they do not exist yet (an
#                                 operator's files are never overwritten)
#   PREFIX/lib/systemd/system/posthorn.service
#   PREFIX/share/posthorn/installed
#                                 the record of what was created, which
#                                 --uninstall reads
#
# Never replaced: a path a Debian package owns (dpkg-query -S). Every file
# outside posthorn's own directories (LIBEXECDIR, the doc directory) is
# checked before anything is written, and the install stops if one is
# another package's. The check runs for a real installation (no DESTDIR)
# when dpkg-query exists; POSTHORN_INSTALL_CHECK_OWNERS=1 runs it under
# DESTDIR too (for the tests).
#
# The user-facing names (/usr/sbin/sendmail, /usr/lib/sendmail,
# /usr/bin/mailq, /usr/bin/newaliases and their man pages) are never
# files of ours: when root installs without DESTDIR, update-alternatives
# exists and none of those paths is a package's file or any other real
# file, they become the "sendmail" alternatives group pointing at
# sendmail.posthorn. Otherwise (a Debian MTA such as postfix is
# installed: they own those paths and use no alternatives) nothing is
# touched and INSTALL section 6 says what to do.
#
# Everything goes under DESTDIR when it is set (for packages); that never
# needs root: ownership and the setgid bit are left to the packager (the
# script says so). It does not create the queue: `posthorn check` (or
# `posthorn start`) does that from the manifest, see INSTALL.
#
# --uninstall removes the recorded files, the directories it created when
# they are empty, and the alternatives it registered; never the
# configuration (SYSCONFDIR), the queue or the accounts, and it says so.
set -eu

UNINSTALL=0
if [ "${1-}" = --uninstall ]; then
    UNINSTALL=1
    shift
fi
[ $# -eq 8 ] || {
    echo "usage: sh tools/install.sh [--uninstall] DESTDIR PREFIX SYSCONFDIR LIBEXECDIR SBINDIR BINDIR MANDIR BUILD" >&2
    exit 2
}
DESTDIR=$1 PREFIX=$2 SYSCONFDIR=$3 LIBEXECDIR=$4 SBINDIR=$5 BINDIR=$6 MANDIR=$7 BUILD=$8
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*"; }

for d in "$PREFIX" "$SYSCONFDIR" "$LIBEXECDIR" "$SBINDIR" "$BINDIR" "$MANDIR"; do
    case $d in
    /*) ;;
    *) die "not an absolute path: $d" ;;
    esac
    case $d in
    *[[:space:]]*) die "a path with white space: $d" ;;
    esac
done

DOCDIR=$PREFIX/share/doc/posthorn
UNITDIR=$PREFIX/lib/systemd/system
RECORD=$PREFIX/share/posthorn/installed
# The names Debian's MTAs own; with alternatives they are links of ours.
ALT_NAME=sendmail
ALT_LINK=/usr/sbin/sendmail
ALT_SLAVES="lib.sendmail=/usr/lib/sendmail mailq=/usr/bin/mailq newaliases=/usr/bin/newaliases
sendmail.1=/usr/share/man/man1/sendmail.1 mailq.1=/usr/share/man/man1/mailq.1
newaliases.1=/usr/share/man/man1/newaliases.1"

# Ownership changes and alternatives only for a real installation by root.
AS_ROOT=0
[ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && AS_ROOT=1

CHECK_OWNERS=0
if command -v dpkg-query >/dev/null 2>&1 &&
    { [ -z "$DESTDIR" ] || [ "${POSTHORN_INSTALL_CHECK_OWNERS-}" = 1 ]; }; then
    CHECK_OWNERS=1
fi

# owner PATH - the package other than posthorn that owns PATH, or nothing.
# A path under a local diversion (dpkg-divert --local) is free.
owner() {
    [ "$CHECK_OWNERS" = 1 ] || return 0
    out=$(dpkg-query -S "$1" 2>/dev/null </dev/null) || return 0
    case $out in
    *"local diversion from: $1"*) return 0 ;;
    esac
    printf '%s\n' "$out" | while IFS= read -r line; do
        case $line in
        *diversion*) continue ;;
        *": $1") ;;
        *) continue ;;
        esac
        printf '%s\n' "${line%": $1"}" | tr ',' '\n' | sed 's/^ *//; s/ *$//'
    done | grep -vx -e posthorn -e '' | head -n 1
}

# page_taken PAGE - the package other than posthorn that has a page of the
# same name and section as PAGE (PAGE.gz, or a Debian suffix: PAGE*.gz)
page_taken() {
    [ "$CHECK_OWNERS" = 1 ] || return 0
    dpkg-query -S "$1*" 2>/dev/null </dev/null | while IFS= read -r line; do
        case $line in
        *diversion*) continue ;;
        *": $1"*) printf '%s\n' "${line%%": $1"*}" | tr ',' '\n' | sed 's/^ *//; s/ *$//' ;;
        esac
    done | grep -vx -e posthorn -e '' | head -n 1
}

# =============================================================== uninstall
if [ "$UNINSTALL" = 1 ]; then
    [ -f "$DESTDIR$RECORD" ] || die "$DESTDIR$RECORD is missing: nothing recorded to remove (INSTALL section 10 lists the files)"
    # the alternatives first: they point at files about to go
    grep '^a ' "$DESTDIR$RECORD" | while read -r _ name path; do
        if [ -z "$DESTDIR" ] && command -v update-alternatives >/dev/null 2>&1; then
            update-alternatives --remove "$name" "$path" >/dev/null 2>&1 || true
            say "removed alternative $name -> $path"
        fi
    done
    dirs=$(sed -n 's/^d //p' "$DESTDIR$RECORD" | sort -r)
    n=0
    for path in $(sed -n 's/^f //p' "$DESTDIR$RECORD"); do
        if [ -f "$DESTDIR$path" ] || [ -L "$DESTDIR$path" ]; then
            rm -f "$DESTDIR$path"
            n=$((n + 1))
        fi
    done
    say "removed $n files"
    rm -f "$DESTDIR$RECORD"
    # the directories it created, deepest first, when empty
    for path in $dirs; do
        [ -d "$DESTDIR$path" ] || continue
        rmdir "$DESTDIR$path" 2>/dev/null || say "left $DESTDIR$path (not empty)"
    done
    if [ -z "$DESTDIR" ] && command -v mandb >/dev/null 2>&1; then
        mandb -q 2>/dev/null || true
    fi
    say "left: the configuration $DESTDIR$SYSCONFDIR, the queue (queue_directory),"
    say "left: data_directory and the accounts posthorn and posthorn-drop (INSTALL section 10)"
    exit 0
fi

# ================================================================= install
[ -x "$BUILD/bin/posthorn" ] || die "$BUILD/bin/posthorn is missing; run make first"

# The plan: one "MODE SRC DEST" line per file, checked before anything is
# written.
PLAN=$(mktemp "${TMPDIR:-/tmp}/posthorn-install.XXXXXX")
NEW=$(mktemp "${TMPDIR:-/tmp}/posthorn-installed.XXXXXX")
trap 'rm -f "$PLAN" "$NEW"' EXIT
plan() { printf '%s %s %s\n' "$1" "$2" "$3" >> "$PLAN"; }

plan 0755 "$BUILD/bin/posthorn" "$SBINDIR/posthorn"
for prog in "$BUILD"/bin/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    [ -L "$prog" ] && continue              # mailq, newaliases: see alternatives
    name=$(basename "$prog")
    case $name in
    posthorn) ;;
    sendmail) plan 0755 "$prog" "$SBINDIR/sendmail.posthorn" ;;
    postdrop) plan 2755 "$prog" "$LIBEXECDIR/postdrop" ;;
    *) plan 0755 "$prog" "$SBINDIR/$name" ;;
    esac
done
for prog in "$BUILD"/libexec/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    name=$(basename "$prog")
    [ "$name" = postdrop ] && continue      # from BUILD/bin, above
    plan 0755 "$prog" "$LIBEXECDIR/$name"
done
for page in man/*.[1578]; do
    [ -f "$page" ] || continue
    section=${page##*.}
    name=$(basename "$page" ".$section")
    dest=$MANDIR/man$section/$name.$section
    if [ "$name" = sendmail ]; then
        dest=$MANDIR/man$section/sendmail.posthorn.$section
    elif [ -n "$(page_taken "$dest")" ]; then
        dest=$MANDIR/man$section/$name.${section}posthorn
    fi
    plan 0644 "$page" "$dest"
done
for doc in docs/*.md; do
    [ -f "$doc" ] || continue
    plan 0644 "$doc" "$DOCDIR/$(basename "$doc")"
done
UNIT_SRC=$(mktemp "${TMPDIR:-/tmp}/posthorn.service.XXXXXX")
trap 'rm -f "$PLAN" "$NEW" "$UNIT_SRC"' EXIT
sed "s|/usr/sbin/posthorn|$SBINDIR/posthorn|g" conf/posthorn.service > "$UNIT_SRC"
plan 0644 "$UNIT_SRC" "$UNITDIR/posthorn.service"

# Refuse before writing anything if a file is another package's.
refused=0
while read -r mode src dest; do
    case $dest in
    "$LIBEXECDIR"/* | "$DOCDIR"/*) continue ;;
    esac
    pkg=$(owner "$dest")
    if [ -n "$pkg" ]; then
        echo "install: $dest belongs to the package $pkg; not replacing it" >&2
        refused=1
    fi
done < "$PLAN"
[ "$refused" = 0 ] || die "nothing installed (see INSTALL section 6)"

# mkdirs DIR - create DIR and the missing parents, recording each one
mkdirs() {
    [ -d "$DESTDIR$1" ] && return 0
    if [ "$1" = / ]; then
        install -d -m 0755 "$DESTDIR"
        return 0
    fi
    mkdirs "$(dirname "$1")"
    install -d -m 0755 "$DESTDIR$1"
    echo "d $1" >> "$NEW"
}

# inst MODE SRC DEST - copy atomically (a running program keeps its inode)
# and record DEST
inst() {
    mkdirs "$(dirname "$3")"
    install -m 0755 "$2" "$DESTDIR$3.new.$$"
    chmod "$1" "$DESTDIR$3.new.$$"
    mv -f "$DESTDIR$3.new.$$" "$DESTDIR$3"
    echo "f $3" >> "$NEW"
}

ndaemons=0 npages=0 ndocs=0
while read -r mode src dest; do
    case $dest in
    "$LIBEXECDIR/postdrop")
        inst 0755 "$src" "$dest"
        if [ "$AS_ROOT" = 1 ] && getent group posthorn-drop >/dev/null; then
            chgrp posthorn-drop "$dest"
            chmod 2755 "$dest"
            say "$dest (setgid posthorn-drop)"
        else
            say "$DESTDIR$dest: make it root:posthorn-drop mode 2755 (see INSTALL)"
        fi ;;
    "$LIBEXECDIR"/*) inst "$mode" "$src" "$dest"; ndaemons=$((ndaemons + 1)) ;;
    "$MANDIR"/*)
        inst "$mode" "$src" "$dest"; npages=$((npages + 1))
        case $dest in
        *posthorn) say "$DESTDIR$dest (another package has a page of that name)" ;;
        esac ;;
    "$DOCDIR"/*) inst "$mode" "$src" "$dest"; ndocs=$((ndocs + 1)) ;;
    *) inst "$mode" "$src" "$dest"; say "$DESTDIR$dest" ;;
    esac
done < "$PLAN"
say "$ndaemons daemons in $DESTDIR$LIBEXECDIR"
say "$npages man pages in $DESTDIR$MANDIR"
say "$ndocs documents in $DESTDIR$DOCDIR"

# Configuration: never overwrite the operator's files, never recorded
# (uninstall leaves it).
install -d -m 0755 "$DESTDIR$SYSCONFDIR"
for f in main.cf master.cf aliases; do
    if [ -e "$DESTDIR$SYSCONFDIR/$f" ]; then
        say "$DESTDIR$SYSCONFDIR/$f exists, kept (the new default is $ROOT/conf/$f)"
    else
        install -m 0644 "conf/$f" "$DESTDIR$SYSCONFDIR/$f.new.$$"
        mv -f "$DESTDIR$SYSCONFDIR/$f.new.$$" "$DESTDIR$SYSCONFDIR/$f"
        say "$DESTDIR$SYSCONFDIR/$f"
    fi
done

# Files an older install.sh put where they do not belong (a copy of
# postdrop over Debian's, full copies of sendmail as mailq, newaliases).
for f in "$SBINDIR/postdrop" "$SBINDIR/mailq" "$SBINDIR/newaliases"; do
    [ -e "$DESTDIR$f" ] || continue
    pkg=$(owner "$f")
    if [ -z "$pkg" ]; then
        say "warning: $DESTDIR$f is not from this install (an older posthorn's?); see INSTALL section 10"
    elif [ -z "$DESTDIR" ] && dpkg --verify "$pkg" 2>/dev/null | grep -q " $f\$"; then
        say "warning: $f of the package $pkg was changed; apt-get install --reinstall $pkg"
    fi
done

# The sendmail alternatives: only where no package and no other file has
# the names.
ALT=""
if [ "$AS_ROOT" = 1 ] && [ -x "$SBINDIR/sendmail.posthorn" ]; then
    why=""
    command -v update-alternatives >/dev/null 2>&1 || why="update-alternatives is missing"
    for pair in "$ALT_NAME=$ALT_LINK" $ALT_SLAVES; do
        [ -z "$why" ] || break
        link=${pair#*=}
        pkg=$(owner "$link")
        if [ -n "$pkg" ]; then
            why="$link belongs to the package $pkg"
        elif [ -e "$link" ] || [ -L "$link" ]; then
            case $(readlink "$link" || true) in
            /etc/alternatives/*) ;;
            *) why="$link exists and is not an alternatives link" ;;
            esac
        fi
    done
    if [ -z "$why" ]; then
        page=$MANDIR/man1/sendmail.posthorn.1
        set -- --install "$ALT_LINK" "$ALT_NAME" "$SBINDIR/sendmail.posthorn" 25 \
            --slave /usr/lib/sendmail lib.sendmail "$SBINDIR/sendmail.posthorn" \
            --slave /usr/bin/mailq mailq "$SBINDIR/sendmail.posthorn" \
            --slave /usr/bin/newaliases newaliases "$SBINDIR/sendmail.posthorn" \
            --slave /usr/share/man/man1/sendmail.1 sendmail.1 "$page" \
            --slave /usr/share/man/man1/mailq.1 mailq.1 "$page" \
            --slave /usr/share/man/man1/newaliases.1 newaliases.1 "$page"
        if update-alternatives "$@" >/dev/null; then
            echo "a $ALT_NAME $SBINDIR/sendmail.posthorn" >> "$NEW"
            ALT=yes
            say "/usr/sbin/sendmail, mailq, newaliases: alternatives for $SBINDIR/sendmail.posthorn"
        else
            why="update-alternatives failed"
        fi
    fi
    [ -n "$ALT" ] || say "/usr/sbin/sendmail not set up ($why); see INSTALL section 6"
fi

# apropos and whatis find the pages only after the index is updated
if [ -z "$DESTDIR" ] && command -v mandb >/dev/null 2>&1; then
    mandb -q 2>/dev/null || true
fi

# The record: what this install created, with what earlier ones did.
mkdirs "$(dirname "$RECORD")"
if [ -f "$DESTDIR$RECORD" ]; then
    cat "$DESTDIR$RECORD" >> "$NEW"
fi
echo "f $RECORD" >> "$NEW"
sort -u "$NEW" > "$DESTDIR$RECORD.new.$$"
mv -f "$DESTDIR$RECORD.new.$$" "$DESTDIR$RECORD"
say "$DESTDIR$RECORD (make uninstall removes what it lists)"

if [ -z "$DESTDIR" ]; then
    cat <<EOF
install: done. Next (see INSTALL): create the accounts posthorn and
install: posthorn-drop, edit $SYSCONFDIR/main.cf, then run
install:     $SBINDIR/posthorn check && $SBINDIR/posthorn start
EOF
fi

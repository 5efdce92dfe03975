#!/bin/sh
# cmocka for the Windows build's tests: Debian has no MinGW-w64 cmocka, so
# Debian's own source package of it is fetched (apt-get source, from the
# deb-src twins of this machine's Debian or Ubuntu entries, in a private apt
# state: the system's configuration is not touched) and its one C file is
# cross-compiled into DIR/libcmocka.a, with its header in DIR/include.
# CMOCKA_SOURCE=<a cmocka-*.tar.* upstream tarball> skips the download.
#   usage: CC=x86_64-w64-mingw32-gcc AR=x86_64-w64-mingw32-ar sh tests/cmocka_windows.sh DIR
set -eu
dir=$1
CC=${CC:-x86_64-w64-mingw32-gcc}
AR=${AR:-x86_64-w64-mingw32-ar}
work="$dir/src"
rm -rf "$work"
mkdir -p "$work" "$dir/include"

fail() {
    echo "cmocka_windows.sh: $*" >&2
    exit 1
}

# The deb-src entries of the distribution's own archives, one-line and
# deb822 forms alike.
deb_src_entries() {
    parts=$1
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -E '^deb[[:space:]].*(debian\.org|ubuntu\.com)' "$f" | sed 's/^deb[[:space:]]/deb-src /' || true
    done >"$parts/src.list"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        grep -qE 'debian\.org|ubuntu\.com' "$f" || continue
        sed 's/^Types:.*/Types: deb-src/' "$f" >"$parts/$(basename "$f")"
    done
}

if [ -n "${CMOCKA_SOURCE:-}" ]; then
    tarball=$CMOCKA_SOURCE
else
    command -v apt-get >/dev/null || fail "needs apt-get (Debian's source package), or CMOCKA_SOURCE=<cmocka tarball>"
    apt="$work/apt"
    mkdir -p "$apt/parts" "$apt/lists/partial"
    deb_src_entries "$apt/parts"
    set -- -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$(cd "$apt/parts" && pwd)" \
        -o Dir::State::Lists="$(cd "$apt/lists" && pwd)" -o APT::Sandbox::User=root -qq
    echo "cmocka for MinGW-w64: fetching Debian's source package (apt-get source cmocka)"
    apt-get "$@" update >/dev/null || fail "apt-get update of the deb-src lists failed"
    (cd "$work" && apt-get "$@" source --download-only cmocka >/dev/null) ||
        fail "apt-get source cmocka failed"
    tarball=$(ls "$work"/cmocka_*.orig.tar.* 2>/dev/null | head -1)
    [ -n "$tarball" ] || fail "no cmocka source tarball came"
fi
tar -xf "$tarball" -C "$work" || fail "cannot unpack $tarball"
src=$(ls -d "$work"/cmocka-*/ | head -1)
[ -f "$src/src/cmocka.c" ] || fail "no src/cmocka.c in $tarball"

# What cmocka's CMake checks would find for MinGW-w64.
cat >"$work/config.h" <<'EOF'
#define HAVE_INTTYPES_H 1
#define HAVE_IO_H 1
#define HAVE_MALLOC_H 1
#define HAVE_SETJMP_H 1
#define HAVE_SIGNAL_H 1
#define HAVE_STDARG_H 1
#define HAVE_STDDEF_H 1
#define HAVE_STDINT_H 1
#define HAVE_STDIO_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define HAVE_STRINGS_H 1
#define HAVE_TIME_H 1
#define HAVE_STRUCT_TIMESPEC 1
#define HAVE_SNPRINTF 1
#define HAVE_VSNPRINTF 1
#define HAVE__SNPRINTF 1
#define HAVE__VSNPRINTF 1
#define HAVE_GCC_THREAD_LOCAL_STORAGE 1
EOF
"$CC" -O2 -std=gnu99 -D__USE_MINGW_ANSI_STDIO=1 -I"$work" -I"$src/include" -c "$src/src/cmocka.c" \
    -o "$work/cmocka.o"
rm -f "$dir/libcmocka.a"
"$AR" rcs "$dir/libcmocka.a" "$work/cmocka.o"
# Built with MinGW-w64's C99 printf (%zu, %lld): its print functions say so
# to the compiler's format checks, rather than msvcrt's printf.
sed 's/__format__ (__printf__, a, b)/__format__ (gnu_printf, a, b)/' "$src/include/cmocka.h" >"$dir/include/cmocka.h"
grep -q 'gnu_printf' "$dir/include/cmocka.h" || fail "cmocka.h: its printf attribute was not found"
echo "cmocka for MinGW-w64: $dir/libcmocka.a (from $(basename "$tarball"))"

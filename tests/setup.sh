#!/bin/sh
# Installs the packages that the given groups of tests/packages.txt need and
# this machine lacks:
#
#   sh tests/setup.sh [--list FILE] GROUP...
#
# A package counts as installed only when it is installed for this machine's
# own architecture (dpkg --print-architecture) or for all: an arm64
# libcmocka-dev does not link a native test. The missing ones are installed
# with apt-get as root, or through passwordless sudo; otherwise the script
# prints the command that installs them and exits with status 2. Without
# dpkg (not Debian or Ubuntu) it names what the groups need and goes on.
set -u
list=$(dirname "$0")/packages.txt
if [ "${1:-}" = "--list" ]; then
    list=$2
    shift 2
fi
if [ $# -eq 0 ]; then
    echo "usage: sh tests/setup.sh [--list FILE] GROUP..." >&2
    exit 2
fi

# The packages of the groups named in $*, in the order of the list.
wanted=$(awk -v groups=" $* " '
    { sub(/#.*/, ""); gsub(/^[ \t]+|[ \t]+$/, "") }
    /^\[.*\]$/ { group = substr($0, 2, length($0) - 2); next }
    $0 != "" && index(groups, " " group " ") { print }' "$list") || exit 2

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup: no dpkg here (not Debian or Ubuntu); $* need:" $wanted
    exit 0
fi
arch=$(dpkg --print-architecture 2>/dev/null)

installed() {
    dpkg-query -W -f='${Status} ${Architecture}\n' "$1" 2>/dev/null | grep -qE "^install ok installed ($arch|all)\$"
}

missing_packages() {
    for p in $wanted; do installed "$p" || printf '%s ' "$p"; done
}

missing=$(missing_packages)
[ -z "$missing" ] && exit 0
missing=${missing% }

if [ "$(id -u)" = 0 ]; then
    as=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as="sudo -n"
else
    echo "setup: these packages are missing for $arch: $missing" >&2
    echo "setup: install them, then run this again:" >&2
    echo "  sudo apt-get install --no-install-recommends $missing" >&2
    exit 2
fi

echo "setup: installing $missing"
# shellcheck disable=SC2086
if ! { $as env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    $as env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; } ||
    [ -n "$(missing_packages)" ]; then
    echo "setup: could not install $missing for $arch; install them, then run this again:" >&2
    echo "  ${as:+sudo }apt-get install --no-install-recommends $missing" >&2
    exit 2
fi

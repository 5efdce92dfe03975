#!/bin/sh
# `make test-windows`: the Windows build's test programs (MinGW-w64) run
# under Wine, each through tests/run.sh, with the llama2.exe and tools of
# the same build; they in turn start the .exe programs under Wine. Ends as
# run.sh does, "tests: N passed, N failed, N skipped" and the skipped tests
# by name. Where Wine is missing or cannot start, every program is one
# skip, named, and the script succeeds.
#   $1: the Windows build folder; then the test programs (.exe) and
#   "--skipped=PROGRAM:WHY" for the ones not built (as run.sh takes them).
# Environment: as tests/run.sh (LLAMA2_MODELS, LLAMA2_SOURCE, SHARED, as
# Unix paths); WINE (default: wine64, else /usr/lib/wine/wine64, else wine).
set -u
build=$1
shift
here=$(cd "$(dirname "$0")" && pwd)

# Every argument as a skip with one reason: Wine cannot run them here.
skip_all() {
    reason=$1
    shift
    for t in "$@"; do
        shift
        case $t in
        --skipped=*) set -- "$@" "$t" ;;
        *) set -- "$@" "--skipped=$(basename "$t" .exe):$reason" ;;
        esac
    done
    sh "$here/run.sh" "$@"
    exit 0
}

wine=${WINE:-}
if [ -z "$wine" ]; then
    for w in wine64 /usr/lib/wine/wine64 wine; do
        if command -v "$w" >/dev/null 2>&1; then
            wine=$(command -v "$w")
            break
        fi
    done
fi
[ -n "$wine" ] || skip_all "Wine is not installed (wine64)" "$@"

# A Wine prefix of this build's own, made once (its first start takes a
# few seconds); no dialogs, no Mono or Gecko installers, no debug output.
WINEPREFIX=$(cd "$build" && pwd)/wine
WINEDEBUG=-all
WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES
unset DISPLAY WAYLAND_DISPLAY
if ! timeout 120 "$wine" "$build/llama2.exe" --version >/dev/null 2>&1; then
    skip_all "Wine cannot start ($wine) or cannot run llama2.exe" "$@"
fi

# Unix paths as Windows paths (Wine's drive Z: is the Unix root).
winpath() { printf 'Z:%s' "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
LLAMA2_BIN=$(winpath "$build/llama2.exe")
export LLAMA2_BIN
for v in LLAMA2_MODELS LLAMA2_SOURCE SHARED; do
    eval "value=\${$v:-}"
    # shellcheck disable=SC2154
    [ -n "$value" ] && [ -e "$value" ] && export "$v=$(winpath "$value")"
done
# The Windows programs' temporary folder is Wine's own (TEMP), not TMPDIR.
unset TMPDIR

# Each test program behind a wrapper that runs it under Wine and turns its
# CR LF (text mode, cmocka's output) into LF for run.sh.
wrappers=$(mktemp -d)
wineserver=$(dirname "$wine")/wineserver
[ -x "$wineserver" ] || wineserver=wineserver
trap 'rm -rf "$wrappers"; "$wineserver" -k 2>/dev/null || true' EXIT
args=
for t in "$@"; do
    case $t in
    --skipped=*) ;;
    *)
        name=$(basename "$t" .exe)
        cat >"$wrappers/$name" <<EOF
#!/bin/sh
out=\$(timeout 900 "$wine" "$(cd "$(dirname "$t")" && pwd)/$(basename "$t")" 2>&1)
status=\$?
printf '%s\n' "\$out" | tr -d '\r'
exit \$status
EOF
        chmod +x "$wrappers/$name"
        t="$wrappers/$name"
        ;;
    esac
    args="$args
$t"
done
IFS='
'
# shellcheck disable=SC2086
sh "$here/run.sh" $args

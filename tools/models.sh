#!/bin/sh
# Makes model files ready in a folder, for `make run` and the tests:
#
#   sh tools/models.sh DIR NAME...
#
# Each NAME that DIR does not hold yet comes from
#   stories260K.bin, tok512.bin   $SHARED_MODELS/NAME, else a download from
#                                 $TINYLLAMAS_URL/stories260K/NAME
#   tokenizer.bin,                $SHARED_MODELS/NAME, else a download from
#   tokenizer.model               $LLAMA2C_URL/NAME (Llama 2's tokenizer, as
#                                 llama2.c publishes it)
#   stories260K_q80_gs4.bin       llama2-quantize stories260K.bin NAME --group-size 4
#   stories260K_v1.bin            llama2-convert stories260K.bin NAME --format-version 1
#                                 where that tool is built, else $SHARED_MODELS/NAME
#   stories260K_q80.bin           $SHARED_MODELS/NAME only: llama2.c's export at
#                                 group size 64, which llama2-quantize refuses
# The tools are taken from $LLAMA2_TOOLS (default: the current folder). A
# download must have the SHA-256 listed below, and a file appears in DIR only
# once whole. Ends with status 0 when every NAME is there; otherwise 1, after
# one line per missing file, "models: NAME: not available (WHY)", WHY naming
# where it looked, and one line per download source on how to supply the
# files it could not give.
set -u
TINYLLAMAS_URL=${TINYLLAMAS_URL:-https://huggingface.co/karpathy/tinyllamas/resolve/main}
LLAMA2C_URL=${LLAMA2C_URL:-https://raw.githubusercontent.com/karpathy/llama2.c/master}
SHARED_MODELS=${SHARED_MODELS:-../shared/models}
LLAMA2_TOOLS=${LLAMA2_TOOLS:-.}
root=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -lt 1 ]; then
    echo "usage: sh tools/models.sh DIR NAME..." >&2
    exit 2
fi
dir=$1
shift
mkdir -p "$dir" || exit 1

# The SHA-256 of each file that may be downloaded.
sha256_of() {
    case $1 in
    stories260K.bin) echo b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696 ;;
    tok512.bin) echo 037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312 ;;
    tokenizer.bin) echo 50a52ef822ee9e83de5ce9d0be0a025a773d019437f58b5ff9dcafb063ece361 ;;
    tokenizer.model) echo 9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347 ;;
    esac
}

# A download or copy lands in a temporary file of DIR (mktemp: mode 0600),
# given the usual mode and renamed once whole.
mode=$(printf '%o' $((0666 & ~0$(umask))))
partial=
trap 'rm -f "$partial"' EXIT
trap 'rm -f "$partial"; trap - INT; kill -INT $$' INT
trap 'rm -f "$partial"; trap - TERM; kill -TERM $$' TERM

why=
download() { # NAME URL
    if ! command -v curl >/dev/null 2>&1; then
        sh "$root/tests/setup.sh" download >&2 || { why="not in $SHARED_MODELS, and curl is not installed"; return 1; }
    fi
    echo "models: downloading $1 from $2"
    partial=$(mktemp "$dir/.$1.XXXXXX") || { why="cannot create a file in $dir"; return 1; }
    if ! curl_err=$(curl -fsSL --connect-timeout 10 --max-time 600 --retry 2 -o "$partial" "$2" 2>&1); then
        why="not in $SHARED_MODELS, and the download from $2 failed: $(printf '%s\n' "$curl_err" | tail -1)"
        rm -f "$partial"
        return 1
    fi
    sum=$(sha256sum "$partial" | cut -d' ' -f1)
    if [ "$sum" != "$(sha256_of "$1")" ]; then
        why="not in $SHARED_MODELS, and the download from $2 has the SHA-256 $sum, expected $(sha256_of "$1")"
        rm -f "$partial"
        return 1
    fi
    chmod "$mode" "$partial" && mv "$partial" "$dir/$1" && partial=
}

from_shared() { # NAME
    [ -f "$SHARED_MODELS/$1" ] || { why="not in $SHARED_MODELS"; return 1; }
    partial=$(mktemp "$dir/.$1.XXXXXX") && cp "$SHARED_MODELS/$1" "$partial" && chmod "$mode" "$partial" &&
        mv "$partial" "$dir/$1" && partial=
}

# Runs one of the project's tools: TOOL ARG...
tool() {
    program=$LLAMA2_TOOLS/$1
    shift
    if [ ! -x "$program" ]; then
        why="$(basename "$program") is not built"
        return 1
    fi
    tool_out=$("$program" "$@" 2>&1) || { why=$tool_out; return 1; }
}

# Makes the input of a file made by a tool ready: NAME.
needs() {
    make_ready "$1" || { why="needs $1, $why"; return 1; }
}

# Makes NAME ready in DIR; on failure sets why. A file that failed is not
# tried again for another that needs it.
failed=" "
make_ready() {
    [ -f "$dir/$1" ] && return 0
    case $failed in *" $1 "*) why="not available"; return 1 ;; esac
    make_file "$1" && return 0
    failed="$failed$1 "
    return 1
}

make_file() {
    why=
    case $1 in
    stories260K.bin | tok512.bin)
        from_shared "$1" || download "$1" "$TINYLLAMAS_URL/stories260K/$1" ;;
    tokenizer.bin | tokenizer.model)
        from_shared "$1" || download "$1" "$LLAMA2C_URL/$1" ;;
    stories260K_q80_gs4.bin)
        needs stories260K.bin || return 1
        tool llama2-quantize "$dir/stories260K.bin" "$dir/$1" --group-size 4 ;;
    stories260K_v1.bin)
        if [ -x "$LLAMA2_TOOLS/llama2-convert" ]; then
            needs stories260K.bin || return 1
            tool llama2-convert "$dir/stories260K.bin" "$dir/$1" --format-version 1
        else
            from_shared "$1" || { why="llama2-convert is not built, and it is $why"; return 1; }
        fi ;;
    stories260K_q80.bin)
        from_shared "$1" ;;
    *)
        why="no recipe for this file"
        return 1 ;;
    esac
}

missing=0
tinyllamas_missing=
llama2c_missing=
for name in "$@"; do
    if ! make_ready "$name"; then
        echo "models: $name: not available ($why)" >&2
        missing=$((missing + 1))
    fi
done
# What to do about the files that only a copy or a download gives.
for name in $failed; do
    case $name in
    stories260K.bin | tok512.bin) tinyllamas_missing="$tinyllamas_missing $name" ;;
    tokenizer.bin | tokenizer.model) llama2c_missing="$llama2c_missing $name" ;;
    esac
done
if [ -n "$tinyllamas_missing" ]; then
    echo "models: to supply$tinyllamas_missing: copy them into $dir, or set TINYLLAMAS_URL to a server holding stories260K/NAME (now $TINYLLAMAS_URL)" >&2
fi
if [ -n "$llama2c_missing" ]; then
    echo "models: to supply$llama2c_missing: copy them into $dir, or set LLAMA2C_URL to a server holding NAME (now $LLAMA2C_URL)" >&2
fi
[ "$missing" -eq 0 ]

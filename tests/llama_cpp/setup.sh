#!/bin/sh
# Makes tests/llama_cpp/greedy.c (and quantize.c, beside it as
# "quantize") against llama.cpp as node-llama-cpp@3.21.1
# ships it (its prebuilt Linux x86-64 CPU libraries, and the headers of the
# source it carries), cached in ~/.cache/llama2/llama.cpp; prints the
# program's path. Exit 1, with the reason on stderr, where that cannot be
# had (no npm, no network, another system): the parity test then skips.
set -eu
version=3.21.1
cache="${LLAMA2_LLAMA_CPP_CACHE:-$HOME/.cache/llama2/llama.cpp}"
here=$(cd "$(dirname "$0")" && pwd)
libs="$cache/package/bins/linux-x64"
bin="$cache/greedy"
quantize="$cache/quantize"
if [ -x "$bin" ] && [ "$bin" -nt "$here/greedy.c" ] && [ -x "$quantize" ] && [ "$quantize" -nt "$here/quantize.c" ]; then
    echo "$bin"
    exit 0
fi
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { echo "llama.cpp's prebuilt libraries are for Linux x86-64" >&2; exit 1; }
for tool in npm tar git cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "needs $tool" >&2; exit 1; }
done
mkdir -p "$cache"
cd "$cache"
if [ ! -f "$libs/libllama.v0.4.0.so" ]; then
    npm pack --silent "@node-llama-cpp/linux-x64@$version" >/dev/null 2>&1 || { echo "npm pack @node-llama-cpp/linux-x64@$version failed" >&2; exit 1; }
    tar xzf "node-llama-cpp-linux-x64-$version.tgz"
fi
if [ ! -f src/include/llama.h ]; then
    npm pack --silent "node-llama-cpp@$version" >/dev/null 2>&1 || { echo "npm pack node-llama-cpp@$version failed" >&2; exit 1; }
    tar xzf "node-llama-cpp-$version.tgz" package/llama/gitRelease.bundle
    rm -rf src
    git clone -q package/llama/gitRelease.bundle src 2>/dev/null || { echo "cannot unpack llama.cpp's source" >&2; exit 1; }
fi
cc -std=c11 -O1 -o "$bin.tmp" "$here/greedy.c" -I src/include -I src/ggml/include -L "$libs" \
    -l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so -Wl,-rpath,"$libs" ||
    { echo "cannot build greedy.c against llama.cpp" >&2; exit 1; }
mv "$bin.tmp" "$bin"
cc -std=c11 -O1 -o "$quantize.tmp" "$here/quantize.c" -I src/include -I src/ggml/include -L "$libs" \
    -l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so -Wl,-rpath,"$libs" ||
    { echo "cannot build quantize.c against llama.cpp" >&2; exit 1; }
mv "$quantize.tmp" "$quantize"
echo "$bin"

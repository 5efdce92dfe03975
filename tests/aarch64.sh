#!/bin/sh
# `make test-aarch64`: the aarch64 build (NEON kernels) on this machine under
# qemu-user. Runs the kernel tests (test_kernels, test_blocks, test_kquants; not the
# thread pool's, test_threadpool: thousands of emulated spin-and-wake
# hand-offs take many minutes, and the pool has no NEON code) and every
# golden case through the emulated llama2 program at 1-3 threads (driven by this machine's test_golden). Ends with
# "tests: N passed, N failed".
#   $1: the aarch64 build folder (the static program in $1-static),
#   $2: this machine's build folder.
set -u
cross=$1
native=$2
QEMU=${QEMU:-qemu-aarch64-static}
# Libraries of the cross toolchain (the dynamic loader, libc).
export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
wrappers=$(mktemp -d)
trap 'rm -rf "$wrappers"' EXIT
for prog in "$cross-static/llama2" "$cross/tests/test_kernels" "$cross/tests/test_blocks" "$cross/tests/test_kquants"; do
    name=$(basename "$prog")
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$QEMU" "$(cd "$(dirname "$prog")" && pwd)/$name" >"$wrappers/$name"
    chmod +x "$wrappers/$name"
done
LLAMA2_BIN="$wrappers/llama2" \
    sh "$(dirname "$0")/run.sh" "$wrappers/test_kernels" "$wrappers/test_blocks" "$wrappers/test_kquants" \
    "$native/tests/test_golden"

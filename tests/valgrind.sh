#!/bin/sh
# One generation end to end under valgrind memcheck, which must find no
# error and no leak:
#
#   sh tests/valgrind.sh PROGRAM
#
# PROGRAM should be the portable build's (no -march=native). On x86-64 the
# kernels are held to AVX2 at most (LLAMA2_KERNELS=avx2): valgrind cannot
# decode AVX-512, and a CPU without AVX2 gets the scalar reference. The model
# files come from $LLAMA2_MODELS (default models); without them the run is
# skipped by name. Ends with "tests: N passed, N failed, N skipped", then
# the skipped one, if any, as "skipped: NAME (WHY)".
prog=$1
models=${LLAMA2_MODELS:-models}
name="valgrind: stories260K.bin, 64 positions sampled at 2 threads"
[ "$(uname -m)" = x86_64 ] && export LLAMA2_KERNELS=avx2

for f in stories260K.bin tok512.bin; do
    if [ ! -f "$models/$f" ]; then
        echo "tests: 0 passed, 0 failed, 1 skipped"
        echo "skipped: $name (needs $models/$f)"
        exit 0
    fi
done
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind is not installed (tests/setup.sh installs it)"
    echo "tests: 0 passed, 1 failed, 0 skipped"
    exit 1
fi
prog=$(cd "$(dirname "$prog")" && pwd)/$(basename "$prog")
if (cd "$models" && valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible \
        "$prog" stories260K.bin -z tok512.bin -t 0.8 -s 7 -n 64 -i "Once upon a time" --threads 2 \
        --no-timer >/dev/null); then
    echo "$name: no errors, no leaks"
    echo "tests: 1 passed, 0 failed, 0 skipped"
else
    echo "$name: errors or leaks (see above)"
    echo "tests: 0 passed, 1 failed, 0 skipped"
    exit 1
fi

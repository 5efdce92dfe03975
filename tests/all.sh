#!/bin/sh
# `make test`: the whole suite, optimised and then under AddressSanitizer +
# UndefinedBehaviorSanitizer, plus one end-to-end run under valgrind
# memcheck. Ends with one line: "all tests: N passed, N failed".
MAKE=${MAKE:-make}
SHARED_DIR=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
export SHARED="$SHARED_DIR"
passed=0
failed=0

count() { # $1: the output of tests/run.sh
    line=$(printf '%s\n' "$1" | grep '^tests: ' | tail -1)
    p=$(printf '%s\n' "$line" | sed -n 's/^tests: \([0-9]*\) passed.*/\1/p')
    f=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-1}))
}

for variant in "" "SAN=1 OPT=-O1"; do
    echo "=== make $variant test-unit"
    # shellcheck disable=SC2086
    out=$($MAKE --no-print-directory $variant test-unit 2>&1)
    printf '%s\n' "$out" | grep -v '^\(cc\|gcc\|clang\|ar\) '
    count "$out"
done

echo "=== valgrind memcheck, one end-to-end run"
if command -v valgrind >/dev/null 2>&1; then
    $MAKE --no-print-directory llama2 >/dev/null
    if (cd "$SHARED/models" && valgrind -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible \
            "$OLDPWD/llama2" stories260K.bin -z tok512.bin -t 0.8 -s 7 -n 64 -i "Once upon a time" --threads 2 \
            --no-timer >/dev/null); then
        echo "valgrind: no errors, no leaks"
        passed=$((passed + 1))
    else
        echo "valgrind: errors or leaks (see above)"
        failed=$((failed + 1))
    fi
else
    echo "valgrind: not installed, skipped"
fi

echo "all tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# `make test`: the whole suite, optimised and then under AddressSanitizer +
# UndefinedBehaviorSanitizer, the install with the examples built on it
# (optimised build), plus one generation end to end under valgrind memcheck. Ends with one line, "all tests: N passed, N failed, N skipped",
# then one line per skipped test naming it and why.
MAKE=${MAKE:-make}
passed=0
failed=0
skipped=0
skip_list=$(mktemp)
trap 'rm -f "$skip_list"' EXIT

count() { # $1: what ran, $2: its output, ending as tests/run.sh's does
    line=$(printf '%s\n' "$2" | grep '^tests: ' | tail -1)
    p=$(printf '%s\n' "$line" | sed -n 's/^tests: \([0-9]*\) passed.*/\1/p')
    f=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-1}))
    skipped=$((skipped + ${s:-0}))
    printf '%s\n' "$2" | sed -n "/^tests: /,\$ s/^skipped: /skipped ($1): /p" >>"$skip_list"
}

for variant in "" "SAN=1 OPT=-O1"; do
    echo "=== make $variant test-unit"
    # shellcheck disable=SC2086
    out=$($MAKE --no-print-directory $variant test-unit 2>&1)
    printf '%s\n' "$out" | grep -v '^\(cc\|gcc\|clang\|ar\) '
    count "${variant:-optimised}" "$out"
done

echo "=== make soak SOAK_SECONDS=60"
out=$($MAKE --no-print-directory soak SOAK_SECONDS=60 2>&1)
printf '%s\n' "$out" | grep -v '^\(cc\|gcc\|clang\|ar\) '
count soak "$out"

echo "=== make churn CHURN_SECONDS=30"
out=$($MAKE --no-print-directory churn CHURN_SECONDS=30 2>&1)
printf '%s\n' "$out" | grep -v '^\(cc\|gcc\|clang\|ar\) '
count churn "$out"

echo "=== make test-install"
out=$($MAKE --no-print-directory test-install 2>&1)
printf '%s\n' "$out" | grep -v '^\(cc\|gcc\|clang\|ar\|objcopy\) '
count install "$out"

echo "=== make test-valgrind"
out=$($MAKE --no-print-directory test-valgrind 2>&1)
printf '%s\n' "$out" | grep -v '^\(cc\|gcc\|clang\|ar\) '
count valgrind "$out"

echo "all tests: $passed passed, $failed failed, $skipped skipped"
cat "$skip_list"
[ "$failed" -eq 0 ]

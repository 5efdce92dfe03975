#!/bin/sh
# Runs each test program given as an argument, shows its output, and ends
# with one summary line, "tests: N passed, N failed, N skipped", then one
# line per skipped test: "skipped: PROGRAM: TEST (WHY)", WHY being what the
# test printed before skipping ("skipped: WHY"). An argument
# "--skipped=PROGRAM:WHY" is a test program that could not be built: one
# skip, "skipped: PROGRAM: all its tests (WHY)".
passed=0
failed=0
skipped=0
skip_list=$(mktemp)
trap 'rm -f "$skip_list"' EXIT
for t in "$@"; do
    case $t in
    --skipped=*)
        t=${t#--skipped=}
        echo "== ${t%%:*}: not built: ${t#*:}"
        skipped=$((skipped + 1))
        echo "skipped: ${t%%:*}: all its tests (${t#*:})" >>"$skip_list"
        continue ;;
    esac
    echo "== $t"
    out=$("$t" 2>&1)
    status=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
    s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:.*/\1/p' |
        awk '{s+=$1} END {print s+0}')
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$t exited with status $status"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    # cmocka names each skipped test as it runs it, and again in its summary
    # (after "N test(s) run."): the first mention, with the reason before it.
    printf '%s\n' "$out" | awk -v prog="$(basename "$t")" '
        /^\[==========\] [0-9]+ test\(s\) run\./ { summary = 1 }
        summary { next }
        /^\[ RUN      \] / { name = substr($0, 14); reason = ""; next }
        /^skipped: / { reason = substr($0, 10); next }
        /^\[  SKIPPED \] / { print "skipped: " prog ": " name (reason == "" ? "" : " (" reason ")") }' >>"$skip_list"
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
cat "$skip_list"
[ "$failed" -eq 0 ]

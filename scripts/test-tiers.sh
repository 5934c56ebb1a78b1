#!/usr/bin/env bash
# Run test tiers one after another, carrying on past a red one, and end with every tier's result:
# one flaky tier must not hide the state of the others (the lab tiers above all). The exit status
# is red if any tier was.
#   scripts/test-tiers.sh static unit app lab      (what `make test` runs)
#   REPEAT=10 scripts/test-tiers.sh static unit app (`make test-repeat`: each tier 10 times in a row,
#                                                    with the count of green and red runs)
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
REPEAT=${REPEAT:-1}
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
red=0
for tier in "$@"; do
  green=0 failed=0 runs=""
  for ((i = 1; i <= REPEAT; i++)); do
    ((REPEAT > 1)) && echo "==> test-$tier: run $i of $REPEAT"
    start=$SECONDS
    if $MAKE --no-print-directory "test-$tier"; then
      green=$((green + 1)); runs+=" ok($((SECONDS - start))s)"
    else
      failed=$((failed + 1)); runs+=" RED($((SECONDS - start))s)"; red=1
    fi
  done
  if ((REPEAT > 1)); then
    printf '%-12s %2d green, %2d red:%s\n' "test-$tier" "$green" "$failed" "$runs" >> "$summary"
  else
    printf '%-12s %s\n' "test-$tier" "$([ $failed = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s" >> "$summary"
  fi
done
echo
echo "==> every tier's result"
cat "$summary"
exit $red

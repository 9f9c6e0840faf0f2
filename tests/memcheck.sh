#!/usr/bin/env bash
# Runs every cmocka test binary of a build under valgrind memcheck: any
# invalid access, uninitialised read or leaked block (of any kind, "still
# reachable" included) fails.  The suppressions (tests/valgrind.supp): libevent's
# own cache, allocated once per process, and the library's disk threads, which
# run until the process exits.
#   bash tests/memcheck.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: memcheck.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
status=0 count=0
export EVSF_TEST_TIME_SCALE=4  # tests/harness.h: test_ms()
export EVSF_MEMCHECK=1         # tests that cannot run under valgrind skip (test_cold's fork child)
# No glibc thread-stack cache: a joined test thread's stack (and its
# thread-local block) is freed at once instead of being handed to the next
# thread created, so a disk thread's blocks are always allocated under its own
# pthread_create, where the suppression for them matches, whatever the timing.
export GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  count=$((count + 1))
  log=$(mktemp)
  if valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all \
       --errors-for-leak-kinds=all --suppressions="$here/valgrind.supp" \
       "$t" >"$log" 2>&1; then
    printf 'memcheck ok    %s (%s)\n' "$(basename "$t")" "$(grep -Eo '[0-9]+ test\(s\)' "$log" | tail -1 || true)"
  else
    printf 'memcheck FAIL  %s\n' "$(basename "$t")"
    grep -E '^==[0-9]+==|FAILED|ERROR' "$log" | head -80
    status=1
  fi
  rm -f "$log"
done
[ "$count" -gt 0 ] || { echo "no test binaries under $build/tests"; exit 1; }
exit $status

#!/usr/bin/env bash
# check_instructions.sh -- instructions per small transfer (4 KiB body +
# 200-byte head through sf_send_async) under valgrind --tool=callgrind,
# compared with the number recorded in bench/instructions.txt.
#
#   bench/check_instructions.sh [--record] [PATH/TO/callgrind_small]
#
# Builds nothing: the binary defaults to build/bench/callgrind_small.
# Runs it with K and 2K transfers; (Ir(2K) - Ir(K)) / K is the per-transfer
# cost with every setup instruction cancelled out.  The environment is
# emptied (env -i) because the library reads one environment variable per
# transfer and getenv's cost grows with the environment.
# Fails (exit 1) when the count is more than 10 % above the recorded one.
# --record writes the measured count to bench/instructions.txt instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
record=0
bin=""
for a in "$@"; do
  case "$a" in
    --record) record=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) bin=$a ;;
  esac
done
bin=${bin:-$here/../build/bench/callgrind_small}
baseline_file=$here/instructions.txt
k=${CALLGRIND_K:-1000}
limit_pct=10

command -v valgrind >/dev/null || { echo "check_instructions: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ -x "$bin" ] || { echo "check_instructions: no binary at $bin (build the bench/ targets first)" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# Total instructions of one run with $1 transfers.
collected() {
  local out
  out=$(cd / && env -i PATH=/usr/bin:/bin valgrind --tool=callgrind --callgrind-out-file=/dev/null \
          "$bin" "$1" 2>&1) || { echo "$out" >&2; echo "check_instructions: run with K=$1 failed" >&2; exit 2; }
  echo "$out" | sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p'
}

one=$(collected "$k")
two=$(collected $((2 * k)))
[ -n "$one" ] && [ -n "$two" ] || { echo "check_instructions: no 'Collected' line from callgrind" >&2; exit 2; }
per=$(( (two - one + k / 2) / k ))
echo "instructions per small transfer: $per   (Ir: $one at K=$k, $two at K=$((2 * k)))"

if [ "$record" = 1 ]; then
  {
    echo "# Instructions per small transfer (4 KiB body + 200-byte head, AF_UNIX, sf_send_async),"
    echo "# measured by bench/check_instructions.sh --record; CI fails above +${limit_pct} %."
    echo "# recorded $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -srm), $(nproc) cores,"
    echo "# $(valgrind --version), $(cc --version | head -1), libevent $(pkg-config --modversion libevent_core 2>/dev/null || echo '?'),"
    echo "# library at $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?') (RelWithDebInfo build)"
    echo "$per"
  } > "$baseline_file"
  echo "recorded in $baseline_file"
  exit 0
fi

[ -f "$baseline_file" ] || { echo "check_instructions: $baseline_file missing (run with --record)" >&2; exit 2; }
base=$(grep -v '^#' "$baseline_file" | grep -m1 -E '^[0-9]+$')
max=$(( base * (100 + limit_pct) / 100 ))
echo "recorded: $base   limit (+${limit_pct} %): $max   change: $(awk -v a="$per" -v b="$base" 'BEGIN{printf "%+.1f %%", (a-b)*100/b}')"
if [ "$per" -gt "$max" ]; then
  echo "check_instructions: FAIL, a small transfer got more than ${limit_pct} % more expensive" >&2
  exit 1
fi
echo "check_instructions: ok"

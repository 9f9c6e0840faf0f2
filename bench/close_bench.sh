#!/usr/bin/env bash
# close_bench.sh -- one request per connection ("Connection: close"): two
# builds of evsendfile-httpd, interleaved round by round, each under
# wrk -t2 -c32 -d3s for a 1 KiB and a 16 KiB file.  Prints requests/s and the
# server's CPU (utime + stime from /proc, 100 Hz ticks) per request.
#
#   bench/close_bench.sh OLD_HTTPD NEW_HTTPD [ROUNDS]
#
# Made for SF_SHUT_WR in the server (bench/RESULTS.md, "Connection: close
# responses"): OLD = the server before it, NEW = after.  Needs wrk.
set -euo pipefail
old=${1:?usage: close_bench.sh OLD_HTTPD NEW_HTTPD [ROUNDS]}
new=${2:?usage: close_bench.sh OLD_HTTPD NEW_HTTPD [ROUNDS]}
rounds=${3:-5}
port=${CLOSE_BENCH_PORT:-18940}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
head -c 1024 /dev/urandom > "$dir/k1.bin"
head -c 16384 /dev/urandom > "$dir/k16.bin"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "round server file req/s server_us_per_req"
for round in $(seq "$rounds"); do
  for which in old new; do
    "${!which}" --listen "127.0.0.1:$port" "$dir" > /dev/null 2>&1 &
    pid=$!
    # Until it accepts (at most 5 s): wrk against a server still starting measures nothing.
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || { echo "close_bench: ${!which} did not start" >&2; exit 1; }
      sleep 0.05
    done
    for f in k1 k16; do
      t0=$(ticks "$pid")
      rps=$(wrk -t2 -c32 -d3s -H "Connection: close" "http://127.0.0.1:$port/$f.bin" | awk '/Requests\/sec/ {print $2}')
      t1=$(ticks "$pid")
      awk -v r="$round" -v w="$which" -v f="$f" -v rps="$rps" -v t="$((t1 - t0))" \
        'BEGIN { printf "%s %s %s %.0f %.1f\n", r, w, f, rps, t / 100 / (rps * 3) * 1e6 }'
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
done

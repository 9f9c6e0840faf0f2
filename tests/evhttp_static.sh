#!/usr/bin/env bash
# examples/evhttp_static.c, run for real and driven with curl: exact bytes of
# a 5 MiB file, HEAD, keep-alive reuse, index.html, 404, a root that ".."
# and an outward symlink cannot leave.
#   evhttp_static.sh BINARY
set -euo pipefail
bin=$1
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/www/sub"
head -c 5242883 /dev/urandom > "$dir/www/big.bin"
echo "hello" > "$dir/www/sub/index.html"
echo "secret" > "$dir/secret.txt"
ln -s ../secret.txt "$dir/www/out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" "$dir/www" "$port" > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q serving "$dir/log" && break; sleep 0.1; done
url=http://127.0.0.1:$port
fail() { echo "FAIL: $*"; cat "$dir/log"; exit 1; }

curl -sS -o "$dir/got" "$url/big.bin"
cmp "$dir/got" "$dir/www/big.bin" || fail "big.bin differs"
curl -sSI "$url/big.bin" | tr -d '\r' | grep -qx 'Content-Length: 5242883' || fail "HEAD length"
curl -sSI "$url/big.bin" | grep -qi 'Transfer-Encoding' && fail "chunked framing"
# Two files on one connection (curl reuses it: "Re-using existing connection").
curl -sS -v -o "$dir/a" "$url/big.bin" -o "$dir/b" "$url/sub/" 2> "$dir/trace"
cmp "$dir/a" "$dir/www/big.bin" || fail "first of two"
[ "$(cat "$dir/b")" = hello ] || fail "index.html"
grep -qi 're-using\|reusing' "$dir/trace" || fail "the connection was not kept alive"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")" = 404 ] || fail "missing file"
[ "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$url/../secret.txt")" = 404 ] || fail "dot-dot"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/out")" = 404 ] || fail "outward symlink"
kill -TERM "$pid"
wait "$pid" || fail "exit status after SIGTERM"
echo "evhttp_static: all checks passed"

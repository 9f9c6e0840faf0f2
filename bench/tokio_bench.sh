#!/usr/bin/env bash
# Rust on tokio: evsendfile_tokio::send_file vs tokio::io::copy from a
# tokio::fs::File vs a spawn_blocking sendfile loop (bindings/rust/tokio/examples/tokio_bench.rs).
#   bash bench/tokio_bench.sh            3 rounds, 16 KiB / 1 MiB / 1 GiB x 1 / 64 connections
#   ROUNDS=5 FILE=/path/1g.bin bash bench/tokio_bench.sh
# Needs the C library in build/ and librust-tokio-dev (Debian's crates stand in for crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rounds=${ROUNDS:-3}
file=${FILE:-}
if [ -z "$file" ]; then
  file=$(mktemp /var/tmp/evsf-tokio-bench.XXXXXX)
  trap 'rm -f "$file"' EXIT
  head -c $((1 << 30)) /dev/urandom > "$file"   # real data, not a sparse file
fi
cat "$file" > /dev/null                          # page-cache warm
(cd bindings/rust/tokio && EVSENDFILE_LIB_DIR="$root/build" ./cargo-debian build --offline --release --example tokio_bench)
bindings/rust/tokio/target/release/examples/tokio_bench "$file" "$rounds"

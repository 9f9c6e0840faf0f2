#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds consumer.c
# against the INSTALLED library twice: with pkg-config and with CMake's
# find_package(evsendfile CONFIG).  Both binaries must run and pass.
set -euo pipefail
build_dir=$1
src_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name 'libevsendfile.so.2' -printf '%h\n' | head -n 1)
test -n "$libdir"

echo "== pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -Wall -Wextra -Werror -o "$work/consumer-pc" "$src_dir/consumer.c" \
   $(pkg-config --cflags --libs evsendfile libevent_core) -Wl,-rpath,"$libdir"
"$work/consumer-pc" "$src_dir/consumer.c"

echo "== cmake find_package"
cmake -S "$src_dir" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm" >/dev/null
"$work/cm/consumer" "$src_dir/consumer.c"

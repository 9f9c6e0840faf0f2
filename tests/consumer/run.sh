#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds consumer.c
# against the INSTALLED library twice: with pkg-config and with CMake's
# find_package(evsendfile CONFIG).  Both binaries must run and pass.  With
# --prefix DIR it uses what is already installed there (.ci/run: the Debian
# packages unpacked with dpkg -x); then consumer_evhttp.c is built against
# evsendfile-evhttp.pc as well.
#   run.sh BUILD_DIR | run.sh --prefix DIR
set -euo pipefail
src_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$1" = --prefix ]; then
  prefix=$2
else
  prefix=$work/prefix
  cmake --install "$1" --prefix "$prefix" >/dev/null
fi
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

if [ -f "$libdir/pkgconfig/evsendfile-evhttp.pc" ]; then
  echo "== pkg-config evsendfile-evhttp"
  cc -Wall -Wextra -Werror -o "$work/consumer-evhttp" "$src_dir/consumer_evhttp.c" \
     $(pkg-config --cflags --libs evsendfile-evhttp) -Wl,-rpath,"$libdir"
  "$work/consumer-evhttp"
fi

#!/usr/bin/env bash
# Compiles the C program shown in README.md, exactly as printed, and checks
# that it serves a file correctly to curl.
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$1
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
sed -n '/<!-- readme-example:begin -->/,/<!-- readme-example:end -->/p' "$src_dir/README.md" \
  | sed '1,2d;$d' | sed '$d' > "$work/example.c"
grep -q 'int main' "$work/example.c"
cc -Wall -Wextra -Werror -o "$work/example" "$work/example.c" -I"$src_dir/include" \
   -L"$build_dir" -levsendfile $(pkg-config --cflags --libs libevent_core libevent_extra) \
   -Wl,-rpath,"$build_dir"
head -c 3000000 /dev/urandom > "$work/file.bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/example" "$work/file.bin" "$port" &
pid=$!
curl -sS --retry 20 --retry-connrefused -o "$work/got.bin" "http://127.0.0.1:$port/"
cmp "$work/file.bin" "$work/got.bin"
wait "$pid"; pid=""
echo "README example served $(stat -c %s "$work/got.bin") bytes exactly"

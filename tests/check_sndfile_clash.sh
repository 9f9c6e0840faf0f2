#!/usr/bin/env bash
# No name we export is one libsndfile exports (it uses the sf_ prefix too),
# and a program can include both public headers.
#   check_sndfile_clash.sh LIB SOURCE_DIR CC
set -euo pipefail
lib=$1 src=$2 cc=${3:-cc}
theirs=$(ldconfig -p | awk '/libsndfile\.so\.1 /{p = $NF} END {print p}')  # no early exit: pipefail
[ -n "$theirs" ] || { echo "libsndfile.so.1 is not installed (apt-get install libsndfile1-dev)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$theirs" | awk '{print $3}' | sed 's/@.*//' | sort -u > "$tmp/theirs"
nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u > "$tmp/ours"
[ "$(wc -l < "$tmp/theirs")" -gt 20 ] || { echo "read too few names from $theirs"; exit 1; }
shared=$(comm -12 "$tmp/theirs" "$tmp/ours")
if [ -n "$shared" ]; then echo "exported by both $theirs and $lib:"; echo "$shared"; exit 1; fi
printf '#include <sndfile.h>\n#include <evsendfile.h>\nint main(void) { return sf_error(0) + (int)sf_version() * 0 + (sf_err_text(0) == 0); }\n' > "$tmp/both.c"
"$cc" -Wall -Werror -I"$src/include" -c "$tmp/both.c" -o "$tmp/both.o"
echo "no shared names ($(wc -l < "$tmp/ours") ours, $(wc -l < "$tmp/theirs") in $theirs); both headers compile together"

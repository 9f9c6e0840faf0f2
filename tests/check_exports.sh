#!/usr/bin/env bash
# The shared library exports exactly the names listed in src/exports.map,
# which are exactly the functions the header declares SF_EXTERN, and it
# carries the SONAME of the header's major version.
#   check_exports.sh LIB SOURCE_DIR
set -euo pipefail
lib=$1 src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u > "$tmp/exported"
nm -D --defined-only "$lib" | awk '$2 != "T" && $2 != "A" {print $3}' > "$tmp/other"
grep -oE '^ *sf_[a-z0-9_]+;' "$src/src/exports.map" | tr -d ' ;' | sort -u > "$tmp/map"
grep -oE 'SF_EXTERN [^(]*\b(sf_[a-z0-9_]+)\(' "$src/include/evsendfile.h" |
  grep -oE 'sf_[a-z0-9_]+\($' | tr -d '(' | sort -u > "$tmp/header"
fail=0
if [ -s "$tmp/other" ]; then echo "exported data or other symbols:"; cat "$tmp/other"; fail=1; fi
if ! diff -u "$tmp/map" "$tmp/exported"; then echo "exports.map (-) and the library (+) differ"; fail=1; fi
if ! diff -u "$tmp/header" "$tmp/map"; then echo "the header's SF_EXTERN (-) and exports.map (+) differ"; fail=1; fi
major=$(sed -n 's/^#define SF_VERSION_MAJOR \([0-9]*\).*/\1/p' "$src/include/evsendfile.h")
readelf -d "$lib" | grep -q "SONAME.*\[libevsendfile\.so\.$major\]" ||
  { echo "SONAME is not libevsendfile.so.$major"; fail=1; }
[ "$fail" = 0 ] || exit 1
echo "$(wc -l < "$tmp/exported") functions exported, as listed in exports.map and declared in the header; SONAME libevsendfile.so.$major"

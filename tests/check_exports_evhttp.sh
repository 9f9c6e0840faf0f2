#!/usr/bin/env bash
# libevsendfile_evhttp exports exactly the names in src/exports_evhttp.map,
# which are exactly the SF_EXTERN functions of include/evsendfile_evhttp.h,
# under the SONAME of the core's major version; and libevsendfile itself
# does not depend on libevent_extra.
#   check_exports_evhttp.sh LIB CORE_LIB SOURCE_DIR
set -euo pipefail
lib=$1 core=$2 src=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u > "$tmp/exported"
grep -oE '^ *sf_[a-z0-9_]+;' "$src/src/exports_evhttp.map" | tr -d ' ;' | sort -u > "$tmp/map"
grep -oE 'SF_EXTERN [^(]*\b(sf_[a-z0-9_]+)\(' "$src/include/evsendfile_evhttp.h" |
  grep -oE 'sf_[a-z0-9_]+\($' | tr -d '(' | sort -u > "$tmp/header"
fail=0
diff -u "$tmp/map" "$tmp/exported" || { echo "exports_evhttp.map (-) and the library (+) differ"; fail=1; }
diff -u "$tmp/header" "$tmp/map" || { echo "the header (-) and exports_evhttp.map (+) differ"; fail=1; }
major=$(sed -n 's/^#define SF_VERSION_MAJOR \([0-9]*\).*/\1/p' "$src/include/evsendfile.h")
readelf -d "$lib" | grep -q "SONAME.*\[libevsendfile_evhttp\.so\.$major\]" || { echo "bad SONAME"; fail=1; }
if readelf -d "$core" | grep -q 'NEEDED.*libevent_extra'; then echo "libevsendfile links libevent_extra"; fail=1; fi
[ "$fail" = 0 ] || exit 1
echo "libevsendfile_evhttp exports $(wc -l < "$tmp/exported") function(s) as listed; libevsendfile does not link libevent_extra"

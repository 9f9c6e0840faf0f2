#!/usr/bin/env bash
# The shared library exports sf_* and nothing else, and carries its SONAME.
set -euo pipefail
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -v -E '^sf_' || true)
if [ -n "$bad" ]; then
  echo "symbols outside sf_*:"; echo "$bad"; exit 1
fi
n=$(nm -D --defined-only "$lib" | grep -c ' T sf_')
readelf -d "$lib" | grep -q 'SONAME.*libevsendfile\.so\.1' || { echo "SONAME is not libevsendfile.so.1"; exit 1; }
echo "$n sf_* functions exported, nothing else; SONAME libevsendfile.so.1"

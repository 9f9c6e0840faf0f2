#!/usr/bin/env bash
# The Debian packages made by `cpack -G DEB`: their names, what each holds,
# LICENSE as each one's copyright; then all four unpacked into a scratch root
# (dpkg -x, nothing installed system-wide) and tests/consumer built and run
# against that root only.
#   packages.sh BUILD_DIR     (a build configured with -DCMAKE_INSTALL_PREFIX=/usr, after cpack)
set -euo pipefail
dir=$1
src=$(cd "$(dirname "$0")/.." && pwd)
major=$(sed -n 's/^#define SF_VERSION_MAJOR \([0-9]*\).*/\1/p' "$src/include/evsendfile.h")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for p in libevsendfile$major libevsendfile-dev libevsendfile-evhttp$major libevsendfile-evhttp-dev; do
  deb=$(ls "$dir"/"${p}"_*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] || fail "no package $p in $dir"
  dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$root/$p.list"
  grep -qx "/usr/share/doc/$p/copyright" "$root/$p.list" || fail "$p has no copyright file"
  echo "$p: $(dpkg-deb -f "$deb" Version), depends: $(dpkg-deb -f "$deb" Depends)"
  dpkg -x "$deb" "$root"
done
# Runtime packages: the versioned shared library only; -dev: the rest.
grep -E '\.(h|a|pc|cmake)$|\.so$' "$root/libevsendfile$major.list" && fail "development files in the runtime package"
grep -qE "/libevsendfile\.so\.$major\.[0-9.]+$" "$root/libevsendfile$major.list" || fail "no libevsendfile.so.$major.*"
for f in /usr/include/evsendfile.h 'libevsendfile\.so$' 'libevsendfile\.a$' 'pkgconfig/evsendfile\.pc$' 'evsendfileConfig\.cmake$'; do
  grep -qE "$f" "$root/libevsendfile-dev.list" || fail "libevsendfile-dev lacks $f"
done
for f in /usr/include/evsendfile_evhttp.h 'libevsendfile_evhttp\.so$' 'pkgconfig/evsendfile-evhttp\.pc$'; do
  grep -qE "$f" "$root/libevsendfile-evhttp-dev.list" || fail "libevsendfile-evhttp-dev lacks $f"
done
cmp -s "$root/usr/share/doc/libevsendfile$major/copyright" "$src/LICENSE" || fail "copyright is not LICENSE"
bash "$src/tests/consumer/run.sh" --prefix "$root/usr"
echo "packages: all checks passed"

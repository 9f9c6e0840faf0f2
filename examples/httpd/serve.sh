#!/usr/bin/env bash
# serve.sh [DIR] -- the one command: install what is missing (Debian), build,
# and serve DIR (default: the current directory) on http://127.0.0.1:8080/.
# Extra options after DIR go to the server, e.g.: serve.sh /srv/www --threads 2
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-$PWD}"
[ $# -gt 0 ] && shift
[ -d "$dir" ] || { echo "serve.sh: $dir is not a directory" >&2; exit 1; }
dir="$(cd "$dir" && pwd)"

"$repo/.ci/install-deps"
cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$repo/build" -j2 --target evsendfile-httpd >/dev/null

listen="${EVSENDFILE_HTTPD_LISTEN:-127.0.0.1:8080}"
echo "serve.sh: open http://$listen/ (Ctrl-C stops)"
exec "$repo/build/examples/evsendfile-httpd" --listen "$listen" "$@" "$dir"

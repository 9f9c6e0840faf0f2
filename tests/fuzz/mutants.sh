#!/bin/sh
# mutants.sh -- shows that each fuzz target can fail: plants one known bug at
# a time in a copy of the tree, runs run.sh on the copy (corpus replay, then
# SECONDS of fuzzing), and expects it to fail.  A surviving mutant is a
# target that cannot see that kind of bug: this script then exits 1.
#
#   tests/fuzz/mutants.sh [SECONDS]      (default 30; needs what run.sh needs)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-30}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/evsf-mutants-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
survivors=0

# mutant TARGET FILE SED-EXPRESSION DESCRIPTION
mutant() {
    rm -rf "$TMP/tree"
    mkdir -p "$TMP/tree"
    (cd "$ROOT" && cp -r src include examples tests "$TMP/tree/")
    sed -i "$3" "$TMP/tree/$2"
    if cmp -s "$ROOT/$2" "$TMP/tree/$2"; then
        echo "?? $4: the mutation no longer applies to $2 (update mutants.sh)"
        survivors=$((survivors + 1))
        return
    fi
    if FUZZ_BUILD_DIR=$TMP/build sh "$TMP/tree/tests/fuzz/run.sh" -t "$SECS" "$1" >"$TMP/log" 2>&1; then
        echo "SURVIVED $1: $4"
        survivors=$((survivors + 1))
    elif grep -q "invariant failed\|ERROR: libFuzzer\|ERROR: AddressSanitizer\|runtime error" "$TMP/log"; then
        echo "caught   $1: $4 -- $(grep -h -m1 'invariant failed\|ERROR:' "$TMP/log" | cut -c1-150)"
    else
        echo "?? $1: $4: run.sh failed without a finding (build error?)"
        tail -5 "$TMP/log"
        survivors=$((survivors + 1))
    fi
}

mutant request examples/httpd/request.c \
    "s/if ((unsigned char)\*q < 0x20 \&\& \*q != '\\\\t') return 400;/if ((unsigned char)*q < 0x0d \&\& *q != '\\\\t') return 400;/" \
    "header values may carry CR"
mutant request examples/httpd/request.c 's/conn_close |= list_has/conn_close = list_has/' \
    "only the last Connection line decides"
mutant range examples/httpd/range.c 's/spec\[i\].first <= out\[n - 1\].last + 1/spec[i].first <= out[n - 1].last/' \
    "adjacent ranges are not merged"
mutant range examples/httpd/range.c 's/r.first = b >= size ? 0 : size - b;/r.first = b >= size ? 0 : size - b + (b == 3);/' \
    "suffix range off by one"
mutant path examples/httpd/path.c 's/    if (!inside) { \/\* or/    inside = 1;\n    if (!inside) { \/* or/' \
    "fallback open does not check where the fd landed"
mutant path examples/httpd/path.c 's/    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;/    how.resolve = RESOLVE_NO_MAGICLINKS;/' \
    "openat2 without RESOLVE_BENEATH"
mutant engine src/job.cpp 's/    case EINVAL: case ENOSYS:/    case ENOSYS:/' \
    "sendfile EINVAL is fatal instead of a fallback"
mutant engine src/job.cpp 's/        next_offset_ += n;$/        next_offset_ += n + (n > 3000);/' \
    "copy path skips a byte"
mutant engine src/job.cpp 's/    body_sent_ += static_cast<uint64_t>(n);/    body_sent_ += static_cast<uint64_t>(n) + (static_cast<size_t>(n) < chunk);/' \
    "body_sent miscounted after a short write on the copy path"
mutant engine src/job.cpp 's/    if (n == 0) return SF_ETRUNCATED;  \/\/ bytes/    if (n == 0) return 0;  \/\/ bytes/' \
    "sendfile returning 0 is taken as progress (spins)"
mutant engine src/job.cpp 's/ \&\& !(opts.flags \& SF_NO_CORK) \&\&/ \&\& (opts.flags \& SF_NO_CORK) \&\&/' \
    "TCP_CORK logic inverted"
mutant engine src/source.cpp 's/    if (owned_ \&\& fd_ >= 0) evsf_sys.close(fd_);/    if (owned_ \&\& fd_ >= 0 \&\& offset_ < 7) evsf_sys.close(fd_);/' \
    "library-opened fd leaked"
mutant engine src/event_driver.cpp \
    's/^\(    done_(reinterpret_cast<sf_transfer_t \*>(this), status, job_->body_sent(), arg_);\)$/\1\n    if (status == -EIO) done_(reinterpret_cast<sf_transfer_t *>(this), status, job_->body_sent(), arg_);/' \
    "done runs twice after EIO"

if [ $survivors -gt 0 ]; then
    echo "$survivors mutant(s) not caught"
    exit 1
fi
echo "every mutant caught"

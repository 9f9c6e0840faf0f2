#!/bin/sh
# run.sh -- builds the libFuzzer targets with clang-14 (ASan + UBSan), replays
# the committed corpora, then fuzzes each target for a bounded time.
#
#   tests/fuzz/run.sh [-t SECONDS] [-m] [TARGET...]
#     -t SECONDS  fuzzing time per target (default 20; 0 = replay only)
#     -m          afterwards, merge what fuzzing found into tests/fuzz/corpus/
#                 (libFuzzer -set_cover_merge=1: the seed-* and regress-* files, plus
#                 a small set of inputs covering what the rest covers)
#     TARGET      request range path engine (default: all)
#
# Exits non-zero on any crash, leak, timeout or broken invariant; the input
# that did it is left in build-fuzz/artifacts/.  Needs clang-14 and
# libclang-rt-14-dev, plus libevent-dev (the engine target).
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CC_FUZZ / CXX_FUZZ.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/fuzz
OUT=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
CC=${CC_FUZZ:-clang-14}
CXX=${CXX_FUZZ:-clang++-14}
SECS=20
MERGE=0
while getopts t:m opt; do
    case $opt in
    t) SECS=$OPTARG ;;
    m) MERGE=1 ;;
    *) echo "usage: $0 [-t SECONDS] [-m] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
TARGETS=${*:-request range path engine}

SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
COMMON="-g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra -Werror"
HTTPD=$ROOT/examples/httpd
EVENT_CFLAGS=$(pkg-config --cflags libevent_core)
EVENT_LIBS=$(pkg-config --libs libevent_core)

mkdir -p "$OUT/obj" "$OUT/artifacts"

build() { # target
    case $1 in
    request) $CC $SAN $COMMON -I"$HTTPD" "$HERE/fuzz_request.c" "$HTTPD/request.c" -o "$OUT/fuzz_request" ;;
    range)   $CC $SAN $COMMON -I"$HTTPD" "$HERE/fuzz_range.c" "$HTTPD/range.c" -o "$OUT/fuzz_range" ;;
    path)    $CC $SAN $COMMON -I"$HTTPD" -I"$ROOT/include" $EVENT_CFLAGS "$HERE/fuzz_path.c" "$HTTPD/path.c" \
                 -o "$OUT/fuzz_path" ;;
    engine)
        objs=""
        for src in "$ROOT"/src/*.cpp; do
            case $(basename "$src") in evhttp_*) continue ;; esac  # libevsendfile_evhttp, not the core
            o=$OUT/obj/$(basename "$src" .cpp).o
            $CXX $SAN $COMMON -std=c++17 -fvisibility=hidden -DEVSF_FAULT_SEAM -I"$ROOT/include" -I"$ROOT/src" $EVENT_CFLAGS \
                -c "$src" -o "$o"
            objs="$objs $o"
        done
        $CC $SAN $COMMON -DEVSF_FAULT_SEAM -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/tests" $EVENT_CFLAGS \
            -c "$ROOT/tests/seam.c" -o "$OUT/obj/seam.o"
        $CC $SAN $COMMON -DEVSF_FAULT_SEAM -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/tests" $EVENT_CFLAGS \
            -c "$HERE/fuzz_engine.c" -o "$OUT/obj/fuzz_engine.o"
        # shellcheck disable=SC2086
        $CXX $SAN "$OUT/obj/fuzz_engine.o" "$OUT/obj/seam.o" $objs $EVENT_LIBS -lpthread -o "$OUT/fuzz_engine" ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}

# The engine's in-process peer makes many small socket calls; the other
# targets are pure parsing.  Every input is expected to take milliseconds.
run_fuzzer() { # target, extra libFuzzer args...
    t=$1
    shift
    # -timeout is a hang guard (inputs take ms), generous for a busy machine.
    "$OUT/fuzz_$t" -timeout=60 -rss_limit_mb=2048 -artifact_prefix="$OUT/artifacts/$t-" "$@"
}

status=0
for t in $TARGETS; do
    echo "== $t: build"
    build "$t"
    corpus=$HERE/corpus/$t
    echo "== $t: replay $(ls "$corpus" | wc -l) committed inputs"
    if ! run_fuzzer "$t" -runs=0 "$corpus" 2>"$OUT/$t-replay.log"; then
        tail -n 40 "$OUT/$t-replay.log" >&2
        echo "FAIL: $t corpus replay" >&2
        status=1
        continue
    fi
    work=$OUT/work/$t
    mkdir -p "$work"
    if [ "$SECS" -gt 0 ]; then
        echo "== $t: fuzz for ${SECS}s"
        # New inputs go to $work; the committed corpus is only read.
        if ! run_fuzzer "$t" -max_total_time="$SECS" -print_final_stats=1 "$work" "$corpus" \
            2>"$OUT/$t-fuzz.log"; then
            tail -n 60 "$OUT/$t-fuzz.log" >&2
            echo "FAIL: $t fuzzing (input saved under $OUT/artifacts/)" >&2
            status=1
            continue
        fi
        grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$OUT/$t-fuzz.log" | sed "s/^/   $t /"
    fi
    if [ "$MERGE" = 1 ]; then
        # Hand-written inputs (seed-*, regress-*) always stay; of the rest,
        # only what adds coverage beyond them is kept.
        merged=$OUT/merged/$t
        rest=$OUT/rest/$t
        rm -rf "$merged" "$rest"
        mkdir -p "$merged" "$rest"
        for f in "$corpus"/*; do
            case ${f##*/} in
            seed-* | regress-*) cp "$f" "$merged"/ ;;
            *) cp "$f" "$rest"/ ;;
            esac
        done
        run_fuzzer "$t" -set_cover_merge=1 "$merged" "$rest" "$work" 2>"$OUT/$t-merge.log"
        rm -f "$corpus"/*
        cp "$merged"/* "$corpus"/
        echo "   $t corpus now $(ls "$corpus" | wc -l) files, $(cat "$corpus"/* | wc -c) bytes"
    fi
done
[ $status = 0 ] && echo "fuzz: all targets passed"
exit $status

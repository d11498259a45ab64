#!/bin/sh
# Runs every libFuzzer harness of a RAYC_FUZZ build for a while over a copy of its seed
# corpus, and fails if any of them finds a crash, a leak, a timeout or runs out of memory.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]
#
# SECONDS per harness: the argument, else $RAYC_FUZZ_SECONDS, else 20. Seeds come from
# tests/fuzz/corpus/<harness>/ and are copied into a temporary directory, so the repository
# is never written; new inputs the run finds are thrown away with it. A crash input is kept
# under $RAYC_FUZZ_ARTIFACTS (default BUILD_DIR/fuzz-artifacts) and its path and the
# command that replays it are printed.
set -u

usage() {
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
build=$(cd "$1" 2>/dev/null && pwd) || usage
seconds=${2:-${RAYC_FUZZ_SECONDS:-20}}
case $seconds in '' | *[!0-9]*) usage ;; esac
here=$(cd "$(dirname "$0")" && pwd)
artifacts=${RAYC_FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/rayc-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM

# harness:max_len. The RPC harness gets whole messages; the parsers of command-line and
# config text do not need more than a few KiB to reach every branch.
harnesses="fuzz_rpc_unpack:65536 fuzz_json:4096 fuzz_resources:4096 fuzz_cli_args:4096 fuzz_auth:8192 fuzz_market_config:8192"

failed=""
ran=0
for entry in $harnesses; do
    name=${entry%%:*}
    max_len=${entry#*:}
    bin=$build/bin/$name
    if [ ! -x "$bin" ]; then
        if [ "$name" = fuzz_auth ]; then
            echo "fuzz: $name not built (no rayc_auth library yet); skipped"
            continue
        fi
        echo "fuzz: $bin is missing; build it with: cmake --build $build --target fuzz_all" >&2
        failed="$failed $name"
        continue
    fi
    corpus=$work/$name
    mkdir -p "$corpus"
    if [ -d "$here/corpus/$name" ]; then
        cp "$here/corpus/$name"/* "$corpus"/ 2>/dev/null
    fi
    log=$work/$name.log
    echo "fuzz: $name for ${seconds}s (max_len $max_len)"
    "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$corpus" >"$log" 2>&1
    rc=$?
    ran=$((ran + 1))
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
        sed 's/^stat:://' | tr -s ' \n' ' ')
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "fuzz: $name ok: $cov; $stats"
        continue
    fi
    failed="$failed $name"
    echo "fuzz: $name FAILED (exit $rc); the end of its log:" >&2
    tail -n 60 "$log" >&2
    for crash in $(grep -oE "Test unit written to [^ ]+" "$log" | sed 's/^Test unit written to //'); do
        echo "fuzz: crash input: $crash" >&2
        echo "fuzz: replay it:   $bin $crash" >&2
        echo "fuzz: as base64:   $(base64 -w0 "$crash")" >&2
    done
done

if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed" >&2
    exit 1
fi
echo "fuzz: $ran harnesses ran ${seconds}s each, no crash"

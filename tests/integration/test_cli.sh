#!/usr/bin/env bash
# The rayc command line as an admin uses it: a full start/status/list/kv/stop round on a
# private session root, and every kind of bad input with its exit code (2: the command line
# is wrong, 1: the cluster said no or is not there) and a message naming the problem.
set -u
bin="$1"
rayc="$bin/rayc"
export RAYC_SESSION_ROOT="$(mktemp -d /tmp/rayc-cli-test-XXXXXX)"
failures=0
cleanup() {
    "$rayc" stop --force >/dev/null 2>&1
    rm -rf "$RAYC_SESSION_ROOT"
}
trap cleanup EXIT

# expect CODE PATTERN -- command...: runs it, checks the exit code and that the combined
# output matches PATTERN (an extended regex; "" matches anything).
expect() {
    local code="$1" pattern="$2"
    shift 3
    local out rc
    out="$("$@" 2>&1)"
    rc=$?
    if [ "$rc" -ne "$code" ] || ! grep -Eq -- "$pattern" <<<"$out"; then
        echo "FAIL: $* -> exit $rc (want $code), output:"
        sed 's/^/    /' <<<"$out"
        echo "    (wanted output matching: $pattern)"
        failures=$((failures + 1))
    else
        echo "ok: $*"
    fi
}

# --- usage errors: exit 2, nothing started ---------------------------------------------
expect 2 "usage: rayc"                    -- "$rayc"
expect 2 "unknown command 'bogus'"        -- "$rayc" bogus
expect 2 "either --head .* or --address"  -- "$rayc" start
expect 2 "either --head .* or --address"  -- "$rayc" start --head --address 127.0.0.1:1
expect 2 "not valid JSON: at offset 6 near 'oops}'" -- "$rayc" start --head --resources '{"a": oops}'
expect 2 "must be a JSON object"          -- "$rayc" start --head --resources '[1]'
expect 2 '"CPU" is not a custom resource; use --num-cpus' -- "$rayc" start --head --resources '{"CPU": 2}'
expect 2 '"gpu" must be a non-negative number' -- "$rayc" start --head --resources '{"gpu": -1}'
expect 2 "is not a valid label key"       -- "$rayc" start --head --labels 'bad key=1'
expect 2 "keys under ray.io/ are set by rayc" -- "$rayc" start --head --labels 'ray.io/node-id=x'
expect 2 "is not key=value"               -- "$rayc" start --head --labels region
expect 2 "whole number of GPUs"           -- "$rayc" start --head --num-gpus 1.5
expect 2 "--gpu-memory needs a size"      -- "$rayc" start --head --gpu-memory lots
expect 2 "--port needs a port number"     -- "$rayc" start --head --port 99999
expect 2 "unknown flag '--bogus'"         -- "$rayc" start --head --bogus
expect 2 "--redis-address is for the head" -- "$rayc" start --address 127.0.0.1:1 --redis-address 127.0.0.1:2
expect 2 "rayc list nodes\|jobs"          -- "$rayc" list bogus
expect 2 "--format is table or json"      -- "$rayc" list nodes --format xml
expect 2 "usage: rayc kv"                 -- "$rayc" kv get onlyns
expect 2 "only --force"                   -- "$rayc" stop --now
[ -z "$(ls "$RAYC_SESSION_ROOT")" ] || { echo "FAIL: a usage error created a session"; failures=$((failures + 1)); }

# --- no cluster: exit 1 with directions ------------------------------------------------
expect 0 "Did not find any active rayc processes" -- "$rayc" stop
expect 1 "no rayc cluster found" -- "$rayc" status
expect 1 "Start a cluster with:  rayc start --head" -- "$rayc" status
expect 1 "cannot reach the GCS at 127.0.0.1:1"      -- "$rayc" status --address 127.0.0.1:1
expect 1 "cannot reach the GCS"                     -- env RAYC_ADDRESS=127.0.0.1:1 "$rayc" list nodes
expect 1 "cannot reach the GCS"                     -- "$rayc" start --address 127.0.0.1:1

# --- a cluster ---------------------------------------------------------------------------
expect 0 "rayc start --address='127.0.0.1:[0-9]+'" -- "$rayc" start --head --port 0 --node-ip-address 127.0.0.1 \
    --num-cpus 4 --num-gpus 2 --accelerator-type A100 --gpu-memory 80GiB --resources '{"fast_disk": 1}' \
    --labels region=eu,provider=local
address="$(cat "$RAYC_SESSION_ROOT/session_latest/gcs_address")"
port="${address##*:}"
expect 0 "rayc runtime started" -- "$rayc" start --address "$address" --node-ip-address 127.0.0.1 --num-cpus 2 \
    --num-gpus 4 --accelerator-type RTX4090 --gpu-memory 24GiB
expect 0 "0.0/6.0 CPU"          -- "$rayc" status
expect 0 "0.0/6.0 GPU"          -- "$rayc" status --address "$address"
expect 0 "0.0/1.0 fast_disk"    -- env RAYC_ADDRESS="$address" "$rayc" status
expect 0 '"accelerator_type:RTX4090": 1' -- "$rayc" list nodes --format json
expect 0 "ALIVE .* yes "        -- "$rayc" list nodes
expect 0 "^\[\]$"               -- "$rayc" list jobs --format json
expect 0 "^added$"              -- "$rayc" kv put ns key value
expect 0 "^updated$"            -- "$rayc" kv put ns key value2
expect 0 "kept"                 -- "$rayc" kv put ns key value3 --no-overwrite
expect 0 "^value2$"             -- "$rayc" kv get ns key
expect 0 "^key$"                -- "$rayc" kv list ns
expect 0 "^key$"                -- "$rayc" kv list ns k
expect 0 "^deleted 1$"          -- "$rayc" kv del ns key
expect 1 "no key 'key' in namespace 'ns'" -- "$rayc" kv get ns key
expect 1 "key can't start with @namespace_" -- "$rayc" kv put ns @namespace_x v
# Actors and placement groups as an admin sees them: a short training job (two trainers, one
# per node, in a STRICT_SPREAD group) leaves its finished actors and removed group listed.
expect 0 "replicas identical"   -- env RAYC_ADDRESS="$address" RAYC_CODE_SEARCH_PATH="$bin/../lib/libtrain_functions.so" \
    "$bin/train" --workers 2 --steps 3 --strategy STRICT_SPREAD
expect 0 "Trainer +DEAD"        -- "$rayc" list actors
expect 0 '"class_name": "Trainer"' -- "$rayc" list actors --format json
expect 0 "REMOVED +STRICT_SPREAD" -- "$rayc" list placement-groups
expect 0 '"strategy": "STRICT_SPREAD"' -- "$rayc" list placement-groups --format json
expect 2 "usage: rayc list nodes.jobs.actors.placement-groups" -- "$rayc" list bogus
# A second head on the same port fails and says why; the first cluster is untouched.
expect 1 "the GCS exited" -- "$rayc" start --head --port "$port" --node-ip-address 127.0.0.1
expect 0 "0.0/6.0 CPU"          -- "$rayc" status --address "$address"
expect 0 "Stopped 3 rayc processes" -- "$rayc" stop
expect 1 "cannot reach the GCS" -- "$rayc" status --address "$address"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"

#!/usr/bin/env bash
# The rayc command line as an admin uses it: a full start/status/list/kv/stop round on a
# private session root, and every kind of bad input with its exit code (2: the command line
# is wrong, 1: the cluster said no or is not there) and a message naming the problem.
set -u
bin="$(cd "$1" && pwd)"
rayc="$bin/rayc"
export RAYC_SESSION_ROOT="$(mktemp -d /tmp/rayc-cli-test-XXXXXX)"
first_root="$RAYC_SESSION_ROOT" # the --insecure part below runs under a root of its own
failures=0
cleanup() {
    "$rayc" stop --force >/dev/null 2>&1
    env RAYC_SESSION_ROOT="$first_root" "$rayc" stop --force >/dev/null 2>&1
    rm -rf "$RAYC_SESSION_ROOT" "$first_root"
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
expect 2 "--port needs a whole number in 0..65535" -- "$rayc" start --head --port 99999
expect 2 "^rayc start: unknown option --bogus; see 'rayc start --help'" -- "$rayc" start --head --bogus
expect 2 "--redis-address is for the head" -- "$rayc" start --address 127.0.0.1:1 --redis-address 127.0.0.1:2
expect 2 "'bogus' is not one of nodes, jobs" -- "$rayc" list bogus
expect 2 "--format is table or json"      -- "$rayc" list nodes --format xml
expect 2 "rayc kv get: missing arguments: NS KEY" -- "$rayc" kv get onlyns
expect 2 "unknown option --now; see 'rayc stop --help'" -- "$rayc" stop --now
[ -z "$(ls "$RAYC_SESSION_ROOT")" ] || { echo "FAIL: a usage error created a session"; failures=$((failures + 1)); }

# --- no cluster: exit 1 with directions ------------------------------------------------
expect 0 "Did not find any active rayc processes" -- "$rayc" stop
expect 1 "no rayc cluster found" -- "$rayc" status
expect 1 "^rayc: no rayc cluster found .*start one with 'rayc start --head'" -- "$rayc" status
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
expect 2 "see 'rayc list --help'" -- "$rayc" list bogus
# --- security, as an admin uses it ---------------------------------------------------------
session="$RAYC_SESSION_ROOT/session_latest/"
[ "$(stat -c %a "$session")" = 700 ] || { echo "FAIL: session dir is not 0700"; failures=$((failures + 1)); }
[ "$(stat -c %a "$session/auth_token")" = 600 ] || { echo "FAIL: auth_token is not 0600"; failures=$((failures + 1)); }
# Every rayc daemon and worker listens on the node IP only (the kernel's socket table).
inodes=""
for d in /proc/[0-9]*; do
    case "$(readlink "$d/exe" 2>/dev/null)" in "$bin"/rayc-*)
        inodes="$inodes $(ls -l "$d/fd" 2>/dev/null | grep -o 'socket:\[[0-9]*\]' | tr -dc '0-9\n' | tr '\n' ' ')";;
    esac
done
listening="$(awk 'FNR > 1 && $4 == "0A" { print $2, $10 }' /proc/net/tcp /proc/net/tcp6 |
    while read -r addr inode; do case " $inodes " in *" $inode "*) echo "$addr";; esac; done)"
# 127.0.0.1, as IPv4 (0100007F) or IPv4-mapped IPv6 (::ffff:127.0.0.1).
if [ -z "$listening" ] || grep -qvE '^(0100007F|0000000000000000FFFF00000100007F):' <<<"$listening"; then
    echo "FAIL: rayc listens beyond 127.0.0.1:"; sed 's/^/    /' <<<"$listening"; failures=$((failures + 1))
else
    echo "ok: $(wc -l <<<"$listening") listening sockets, all on 127.0.0.1"
fi
expect 0 "BEGIN CERTIFICATE"    -- "$rayc" get-ca-cert
expect 0 "^rayc1\."             -- "$rayc" get-auth-token
expect 1 "token was refused"    -- env RAYC_AUTH_TOKEN=not-a-token "$rayc" status
expect 2 "--ttl needs a duration" -- "$rayc" token create --ttl 60
out="$("$rayc" token create --ttl 1h --max-uses 1 --labels lease=cli-test 2>&1)"
token="$(grep -oE '[0-9a-f]{16}\.[0-9a-f]{32}' <<<"$out" | head -1)"
hash="$(grep -oE 'sha256:[0-9a-f]{64}' <<<"$out" | head -1)"
[ -n "$token" ] && [ -n "$hash" ] || { echo "FAIL: token create printed no token or hash: $out"; failures=$((failures + 1)); }
expect 0 "${token%%.*}"         -- "$rayc" token list
# Another host: its own session root, nothing of the head's but the printed command.
other_root="$(mktemp -d /tmp/rayc-cli-other-XXXXXX)"
expect 2 "--join-token"         -- env RAYC_SESSION_ROOT="$other_root" "$rayc" start --address "$address" \
    --node-ip-address 127.0.0.1 --num-cpus 1
expect 1 "is not the pinned"    -- env RAYC_SESSION_ROOT="$other_root" "$rayc" start --address "$address" \
    --node-ip-address 127.0.0.1 --num-cpus 1 --join-token "$token" \
    --ca-cert-hash sha256:0000000000000000000000000000000000000000000000000000000000000000
expect 0 "rayc runtime started" -- env RAYC_SESSION_ROOT="$other_root" "$rayc" start --address "$address" \
    --node-ip-address 127.0.0.1 --num-cpus 1 --join-token "$token" --ca-cert-hash "$hash"
expect 0 '"lease": "cli-test"'  -- "$rayc" list nodes --format json
expect 1 "single-use"           -- env RAYC_SESSION_ROOT="$other_root" "$rayc" start --address "$address" \
    --node-ip-address 127.0.0.1 --num-cpus 1 --join-token "$token" --ca-cert-hash "$hash"
# Revocation: a revoked join token joins nothing; a revoked node is dead.
out="$("$rayc" token create 2>&1)"
token2="$(grep -oE '[0-9a-f]{16}\.[0-9a-f]{32}' <<<"$out" | head -1)"
expect 0 "Revoked join token"   -- "$rayc" token revoke "${token2%%.*}"
expect 1 "was revoked"          -- env RAYC_SESSION_ROOT="$other_root" "$rayc" start --address "$address" \
    --node-ip-address 127.0.0.1 --num-cpus 1 --join-token "$token2" --ca-cert-hash "$hash"
leased="$("$rayc" list nodes | awk '$2 == "ALIVE" && / CPU=1\.0 / { print $1 }')"
expect 0 "$leased"              -- "$rayc" node revoke "$leased"
sleep 1
expect 0 "DEAD"                 -- "$rayc" list nodes
env RAYC_SESSION_ROOT="$other_root" "$rayc" stop --force >/dev/null 2>&1
rm -rf "$other_root"
# Rotating the admin token: the new one works, the old one is refused.
old="$("$rayc" get-auth-token)"
expect 0 "^rayc1\."             -- "$rayc" get-auth-token --generate
expect 0 "0.0/6.0 CPU"          -- "$rayc" status
expect 1 "replaced"             -- env RAYC_AUTH_TOKEN="$old" "$rayc" status
# A second head on the same port fails and says why first; it leaves no session behind and
# the first cluster is untouched.
sessions_before="$(ls "$RAYC_SESSION_ROOT")"
expect 1 "^rayc start: port $port on 127.0.0.1 is in use .*pass --port" -- "$rayc" start --head --port "$port" \
    --node-ip-address 127.0.0.1
[ "$(ls "$RAYC_SESSION_ROOT")" = "$sessions_before" ] || { echo "FAIL: a failed start left a session"; failures=$((failures + 1)); }
expect 0 "0.0/6.0 CPU"          -- "$rayc" status --address "$address"
expect 0 "Stopped 3 rayc processes" -- "$rayc" stop
expect 1 "cannot reach the GCS" -- "$rayc" status --address "$address"

# --- --insecure, asked for by name: plaintext, no tokens, and it says so -----------------------
export RAYC_SESSION_ROOT="$(mktemp -d /tmp/rayc-cli-insecure-XXXXXX)"
expect 0 "WARNING: --insecure" -- "$rayc" start --head --insecure --port 0 --node-ip-address 127.0.0.1 --num-cpus 1
expect 0 "0.0/1.0 CPU"          -- "$rayc" status
expect 1 "insecure"             -- "$rayc" token create
insecure_address="$(cat "$RAYC_SESSION_ROOT/session_latest/gcs_address")"
expect 1 "not --insecure"       -- "$rayc" start --address "$insecure_address" --node-ip-address 127.0.0.1 \
    --num-cpus 1 --join-token 0123456789abcdef.0123456789abcdef0123456789abcdef \
    --ca-cert-hash sha256:0000000000000000000000000000000000000000000000000000000000000000
expect 0 "Stopped 2 rayc processes" -- "$rayc" stop
rm -rf "$RAYC_SESSION_ROOT"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"

#!/usr/bin/env bash
# A driver finds its cluster and rayc's programs by itself (build tree; test_install.sh does
# the same for an installed rayc), with no RAYC_ADDRESS, no RAYC_BIN_DIR, and rayc's programs
# not on PATH. Drivers: a C job (install_job/job.c) built away from bin/, and a Python script
# on the tree's `ray` package.
#   - with no cluster on the host, each starts a local one, its daemons found next to librayc
#     (<build>/lib/../bin);
#   - a wrong RAYC_BIN_DIR is refused with a sentence that names it;
#   - with `rayc start --head` running (secure), each joins it and sees its node, also while
#     a newer cluster that another driver started for itself is the latest session (that one
#     is passed by, and the head's credentials come from the head's own session).
# Usage: test_find_cluster.sh BUILD_DIR C_JOB SQUARES_LIBRARY
set -euo pipefail
build="$(cd "$1" && pwd)"
job="$2"
squares="$3"
scratch="$(mktemp -d /tmp/rcf-XXXXXX)"
sessions="$scratch/s"
cluster_up=0
holder=""
cleanup() {
    if [ -n "$holder" ]; then
        kill "$holder" 2>/dev/null || true
        wait "$holder" 2>/dev/null || true
    fi
    if [ "$cluster_up" = 1 ]; then
        RAYC_SESSION_ROOT="$sessions" "$build/bin/rayc" stop --force >/dev/null 2>&1 || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

in_env() {
    env -i PATH=/usr/bin:/bin HOME="${HOME:-/tmp}" LANG=C.UTF-8 RAYC_SESSION_ROOT="$sessions" \
        PYTHONPATH="$build/python" PYTHONDONTWRITEBYTECODE=1 RAYC_CODE_SEARCH_PATH="$squares" "$@"
}
PY_NODES='
import json, ray
ray.init()
print("sum of squares: %d" % sum(ray.get([ray.remote(lambda x: x * x).remote(i) for i in range(1, 11)])))
print("nodes " + json.dumps([{"NodeID": n["NodeID"], "Alive": n["Alive"]} for n in ray.nodes()]))
ray.shutdown()'
n_sessions() { { ls -d "$sessions"/session_2* 2>/dev/null || true; } | wc -l; }
alive_nodes() {
    sed -n 's/^nodes //p' <<<"$1" | /usr/bin/python3 -c \
        'import json,sys; print(" ".join(sorted(n["NodeID"] for n in json.load(sys.stdin) if n["Alive"])))'
}
# run_driver c|py: runs the driver, checks its sum, prints the alive nodes it saw.
run_driver() {
    local out
    if [ "$1" = c ]; then
        out="$(in_env "$job" 2>"$scratch/err")" || { cat "$scratch/err" >&2; fail "the C job failed"; }
    else
        out="$(in_env /usr/bin/python3 -c "$PY_NODES" 2>"$scratch/err")" ||
            { cat "$scratch/err" >&2; fail "the Python driver failed"; }
    fi
    grep -qx 'sum of squares: 385' <<<"$out" || fail "$1 driver: no right sum in: $out"
    alive_nodes "$out"
}

echo "== no cluster: a local one from the build tree's daemons (not on PATH, not next to the job)"
[ "$(dirname "$job")" != "$build/bin" ] || fail "the C job lies in bin/ itself"
for d in c py; do
    before="$(n_sessions)"
    seen="$(run_driver $d)"
    [ "$(wc -w <<<"$seen")" = 1 ] || fail "$d driver's local cluster has nodes '$seen'"
    [ "$(n_sessions)" = $((before + 1)) ] || fail "$d driver made no session of its own"
done

echo "== address auto with no cluster: refused, with what to do"
if in_env RAYC_ADDRESS=auto "$job" >"$scratch/out" 2>"$scratch/err"; then
    fail "the job ran with RAYC_ADDRESS=auto and no cluster on the host"
fi
grep -q "no running rayc cluster found on this host.*rayc start --head" "$scratch/err" ||
    { cat "$scratch/err"; fail "the auto error does not say what to do"; }

echo "== a wrong RAYC_BIN_DIR is refused with a sentence"
if in_env RAYC_BIN_DIR="$scratch/nothing-here" "$job" >"$scratch/out" 2>"$scratch/err"; then
    fail "the job started a cluster with RAYC_BIN_DIR pointing nowhere"
fi
grep -q "RAYC_BIN_DIR=$scratch/nothing-here holds no rayc-gcs and rayc-raylet" "$scratch/err" ||
    { cat "$scratch/err"; fail "the RAYC_BIN_DIR error does not say what is wrong"; }

echo "== rayc start --head; drivers with no address join it"
RAYC_SESSION_ROOT="$sessions" "$build/bin/rayc" start --head --port 0 --node-ip-address 127.0.0.1 --num-cpus 2 \
    >"$scratch/start.log" 2>&1 || { cat "$scratch/start.log"; fail "rayc start --head"; }
cluster_up=1
head_session="$(readlink -f "$sessions/session_latest")"
head_node="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node_id"])' \
    "$head_session/raylet_ready.json")"
started="$(n_sessions)"
for d in c py; do
    seen="$(run_driver $d)"
    [ "$seen" = "$head_node" ] || fail "$d driver saw nodes '$seen', not the head's $head_node"
done
[ "$(n_sessions)" = "$started" ] || fail "a driver started a cluster of its own while the head ran"
if in_env "$job" --num-cpus 1 >"$scratch/out" 2>"$scratch/err"; then
    fail "the job asked for a 1-CPU cluster of its own and joined the head's instead"
fi
grep -q "a cluster runs on this host (GCS .*): num_cpus, num_gpus, resources and labels are for a new cluster" \
    "$scratch/err" || { cat "$scratch/err"; fail "the num_cpus refusal does not say why"; }
seen="$(in_env RAYC_ADDRESS=local "$job")" || fail "the job could not start a cluster of its own with address local"
[ "$(alive_nodes "$seen" | wc -w)" = 1 ] && [ "$(alive_nodes "$seen")" != "$head_node" ] ||
    fail "with address local the job saw: $seen"

echo "== ... also while a newer cluster of another driver is the latest session"
in_env /usr/bin/python3 -c "
import os, time, ray
ray.init(address='local', num_cpus=1)
open('$scratch/holder_ready', 'w').close()
while not os.path.exists('$scratch/holder_done'):
    time.sleep(0.1)
ray.shutdown()" 2>"$scratch/holder.err" &
holder=$!
for _ in $(seq 600); do
    [ -e "$scratch/holder_ready" ] && break
    kill -0 "$holder" 2>/dev/null || { cat "$scratch/holder.err"; fail "the holding driver died"; }
    sleep 0.1
done
[ -e "$scratch/holder_ready" ] || fail "the holding driver did not start its cluster"
latest="$(readlink -f "$sessions/session_latest")"
[ "$latest" != "$head_session" ] && [ -e "$latest/driver_local" ] || fail "the holder's cluster is not the latest session"
for d in c py; do
    seen="$(run_driver $d)"
    [ "$seen" = "$head_node" ] || fail "$d driver saw nodes '$seen', not the head's $head_node"
done
touch "$scratch/holder_done"
wait "$holder" || { cat "$scratch/holder.err"; fail "the holding driver failed"; }
holder=""
echo "find cluster test: ok"

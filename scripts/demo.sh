#!/usr/bin/env bash
# make demo: a heterogeneous rayc cluster on this machine — a head with 2 declared A100s
# (80 GiB), a raylet with 4 RTX 4090s (24 GiB) and one with CPUs only — runs the four
# workloads rayc is for: a hyperparameter sweep (16 trials of half a GPU each, so on the
# GPU nodes only), data-parallel training (trainer actors gang-scheduled in a placement
# group, gradients all-reduced through the object store), RL rollouts (rollout-worker
# actors, one killed midway and restarted) and batch inference (tasks on every node, then
# an actor pool); shows `rayc status`, `rayc list nodes|actors|placement-groups`; runs the
# four workloads again as Ray Python scripts (examples/python/); stops; then the market step
# (scripts/demo_market.sh): a CPU-only head that leases GPU hosts for a sweep within a budget.
# The cluster lives in
# a private session root, so it never touches another cluster on this host. It is secure, as
# users run it: TLS everywhere, nodes join with join tokens, clients use the admin token of
# the session.
set -euo pipefail
bin="${1:-build/bin}"
bin="$(cd "$bin" && pwd)"
lib="$(cd "$bin/../lib" && pwd)"
export RAYC_SESSION_ROOT="$(mktemp -d /tmp/rayc-demo-XXXXXX)"
port="${RAYC_DEMO_PORT:-0}" # 0: any free port, so the demo never collides with a cluster
cleanup() {
    "$bin/rayc" stop >/dev/null 2>&1 || true
    rm -rf "$RAYC_SESSION_ROOT"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step rayc start --head --port "$port" --num-cpus 4 --num-gpus 2 --accelerator-type A100 --gpu-memory 80GiB \
    --resources '{"fast_disk": 1}' --labels region=eu,provider=local
"$bin/rayc" start --head --port "$port" --node-ip-address 127.0.0.1 --num-cpus 4 --num-gpus 2 \
    --accelerator-type A100 --gpu-memory 80GiB --resources '{"fast_disk": 1}' --labels region=eu,provider=local
address="$(cat "$RAYC_SESSION_ROOT/session_latest/gcs_address")"

# The RTX 4090 host joins as a host of another owner would: with a single-use join token
# that carries its labels, and the CA pinned by the hash the head printed.
step rayc token create --ttl 10m --max-uses 1 --labels region=us
joining="$("$bin/rayc" token create --ttl 10m --max-uses 1 --labels region=us)"
echo "$joining"
token="$(grep -oE '[0-9a-f]{16}\.[0-9a-f]{32}' <<<"$joining" | head -n 1)"
ca_hash="$(grep -oE 'sha256:[0-9a-f]{64}' <<<"$joining" | head -n 1)"

step rayc start --address "$address" --join-token "${token:0:8}..." --ca-cert-hash "${ca_hash:0:15}..." \
    --num-cpus 4 --num-gpus 4 --accelerator-type RTX4090 --gpu-memory 24GiB
"$bin/rayc" start --address "$address" --join-token "$token" --ca-cert-hash "$ca_hash" --node-ip-address 127.0.0.1 \
    --num-cpus 4 --num-gpus 4 --accelerator-type RTX4090 --gpu-memory 24GiB | tail -n 3

step rayc start --address "$address" --num-cpus 8 --labels region=us
"$bin/rayc" start --address "$address" --node-ip-address 127.0.0.1 --num-cpus 8 --num-gpus 0 \
    --labels region=us | tail -n 3

step rayc status
"$bin/rayc" status

step rayc list nodes
"$bin/rayc" list nodes

export RAYC_ADDRESS="$address"
step sweep: 16 trials, 0.5 GPU each, on the GPU nodes
RAYC_CODE_SEARCH_PATH="$lib/libsweep_functions.so" "$bin/sweep" --gpus-per-trial 0.5 --epochs 40

step data-parallel training: 4 trainers with a GPU each, PACK placement group
RAYC_CODE_SEARCH_PATH="$lib/libtrain_functions.so" "$bin/train" --workers 4 --gpus-per-worker 1 --strategy PACK \
    --steps 25

step data-parallel training: 3 trainers, one per node, STRICT_SPREAD placement group
RAYC_CODE_SEARCH_PATH="$lib/libtrain_functions.so" "$bin/train" --workers 3 --strategy STRICT_SPREAD --steps 15

step RL rollouts: 4 rollout workers, evolution strategies on cart-pole, one worker killed at iteration 5
RAYC_CODE_SEARCH_PATH="$lib/librl_functions.so" "$bin/rl" --workers 4 --iterations 30 --kill-at 5

step batch inference: 64 shards on every node, the model read from the object store
RAYC_CODE_SEARCH_PATH="$lib/libinference_functions.so" "$bin/batch_inference" --shards 64 --shard-size 256

step batch inference on an actor pool: 6 Scorer actors load the model once each
RAYC_CODE_SEARCH_PATH="$lib/libinference_functions.so" "$bin/batch_inference" --shards 64 --shard-size 256 \
    --actors 6

step rayc list actors
"$bin/rayc" list actors

step rayc list placement-groups
"$bin/rayc" list placement-groups

step rayc list jobs
"$bin/rayc" list jobs

step rayc token list
"$bin/rayc" token list

# The same four workloads written against Ray's Python API (examples/python/), run unchanged
# on this cluster by Debian's Python with rayc's `ray` package: they join it through
# --address and find the session's credentials under $RAYC_SESSION_ROOT.
python="${RAYC_DEMO_PYTHON:-/usr/bin/python3}"
examples="$(cd "$(dirname "${BASH_SOURCE[0]}")/../examples/python" && pwd)"
export PYTHONPATH="$(cd "$bin/../python" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
for example in sweep train_ddp rl_rollouts batch_inference; do
    step "$python" "examples/python/$example.py" --address "$address"
    "$python" "$examples/$example.py" --address "$address"
done

step rayc stop
"$bin/rayc" stop

# The market step: a cluster that grows onto rented GPUs and shrinks back (its own session root).
"$(dirname "${BASH_SOURCE[0]}")/demo_market.sh" "$bin"

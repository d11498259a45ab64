#!/usr/bin/env bash
# make demo, the market step: a head with CPUs only and rayc-market with a local provider
# whose offers file has a few GPU classes at different prices — the cheapest a host that
# fakes its GPUs, one that vanishes after a while. A sweep asks for GPUs the cluster does
# not have; the market leases the cheapest hosts that pass verification, catches and
# releases the fake one, replaces the one that vanished, and once the sweep is done and the
# hosts sit idle it drains and releases them. Prints the spend and every decision.
# Secure, as users run it. Usage: scripts/demo_market.sh BIN_DIR
set -euo pipefail
bin="${1:-build/bin}"
bin="$(cd "$bin" && pwd)"
lib="$(cd "$bin/../lib" && pwd)"
# A cluster of its own: nothing of the caller's cluster (make demo's first part) carries over.
unset RAYC_ADDRESS
export RAYC_SESSION_ROOT="$(mktemp -d /tmp/rayc-market-XXXXXX)"
work="$RAYC_SESSION_ROOT/config"
mkdir -p "$work"
cleanup() {
    "$bin/rayc" stop >/dev/null 2>&1 || true
    rm -rf "$RAYC_SESSION_ROOT"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

cat >"$work/offers.json" <<'EOF'
[
  {"id": "a100-cheap", "gpu_name": "A100", "num_gpus": 2, "gpu_memory": 80, "num_cpus": 4, "memory": 8,
   "price_per_hour": 0.90, "billing_increment_s": 60, "region": "eu", "reliability": 0.97,
   "lease_duration_s": 0, "behaviour": "fake_gpu"},
  {"id": "rtx4090-spot", "gpu_name": "RTX4090", "num_gpus": 2, "gpu_memory": 24, "num_cpus": 4, "memory": 8,
   "price_per_hour": 0.95, "billing_increment_s": 60, "region": "us", "reliability": 0.9,
   "lease_duration_s": 0, "behaviour": "vanish_after_s:5"},
  {"id": "l40s", "gpu_name": "L40S", "num_gpus": 2, "gpu_memory": 48, "num_cpus": 4, "memory": 8,
   "price_per_hour": 1.10, "billing_increment_s": 60, "region": "eu", "reliability": 0.99,
   "lease_duration_s": 0, "behaviour": "honest", "available": 2},
  {"id": "h100", "gpu_name": "H100", "num_gpus": 2, "gpu_memory": 80, "num_cpus": 4, "memory": 8,
   "price_per_hour": 3.20, "billing_increment_s": 60, "region": "us", "reliability": 0.99,
   "lease_duration_s": 0, "behaviour": "honest"}
]
EOF
cat >"$work/market.json" <<'EOF'
{"budget_per_hour": 3.0, "budget_total": 10.0, "idle_timeout_s": 8, "max_hosts": 3,
 "verification": {"matrix_n": 256, "spot_checks": 8, "time_limit_s": 5},
 "timeouts": {"launch_s": 20, "register_s": 20}, "round_interval_ms": 500,
 "providers": [{"name": "lab", "type": "local", "offers": "offers.json"}]}
EOF

step rayc start --head --num-cpus 2 --num-gpus 0 --market market.json
"$bin/rayc" start --head --port 0 --node-ip-address 127.0.0.1 --num-cpus 2 --num-gpus 0 \
    --market "$work/market.json" | tail -n 2
address="$(cat "$RAYC_SESSION_ROOT/session_latest/gcs_address")"

step rayc market offers
"$bin/rayc" market offers

export RAYC_ADDRESS="$address"
step "sweep: 16 trials of half a GPU each, on a cluster that has no GPU"
RAYC_CODE_SEARCH_PATH="$lib/libsweep_functions.so" "$bin/sweep" --gpus-per-trial 0.5 --epochs 12000

step rayc status
"$bin/rayc" status

step "waiting for the idle hosts to be drained and released"
for _ in $(seq 1 120); do
    live="$("$bin/rayc" market status --format json |
        { grep -oE '"state":"(QUEUED|REQUESTED|ALLOCATED|RAY_RUNNING|RAY_STOPPING)"' || true; } | wc -l)"
    [ "$live" -eq 0 ] && break
    sleep 0.5
done

step rayc market status
"$bin/rayc" market status

step rayc market stop
"$bin/rayc" market stop
step rayc stop
"$bin/rayc" stop

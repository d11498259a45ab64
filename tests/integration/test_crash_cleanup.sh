#!/usr/bin/env bash
# Cleanup after crashes: a head (GCS + raylet) and a second raylet are killed with SIGKILL;
# their object store files in /dev/shm, their sockets and their pid files stay behind until
# the next `rayc stop` (first round) or `rayc start` (second round) on this host removes
# them. A live cluster of another session root on the same host keeps every file and keeps
# working throughout. The stores go to a directory of this test's own on /dev/shm
# (RAYC_plasma_directory), so that its sweeps never touch other clusters of the host.
set -u
bin="$(cd "$1" && pwd)"
rayc="$bin/rayc"
root1="$(mktemp -d /tmp/rayc-crash1-XXXXXX)"
root2="$(mktemp -d /tmp/rayc-crash2-XXXXXX)"
live_root="$(mktemp -d /tmp/rayc-crash-live-XXXXXX)"
shm="$(mktemp -d /dev/shm/rayc-crash-test-XXXXXX)"
export RAYC_plasma_directory="$shm"
failures=0
cleanup() {
    local r
    for r in "$root1" "$root2" "$live_root"; do
        RAYC_SESSION_ROOT="$r" "$rayc" stop --force >/dev/null 2>&1
    done
    rm -rf "$root1" "$root2" "$live_root" "$shm"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

node_flags=(--node-ip-address 127.0.0.1 --num-cpus 1 --object-store-memory 64MiB)

# start_head ROOT: a head under ROOT; prints nothing, fails the test if it does not start.
start_head() {
    if ! RAYC_SESSION_ROOT="$1" "$rayc" start --head --port 0 --include-dashboard false "${node_flags[@]}" >"$1/start.out" 2>&1; then
        cat "$1/start.out"
        fail "rayc start --head under $1"
        return 1
    fi
}

# files_of SESSION...: every store file, socket and pid file of those sessions, one a line.
files_of() {
    local s id
    for s in "$@"; do
        [ -d "$s" ] || continue
        if [ -f "$s/raylet_ready.json" ]; then
            id="$(sed -n 's/.*"node_id": "\([0-9a-f]*\)".*/\1/p' "$s/raylet_ready.json")"
            echo "$shm/rayc-$id"
        fi
        ls -d "$s"/sockets/*.sock "$s"/pids/*.pid 2>/dev/null
    done
}

# pids_of ROOT: the pids recorded in ROOT's pid files.
pids_of() { cat "$1"/session_2*/pids/*.pid 2>/dev/null; }

check_all_exist() { # LABEL FILE...
    local label="$1" f missing=0
    shift
    for f in "$@"; do
        [ -e "$f" ] || { fail "$label: $f is missing"; missing=1; }
    done
    [ "$missing" -eq 0 ] && ok "$label: all $# files there"
}

check_none_exist() { # LABEL FILE...
    local label="$1" f left=0
    shift
    for f in "$@"; do
        [ -e "$f" ] && { fail "$label: $f is still there"; left=1; }
    done
    [ "$left" -eq 0 ] && ok "$label: all $# files gone"
}

# crash_cluster ROOT: a head and a second raylet under ROOT (empty), then SIGKILL for all
# three processes. Sets crashed to their files.
crash_cluster() {
    local root="$1"
    start_head "$root" || return 1
    local address
    address="$(cat "$root/session_latest/gcs_address")"
    if ! RAYC_SESSION_ROOT="$root" "$rayc" start --address "$address" "${node_flags[@]}" >"$root/join.out" 2>&1; then
        cat "$root/join.out"
        fail "rayc start --address (a second raylet)"
        return 1
    fi
    mapfile -t crashed < <(files_of "$root"/session_2*)
    local stores
    stores="$(printf '%s\n' "${crashed[@]}" | grep -c "^$shm/rayc-")"
    [ "$stores" -eq 2 ] || fail "expected 2 object stores, found $stores: ${crashed[*]}"
    [ "$(printf '%s\n' "${crashed[@]}" | grep -c '\.sock$')" -eq 2 ] || fail "expected 2 raylet sockets: ${crashed[*]}"
    [ "$(printf '%s\n' "${crashed[@]}" | grep -c '\.pid$')" -eq 3 ] || fail "expected 3 pid files: ${crashed[*]}"
    local pid
    for pid in $(pids_of "$root"); do
        kill -KILL "$pid"
    done
    for pid in $(pids_of "$root"); do
        for _ in $(seq 100); do
            [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
            sleep 0.1
        done
    done
    check_all_exist "after SIGKILL (nothing cleans up yet)" "${crashed[@]}"
}

# --- a live cluster under another root ---------------------------------------------------
start_head "$live_root" || exit 1
mapfile -t live < <(files_of "$live_root"/session_2*)
[ "${#live[@]}" -eq 4 ] || fail "the live cluster should have a store, a socket and 2 pid files: ${live[*]}"

# --- round 1: rayc stop removes what the killed processes left ----------------------------
crash_cluster "$root1"
sleep 6 # older than the sweep's grace for files being created
out="$(RAYC_SESSION_ROOT="$root1" "$rayc" stop 2>&1)"
echo "$out" | sed 's/^/    rayc stop: /'
check_none_exist "after rayc stop" "${crashed[@]}"
grep -q "Removed $shm/rayc-" <<<"$out" || fail "rayc stop did not say what it removed"
check_all_exist "the live cluster after rayc stop" "${live[@]}"

# --- round 2: rayc start does the same ----------------------------------------------------
crash_cluster "$root2"
sleep 6
start_head "$root2"
check_none_exist "after rayc start" "${crashed[@]}"
mapfile -t fresh < <(files_of "$(readlink -f "$root2/session_latest")")
[ "${#fresh[@]}" -eq 4 ] || fail "the new head should have a store, a socket and 2 pid files: ${fresh[*]}"
check_all_exist "the new head's files" "${fresh[@]}"
check_all_exist "the live cluster after rayc start" "${live[@]}"

# --- the live cluster still works ---------------------------------------------------------
if RAYC_SESSION_ROOT="$live_root" "$rayc" status >"$live_root/status.out" 2>&1; then
    ok "the live cluster answers rayc status"
else
    cat "$live_root/status.out"
    fail "the live cluster does not answer rayc status"
fi

# --- a clean stop of both leaves nothing --------------------------------------------------
RAYC_SESSION_ROOT="$root2" "$rayc" stop >/dev/null 2>&1
RAYC_SESSION_ROOT="$live_root" "$rayc" stop >/dev/null 2>&1
check_none_exist "after stopping both clusters" "${fresh[@]}" "${live[@]}"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all passed"

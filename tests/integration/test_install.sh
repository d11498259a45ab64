#!/usr/bin/env bash
# make install as a user meets it: rayc installed into a scratch prefix (and into a DESTDIR),
# then, in an environment that names nothing of the source or build tree (no RAYC_BIN_DIR):
#   - the installed files: programs, librayc shared and static, a public header that compiles
#     on its own, rayc.pc, the CMake package, the Python package;
#   - a job (install_job/) and the examples built out of tree with pkg-config alone, and the
#     job again with find_package(rayc), each shared and static;
#   - a cluster started with the installed `rayc start --head` (secure), which every job and a
#     Python driver (Debian's python3, importing ray from the prefix) join with no address:
#     they see its node and start no cluster of their own;
#   - once it is stopped, the job starts a local cluster from the installed daemons, found
#     next to librayc (not on PATH) or on PATH, and says what to do when they are nowhere.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
# Short: a session's unix socket path must fit in 107 bytes.
scratch="$(mktemp -d /tmp/rci-XXXXXX)"
prefix="$scratch/prefix"
sessions="$scratch/s"
cluster_up=0
cleanup() {
    if [ "$cluster_up" = 1 ]; then
        RAYC_SESSION_ROOT="$sessions" "$prefix/bin/rayc" stop --force >/dev/null 2>&1 || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "== $(date +%T) $*"; }

# ---- install -------------------------------------------------------------------------------
step "DESTDIR install"
DESTDIR="$scratch/dest" cmake --install "$build" --prefix /opt/rayc >/dev/null
for f in bin/rayc bin/rayc-gcs bin/rayc-raylet bin/rayc-worker lib/librayc.so lib/librayc.a include/rayc.h \
    include/rayc_errno.h lib/pkgconfig/rayc.pc lib/cmake/rayc/raycConfig.cmake \
    lib/cmake/rayc/raycConfigVersion.cmake; do
    [ -e "$scratch/dest/opt/rayc/$f" ] || fail "DESTDIR install lacks opt/rayc/$f"
done
grep -qx 'prefix=/opt/rayc' "$scratch/dest/opt/rayc/lib/pkgconfig/rayc.pc" || fail "rayc.pc under DESTDIR names another prefix"

step "prefix install"
cmake --install "$build" --prefix "$prefix" >/dev/null
[ "$(ls "$prefix/include")" = "$(printf 'rayc.h\nrayc_errno.h')" ] || fail "include/ holds more than the public headers: $(ls "$prefix/include")"
site="$(ls -d "$prefix"/lib/python3*/dist-packages)"
[ -f "$site/ray/__init__.py" ] && ls "$site"/ray/_raylet*.so >/dev/null || fail "no Python package in $site"

# ---- from here on, nothing of the trees -----------------------------------------------------
clean() {
    env -i PATH="$prefix/bin:/usr/bin:/bin" HOME="${HOME:-/tmp}" LANG=C.UTF-8 TMPDIR=/tmp \
        RAYC_SESSION_ROOT="$sessions" PKG_CONFIG_PATH="$prefix/lib/pkgconfig" CMAKE_PREFIX_PATH="$prefix" \
        PYTHONDONTWRITEBYTECODE=1 "$@"
}
if clean env | grep -F -e "$build" -e "$src" -e RAYC_BIN_DIR; then
    fail "the test's environment names the source or build tree"
fi
[ "$(clean sh -c 'command -v rayc')" = "$prefix/bin/rayc" ] || fail "rayc on PATH is not the installed one"

mkdir -p "$scratch/job" "$scratch/examples"
cp "$src"/tests/integration/install_job/{job.c,squares.c,CMakeLists.txt} "$scratch/job/"
cp "$src"/examples/*.c "$src"/examples/*.h "$scratch/examples/"
cd "$scratch/job"

step "rayc.h compiles on its own"
printf '#include "rayc.h"\nint main(void) { return RAYC_EINVAL < 0 && rayc_strerror(RAYC_EAUTH) ? 0 : 1; }\n' >alone.c
clean sh -c 'cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags rayc) -c alone.c -o alone.o'

step "pkg-config builds"
clean sh -c 'cc -Wall -Werror -fPIC -shared squares.c -o libsquares.so $(pkg-config --cflags --libs rayc)'
clean sh -c 'cc -Wall -Werror job.c -o job_pc $(pkg-config --cflags --libs rayc) -Wl,-rpath,$(pkg-config --variable=libdir rayc)'
libs_static="$(clean pkg-config --static --libs rayc)"
grep -q -- '-lgrpc' <<<"$libs_static" || fail "pkg-config --static --libs rayc lacks librayc's dependencies: $libs_static"
clean sh -c 'cc -Wall -Werror job.c -o job_pc_static $(pkg-config --cflags rayc) \
    $(pkg-config --static --libs rayc | sed "s/-lrayc /-l:librayc.a /")'
# (ldd's output is taken whole first: grep -q leaving early would fail the pipe.)
links_to() { local deps; deps="$(ldd "$1")"; grep -qF "$2" <<<"$deps"; }
! links_to job_pc_static librayc || fail "job_pc_static is linked to the shared librayc"
links_to job_pc "$prefix/lib/librayc.so" || fail "job_pc does not use the installed librayc: $(ldd job_pc)"
for e in sweep_main sweep_functions inference_main inference_functions train_main train_functions rl_main \
    rl_functions; do
    clean sh -c "cc -Wall -Werror -fPIC \$(pkg-config --cflags rayc) -c ../examples/$e.c -o ../examples/$e.o"
done

step "find_package(rayc) builds"
clean cmake -S . -B cmake-build -DCMAKE_BUILD_TYPE=Release >cmake.log 2>&1 || { cat cmake.log; fail "cmake configure"; }
clean cmake --build cmake-build >>cmake.log 2>&1 || { cat cmake.log; fail "cmake build"; }
! links_to cmake-build/job_static librayc || fail "the CMake job_static is linked to the shared librayc"
links_to cmake-build/job "$prefix/lib/librayc.so" || fail "the CMake job does not use the installed librayc"

# ---- a cluster of the installed rayc ------------------------------------------------------
step "installed rayc start --head"
clean rayc start --head --port 0 --node-ip-address 127.0.0.1 --num-cpus 2 >start.log 2>&1 || {
    cat start.log
    fail "rayc start --head"
}
cluster_up=1
head_node="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node_id"])' \
    "$sessions/session_latest/raylet_ready.json")"
n_sessions() { { ls -d "$sessions"/session_2* 2>/dev/null || true; } | wc -l; }
[ "$(n_sessions)" = 1 ] || fail "rayc start made $(n_sessions) sessions"

# check_job LABEL EXPECTED_NODES OUTPUT: the sum and the alive nodes the job saw.
alive_nodes() {
    sed -n 's/^nodes //p' <<<"$1" | /usr/bin/python3 -c \
        'import json,sys; print(" ".join(sorted(n["NodeID"] for n in json.load(sys.stdin) if n["Alive"])))'
}
check_job() {
    local label="$1" want="$2" out="$3"
    grep -qx 'sum of squares: 385' <<<"$out" || fail "$label: no right sum in: $out"
    local seen
    seen="$(alive_nodes "$out")"
    [ "$seen" = "$want" ] || fail "$label saw nodes '$seen', not '$want'"
    echo "ok: $label"
}
for job in job_pc job_pc_static cmake-build/job cmake-build/job_static; do
    lib="$scratch/job/libsquares.so"
    [[ "$job" == cmake-build/* ]] && lib="$scratch/job/cmake-build/libsquares.so"
    out="$(clean env RAYC_CODE_SEARCH_PATH="$lib" "./$job" 2>job.err)" || { cat job.err; fail "$job failed"; }
    check_job "$job joins the installed cluster" "$head_node" "$out"
done
[ "$(n_sessions)" = 1 ] || fail "a job started a cluster of its own while one ran"

step "Debian's python3 imports ray from the prefix and joins"
out="$(clean env PYTHONPATH="$site" /usr/bin/python3 -c '
import json, os, ray
ray.init()
@ray.remote
def where(x):
    return x * x, os.getpid()
square, pid = ray.get(where.remote(12))
print(ray.__file__)
print(json.dumps({"square": square, "other_process": pid != os.getpid(),
                  "nodes": sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])}))
ray.shutdown()' 2>py.err)" || { cat py.err; fail "the Python driver failed"; }
grep -qx "$site/ray/__init__.py" <<<"$out" || fail "ray was not imported from $site: $out"
tail -1 <<<"$out" | /usr/bin/python3 -c '
import json, sys
got = json.load(sys.stdin)
assert got == {"square": 144, "other_process": True, "nodes": [sys.argv[1]]}, got' "$head_node" ||
    fail "the Python driver saw: $out"
[ "$(n_sessions)" = 1 ] || fail "the Python driver started a cluster of its own"
echo "ok: python"

step "installed rayc stop"
clean rayc stop >stop.log 2>&1 || { cat stop.log; fail "rayc stop"; }
cluster_up=0

# ---- no cluster: a local one, from the installed daemons -------------------------------------
step "local cluster, daemons found next to librayc (not on PATH)"
out="$(clean env PATH=/usr/bin:/bin RAYC_CODE_SEARCH_PATH="$scratch/job/libsquares.so" ./job_pc 2>job.err)" ||
    { cat job.err; fail "job_pc could not start a local cluster"; }
local_node="$(alive_nodes "$out")"
[ -n "$local_node" ] && [ "$local_node" != "$head_node" ] || fail "job_pc did not run on a cluster of its own: $out"
check_job "job_pc on a local cluster" "$local_node" "$out"
[ "$(n_sessions)" = 2 ] || fail "the local cluster left $(n_sessions) sessions, not 2"

step "local cluster, daemons found on PATH (static librayc)"
out="$(clean env RAYC_CODE_SEARCH_PATH="$scratch/job/libsquares.so" ./job_pc_static 2>job.err)" ||
    { cat job.err; fail "job_pc_static could not start a local cluster"; }
check_job "job_pc_static on a local cluster" "$(alive_nodes "$out")" "$out"

step "no daemons anywhere: the error says what to do"
if clean env PATH=/usr/bin:/bin ./job_pc_static >job.out 2>job.err; then
    fail "job_pc_static ran without any daemons to start"
fi
grep -q "rayc-gcs and rayc-raylet are not next to librayc, next to this program or on PATH" job.err ||
    { cat job.err; fail "the missing-daemons error does not say where it looked"; }
grep -q "rayc start --head" job.err || { cat job.err; fail "the missing-daemons error does not say what to do"; }
echo "install test: ok"

/* RPC floor and GCS benchmarks (bench_rpc.c, bench_gcs.c). No include guard. */
BENCH(rpc_echo_sync, bench_rpc_echo_sync, "bare gRPC-core echo between two processes, one call at a time")
BENCH(rpc_echo_async, bench_rpc_echo_async, "bare gRPC-core echo between two processes, 64 calls in flight")
BENCH(rpc_echo_tls, bench_rpc_echo_tls,
      "the same echoes over TLS with a bearer token checked by the ACL: rpc_echo_sync_tls and rpc_echo_async_tls (vs the plaintext floors)")
BENCH(rpc_connect_tls, bench_rpc_connect_tls, "new TLS connections per second (handshake and one call each)")
BENCH(gcs_kv_put_sync, bench_gcs_kv_put_sync,
      "InternalKVPut one at a time, memory and Redis storage (vs rpc_echo_sync; Redis also vs hiredis HSET)")
BENCH(gcs_kv_put_async, bench_gcs_kv_put_async,
      "InternalKVPut, 64 in flight, memory and Redis storage (vs rpc_echo_async; Redis also vs pipelined HSET)")
BENCH(gcs_kv_get_sync, bench_gcs_kv_get_sync, "InternalKVGet one at a time, memory and Redis storage (vs rpc_echo_sync)")
BENCH(gcs_kv_get_async, bench_gcs_kv_get_async, "InternalKVGet, 64 in flight, memory and Redis storage (vs rpc_echo_async)")
BENCH(gcs_register_1000_nodes, bench_gcs_register_1000_nodes,
      "1,000 simulated nodes register (s), then report at 1 Hz (GCS %cpu), GCS RSS")
BENCH(raylet_idle_rss, bench_raylet_idle_rss, "resident memory of an idle raylet and GCS (MiB)")
BENCH(gcs_rss_pg_churn, bench_gcs_rss_pg_churn,
      "placement groups created and removed (RAYC_BENCH_PG_CHURN, full figure 1,000,000): GCS and raylet RSS after "
      "10,000 and at the end (MiB)")

/* Actor and placement-group benchmarks (bench_actors.c), Ray's names. No include guard. */
BENCH(1_1_actor_calls_sync, bench_actor_calls_sync, "one actor call, then get, one at a time (vs rpc_echo_sync, Dask)")
BENCH(1_1_actor_calls_async, bench_actor_calls_async, "calls to one actor in batches of 1,000 (vs rpc_echo_async, Dask)")
BENCH(1_1_actor_calls_concurrent, bench_actor_calls_concurrent, "batches of 1,000 calls to an actor with max_concurrency 16")
BENCH(1_n_actor_calls_async, bench_actor_calls_1_n, "batches of 1,000 calls spread over 4 actors")
BENCH(n_n_actor_calls_async, bench_actor_calls_n_n, "2 caller processes, each with 2 actors of its own")
BENCH(placement_group_create_removal, bench_pg_create_removal, "100 one-bundle placement groups created, waited for, removed")

/* Scheduler benchmarks (bench_sched.c). No include guard. A decision is one schedule() (or
 * sched_place_bundles) call; OK decisions are allocated and freed later, inside the loop. */
BENCH(sched_hybrid_100_nodes, bench_sched_hybrid_100,
      "DEFAULT (hybrid) decisions/s on 100 mixed nodes, decide+allocate, steady ~50% load")
BENCH(sched_hybrid_1k_nodes, bench_sched_hybrid_1k,
      "DEFAULT (hybrid) decisions/s on 1k mixed nodes, decide+allocate, steady ~50% load")
BENCH(sched_hybrid_10k_nodes, bench_sched_hybrid_10k,
      "DEFAULT (hybrid) decisions/s on 10k mixed nodes; also sched_hybrid_scaling_10k_vs_100")
BENCH(sched_spread_1k_nodes, bench_sched_spread_1k,
      "SPREAD decisions/s on 1k mixed nodes, decide+allocate, steady ~50% load")
BENCH(sched_label_1k_nodes, bench_sched_label_1k,
      "label selectors (DEFAULT) and NODE_LABEL hard/soft, alternating, 1k nodes, decide+allocate")
BENCH(sched_pg_8_bundles_1k_nodes, bench_sched_pg_8_bundles_1k,
      "placement groups of 8 bundles (PACK/SPREAD/STRICT_*) on 1k nodes, place+allocate all")

/* Scheduler benchmarks (bench_sched.c). No include guard. */

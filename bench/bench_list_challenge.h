/* The market's verification challenge (bench_challenge.c). No include guard. */
BENCH(market_verify_seconds, bench_market_verify_seconds,
      "verification challenge on the CPU: seconds to compute and commit (order 256, 512, 1024, all cores) "
      "and to verify 8 spot rows")

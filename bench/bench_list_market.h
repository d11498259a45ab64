/* The market's decision library (bench_market.c). No include guard. */
BENCH(market_decide, bench_market_decide,
      "mk_decide rounds over 10,000 seeded offers and 1,000 pending shapes (plus 20 gangs), ms per round")
BENCH(market_scale_up_latency, bench_market_scale_up,
      "pending demand to a verified leased host running the task (local provider), s; and its challenge")

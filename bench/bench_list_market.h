/* The market's decision library (bench_market.c). No include guard. */
BENCH(market_decide, bench_market_decide,
      "mk_decide rounds over 10,000 seeded offers and 1,000 pending shapes (plus 20 gangs), ms per round")

/* Python figures (bench_python.c): bench/peers/ray_micro.py on rayc's `ray` package, Ray's
 * names with py_; last, so that each is reported against the C figure of this run. No
 * include guard. */
BENCH(python, bench_python, "Ray's microbenchmarks in Python (py_*, vs the C figures and Dask): bench/peers/ray_micro.py")

/*
 * Every rayc-bench benchmark: BENCH(name, function, description). `rayc-bench --only NAME`
 * selects by this name; a function may report several figures whose names start with it.
 * Each component keeps its lines in bench_list_<component>.h. No include guard: included
 * where the table is expanded.
 */
#include "bench_list_core.h"
#include "bench_list_sched.h"
#include "bench_list_tasks.h"
#include "bench_list_actors.h"
#include "bench_list_python.h"
#include "bench_list_challenge.h"
#include "bench_list_market.h"

/*
 * The rayc configuration table, written once. Each entry is
 *     X(type, name, default, description)
 * with type one of INT, DOUBLE, BOOL, STRING. Every entry can be overridden by the
 * environment variable RAYC_<name> of the process; the GCS hands its values to raylets
 * (GetInternalConfig), which apply them unless their own environment sets the name.
 * Names and defaults follow Ray's ray_config_def.h where Ray has the setting.
 *
 * No include guard: this file is meant to be included several times.
 */
/* Node liveness (GCS health checks of raylets). */
X(INT, health_check_initial_delay_ms, 5000, "delay before the first health check of a node")
X(INT, health_check_period_ms, 3000, "interval between health checks of one node")
X(INT, health_check_timeout_ms, 10000, "deadline of one health check")
X(INT, health_check_failure_threshold, 5, "consecutive failed checks before a node is dead")
/* Raylet <-> GCS. */
X(INT, gcs_rpc_server_reconnect_timeout_s, 60, "a raylet exits after the GCS is unreachable this long")
X(INT, gcs_rpc_timeout_ms, 10000, "deadline of a raylet's or client's unary call to the GCS")
X(INT, raylet_report_resources_period_milliseconds, 100, "how often a raylet checks its resources for changes to report")
X(INT, raylet_report_keepalive_ms, 1000, "a raylet reports at least this often even without changes")
/* Pub/sub. */
X(INT, subscriber_timeout_ms, 300000, "a subscriber that has not polled for this long is dropped")
X(INT, publisher_max_buffered_messages, 10000, "messages held per subscriber before the oldest are dropped")
/* Storage. */
X(STRING, external_storage_namespace, "default", "namespace of the GCS tables in Redis (RAY<ns>@<TABLE>)")
X(INT, redis_connect_timeout_ms, 5000, "deadline for connecting to Redis")
/* Bounded GCS memory. */
X(INT, kv_max_value_bytes, 64 * 1024 * 1024, "largest value one InternalKVPut may store, in bytes; the GCS accepts gRPC messages up to this plus 1 MiB")
X(INT, kv_max_namespace_bytes, 1024 * 1024 * 1024, "most bytes of keys and values one KV namespace may hold")
X(INT, maximum_gcs_dead_node_cached_count, 1000, "dead node records kept before the oldest are dropped")
X(INT, maximum_gcs_finished_job_cached_count, 10000, "finished job records the GCS keeps (memory and storage) before the oldest finished are dropped; running jobs are always kept")
/* RPC. */
X(INT, max_grpc_message_size, 512 * 1024 * 1024, "largest gRPC message accepted, in bytes")
X(INT, grpc_server_outstanding_requests, 64, "calls a server keeps requested from gRPC at once")
/* RPC fault injection (testing; all off by default). Methods are named "Method",
 * "Service.Method" or "*" (every method; a named method's own entry wins). */
X(STRING, testing_rpc_delay_us, "", "client-side delay of each direction of a call: \"Method=min_us:max_us,...\" (a uniform draw per direction, so a call's round trip gains twice the delay; Ray: testing_asio_delay_us)")
X(STRING, testing_rpc_failure, "", "calls failed with UNAVAILABLE: \"Method=max_failures:req_pct:resp_pct[:in_flight_pct],...\" (max_failures -1: unlimited; req: never sent, resp: sent and its reply lost, in_flight: fails at once while the server still runs it; as Ray's testing_rpc_failure)")
X(STRING, testing_rpc_drop, "", "calls silently dropped: \"Method=req_pct:resp_pct,...\" (req: never sent, resp: sent and its reply lost); the caller sees DEADLINE_EXCEEDED at its deadline, or UNAVAILABLE at once for a call without one")
X(INT, testing_rpc_seed, 0, "seed of the fault-injection random draws; 0: a new seed per process (logged)")
X(BOOL, testing_rpc_failure_avoid_intra_node_failures, 0, "no injected delay or fault on calls within one host: over unix sockets, to loopback or to an address of one of this host's interfaces (Ray: testing_rpc_failure_avoid_intra_node_failures)")
/* Deadlines of an owner's calls to raylets and workers: what moves work off a frozen node. */
X(INT, worker_lease_spillback_timeout_ms, 30000, "deadline of a lease request an owner sends to a spillback target, which grants (once a worker is ready) or rejects at once when healthy; long enough for a slow worker start; on expiry the task asks its local raylet again (requests at the local raylet wait in its queue without one; pushes to leased workers have none, as in Ray: they end when the worker's node is declared dead)")
/* Core worker (task submission, objects). */
X(INT, max_direct_call_object_size, 100 * 1024, "objects up to this size travel inline in RPCs instead of the object store")
X(INT, max_tasks_in_flight_per_worker, 16, "tasks an owner pushes to one leased worker before waiting for replies (only while more tasks wait than its lease requests, max_pending_lease_requests_per_scheduling_category of them, can take)")
X(INT, max_pending_lease_requests_per_scheduling_category, 10, "lease requests an owner keeps out per task shape")
X(INT, task_retry_delay_ms, 0, "pause before a failed task is submitted again")
X(INT, worker_failure_cause_timeout_ms, 2000, "deadline of an owner's question to a raylet why the worker of a retriable task died (GetWorkerFailureCause: a preempted task's retry is not counted); on expiry the retry is counted")
X(INT, worker_lease_timeout_milliseconds, 500, "an owner gives no new task to a lease held this long and returns it once idle, so its raylet can share the node between jobs again (Ray's); < 0: never")
X(INT, worker_lease_linger_ms, 50, "an owner keeps an idle lease this long for the next task of its shape before returning it")
X(BOOL, lineage_pinning_enabled, 1, "owners keep the tasks that made their objects in scope, to make an object whose every copy was lost again")
X(INT, max_lineage_bytes, 1024 * 1024 * 1024, "task specs an owner keeps as lineage at most; past it the oldest half is released and their objects are no longer made again if lost")
/* Leases and workers. */
X(BOOL, job_fair_share, 1, "while requests of several jobs wait at a raylet, grant by job priority, then by the lowest share of the node per job weight; 0: first come, first served")
X(BOOL, job_fair_share_preemption, 0, "with job_fair_share: a raylet kills workers running retriable tasks (max_retries != 0) of lower-priority jobs to make room for a request of a higher-priority job that has waited job_fair_share_preemption_grace_ms; their owners run the tasks again (0: running tasks are never killed for priority)")
X(INT, job_fair_share_preemption_grace_ms, 1000, "how long a request of a higher-priority job waits at a raylet before lower-priority retriable tasks are preempted for it (job_fair_share_preemption)")
X(INT, worker_register_timeout_ms, 60000, "a started worker that has not registered by then is killed and its lease fails (Ray: worker_register_timeout_seconds)")
X(INT, maximum_startup_concurrency, 0, "workers a raylet starts at once; 0: the node's CPU count, at least 1")
X(BOOL, prestart_worker_first_driver, 1, "on a job's first lease, start CPU workers for it up to the node's CPU count in the background")
X(INT, num_workers_soft_limit, -1, "workers a raylet keeps even when idle; -1: the node's CPU count")
X(INT, idle_worker_timeout_ms, 1000, "an idle worker beyond num_workers_soft_limit is killed after this long (Ray: idle_worker_killing_time_threshold_ms)")
X(INT, infeasible_warning_ms, 3000, "an owner asks why a lease still waits after this long, and warns once if no node could ever hold it")
X(INT, unschedulable_task_timeout_ms, -1, "a lease no node could ever hold fails after waiting this long for a node that can (-1: it waits, as in Ray)")
X(INT, auth_revocation_poll_ms, 2000, "how often raylets and core workers ask the GCS what it has revoked (replaced admin tokens, revoked nodes), which their servers refuse from then on; <= 0: never")
X(STRING, prometheus_host, "http://localhost:9090", "the Prometheus server the Grafana data source written under <session>/metrics/grafana points at (Ray: RAY_PROMETHEUS_HOST)")
X(STRING, plasma_directory, "/dev/shm", "directory (a tmpfs) of the raylets' object store files rayc-<node id>, and where `rayc start`/`rayc stop` and starting raylets look for those of dead raylets (Ray's --plasma-directory)")
X(INT, lease_spillback_max_bounces, 3, "lease requests of one task shape in a row an owner lets a raylet send to another node that then rejects them (their views of the cluster disagree) before it stops following spillback and waits for the views to settle (-1: no bound)")
X(INT, lease_spillback_hold_max_ms, 5000, "longest wait of an owner whose lease requests bounced between raylets before it asks its local raylet again (1 s at first, then doubling)")
X(INT, raylet_cluster_view_poll_ms, 500, "how often a raylet reads the other nodes' available resources from the GCS for spillback")
/* Object manager (moving objects between raylets). */
/* Object store pages (first touch). */
X(BOOL, object_store_prefault, 1, "a raylet faults its object store's shared memory in on a background thread after it starts, so first puts do not pay page faults (the raylet flag --object-store-prefault overrides it)")
X(DOUBLE, object_store_prefault_keep_available, 0.25, "the raylet's pre-fault stops before the host's available memory (MemAvailable) would fall below this fraction of MemTotal")
X(INT, object_store_client_prefault_mb, 1024, "a driver pre-faults this many MiB of its own mapping of the object store, from the bottom up (where large objects go), on a background thread after it connects, so its puts there copy at memory speed; 0 turns it off; bounded by object_store_prefault_keep_available and the store size")
X(INT, object_manager_default_chunk_size, 5 * 1024 * 1024, "bytes per Push chunk; the same on every node")
X(INT, object_manager_max_chunks_in_flight, 4, "Push calls one transfer keeps outstanding")
X(INT, object_manager_rpc_timeout_ms, 10000, "deadline of calls to object owners and of each Push")
X(INT, object_manager_pull_retry_ms, 100, "first delay before asking an owner again for locations (doubles)")
X(INT, object_manager_pull_retry_max_ms, 2000, "longest delay between location lookups")
X(INT, object_manager_transfer_idle_ms, 10000, "a transfer with no chunk for this long moves to another holder")
/* Actors and placement groups (GCS). */
X(INT, maximum_gcs_destroyed_actor_cached_count, 100000, "dead actor records the GCS keeps (memory and storage) before the oldest are dropped")
X(INT, gcs_actor_scheduling_retry_ms, 200, "pause before the GCS tries again to place an actor that could not be leased (busy cluster, rejected or failed lease request)")
X(INT, gcs_actor_graceful_kill_timeout_ms, 30000, "an out-of-scope actor's worker gets this long to finish its pending calls before its lease is returned and the raylet kills it")
X(INT, gcs_create_placement_group_retry_min_interval_ms, 100, "first pause before a placement group that could not be placed or reserved is tried again (doubles)")
X(INT, gcs_create_placement_group_retry_max_interval_ms, 1000, "longest pause between placement attempts of a pending placement group")
X(INT, maximum_gcs_removed_placement_group_cached_count, 10000, "removed placement-group records the GCS keeps (memory and storage) before the oldest are dropped")
/* Placement-group bundles (raylet). */
X(INT, raylet_worker_failure_report_max_pending, 10000, "worker failure reports a raylet keeps while the GCS does not answer; beyond that the oldest are dropped")
X(INT, raylet_worker_failure_report_retry_max_ms, 5000, "longest pause between a raylet's attempts to send worker failure reports to a GCS that does not answer (the first is 100 ms, then doubling)")
/* Task events and logs. */
X(BOOL, enable_task_events, 1, "core workers report their tasks' state changes to the GCS (`rayc list tasks`, `rayc summary tasks`, `rayc timeline`)")
X(INT, task_events_report_interval_ms, 1000, "how often a core worker sends its buffered task events to the GCS")
X(INT, task_events_max_num_status_events_buffer_on_worker, 100000, "task attempts a core worker buffers between reports; beyond that new attempts are dropped and counted")
X(INT, task_events_send_batch_size, 10000, "task attempts per AddTaskEventData call")
X(INT, task_events_max_num_task_in_gcs, 100000, "task attempts the GCS keeps before the oldest are dropped")
X(INT, rotation_max_bytes, 512 * 1024 * 1024, "a worker's stdout or stderr file is rotated once it is larger than this (checked every task_events_report_interval_ms; 0: never; Ray: RAY_ROTATION_MAX_BYTES)")
X(INT, rotation_backup_count, 5, "rotated worker log files kept (file.1 newest .. file.N oldest; 0: never rotate; Ray: RAY_ROTATION_BACKUP_COUNT)")
X(INT, log_read_max_bytes, 4 * 1024 * 1024, "most bytes one ReadLog call returns")
X(INT, gcs_mark_task_failed_on_job_done_delay_ms, 15000, "tasks of a finished job that never reported an end count as FAILED this long after the job finished (the last reports of its workers arrive first)")
/* Web dashboard (rayc-dashboard). */
X(INT, dashboard_poll_ms, 2000, "how often the dashboard reads the cluster's state from the GCS (and samples its use for the plots)")
X(INT, dashboard_history_s, 3600, "how far back the dashboard's plots of resource use and tasks go; older samples are dropped")

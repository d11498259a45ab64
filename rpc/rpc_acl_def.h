/*
 * The access-control table: for every method rayc serves, the roles that may call it and
 * the scope a caller of a scoped role is held to. It is the one place where authorization
 * is decided (ARCHITECTURE §14); rpc_server.c checks every call against it before the
 * request reaches a handler. A method missing from this table is refused to everyone but
 * an insecure server's callers (tests/rpc check that every served method has an entry).
 *
 * RPC_ACL(service, method, roles, scope, field, offset):
 *   roles   RPC_ROLE_* bits, with the shorthands below;
 *   scope   ACL_OPEN (no scope), ACL_NODE_SELF (a node caller: every value of the bytes
 *           field `field` — a dotted path through sub-messages, repeated ones included —
 *           must be its own node ID), ACL_JOB_SELF (a job caller: bytes [offset, offset+4)
 *           of every value of `field` must be its own job ID: offset 0 for a JobID, 12 for
 *           an ActorID, whose last 4 bytes are its job's, 20 for an ObjectID), ACL_KV (callers other than the
 *           admin and the GCS may not name a system namespace in `field` when writing).
 *
 * Roles: ANY is every authenticated caller; the unix-socket service admits LOCAL only.
 */
#define ACL_ANY (RPC_ROLE_LOCAL | RPC_ROLE_JOB | RPC_ROLE_NODE | RPC_ROLE_GCS | RPC_ROLE_ADMIN)
#define ACL_CLUSTER (RPC_ROLE_NODE | RPC_ROLE_GCS | RPC_ROLE_ADMIN)
#define ACL_JOBS (RPC_ROLE_JOB | RPC_ROLE_ADMIN | RPC_ROLE_GCS)
#define ACL_ADMIN (RPC_ROLE_ADMIN | RPC_ROLE_GCS)

#define RPC_ACL_TABLE(X)                                                                           \
    /* GCS: nodes */                                                                               \
    X("ray.rpc.NodeInfoGcsService", "GetClusterId", ACL_ANY, ACL_OPEN, NULL, 0)                   \
    X("ray.rpc.NodeInfoGcsService", "RegisterNode", RPC_ROLE_NODE | ACL_ADMIN, ACL_NODE_SELF,     \
      "node_info.node_id", 0)                                                                      \
    X("ray.rpc.NodeInfoGcsService", "UnregisterNode", RPC_ROLE_NODE | ACL_ADMIN, ACL_NODE_SELF,   \
      "node_id", 0)                                                                                \
    X("ray.rpc.NodeInfoGcsService", "DrainNode", RPC_ROLE_NODE | ACL_ADMIN, ACL_NODE_SELF,        \
      "drain_node_data.node_id", 0)                                                                \
    X("ray.rpc.NodeInfoGcsService", "GetAllNodeInfo", ACL_ANY, ACL_OPEN, NULL, 0)                 \
    X("ray.rpc.NodeInfoGcsService", "CheckAlive", ACL_ANY, ACL_OPEN, NULL, 0)                     \
    X("rayc.rpc.ResourceReportGcsService", "ReportResourceUsage", RPC_ROLE_NODE | ACL_ADMIN,      \
      ACL_NODE_SELF, "resources.node_id", 0)                                                       \
    X("ray.rpc.NodeResourceInfoGcsService", "GetAllAvailableResources", ACL_ANY, ACL_OPEN, NULL,  \
      0)                                                                                           \
    X("ray.rpc.NodeResourceInfoGcsService", "GetAllTotalResources", ACL_ANY, ACL_OPEN, NULL, 0)   \
    X("ray.rpc.NodeResourceInfoGcsService", "GetAllResourceUsage", ACL_ANY, ACL_OPEN, NULL, 0)    \
    X("ray.rpc.WorkerInfoGcsService", "ReportWorkerFailure", RPC_ROLE_NODE | ACL_ADMIN,           \
      ACL_NODE_SELF, "worker_failure.worker_address.node_id", 0)                                   \
    /* GCS: jobs */                                                                                \
    X("ray.rpc.JobInfoGcsService", "AddJob", ACL_ADMIN, ACL_OPEN, NULL, 0)                        \
    X("ray.rpc.JobInfoGcsService", "MarkJobFinished", ACL_JOBS, ACL_JOB_SELF, "job_id", 0)        \
    X("ray.rpc.JobInfoGcsService", "GetAllJobInfo", ACL_ANY, ACL_OPEN, NULL, 0)                   \
    X("ray.rpc.JobInfoGcsService", "GetNextJobID", ACL_ADMIN, ACL_OPEN, NULL, 0)                  \
    /* GCS: internal KV */                                                                         \
    X("ray.rpc.InternalKVGcsService", "InternalKVGet", ACL_ANY, ACL_OPEN, NULL, 0)                \
    X("ray.rpc.InternalKVGcsService", "InternalKVMultiGet", ACL_ANY, ACL_OPEN, NULL, 0)           \
    X("ray.rpc.InternalKVGcsService", "InternalKVExists", ACL_ANY, ACL_OPEN, NULL, 0)             \
    X("ray.rpc.InternalKVGcsService", "InternalKVKeys", ACL_ANY, ACL_OPEN, NULL, 0)               \
    X("ray.rpc.InternalKVGcsService", "InternalKVPut", ACL_JOBS | RPC_ROLE_NODE, ACL_KV,          \
      "namespace", 0)                                                                              \
    X("ray.rpc.InternalKVGcsService", "InternalKVDel", ACL_JOBS | RPC_ROLE_NODE, ACL_KV,          \
      "namespace", 0)                                                                              \
    X("ray.rpc.InternalKVGcsService", "GetInternalConfig", ACL_ANY, ACL_OPEN, NULL, 0)            \
    /* GCS: pub/sub */                                                                             \
    X("ray.rpc.InternalPubSubGcsService", "GcsPublish", ACL_JOBS | RPC_ROLE_NODE, ACL_OPEN, NULL, \
      0)                                                                                           \
    X("ray.rpc.InternalPubSubGcsService", "GcsSubscriberPoll", ACL_ANY, ACL_OPEN, NULL, 0)        \
    X("ray.rpc.InternalPubSubGcsService", "GcsSubscriberCommandBatch", ACL_ANY, ACL_OPEN, NULL,   \
      0)                                                                                           \
    /* GCS: actors and placement groups */                                                         \
    X("ray.rpc.ActorInfoGcsService", "RegisterActor", ACL_JOBS, ACL_OPEN, NULL, 0)                \
    X("ray.rpc.ActorInfoGcsService", "CreateActor", ACL_JOBS, ACL_OPEN, NULL, 0)                  \
    X("ray.rpc.ActorInfoGcsService", "GetActorInfo", ACL_ANY, ACL_OPEN, NULL, 0)                  \
    X("ray.rpc.ActorInfoGcsService", "GetNamedActorInfo", ACL_ANY, ACL_OPEN, NULL, 0)             \
    X("ray.rpc.ActorInfoGcsService", "ListNamedActors", ACL_ANY, ACL_OPEN, NULL, 0)               \
    X("ray.rpc.ActorInfoGcsService", "GetAllActorInfo", ACL_ANY, ACL_OPEN, NULL, 0)               \
    X("ray.rpc.ActorInfoGcsService", "KillActorViaGcs", ACL_JOBS, ACL_JOB_SELF, "actor_id", 12)   \
    X("ray.rpc.ActorInfoGcsService", "ReportActorOutOfScope", ACL_JOBS, ACL_JOB_SELF, "actor_id", \
      12)                                                                                          \
    X("ray.rpc.PlacementGroupInfoGcsService", "CreatePlacementGroup", ACL_JOBS, ACL_OPEN, NULL,   \
      0)                                                                                           \
    X("ray.rpc.PlacementGroupInfoGcsService", "RemovePlacementGroup", ACL_JOBS, ACL_OPEN, NULL,   \
      0)                                                                                           \
    X("ray.rpc.PlacementGroupInfoGcsService", "GetPlacementGroup", ACL_ANY, ACL_OPEN, NULL, 0)    \
    X("ray.rpc.PlacementGroupInfoGcsService", "GetNamedPlacementGroup", ACL_ANY, ACL_OPEN, NULL,  \
      0)                                                                                           \
    X("ray.rpc.PlacementGroupInfoGcsService", "GetAllPlacementGroup", ACL_ANY, ACL_OPEN, NULL, 0) \
    X("ray.rpc.PlacementGroupInfoGcsService", "WaitPlacementGroupUntilReady", ACL_ANY, ACL_OPEN,  \
      NULL, 0)                                                                                     \
    /* GCS: security */                                                                            \
    X("rayc.rpc.AuthService", "JoinNode", RPC_ROLE_ANON | ACL_ANY, ACL_OPEN, NULL, 0)             \
    X("rayc.rpc.AuthService", "CreateJoinToken", ACL_ADMIN, ACL_OPEN, NULL, 0)                    \
    X("rayc.rpc.AuthService", "ListJoinTokens", ACL_ADMIN, ACL_OPEN, NULL, 0)                     \
    X("rayc.rpc.AuthService", "RevokeJoinToken", ACL_ADMIN, ACL_OPEN, NULL, 0)                    \
    X("rayc.rpc.AuthService", "RevokeNode", ACL_ADMIN, ACL_OPEN, NULL, 0)                         \
    X("rayc.rpc.AuthService", "RotateAdminToken", ACL_ADMIN, ACL_OPEN, NULL, 0)                   \
    X("rayc.rpc.AuthService", "GetRevocations", ACL_ANY, ACL_OPEN, NULL, 0)                       \
    X("rayc.rpc.AuthService", "IssueJobToken", ACL_JOBS | RPC_ROLE_NODE, ACL_JOB_SELF, "job_id",  \
      0)                                                                                           \
    /* GCS: the autoscaler's view (rayc-market, as admin; nodes may read, as in Ray) */         \
    X("ray.rpc.autoscaler.AutoscalerStateService", "GetClusterResourceState", ACL_CLUSTER,        \
      ACL_OPEN, NULL, 0)                                                                           \
    X("ray.rpc.autoscaler.AutoscalerStateService", "GetClusterStatus", ACL_CLUSTER, ACL_OPEN,     \
      NULL, 0)                                                                                     \
    X("ray.rpc.autoscaler.AutoscalerStateService", "ReportAutoscalingState", ACL_ADMIN, ACL_OPEN, \
      NULL, 0)                                                                                     \
    X("ray.rpc.autoscaler.AutoscalerStateService", "RequestClusterResourceConstraint", ACL_ADMIN, \
      ACL_OPEN, NULL, 0)                                                                           \
    X("ray.rpc.autoscaler.AutoscalerStateService", "DrainNode", ACL_ADMIN, ACL_OPEN, NULL, 0)     \
    X("rayc.rpc.MarketGcsService", "SetNodeVerification", ACL_ADMIN, ACL_OPEN, NULL, 0)           \
    X("grpc.health.v1.Health", "Check", ACL_ANY, ACL_OPEN, NULL, 0)                               \
    /* GCS: task events (every worker and driver reports; admins and jobs read) */             \
    X("ray.rpc.TaskInfoGcsService", "AddTaskEventData", ACL_JOBS, ACL_JOB_SELF,                   \
      "data.events_by_task.job_id", 0)                                                             \
    X("ray.rpc.TaskInfoGcsService", "GetTaskEvents", ACL_JOBS, ACL_OPEN, NULL, 0)                 \
    /* Raylet: leases (owners: jobs; spillback and actor leases: nodes and the GCS) */            \
    X("ray.rpc.NodeManagerService", "RequestWorkerLease", ACL_JOBS | RPC_ROLE_NODE, ACL_JOB_SELF, \
      "lease_spec.job_id", 0)                                                                      \
    X("ray.rpc.NodeManagerService", "ReturnWorkerLease", ACL_JOBS | RPC_ROLE_NODE, ACL_OPEN,      \
      NULL, 0)                                                                                     \
    X("ray.rpc.NodeManagerService", "CancelWorkerLease", ACL_JOBS | RPC_ROLE_NODE, ACL_OPEN,      \
      NULL, 0)                                                                                     \
    X("ray.rpc.NodeManagerService", "ReportWorkerBacklog", ACL_JOBS | RPC_ROLE_NODE, ACL_OPEN,    \
      NULL, 0)                                                                                     \
    X("ray.rpc.NodeManagerService", "GetWorkerFailureCause", ACL_JOBS | RPC_ROLE_NODE, ACL_OPEN,  \
      NULL, 0)                                                                                     \
    X("ray.rpc.NodeManagerService", "PinObjectIDs", ACL_JOBS | RPC_ROLE_NODE, ACL_OPEN, NULL, 0)  \
    X("ray.rpc.NodeManagerService", "GetResourceLoad", ACL_CLUSTER, ACL_OPEN, NULL, 0)            \
    X("ray.rpc.NodeManagerService", "NotifyGCSRestart", RPC_ROLE_GCS, ACL_OPEN, NULL, 0)          \
    X("ray.rpc.NodeManagerService", "ShutdownRaylet", ACL_ADMIN, ACL_OPEN, NULL, 0)               \
    X("ray.rpc.NodeManagerService", "PrepareBundleResources", ACL_ADMIN, ACL_OPEN, NULL, 0)       \
    X("ray.rpc.NodeManagerService", "CommitBundleResources", ACL_ADMIN, ACL_OPEN, NULL, 0)        \
    X("ray.rpc.NodeManagerService", "CancelResourceReserve", ACL_ADMIN, ACL_OPEN, NULL, 0)        \
    X("ray.rpc.NodeManagerService", "ReleaseUnusedBundles", ACL_ADMIN, ACL_OPEN, NULL, 0)         \
    /* Raylet: the market's verification challenge (rayc-market, as admin) */                  \
    X("rayc.rpc.ChallengeService", "RunChallenge", RPC_ROLE_ADMIN, ACL_OPEN, NULL, 0)             \
    X("rayc.rpc.ChallengeService", "OpenChallengeRows", RPC_ROLE_ADMIN, ACL_OPEN, NULL, 0)        \
    /* Raylet: its log files, to admins (`rayc logs`) */                                        \
    X("ray.rpc.LogService", "ListLogs", ACL_ADMIN, ACL_OPEN, NULL, 0)                             \
    X("rayc.rpc.LogReadService", "ReadLog", ACL_ADMIN, ACL_OPEN, NULL, 0)                         \
    X("rayc.rpc.LogReadService", "FindWorkerLogs", ACL_ADMIN, ACL_OPEN, NULL, 0)                  \
    /* Raylet: objects between nodes */                                                            \
    X("ray.rpc.ObjectManagerService", "Push", ACL_CLUSTER, ACL_OPEN, NULL, 0)                     \
    X("ray.rpc.ObjectManagerService", "Pull", ACL_CLUSTER, ACL_OPEN, NULL, 0)                     \
    /* An owner frees its objects' copies wherever they are: a job only its own (an ObjectID's \
     * bytes 20..23 are its job's). */                                                             \
    X("ray.rpc.ObjectManagerService", "FreeObjects", ACL_CLUSTER | RPC_ROLE_JOB, ACL_JOB_SELF,    \
      "object_ids", 20)                                                                            \
    /* Raylet: its own node's processes, over the unix socket */                                  \
    X("rayc.rpc.LocalRayletService", "RegisterClient", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)         \
    X("rayc.rpc.LocalRayletService", "DisconnectClient", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)       \
    X("rayc.rpc.LocalRayletService", "NotifyTaskBlocked", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)      \
    X("rayc.rpc.LocalRayletService", "NotifyTaskUnblocked", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)    \
    X("rayc.rpc.LocalRayletService", "CreateObject", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)           \
    X("rayc.rpc.LocalRayletService", "SealObject", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)             \
    X("rayc.rpc.LocalRayletService", "AbortObject", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)            \
    X("rayc.rpc.LocalRayletService", "GetObjects", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)             \
    X("rayc.rpc.LocalRayletService", "ReleaseObjects", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)         \
    X("rayc.rpc.LocalRayletService", "GetCredentials", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)         \
    X("rayc.rpc.LocalRayletService", "ExplainLeases", RPC_ROLE_LOCAL, ACL_OPEN, NULL, 0)          \
    /* Workers and drivers (owners): tasks from owners and the GCS, object questions from     */ \
    /* borrowers and raylets, exits and kills from raylets and the GCS                         */ \
    X("ray.rpc.CoreWorkerService", "PushTask", ACL_JOBS, ACL_OPEN, NULL, 0)                       \
    X("ray.rpc.CoreWorkerService", "GetObjectStatus", ACL_ANY, ACL_OPEN, NULL, 0)                 \
    X("ray.rpc.CoreWorkerService", "UpdateObjectLocationBatch", ACL_ANY, ACL_OPEN, NULL, 0)       \
    X("ray.rpc.CoreWorkerService", "GetObjectLocationsOwner", ACL_ANY, ACL_OPEN, NULL, 0)         \
    X("ray.rpc.CoreWorkerService", "CancelTask", ACL_JOBS, ACL_OPEN, NULL, 0)                     \
    X("ray.rpc.CoreWorkerService", "NumPendingTasks", ACL_ANY, ACL_OPEN, NULL, 0)                 \
    X("ray.rpc.CoreWorkerService", "Exit", ACL_CLUSTER, ACL_OPEN, NULL, 0)                        \
    X("ray.rpc.CoreWorkerService", "KillActor", ACL_CLUSTER, ACL_OPEN, NULL, 0)                   \
    X("ray.rpc.CoreWorkerService", "ReportGeneratorItemReturns", ACL_JOBS, ACL_OPEN, NULL, 0)      \
    /* rayc-bench's echo floor */                                                                  \
    X("rayc.bench.EchoService", "Echo", ACL_ANY, ACL_OPEN, NULL, 0)

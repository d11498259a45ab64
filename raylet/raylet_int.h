/*
 * Private structures of rayc-raylet (ARCHITECTURE §6). The raylet of issue 2 joins a
 * cluster: it detects its resources, serves NodeManagerService and the gRPC health service,
 * registers with the GCS, reports its resources, follows the node table, and leaves cleanly.
 *
 * Loop thread only.
 */
#ifndef RAYC_RAYLET_RAYLET_INT_H
#define RAYC_RAYLET_RAYLET_INT_H

#include <stdint.h>
#include <uv.h>

#include "gcs_client.h"
#include "raylet.h"
#include "rc_buf.h"
#include "rc_ids.h"
#include "rc_map.h"
#include "rpc.h"

enum { RAYLET_MAX_RESOURCES = RAYLET_MAX_CUSTOM + 16, RAYLET_MAX_ALL_LABELS = RAYLET_MAX_LABELS + 8 };

typedef struct raylet_resource {
    char *name;
    double total;
    double available;
} raylet_resource;

/* What this host has, after detection and flags. */
typedef struct raylet_node_spec {
    char ip[64];
    char hostname[256];
    double num_cpus;
    int num_gpus;
    char accelerator_type[64]; /* "" if unknown */
    int64_t gpu_memory;        /* bytes per GPU; 0 if unknown */
    int64_t memory;
    int64_t object_store_memory;
    raylet_resource resources[RAYLET_MAX_RESOURCES];
    size_t n_resources;
    raylet_kv labels[RAYLET_MAX_ALL_LABELS];
    size_t n_labels;
} raylet_node_spec;

typedef enum raylet_state {
    RAYLET_STARTING,
    RAYLET_RUNNING,
    RAYLET_STOPPING,
} raylet_state;

typedef struct raylet {
    uv_loop_t *loop;
    rpc_ctx *rpc;
    rpc_server *srv;
    raylet_options opts;
    raylet_node_spec spec;
    uint8_t node_id[RC_NODE_ID_SIZE];
    char node_id_hex[RC_ID_HEX_MAX];
    int port;
    raylet_state state;
    int exit_code;

    gcs_client *gcs;
    gcs_subscriber *sub;
    uint8_t cluster_id[RC_CLUSTER_ID_SIZE];
    int64_t gcs_down_since_ms; /* 0 while the GCS answers */
    int verifying_cluster;     /* a GetClusterId re-check is out */

    rc_map live_nodes; /* node id -> Ray__Rpc__GcsNodeInfo (owned), from the node channel */

    uv_timer_t report_timer;
    int report_in_flight;
    uint8_t *last_report;
    size_t last_report_len;
    int64_t last_report_ms;
    int64_t idle_since_ms;

    uv_signal_t sigterm, sigint;
    uv_timer_t exit_timer; /* bounds a graceful unregister */
} raylet;

/* raylet_resources.c */
/* Detects CPUs, memory and GPUs (NVML through dlopen), applies the flags, adds the implicit
 * resources and labels. err gets a message on failure. */
int raylet_detect(raylet_node_spec *spec, const raylet_options *opts, const char *node_id_hex,
                  char *err, size_t errlen);
void raylet_spec_free(raylet_node_spec *spec);
/* "NVIDIA A100-SXM4-80GB" -> "A100", "NVIDIA GeForce RTX 4090" -> "RTX4090". */
void raylet_accelerator_from_name(const char *gpu_name, char *out, size_t outlen);

/* raylet_node.c */
int raylet_start(raylet *r, uv_loop_t *loop);
/* Leaves the cluster: unregisters (graceful) and stops the loop. reason goes to the GCS. */
void raylet_shutdown(raylet *r, int graceful, const char *reason, int exit_code);
/* After uv_run returned: releases everything. */
void raylet_cleanup(raylet *r);

#endif

/*
 * rayc kv: the GCS's internal key-value store from the shell.
 *
 *   rayc kv put NS KEY VALUE [--no-overwrite]   prints "added" or "updated"/"kept"
 *   rayc kv get NS KEY                          prints the value (exit 1 if absent)
 *   rayc kv del NS KEY [--prefix]               prints how many keys went
 *   rayc kv list NS [PREFIX]                    prints the keys, one per line
 *
 * Main thread only.
 */
#include <stdio.h>
#include <string.h>

#include "cli_int.h"

static void cli__bytes(ProtobufCBinaryData *b, const char *s)
{
    b->data = (uint8_t *)s;
    b->len = strlen(s);
}

static int cli__kv_usage(void)
{
    fprintf(stderr, "usage: rayc kv put NS KEY VALUE [--no-overwrite] | get NS KEY | del NS KEY [--prefix] | "
                    "list NS [PREFIX]   (all take --address HOST:PORT)\n");
    return CLI_USAGE;
}

int cli_cmd_kv(int argc, char **argv)
{
    const char *address = NULL;
    argc = cli_take_address(argc, argv, &address);
    if (argc < 1)
        return cli__kv_usage();
    const char *op = argv[0];
    int flag_no_overwrite = 0, flag_prefix = 0;
    const char *args[4];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-overwrite"))
            flag_no_overwrite = 1;
        else if (!strcmp(argv[i], "--prefix"))
            flag_prefix = 1;
        else if (n < 4)
            args[n++] = argv[i];
        else
            return cli__kv_usage();
    }
    int ok_shape = (!strcmp(op, "put") && n == 3) || (!strcmp(op, "get") && n == 2) ||
                   (!strcmp(op, "del") && n == 2) || (!strcmp(op, "list") && (n == 1 || n == 2));
    if (!ok_shape || (flag_no_overwrite && strcmp(op, "put")) || (flag_prefix && strcmp(op, "del")))
        return cli__kv_usage();

    cli_conn c;
    int rc = cli_connect(&c, address);
    if (rc != CLI_OK)
        return rc;
    const ProtobufCServiceDescriptor *svc = &ray__rpc__internal_kvgcs_service__descriptor;
    ProtobufCMessage *reply = NULL;
    rc = CLI_OK;
    if (!strcmp(op, "put")) {
        Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
        cli__bytes(&req.namespace_, args[0]);
        cli__bytes(&req.key, args[1]);
        cli__bytes(&req.value, args[2]);
        req.overwrite = !flag_no_overwrite;
        if ((rc = cli_call(&c, svc, "InternalKVPut", &req.base, &reply)) == CLI_OK)
            printf("%s\n", ((Ray__Rpc__InternalKVPutReply *)reply)->added ? "added"
                           : flag_no_overwrite                           ? "kept (key exists)"
                                                                         : "updated");
    } else if (!strcmp(op, "get")) {
        Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
        cli__bytes(&req.namespace_, args[0]);
        cli__bytes(&req.key, args[1]);
        char err[512] = "";
        int code = rpc_client_call_sync(gcs_client_rpc(c.gcs), svc, "InternalKVGet", &req.base, 10000, &reply, err,
                                        sizeof(err));
        if (code != GRPC_STATUS_OK) {
            fprintf(stderr, "rayc kv get: %s\n", err);
            rc = CLI_FAIL;
        } else if (gcs_reply_status(reply, NULL) == GCS_STATUS_NOT_FOUND) {
            fprintf(stderr, "rayc kv get: no key '%s' in namespace '%s'\n", args[1], args[0]);
            rc = CLI_FAIL;
        } else if (gcs_reply_status(reply, NULL) != GCS_STATUS_OK) {
            const char *m;
            gcs_reply_status(reply, &m);
            fprintf(stderr, "rayc kv get: %s\n", m);
            rc = CLI_FAIL;
        } else {
            Ray__Rpc__InternalKVGetReply *r = (void *)reply;
            fwrite(r->value.data, 1, r->value.len, stdout);
            printf("\n");
        }
    } else if (!strcmp(op, "del")) {
        Ray__Rpc__InternalKVDelRequest req = RAY__RPC__INTERNAL_KVDEL_REQUEST__INIT;
        cli__bytes(&req.namespace_, args[0]);
        cli__bytes(&req.key, args[1]);
        req.del_by_prefix = flag_prefix;
        if ((rc = cli_call(&c, svc, "InternalKVDel", &req.base, &reply)) == CLI_OK)
            printf("deleted %d\n", ((Ray__Rpc__InternalKVDelReply *)reply)->deleted_num);
    } else {
        Ray__Rpc__InternalKVKeysRequest req = RAY__RPC__INTERNAL_KVKEYS_REQUEST__INIT;
        cli__bytes(&req.namespace_, args[0]);
        cli__bytes(&req.prefix, n == 2 ? args[1] : "");
        if ((rc = cli_call(&c, svc, "InternalKVKeys", &req.base, &reply)) == CLI_OK) {
            Ray__Rpc__InternalKVKeysReply *r = (void *)reply;
            for (size_t i = 0; i < r->n_results; i++) {
                fwrite(r->results[i].data, 1, r->results[i].len, stdout);
                printf("\n");
            }
        }
    }
    rpc_msg_free(reply);
    cli_disconnect(&c);
    return rc;
}

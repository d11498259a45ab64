/*
 * Credentials providers. Insecure (plaintext) only for now; a TLS provider with the
 * cluster's CA and token is the planned second entry (ARCHITECTURE §11). Any thread.
 */
#include <grpc/grpc_security.h>

#include "rpc.h"

static grpc_server_credentials *rpc__insecure_server(void *arg)
{
    (void)arg;
    return grpc_insecure_server_credentials_create();
}

static grpc_channel_credentials *rpc__insecure_channel(void *arg)
{
    (void)arg;
    return grpc_insecure_credentials_create();
}

const rpc_credentials *rpc_credentials_insecure(void)
{
    static const rpc_credentials insecure = {rpc__insecure_server, rpc__insecure_channel, NULL};
    return &insecure;
}

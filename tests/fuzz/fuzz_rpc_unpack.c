/*
 * fuzz_rpc_unpack: requests as a server reads them. The input's first byte picks one method
 * of one of the services protoc-c generated (fuzz_services.h); the rest is that method's
 * request, unpacked exactly as rpc_server.c does (rpc__unpack over a grpc_byte_buffer).
 *
 * Invariant checked: a request the rpc layer accepts survives being copied and stored:
 * packed again (rpc_msg_pack) it unpacks again to a message that packs to the same bytes,
 * and rpc_msg_dup copies it. A message that
 * unpacks once but not twice crashed the GCS before (commit 8c8c5ac). One thread.
 */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_services.h"
#include "rc_alloc.h"
#include "rpc.h"
#include "rpc_int.h"

typedef struct fuzz_method {
    const ProtobufCServiceDescriptor *svc;
    const ProtobufCMethodDescriptor *method;
} fuzz_method;

static fuzz_method *fuzz_methods;
static size_t fuzz_n_methods;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    grpc_init();
    for (size_t i = 0; i < fuzz_n_services; i++)
        fuzz_n_methods += fuzz_services[i]->n_methods;
    fuzz_methods = calloc(fuzz_n_methods, sizeof(*fuzz_methods));
    size_t k = 0;
    for (size_t i = 0; i < fuzz_n_services; i++)
        for (unsigned m = 0; m < fuzz_services[i]->n_methods; m++)
            fuzz_methods[k++] = (fuzz_method){fuzz_services[i], &fuzz_services[i]->methods[m]};
    /* One selector byte must reach every method. */
    if (fuzz_n_methods == 0 || fuzz_n_methods > 256) {
        fprintf(stderr, "fuzz_rpc_unpack: %zu methods do not fit one selector byte\n", fuzz_n_methods);
        abort();
    }
    return 0;
}

static ProtobufCMessage *fuzz_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                     size_t size)
{
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)data, size);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    ProtobufCMessage *msg = rpc__unpack(desc, bb);
    grpc_byte_buffer_destroy(bb);
    return msg;
}

static void fuzz_fail(const fuzz_method *fm, const char *what)
{
    fprintf(stderr, "fuzz_rpc_unpack: %s/%s (%s): %s\n", fm->svc->name, fm->method->name,
            fm->method->input->name, what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const fuzz_method *fm = &fuzz_methods[data[0] % fuzz_n_methods];
    ProtobufCMessage *req = fuzz_unpack(fm->method->input, data + 1, size - 1);
    if (!req)
        return 0;
    size_t n;
    uint8_t *packed = rpc_msg_pack(req, &n);
    ProtobufCMessage *again = fuzz_unpack(fm->method->input, packed, n);
    if (!again)
        fuzz_fail(fm, "an accepted request does not unpack once packed again");
    size_t n2;
    uint8_t *packed2 = rpc_msg_pack(again, &n2);
    if (n2 != n || memcmp(packed, packed2, n) != 0)
        fuzz_fail(fm, "an accepted request packs differently once read back");
    ProtobufCMessage *copy = rpc_msg_dup(req);
    if (!copy)
        fuzz_fail(fm, "rpc_msg_dup refuses an accepted request");
    rpc_msg_free(copy);
    rc_free(packed2);
    rpc_msg_free(again);
    rc_free(packed);
    rpc_msg_free(req);
    return 0;
}

/*
 * Every protobuf-c service rayc's .proto files declare, from a table generated at build
 * time (gen_services.cmake), for fuzz_rpc_unpack. Read-only; any thread.
 */
#ifndef RAYC_TESTS_FUZZ_SERVICES_H
#define RAYC_TESTS_FUZZ_SERVICES_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

extern const ProtobufCServiceDescriptor *const fuzz_services[];
extern const size_t fuzz_n_services;

#endif

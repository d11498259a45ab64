/*
 * Small network helpers. Any thread.
 */
#ifndef RAYC_COMMON_RC_NET_H
#define RAYC_COMMON_RC_NET_H

#include <stddef.h>

/* The local IPv4 address this host uses to reach host_port ("host:port"): a UDP socket is
 * connected (no packet is sent) and its local address read back. 0 or RC_EINVAL/RC_ESYS. */
int rc_net_local_ip_for(const char *host_port, char *ip, size_t iplen);
/* This host's primary address: the one that reaches the outside world, else 127.0.0.1. */
void rc_net_primary_ip(char *ip, size_t iplen);
/* Whether a TCP server could listen on host:port now (host: an IP, or NULL for every
 * interface): binds a socket as a server does (SO_REUSEADDR) and closes it. 0 if it could,
 * else the errno of the bind (EADDRINUSE: something listens there; EADDRNOTAVAIL: host is
 * not an address of this host). */
int rc_net_try_bind(const char *host, int port);

#endif

/*
 * Network helpers: which local address reaches a peer, whether a port is free. Any thread.
 */
#include "rc_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rc_err.h"

int rc_net_local_ip_for(const char *host_port, char *ip, size_t iplen)
{
    char host[256];
    const char *colon = strrchr(host_port, ':');
    if (!colon || (size_t)(colon - host_port) >= sizeof(host))
        return RC_EINVAL;
    memcpy(host, host_port, (size_t)(colon - host_port));
    host[colon - host_port] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return RC_EINVAL;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int rc = RC_ESYS;
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
        struct sockaddr_in local;
        socklen_t len = sizeof(local);
        if (getsockname(fd, (struct sockaddr *)&local, &len) == 0 &&
            inet_ntop(AF_INET, &local.sin_addr, ip, (socklen_t)iplen))
            rc = 0;
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

void rc_net_primary_ip(char *ip, size_t iplen)
{
    /* A public address is only used to pick a route; nothing is sent to it. */
    if (rc_net_local_ip_for("8.8.8.8:53", ip, iplen) < 0 || !strcmp(ip, "0.0.0.0"))
        snprintf(ip, iplen, "127.0.0.1");
}

int rc_net_try_bind(const char *host, int port)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = host ? AF_UNSPEC : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res)
        return EADDRNOTAVAIL;
    int err = 0;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
    } else {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) != 0)
            err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    return err;
}

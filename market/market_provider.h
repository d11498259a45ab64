/*
 * The provider interface of rayc-market, modelled on Ray v2's ICloudInstanceProvider: launch
 * a host of an offer under an idempotency key, terminate it, list what is not terminated,
 * and read the provider's current offers. Providers keep their own record of what they run
 * (as a cloud's API does), so a market that restarts finds its hosts again by listing.
 *
 * Calls are synchronous and quick (a provider that must wait, like ssh, starts a child
 * process and reports its end through list and errors). Loop thread only.
 */
#ifndef RAYC_MARKET_MARKET_PROVIDER_H
#define RAYC_MARKET_MARKET_PROVIDER_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "market.h"

/* What a launched host needs to join the cluster. */
typedef struct mk_join {
    const char *gcs_address;
    const char *join_token;   /* single-use, made for this lease */
    const char *ca_cert_file; /* the cluster's CA certificate (PEM file) */
    const char *ca_cert_pem;
    const char *lease_id;     /* the idempotency key; the host carries it as a label */
    double verify_delay_s;    /* MK_SLOW: how late the host answers its challenge */
} mk_join;

typedef enum mk_inst_state {
    MK_INST_PENDING = 0, /* being set up (an ssh command still running) */
    MK_INST_RUNNING,     /* the host is up as far as the provider knows */
    MK_INST_FAILED,      /* setting it up failed; error says why */
} mk_inst_state;

typedef struct mk_instance {
    char key[64];       /* the idempotency key it was launched with */
    char offer_id[128];
    mk_inst_state state;
    int64_t launched_ms;
    char error[256];
} mk_instance;

typedef struct mk_provider mk_provider;

typedef struct mk_provider_ops {
    /* Launches one host of offer o for join->lease_id. A second launch with the same key
     * launches nothing and returns 0. RC_E* and the provider's own words in err. */
    int (*launch)(mk_provider *p, const mk_offer *o, const mk_join *join, int64_t now_ms, char *err,
                  size_t errlen);
    /* Terminates the host launched under key (0 if it is already gone). */
    int (*terminate)(mk_provider *p, const char *key, char *err, size_t errlen);
    /* The hosts not terminated, in *out (rc_free). RC_EUNAVAIL when the provider cannot be
     * reached: the caller must then assume nothing about its hosts. */
    int (*list)(mk_provider *p, mk_instance **out, size_t *n, char *err, size_t errlen);
    /* The provider's offers now; *changed is 1 when they differ from the last call. The
     * array stays valid until the next call or destroy. */
    int (*offers)(mk_provider *p, const mk_offer **out, size_t *n, int *changed, char *err, size_t errlen);
    /* Periodic work (timers of misbehaving hosts, reaping children). */
    void (*poll)(mk_provider *p, int64_t now_ms);
    void (*destroy)(mk_provider *p);
} mk_provider_ops;

struct mk_provider {
    const mk_provider_ops *ops;
    char *name;
    char *type;
};

/* A provider's offers file (provider_offers.c), read again whenever it changes. */
typedef struct mk_offers_file {
    char *path;
    mk_offer *offers;
    size_t n_offers;
    struct timespec mtime;
    off_t size;
    int loaded;
} mk_offers_file;

/* A provider's own checks of offers that parsed (0, or RC_E* and a sentence). */
typedef int (*mk_offers_check_fn)(void *arg, mk_offer *offers, size_t n, char *err, size_t errlen);

/* offers: the config's path, relative to config_dir unless absolute. */
void mk_offers_file_init(mk_offers_file *f, const char *config_dir, const char *offers);
void mk_offers_file_free(mk_offers_file *f);
/* The offers now (valid until the next read or free); *changed is 1 when they were read
 * again. A file that no longer parses keeps the offers before it and says why in err. */
int mk_offers_file_read(mk_offers_file *f, const char *provider, mk_offers_check_fn check, void *arg,
                        const mk_offer **out, size_t *n, int *changed, char *err, size_t errlen);

/* A local provider: hosts are rayc-raylet processes on this machine, one session directory
 * each under the session root, started from the offers file (re-read when it changes).
 * state_dir keeps the provider's record of its hosts. */
int mk_provider_local_create(const mk_provider_config *cfg, const char *config_dir, const char *state_dir,
                             mk_provider **out, char *err, size_t errlen);
/* An ssh provider: hosts the admin owns, reached with OpenSSH, each running `rayc start`. */
int mk_provider_ssh_create(const mk_provider_config *cfg, const char *config_dir, const char *state_dir,
                           mk_provider **out, char *err, size_t errlen);

#endif

/*
 * market_int.h: helpers private to market/ (the JSON field readers shared by the offers and
 * config parsers). Not included outside market/.
 *
 * Each reader looks up one member of a JSON object, checks its type and range, and on a bad
 * value writes "<where>: \"<key>\" must be ..." into err and returns RC_EINVAL. They return
 * 1 when the member is present and stored, 0 when it is absent (and not required; out is
 * left as it was). Single-threaded over their arguments.
 */
#ifndef RAYC_MARKET_MARKET_INT_H
#define RAYC_MARKET_MARKET_INT_H

#include <stdint.h>

#include "market.h"
#include "rc_json.h"

typedef struct mk__where {
    const char *what; /* "offer \"a100-x\"", "providers[1]", "config" */
    char *err;
    size_t errlen;
} mk__where;

/* Writes "<what>: <message>" into w->err; returns RC_EINVAL. */
int mk__fail(const mk__where *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* RC_EINVAL unless obj is an object whose member names are all in known (NULL-terminated)
 * and none repeats. */
int mk__check_object(const rc_json *obj, const char *const *known, const mk__where *w);
int mk__get_number(const rc_json *obj, const char *key, int required, double lo, double hi, double *out,
                   const mk__where *w);
int mk__get_int(const rc_json *obj, const char *key, int required, int64_t lo, int64_t hi, int64_t *out,
                const mk__where *w);
int mk__get_bool(const rc_json *obj, const char *key, int *out, const mk__where *w);
/* *out is replaced by a copy (rc_free'd first); nonempty: "" is refused. */
int mk__get_string(const rc_json *obj, const char *key, int required, int nonempty, char **out,
                   const mk__where *w);

#endif

/*
 * Process-wide configuration generated from config_def.h: one field per entry in rc_cfg.
 *
 * rc_config_init() sets the defaults and applies RAYC_<name> environment overrides; call it
 * once at start, before any other thread exists. After that rc_cfg is read-only except for
 * rc_config_apply_json (loop thread, at start-up) and tests. Strings in rc_cfg are owned by
 * this module.
 */
#ifndef RAYC_COMMON_RC_CONFIG_H
#define RAYC_COMMON_RC_CONFIG_H

#include <stdint.h>

#include "rc_buf.h"

#define RC__CFG_CTYPE_INT int64_t
#define RC__CFG_CTYPE_DOUBLE double
#define RC__CFG_CTYPE_BOOL int
#define RC__CFG_CTYPE_STRING const char *

typedef struct rc_config {
#define X(type, name, def, doc) RC__CFG_CTYPE_##type name;
#include "config_def.h"
#undef X
} rc_config;

extern rc_config rc_cfg;

/* Defaults, then environment overrides. A malformed RAYC_<name> value is reported on
 * stderr and ignored. Safe to call again (tests do, after changing the environment). */
void rc_config_init(void);
/* Sets one entry from text. Returns 0, RC_ENOENT (unknown name) or RC_EINVAL. */
int rc_config_set(const char *name, const char *value);
/* Appends every entry as one JSON object ({"health_check_period_ms": 3000, ...}). */
void rc_config_to_json(rc_buf *out);
/* Applies entries from a JSON object (as rc_config_to_json writes), skipping names that this
 * process's environment sets. Unknown names are ignored. Returns 0 or RC_EPARSE. */
int rc_config_apply_json(const char *json, size_t len);

#endif

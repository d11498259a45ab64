/*
 * sched_resource.c: fixed-point resource amounts, Ray's validation rules, and requests.
 *
 * Amounts are int64 in 0.0001 units (Ray's FixedPoint with RESOURCE_UNIT_SCALING 10000), so
 * giving back what was taken is exact. Validation follows Ray's option checks: amounts must
 * be finite and not negative; a non-zero amount that truncates to 0 units is finer than
 * Ray's precision; amounts above 1 must be whole numbers (Ray: "Resource quantities >1 must
 * be whole numbers"), which is also what makes GPU instances countable; the predefined
 * names may not appear among custom resources (Ray tells users to use num_cpus/num_gpus).
 * Every message names the resource and the value.
 *
 * A request keeps its resource IDs sorted and unique with positive amounts, so checks
 * against a node walk both in order. Single-threaded like the view.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rc_err.h"
#include "sched_int.h"

static void set_err(sched_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(sched_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

int sched_amount_from_double(const char *name, double value, sched_amount *out, sched_err *err)
{
    if (!name)
        name = "?";
    if (!isfinite(value)) {
        set_err(err, "resource '%s': amount %g is not a finite number", name, value);
        return RC_EINVAL;
    }
    if (value < 0) {
        set_err(err, "resource '%s': amount %g is negative; resource amounts must be >= 0", name,
                value);
        return RC_EINVAL;
    }
    if (value > (double)(SCHED_AMOUNT_MAX / SCHED_UNIT)) {
        set_err(err, "resource '%s': amount %g is too large; the limit is %g", name, value,
                (double)(SCHED_AMOUNT_MAX / SCHED_UNIT));
        return RC_EINVAL;
    }
    double scaled = value * (double)SCHED_UNIT;
    if (value != 0 && trunc(scaled) == 0) {
        set_err(err,
                "resource '%s': amount %g is finer than the 0.0001 precision of resource "
                "amounts",
                name, value);
        return RC_EINVAL;
    }
    if (value > 1 && value != floor(value)) {
        set_err(err,
                "resource '%s': amount %g is not allowed: resource quantities >1 must be whole "
                "numbers",
                name, value);
        return RC_EINVAL;
    }
    /* Whole amounts in integers: value * 10000 in a double is inexact above about 1.4e13. */
    *out = value > 1 ? (sched_amount)value * SCHED_UNIT : (sched_amount)llround(scaled);
    return 0;
}

char *sched_amount_format(sched_amount amount, char *buf, size_t len)
{
    const char *sign = "";
    uint64_t a = (uint64_t)amount;
    if (amount < 0) {
        sign = "-";
        a = (uint64_t)0 - (uint64_t)amount;
    }
    uint64_t whole = a / (uint64_t)SCHED_UNIT, frac = a % (uint64_t)SCHED_UNIT;
    if (!frac) {
        snprintf(buf, len, "%s%" PRIu64, sign, whole);
        return buf;
    }
    char digits[8];
    snprintf(digits, sizeof(digits), "%04" PRIu64, frac);
    for (int i = 3; i > 0 && digits[i] == '0'; i--)
        digits[i] = '\0';
    snprintf(buf, len, "%s%" PRIu64 ".%s", sign, whole, digits);
    return buf;
}

/* Bytes in human units: memory amounts are bytes, and "68719476736" reads badly. */
void sched__fmt_bytes(double bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    if (bytes == floor(bytes))
        snprintf(buf, len, "%.0f %s", bytes, units[u]);
    else
        snprintf(buf, len, "%.2f %s", bytes, units[u]);
}

static int is_bytes_resource(uint32_t id)
{
    return id == SCHED_MEMORY || id == SCHED_OBJECT_STORE_MEMORY;
}

void sched__fmt_resource(const sched_view *v, uint32_t id, sched_amount amount, char *buf,
                         size_t len)
{
    const char *name = sched_view_resource_name(v, id);
    char num[48];
    if (!name)
        name = "?";
    if (is_bytes_resource(id))
        sched__fmt_bytes((double)amount / (double)SCHED_UNIT, num, sizeof(num));
    else
        sched_amount_format(amount, num, sizeof(num));
    snprintf(buf, len, "%s %s", num, name);
}

void sched__fmt_request(const sched_view *v, const sched_request *r, char *buf, size_t len)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, len, "{");
    for (uint32_t i = 0; i < r->n && used < len; i++) {
        char num[48];
        const char *name = sched_view_resource_name(v, r->id[i]);
        if (is_bytes_resource(r->id[i]))
            sched__fmt_bytes((double)r->amount[i] / (double)SCHED_UNIT, num, sizeof(num));
        else
            sched_amount_format(r->amount[i], num, sizeof(num));
        used += (size_t)snprintf(buf + used, len - used, "%s%s: %s", i ? ", " : "",
                                 name ? name : "?", num);
    }
    if (used < len)
        snprintf(buf + used, len - used, "}");
}

void sched_request_init(sched_request *r)
{
    r->n = 0;
    r->held = 0;
    r->gpu_memory = 0;
    r->accelerator_id = SCHED_NO_RESOURCE;
    r->selector = NULL;
}

sched_amount sched_request_get(const sched_request *r, uint32_t id)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (r->id[i] == id)
            return r->amount[i];
    return 0;
}

/* Bit i of held after inserting (removing) entry i. */
static uint32_t held_insert(uint32_t held, uint32_t i, int bit)
{
    uint32_t low = held & ((1u << i) - 1);
    return low | ((held >> i) << (i + 1)) | ((uint32_t)(bit != 0) << i);
}

static uint32_t held_remove(uint32_t held, uint32_t i)
{
    uint32_t low = held & ((1u << i) - 1);
    return low | ((held >> (i + 1)) << i);
}

/* Sets id = amount in r. A new entry holds a reference when hold is set (the caller takes
 * it); *added says one was added, *dropped_held that an entry holding one was removed. */
static int request_put(sched_request *r, uint32_t id, sched_amount amount, int hold, int *added,
                       int *dropped_held)
{
    *added = *dropped_held = 0;
    if (amount < 0 || amount > SCHED_AMOUNT_MAX || id == SCHED_NO_RESOURCE)
        return RC_ERANGE;
    uint32_t i = 0;
    while (i < r->n && r->id[i] < id)
        i++;
    if (i < r->n && r->id[i] == id) {
        if (amount) {
            r->amount[i] = amount;
            return 0;
        }
        *dropped_held = (r->held >> i) & 1;
        memmove(&r->id[i], &r->id[i + 1], (r->n - i - 1) * sizeof(r->id[0]));
        memmove(&r->amount[i], &r->amount[i + 1], (r->n - i - 1) * sizeof(r->amount[0]));
        r->held = held_remove(r->held, i);
        r->n--;
        return 0;
    }
    if (!amount)
        return 0;
    if (r->n == SCHED_REQ_MAX_RESOURCES)
        return RC_ERANGE;
    memmove(&r->id[i + 1], &r->id[i], (r->n - i) * sizeof(r->id[0]));
    memmove(&r->amount[i + 1], &r->amount[i], (r->n - i) * sizeof(r->amount[0]));
    r->held = held_insert(r->held, i, hold);
    r->id[i] = id;
    r->amount[i] = amount;
    r->n++;
    *added = 1;
    return 0;
}

int sched_request_set_id(sched_request *r, uint32_t id, sched_amount amount)
{
    int added, dropped;
    /* An entry that held a reference and is removed here keeps the name alive: without
     * the view it cannot be released (a leak, never a dangling ID). */
    return request_put(r, id, amount, 0, &added, &dropped);
}

/* Sets the interned id (no reference taken yet) to amount in r, the entry holding a
 * reference when new. Frees the name again if nothing ends up referring to it. */
static int request_put_named(sched_view *v, sched_request *r, uint32_t id, sched_amount amount)
{
    int added, dropped;
    int rc = request_put(r, id, amount, 1, &added, &dropped);
    if (added)
        sched_view_resource_retain(v, id);
    if (dropped)
        sched_view_resource_release(v, id);
    sched__resource_drop_unused(v, id);
    return rc;
}

void sched_request_release(sched_view *v, sched_request *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        if ((r->held >> i) & 1)
            sched_view_resource_release(v, r->id[i]);
    r->n = 0;
    r->held = 0;
    r->accelerator_id = SCHED_NO_RESOURCE;
}

void sched_request_retain(sched_view *v, const sched_request *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        if ((r->held >> i) & 1)
            sched_view_resource_retain(v, r->id[i]);
}

int sched_request_set(sched_view *v, sched_request *r, const char *name, double amount,
                      sched_err *err)
{
    if (!name || !*name) {
        set_err(err, "resource name must not be empty");
        return RC_EINVAL;
    }
    sched_amount a;
    int rc = sched_amount_from_double(name, amount, &a, err);
    if (rc)
        return rc;
    if (request_put_named(v, r, sched__intern(v, name), a)) {
        set_err(err, "resource '%s': a request may name at most %d distinct resources", name,
                SCHED_REQ_MAX_RESOURCES);
        return RC_EINVAL;
    }
    return 0;
}

int sched_request_set_custom(sched_view *v, sched_request *r, const char *name, double amount,
                             sched_err *err)
{
    /* Ray: "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in
     * 'resources' keyword"; memory and object_store_memory have their own options too. */
    static const struct {
        const char *name, *option;
    } reserved[] = {
        {"CPU", "num_cpus"},
        {"GPU", "num_gpus"},
        {"memory", "memory"},
        {"object_store_memory", "object_store_memory"},
    };
    for (size_t i = 0; name && i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (!strcmp(name, reserved[i].name)) {
            set_err(err,
                    "custom resource '%s' is not allowed: use the %s option instead of "
                    "resources={'%s': %g}",
                    name, reserved[i].option, name, amount);
            return RC_EINVAL;
        }
    }
    return sched_request_set(v, r, name, amount, err);
}

/* Accelerator type names become part of a resource name and a label value. */
static int accel_type_ok(const char *t)
{
    if (!*t || strlen(t) > 63)
        return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

int sched_request_set_accelerator_type(sched_view *v, sched_request *r, const char *type,
                                       sched_err *err)
{
    if (!type || !accel_type_ok(type)) {
        set_err(err,
                "accelerator_type '%s' is invalid: use 1-63 letters, digits, '-', '_' or '.' "
                "(e.g. A100)",
                type ? type : "(null)");
        return RC_EINVAL;
    }
    char name[96];
    snprintf(name, sizeof(name), "accelerator_type:%s", type);
    uint32_t id = sched__intern(v, name);
    /* Ray's accelerator_type option adds this tiny amount; only nodes of that type have
     * the resource, so no other node can ever take the task. */
    if (request_put_named(v, r, id, SCHED_UNIT / 1000)) {
        set_err(err, "accelerator_type '%s': a request may name at most %d distinct resources",
                type, SCHED_REQ_MAX_RESOURCES);
        return RC_EINVAL;
    }
    r->accelerator_id = id;
    return 0;
}

int sched__request_check(const sched_view *v, const sched_request *r, char *why, size_t len)
{
    if (r->n > SCHED_REQ_MAX_RESOURCES) {
        snprintf(why, len, "invalid request: %u resources (at most %d)", r->n,
                 SCHED_REQ_MAX_RESOURCES);
        return RC_EINVAL;
    }
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->amount[i] <= 0 || r->amount[i] > SCHED_AMOUNT_MAX ||
            (i && r->id[i] <= r->id[i - 1]) || !sched_view_resource_name(v, r->id[i])) {
            snprintf(why, len,
                     "invalid request: resource entry %u is malformed (build requests with "
                     "sched_request_set)",
                     i);
            return RC_EINVAL;
        }
    }
    sched_amount gpus = sched_request_get(r, SCHED_GPU);
    if (gpus > SCHED_UNIT && gpus % SCHED_UNIT) {
        char num[48];
        snprintf(why, len,
                 "invalid request: resource 'GPU': amount %s is not allowed: resource "
                 "quantities >1 must be whole numbers",
                 sched_amount_format(gpus, num, sizeof(num)));
        return RC_EINVAL;
    }
    if (gpus > (sched_amount)SCHED_MAX_GPUS * SCHED_UNIT) {
        snprintf(why, len, "invalid request: %" PRId64 " GPUs is more than any node can have (%d)",
                 gpus / SCHED_UNIT, SCHED_MAX_GPUS);
        return RC_EINVAL;
    }
    if (r->gpu_memory && !gpus) {
        snprintf(why, len,
                 "invalid request: gpu_memory is set but no GPU is requested; set num_gpus too");
        return RC_EINVAL;
    }
    return 0;
}

/*
 * ray._raylet: the CPython binding of librayc (include/rayc.h), under rayc's `ray` package
 * (ARCHITECTURE §13). Thin on purpose: values are bytes and buffers here; pickling, options
 * and Ray's API live in Python (ray/_private/). Every call that can block releases the GIL,
 * and Python code runs only on user threads and task threads, never on the core's loop
 * thread.
 *
 *   ObjectRef          a reference (rayc_ref); the instance holds one reference, dropped
 *                      when it is collected. Python subclasses it (ray.ObjectRef).
 *   ObjectBuffer       a fetched object or task argument: read-only buffer protocol over
 *                      its bytes, zero-copy from shared memory, pinned while it lives.
 *   RaycError          raised with (rc, message) when the core refuses a call.
 *
 * In a worker, worker_main(argv, executor) runs the core's task loop; tasks reach the
 * executor's run_task(function, args, num_returns), create_actor(class_name, args) and
 * call_method(instance, method, args, num_returns). run_task and call_method return one
 * sequence of buffer-like parts per result (concatenated into the object, copied once).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "rayc.h"

static PyObject *RaycError;
static PyTypeObject *ref_class; /* what functions return: ObjectRef or the subclass set */
static PyObject *executor;      /* worker mode */

static PyObject *raise_rc(int rc)
{
    const char *msg = rayc_last_error();
    PyObject *args = Py_BuildValue("(is)", rc, msg && *msg ? msg : rayc_strerror(rc));
    if (args) {
        PyErr_SetObject(RaycError, args);
        Py_DECREF(args);
    }
    return NULL;
}

/* ---- ObjectRef ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD rayc_ref ref;
    int held; /* holds a reference to release */
} ObjectRefObject;

static PyTypeObject ObjectRefType;

static PyObject *ref_wrap(const rayc_ref *ref)
{
    ObjectRefObject *o = (ObjectRefObject *)ref_class->tp_alloc(ref_class, 0);
    if (!o) {
        if (rayc_is_initialized())
            rayc_ref_release(ref);
        return NULL;
    }
    o->ref = *ref;
    o->held = 1;
    return (PyObject *)o;
}

/* ObjectRef(id: bytes): a handle on an ID without a reference of its own (Ray lets users
 * build refs from binary IDs; the object must be kept alive by someone else). */
static int ref_init(PyObject *self, PyObject *args, PyObject *kw)
{
    Py_buffer id;
    if (!PyArg_ParseTuple(args, "y*", &id))
        return -1;
    if (id.len != RAYC_OBJECT_ID_SIZE) {
        PyBuffer_Release(&id);
        PyErr_Format(PyExc_ValueError, "an ObjectRef ID is %d bytes, not %zd", RAYC_OBJECT_ID_SIZE, id.len);
        return -1;
    }
    ObjectRefObject *o = (ObjectRefObject *)self;
    if (o->held && rayc_is_initialized())
        rayc_ref_release(&o->ref);
    memcpy(o->ref.id, id.buf, RAYC_OBJECT_ID_SIZE);
    o->held = 0;
    PyBuffer_Release(&id);
    return 0;
}

static void ref_dealloc(PyObject *self)
{
    ObjectRefObject *o = (ObjectRefObject *)self;
    if (o->held && rayc_is_initialized())
        rayc_ref_release(&o->ref);
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
}

static PyObject *ref_binary(PyObject *self, PyObject *unused)
{
    return PyBytes_FromStringAndSize((const char *)((ObjectRefObject *)self)->ref.id, RAYC_OBJECT_ID_SIZE);
}

static PyObject *ref_hex(PyObject *self, PyObject *unused)
{
    char buf[2 * RAYC_OBJECT_ID_SIZE + 1];
    rayc_ref_hex(&((ObjectRefObject *)self)->ref, buf);
    return PyUnicode_FromString(buf);
}

static Py_hash_t ref_hash(PyObject *self)
{
    Py_hash_t h;
    memcpy(&h, ((ObjectRefObject *)self)->ref.id, sizeof(h));
    return h == -1 ? -2 : h;
}

static PyObject *ref_richcompare(PyObject *a, PyObject *b, int op)
{
    if (!PyObject_TypeCheck(b, &ObjectRefType) || (op != Py_EQ && op != Py_NE))
        Py_RETURN_NOTIMPLEMENTED;
    int eq = !memcmp(((ObjectRefObject *)a)->ref.id, ((ObjectRefObject *)b)->ref.id, RAYC_OBJECT_ID_SIZE);
    if ((op == Py_EQ) == eq)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyMethodDef ref_methods[] = {
    {"binary", ref_binary, METH_NOARGS, "The object ID's bytes."},
    {"hex", ref_hex, METH_NOARGS, "The object ID in hex."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ObjectRefType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ray._raylet.ObjectRef",
    .tp_basicsize = sizeof(ObjectRefObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A reference to an object in the cluster.",
    .tp_new = PyType_GenericNew,
    .tp_init = ref_init,
    .tp_dealloc = ref_dealloc,
    .tp_hash = ref_hash,
    .tp_richcompare = ref_richcompare,
    .tp_methods = ref_methods,
};

static int ref_of(PyObject *o, rayc_ref *out)
{
    if (!PyObject_TypeCheck(o, &ObjectRefType)) {
        PyErr_Format(PyExc_TypeError, "expected an ObjectRef, got %s", Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = ((ObjectRefObject *)o)->ref;
    return 0;
}

/* refs: a list or tuple of ObjectRefs -> a malloc'd array (PyMem_Free). */
static rayc_ref *refs_of(PyObject *seq, Py_ssize_t *n)
{
    PyObject *fast = PySequence_Fast(seq, "expected a list of ObjectRefs");
    if (!fast)
        return NULL;
    *n = PySequence_Fast_GET_SIZE(fast);
    rayc_ref *refs = PyMem_Malloc((*n ? *n : 1) * sizeof(*refs));
    for (Py_ssize_t i = 0; refs && i < *n; i++) {
        if (ref_of(PySequence_Fast_GET_ITEM(fast, i), &refs[i]) < 0) {
            PyMem_Free(refs);
            refs = NULL;
        }
    }
    Py_DECREF(fast);
    if (!refs && !PyErr_Occurred())
        PyErr_NoMemory();
    return refs;
}

/* ---- ObjectBuffer --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD rayc_object obj;
    Py_ssize_t exports;
} ObjectBufferObject;

static void buf_dealloc(PyObject *self)
{
    ObjectBufferObject *b = (ObjectBufferObject *)self;
    if (b->obj.internal_ && rayc_is_initialized())
        rayc_object_release(&b->obj, 1);
    Py_TYPE(self)->tp_free(self);
}

static int buf_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    ObjectBufferObject *b = (ObjectBufferObject *)self;
    if (PyBuffer_FillInfo(view, self, (void *)b->obj.data, (Py_ssize_t)b->obj.size, 1, flags) < 0)
        return -1;
    b->exports++;
    return 0;
}

static void buf_releasebuffer(PyObject *self, Py_buffer *view)
{
    ((ObjectBufferObject *)self)->exports--;
}

static PyBufferProcs buf_procs = {buf_getbuffer, buf_releasebuffer};

static Py_ssize_t buf_len(PyObject *self)
{
    return (Py_ssize_t)((ObjectBufferObject *)self)->obj.size;
}

static PySequenceMethods buf_seq = {.sq_length = buf_len};

static PyObject *buf_address(PyObject *self, PyObject *unused)
{
    return PyLong_FromVoidPtr((void *)((ObjectBufferObject *)self)->obj.data);
}

static PyMethodDef buf_methods[] = {
    {"address", buf_address, METH_NOARGS, "Where the bytes lie in this process's memory."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ObjectBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ray._raylet.ObjectBuffer",
    .tp_basicsize = sizeof(ObjectBufferObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The read-only bytes of an object, pinned while this lives.",
    .tp_dealloc = buf_dealloc,
    .tp_as_buffer = &buf_procs,
    .tp_as_sequence = &buf_seq,
    .tp_methods = buf_methods,
};

/* Takes over obj (its holder moves into the buffer). */
static PyObject *buf_wrap(rayc_object *obj)
{
    ObjectBufferObject *b = PyObject_New(ObjectBufferObject, &ObjectBufferType);
    if (!b) {
        rayc_object_release(obj, 1);
        return NULL;
    }
    b->obj = *obj;
    b->exports = 0;
    memset(obj, 0, sizeof(*obj));
    return (PyObject *)b;
}

/* ---- arguments and options ------------------------------------------------------------ */

/* Task arguments: each item is an ObjectRef (passed by reference) or a bytes-like value.
 * Fills args (PyMem) and views (to release after the call). */
typedef struct {
    rayc_arg *args;
    rayc_ref *refs;
    Py_buffer *views;
    Py_ssize_t n;
} arg_list;

static void args_release(arg_list *a)
{
    for (Py_ssize_t i = 0; i < a->n; i++)
        if (a->views[i].obj)
            PyBuffer_Release(&a->views[i]);
    PyMem_Free(a->args);
    PyMem_Free(a->refs);
    PyMem_Free(a->views);
    memset(a, 0, sizeof(*a));
}

static int args_of(PyObject *seq, arg_list *a)
{
    memset(a, 0, sizeof(*a));
    PyObject *fast = PySequence_Fast(seq, "task arguments must be a list");
    if (!fast)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    a->args = PyMem_Calloc(n ? n : 1, sizeof(*a->args));
    a->refs = PyMem_Calloc(n ? n : 1, sizeof(*a->refs));
    a->views = PyMem_Calloc(n ? n : 1, sizeof(*a->views));
    if (!a->args || !a->refs || !a->views) {
        Py_DECREF(fast);
        args_release(a);
        PyErr_NoMemory();
        return -1;
    }
    a->n = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (PyObject_TypeCheck(item, &ObjectRefType)) {
            a->refs[i] = ((ObjectRefObject *)item)->ref;
            a->args[i].ref = &a->refs[i];
        } else if (PyObject_GetBuffer(item, &a->views[i], PyBUF_SIMPLE) == 0) {
            a->args[i].data = a->views[i].buf;
            a->args[i].size = (size_t)a->views[i].len;
        } else {
            Py_DECREF(fast);
            args_release(a);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

/* Option lookups in a dict: absent or None keeps the default. Strings stay valid while the
 * dict lives (UTF-8 cached by the str). */
static int opt_double(PyObject *d, const char *k, double *out)
{
    PyObject *v = d ? PyDict_GetItemString(d, k) : NULL;
    if (!v || v == Py_None)
        return 0;
    double x = PyFloat_AsDouble(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = x;
    return 0;
}

static int opt_int(PyObject *d, const char *k, int *out)
{
    PyObject *v = d ? PyDict_GetItemString(d, k) : NULL;
    if (!v || v == Py_None)
        return 0;
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = (int)x;
    return 0;
}

static int opt_str(PyObject *d, const char *k, const char **out)
{
    PyObject *v = d ? PyDict_GetItemString(d, k) : NULL;
    if (!v || v == Py_None)
        return 0;
    const char *s = PyUnicode_AsUTF8(v);
    if (!s)
        return -1;
    *out = s;
    return 0;
}

static int opt_id(PyObject *d, const char *k, uint8_t *out, size_t len, int *set)
{
    PyObject *v = d ? PyDict_GetItemString(d, k) : NULL;
    if (!v || v == Py_None)
        return 0;
    char *buf;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(v, &buf, &n) < 0)
        return -1;
    if ((size_t)n != len) {
        PyErr_Format(PyExc_ValueError, "option %s: expected %zu bytes, got %zd", k, len, n);
        return -1;
    }
    memcpy(out, buf, len);
    if (set)
        *set = 1;
    return 0;
}

/* {"name": amount} -> resources (names borrowed from the dict's keys). */
static int opt_resources(PyObject *d, rayc_resource *res, size_t *n)
{
    PyObject *v = d ? PyDict_GetItemString(d, "resources") : NULL;
    *n = 0;
    if (!v || v == Py_None)
        return 0;
    if (!PyDict_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "resources must be a dict of name to amount");
        return -1;
    }
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (PyDict_Next(v, &pos, &key, &val)) {
        if (*n >= RAYC_MAX_TASK_RESOURCES) {
            PyErr_Format(PyExc_ValueError, "rayc takes at most %d custom resources per task", RAYC_MAX_TASK_RESOURCES);
            return -1;
        }
        res[*n].name = PyUnicode_AsUTF8(key);
        res[*n].amount = PyFloat_AsDouble(val);
        if (!res[*n].name || (res[*n].amount == -1 && PyErr_Occurred()))
            return -1;
        (*n)++;
    }
    return 0;
}

typedef struct {
    rayc_pg pg;
    int has_pg;
} pg_opt;

static int task_options_of(PyObject *d, rayc_task_options *o, pg_opt *pg)
{
    rayc_task_options_init(o);
    o->language = RAYC_LANGUAGE_PYTHON;
    int strategy = 0;
    int has_node = 0;
    pg->has_pg = 0;
    if (opt_double(d, "num_cpus", &o->num_cpus) < 0 || opt_double(d, "num_gpus", &o->num_gpus) < 0 ||
        opt_resources(d, o->resources, &o->n_resources) < 0 ||
        opt_str(d, "accelerator_type", &o->accelerator_type) < 0 ||
        opt_str(d, "label_selector", &o->label_selector) < 0 || opt_int(d, "strategy", &strategy) < 0 ||
        opt_id(d, "node_id", o->node_id, RAYC_NODE_ID_SIZE, &has_node) < 0 || opt_int(d, "soft", &o->soft) < 0 ||
        opt_int(d, "max_retries", &o->max_retries) < 0 || opt_int(d, "retry_exceptions", &o->retry_exceptions) < 0 ||
        opt_int(d, "num_returns", &o->num_returns) < 0 || opt_str(d, "name", &o->name) < 0 ||
        opt_id(d, "placement_group", pg->pg.id, RAYC_PG_ID_SIZE, &pg->has_pg) < 0 ||
        opt_int(d, "bundle_index", &o->bundle_index) < 0 ||
        opt_int(d, "capture_child_tasks", &o->capture_child_tasks) < 0)
        return -1;
    double gpu_memory = 0;
    if (opt_double(d, "gpu_memory", &gpu_memory) < 0)
        return -1;
    o->gpu_memory = (uint64_t)gpu_memory;
    o->strategy = (rayc_strategy)strategy;
    if (pg->has_pg)
        o->placement_group = &pg->pg;
    return 0;
}

static PyObject *refs_list(rayc_ref *refs, int n)
{
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        PyObject *r = ref_wrap(&refs[i]);
        if (!r) {
            for (int k = i + 1; k < n; k++)
                rayc_ref_release(&refs[k]);
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, r);
    }
    return list;
}

/* ---- init / shutdown ------------------------------------------------------------------ */

static PyObject *py_init(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"address", "namespace", "num_cpus", "num_gpus", "resources_json", "sys_path", "cwd",
                             "runtime_env_json", "labels", "job_priority", "job_weight", NULL};
    const char *address = NULL, *ns = NULL, *resources = NULL, *cwd = NULL, *env = NULL, *labels = NULL;
    double num_cpus = -1, num_gpus = -1, job_weight = 0;
    int job_priority = 0;
    PyObject *sys_path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zzddzOzzzid", kwlist, &address, &ns, &num_cpus, &num_gpus,
                                     &resources, &sys_path, &cwd, &env, &labels, &job_priority, &job_weight))
        return NULL;
    rayc_init_options o;
    rayc_init_options_init(&o);
    o.address = address;
    o.namespace_ = ns;
    o.num_cpus = num_cpus;
    o.num_gpus = num_gpus;
    o.resources_json = resources;
    o.labels = labels;
    o.driver_cwd = cwd;
    o.runtime_env_json = env;
    o.job_priority = job_priority;
    o.job_weight = job_weight;
    PyObject *fast = NULL;
    const char **paths = NULL;
    if (sys_path && sys_path != Py_None) {
        fast = PySequence_Fast(sys_path, "sys_path must be a list of str");
        if (!fast)
            return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        paths = PyMem_Calloc(n ? n : 1, sizeof(*paths));
        for (Py_ssize_t i = 0; paths && i < n; i++) {
            paths[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(fast, i));
            if (!paths[i]) {
                PyMem_Free(paths);
                Py_DECREF(fast);
                return NULL;
            }
        }
        o.driver_sys_path = paths;
        o.n_driver_sys_path = (size_t)n;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_init(&o);
    Py_END_ALLOW_THREADS PyMem_Free(paths);
    Py_XDECREF(fast);
    if (rc < 0)
        return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *py_find_cluster(PyObject *self, PyObject *unused)
{
    char address[256];
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_find_cluster(address, sizeof(address), NULL, 0);
    Py_END_ALLOW_THREADS if (rc == RAYC_ENOENT) Py_RETURN_NONE;
    if (rc < 0)
        return raise_rc(rc);
    return PyUnicode_FromString(address);
}

static PyObject *py_shutdown(PyObject *self, PyObject *unused)
{
    Py_BEGIN_ALLOW_THREADS rayc_shutdown();
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyObject *py_is_initialized(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(rayc_is_initialized());
}

static PyObject *py_set_ref_class(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &ObjectRefType)) {
        PyErr_SetString(PyExc_TypeError, "set_ref_class takes a subclass of ObjectRef");
        return NULL;
    }
    Py_INCREF(cls);
    Py_XDECREF((PyObject *)ref_class);
    ref_class = (PyTypeObject *)cls;
    Py_RETURN_NONE;
}

/* ---- buffer parts ------------------------------------------------------------------- */

/* An object's bytes as a serializer hands them over: a sequence of buffer-like parts, held
 * (their buffer views) while the core copies them once. */
typedef struct {
    Py_buffer *views;
    rayc_iov *iov;
    Py_ssize_t n;
} parts_view;

static void parts_release(parts_view *p)
{
    for (Py_ssize_t i = 0; i < p->n; i++)
        PyBuffer_Release(&p->views[i]);
    PyMem_Free(p->views);
    PyMem_Free(p->iov);
    memset(p, 0, sizeof(*p));
}

/* Views every part of seq: 0, or -1 with a Python error (nothing held). */
static int parts_get(PyObject *seq, const char *what, parts_view *p)
{
    memset(p, 0, sizeof(*p));
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    p->views = PyMem_Calloc(n ? n : 1, sizeof(*p->views));
    p->iov = PyMem_Calloc(n ? n : 1, sizeof(*p->iov));
    int rc = p->views && p->iov ? 0 : -1;
    if (rc < 0)
        PyErr_NoMemory();
    for (; rc == 0 && p->n < n; p->n++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fast, p->n), &p->views[p->n], PyBUF_SIMPLE) < 0) {
            rc = -1;
            break;
        }
        p->iov[p->n].data = p->views[p->n].buf;
        p->iov[p->n].size = (size_t)p->views[p->n].len;
    }
    Py_DECREF(fast);
    if (rc < 0)
        parts_release(p);
    return rc;
}

/* ---- objects -------------------------------------------------------------------------- */

static PyObject *py_put(PyObject *self, PyObject *parts)
{
    parts_view p;
    if (parts_get(parts, "put takes a list of buffers", &p) < 0)
        return NULL;
    rayc_ref ref;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_put_iov(p.iov, (size_t)p.n, &ref);
    Py_END_ALLOW_THREADS parts_release(&p);
    if (rc < 0)
        return raise_rc(rc);
    return ref_wrap(&ref);
}

/* get(refs, timeout_ms) -> [(error, message, ObjectBuffer or None)]; error 0 is a value,
 * RAYC_ERR_TIMEOUT an object not ready in time. */
static PyObject *py_get(PyObject *self, PyObject *args)
{
    PyObject *seq;
    long long timeout_ms = -1;
    if (!PyArg_ParseTuple(args, "O|L", &seq, &timeout_ms))
        return NULL;
    Py_ssize_t n;
    rayc_ref *refs = refs_of(seq, &n);
    if (!refs)
        return NULL;
    rayc_object *out = PyMem_Calloc(n ? n : 1, sizeof(*out));
    if (!out) {
        PyMem_Free(refs);
        return PyErr_NoMemory();
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_get(refs, (size_t)n, timeout_ms, out);
    Py_END_ALLOW_THREADS PyMem_Free(refs);
    if (rc < 0 && rc != RAYC_ETIMEDOUT) {
        PyMem_Free(out);
        return raise_rc(rc);
    }
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item;
        if (!list) {
            rayc_object_release(&out[i], 1);
            continue;
        }
        if (out[i].error == RAYC_OK) {
            PyObject *b = buf_wrap(&out[i]);
            item = b ? Py_BuildValue("(iOO)", 0, Py_None, b) : NULL;
            Py_XDECREF(b);
        } else {
            item = Py_BuildValue("(isO)", (int)out[i].error, out[i].error_message ? out[i].error_message : "",
                                 Py_None);
            rayc_object_release(&out[i], 1);
        }
        if (!item) {
            Py_CLEAR(list);
            continue;
        }
        PyList_SET_ITEM(list, i, item);
    }
    PyMem_Free(out);
    return list;
}

static PyObject *py_wait(PyObject *self, PyObject *args)
{
    PyObject *seq;
    Py_ssize_t num_returns;
    long long timeout_ms = -1;
    int fetch_local = 1;
    if (!PyArg_ParseTuple(args, "On|Lp", &seq, &num_returns, &timeout_ms, &fetch_local))
        return NULL;
    Py_ssize_t n;
    rayc_ref *refs = refs_of(seq, &n);
    if (!refs)
        return NULL;
    uint8_t *mask = PyMem_Calloc(n ? n : 1, 1);
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_wait(refs, (size_t)n, (size_t)num_returns, timeout_ms, fetch_local, mask);
    Py_END_ALLOW_THREADS PyMem_Free(refs);
    if (rc < 0) {
        PyMem_Free(mask);
        return raise_rc(rc);
    }
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list && i < n; i++)
        PyList_SET_ITEM(list, i, PyBool_FromLong(mask[i]));
    PyMem_Free(mask);
    return list;
}

static PyObject *py_cancel(PyObject *self, PyObject *args)
{
    PyObject *r;
    int force = 0, recursive = 1;
    rayc_ref ref;
    if (!PyArg_ParseTuple(args, "O|pp", &r, &force, &recursive) || ref_of(r, &ref) < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_cancel_recursive(&ref, force, recursive);
    Py_END_ALLOW_THREADS if (rc < 0) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *py_serialize_ref(PyObject *self, PyObject *r)
{
    rayc_ref ref;
    if (ref_of(r, &ref) < 0)
        return NULL;
    char small[256];
    size_t need = rayc_ref_serialize(&ref, small, sizeof(small));
    if (!need)
        return raise_rc(RAYC_ESTATE);
    if (need <= sizeof(small))
        return PyBytes_FromStringAndSize(small, (Py_ssize_t)need);
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)need);
    if (b)
        rayc_ref_serialize(&ref, PyBytes_AS_STRING(b), need);
    return b;
}

static PyObject *py_deserialize_ref(PyObject *self, PyObject *arg)
{
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    rayc_ref ref;
    int rc = rayc_ref_deserialize(v.buf, (size_t)v.len, &ref);
    PyBuffer_Release(&v);
    if (rc < 0)
        return raise_rc(rc);
    return ref_wrap(&ref);
}

/* ---- tasks ---------------------------------------------------------------------------- */

static PyObject *py_submit(PyObject *self, PyObject *args)
{
    const char *fn;
    PyObject *argseq, *opts;
    if (!PyArg_ParseTuple(args, "sOO", &fn, &argseq, &opts))
        return NULL;
    rayc_task_options o;
    pg_opt pg;
    if (task_options_of(opts, &o, &pg) < 0)
        return NULL;
    if (o.num_returns < 1 || o.num_returns > 1024) {
        PyErr_Format(PyExc_ValueError, "num_returns must be 1..1024 in rayc, not %d", o.num_returns);
        return NULL;
    }
    arg_list a;
    if (args_of(argseq, &a) < 0)
        return NULL;
    rayc_ref out[1024];
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_submit(fn, a.args, (size_t)a.n, &o, out);
    Py_END_ALLOW_THREADS args_release(&a);
    if (rc < 0)
        return raise_rc(rc);
    return refs_list(out, o.num_returns);
}

/* ---- actors --------------------------------------------------------------------------- */

static PyObject *py_actor_create(PyObject *self, PyObject *args)
{
    const char *cls;
    PyObject *argseq, *opts;
    if (!PyArg_ParseTuple(args, "sOO", &cls, &argseq, &opts))
        return NULL;
    rayc_task_options t;
    pg_opt pg;
    if (task_options_of(opts, &t, &pg) < 0)
        return NULL;
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.language = RAYC_LANGUAGE_PYTHON;
    o.num_cpus = -1;
    if (opt_double(opts, "num_cpus", &o.num_cpus) < 0)
        return NULL;
    o.num_gpus = t.num_gpus;
    o.gpu_memory = t.gpu_memory;
    memcpy(o.resources, t.resources, sizeof(o.resources));
    o.n_resources = t.n_resources;
    o.accelerator_type = t.accelerator_type;
    o.label_selector = t.label_selector;
    o.strategy = t.strategy;
    memcpy(o.node_id, t.node_id, sizeof(o.node_id));
    o.soft = t.soft;
    o.placement_group = t.placement_group;
    o.bundle_index = t.bundle_index;
    o.capture_child_tasks = t.capture_child_tasks;
    if (opt_str(opts, "name", &o.name) < 0 || opt_str(opts, "namespace", &o.namespace_) < 0 ||
        opt_int(opts, "get_if_exists", &o.get_if_exists) < 0 || opt_int(opts, "detached", &o.detached) < 0 ||
        opt_int(opts, "max_restarts", &o.max_restarts) < 0 || opt_int(opts, "max_task_retries", &o.max_task_retries) < 0 ||
        opt_int(opts, "max_concurrency", &o.max_concurrency) < 0)
        return NULL;
    arg_list a;
    if (args_of(argseq, &a) < 0)
        return NULL;
    rayc_actor actor;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_actor_create(cls, a.args, (size_t)a.n, &o, &actor);
    Py_END_ALLOW_THREADS args_release(&a);
    if (rc < 0)
        return raise_rc(rc);
    return PyBytes_FromStringAndSize((const char *)actor.id, RAYC_ACTOR_ID_SIZE);
}

static int actor_of(PyObject *b, rayc_actor *out)
{
    char *buf;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(b, &buf, &n) < 0)
        return -1;
    if (n != RAYC_ACTOR_ID_SIZE) {
        PyErr_Format(PyExc_ValueError, "an actor ID is %d bytes, not %zd", RAYC_ACTOR_ID_SIZE, n);
        return -1;
    }
    memcpy(out->id, buf, RAYC_ACTOR_ID_SIZE);
    return 0;
}

static PyObject *py_actor_call(PyObject *self, PyObject *args)
{
    PyObject *id, *argseq;
    const char *method, *name = NULL;
    int num_returns = 1, max_pending = 0;
    if (!PyArg_ParseTuple(args, "SsO|izi", &id, &method, &argseq, &num_returns, &name, &max_pending))
        return NULL;
    rayc_actor actor;
    if (actor_of(id, &actor) < 0)
        return NULL;
    if (num_returns < 1 || num_returns > 1024) {
        PyErr_Format(PyExc_ValueError, "num_returns must be 1..1024 in rayc, not %d", num_returns);
        return NULL;
    }
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.language = RAYC_LANGUAGE_PYTHON;
    o.num_returns = num_returns;
    o.name = name;
    o.max_pending_calls = max_pending > 0 ? max_pending : 0;
    arg_list a;
    if (args_of(argseq, &a) < 0)
        return NULL;
    rayc_ref out[1024];
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_actor_call(&actor, method, a.args, (size_t)a.n, &o, out);
    Py_END_ALLOW_THREADS args_release(&a);
    if (rc < 0)
        return raise_rc(rc);
    return refs_list(out, num_returns);
}

static PyObject *py_actor_kill(PyObject *self, PyObject *args)
{
    PyObject *id;
    int no_restart = 1;
    rayc_actor actor;
    if (!PyArg_ParseTuple(args, "S|p", &id, &no_restart) || actor_of(id, &actor) < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_actor_kill(&actor, no_restart);
    Py_END_ALLOW_THREADS if (rc < 0) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *py_actor_release(PyObject *self, PyObject *id)
{
    rayc_actor actor;
    if (actor_of(id, &actor) < 0)
        return NULL;
    if (rayc_is_initialized())
        rayc_actor_release(&actor);
    Py_RETURN_NONE;
}

static PyObject *py_get_actor(PyObject *self, PyObject *args)
{
    const char *name, *ns = NULL;
    if (!PyArg_ParseTuple(args, "s|z", &name, &ns))
        return NULL;
    rayc_actor actor;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_get_actor(name, ns, &actor);
    Py_END_ALLOW_THREADS if (rc == RAYC_ENOENT) Py_RETURN_NONE;
    if (rc < 0)
        return raise_rc(rc);
    return PyBytes_FromStringAndSize((const char *)actor.id, RAYC_ACTOR_ID_SIZE);
}

static PyObject *py_actor_info(PyObject *self, PyObject *id)
{
    rayc_actor actor;
    if (actor_of(id, &actor) < 0)
        return NULL;
    rayc_actor_info info;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_actor_info_get(&actor, &info);
    Py_END_ALLOW_THREADS if (rc < 0) return raise_rc(rc);
    static const char *states[] = {"PENDING_CREATION", "DEPENDENCIES_UNREADY", "ALIVE", "RESTARTING", "DEAD"};
    return Py_BuildValue("{s:s,s:i,s:y#,s:i,s:s}", "state",
                         (unsigned)info.state < 5 ? states[info.state] : "UNKNOWN", "num_restarts", info.num_restarts,
                         "node_id", (const char *)info.node_id, (Py_ssize_t)RAYC_NODE_ID_SIZE, "pid", info.pid,
                         "death_cause", info.death_cause);
}

/* ---- placement groups ----------------------------------------------------------------- */

static int pg_of(PyObject *b, rayc_pg *out)
{
    char *buf;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(b, &buf, &n) < 0)
        return -1;
    if (n != RAYC_PG_ID_SIZE) {
        PyErr_Format(PyExc_ValueError, "a placement group ID is %d bytes, not %zd", RAYC_PG_ID_SIZE, n);
        return -1;
    }
    memcpy(out->id, buf, RAYC_PG_ID_SIZE);
    return 0;
}

static PyObject *py_pg_create(PyObject *self, PyObject *args)
{
    PyObject *bundles;
    int strategy;
    const char *name = NULL;
    int detached = 0;
    if (!PyArg_ParseTuple(args, "Oi|zp", &bundles, &strategy, &name, &detached))
        return NULL;
    PyObject *fast = PySequence_Fast(bundles, "bundles must be a list of dicts");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    rayc_bundle *b = PyMem_Calloc(n ? n : 1, sizeof(*b));
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyDict_Check(d)) {
            PyErr_SetString(PyExc_TypeError, "each bundle must be a dict");
            goto out;
        }
        if (opt_double(d, "num_cpus", &b[i].num_cpus) < 0 || opt_double(d, "num_gpus", &b[i].num_gpus) < 0 ||
            opt_resources(d, b[i].resources, &b[i].n_resources) < 0 ||
            opt_str(d, "label_selector", &b[i].label_selector) < 0)
            goto out;
    }
    rayc_pg_options po = {name, detached};
    rayc_pg pg;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_pg_create(b, (size_t)n, (rayc_pg_strategy)strategy, &po, &pg);
    Py_END_ALLOW_THREADS if (rc < 0) raise_rc(rc);
    else result = PyBytes_FromStringAndSize((const char *)pg.id, RAYC_PG_ID_SIZE);
out:
    PyMem_Free(b);
    Py_DECREF(fast);
    return result;
}

/* pg_wait(id, timeout_ms) -> (rc, message): 0 ready, RAYC_ETIMEDOUT pending, else why not. */
static PyObject *py_pg_wait(PyObject *self, PyObject *args)
{
    PyObject *id;
    long long timeout_ms = -1;
    rayc_pg pg;
    if (!PyArg_ParseTuple(args, "S|L", &id, &timeout_ms) || pg_of(id, &pg) < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_pg_wait(&pg, timeout_ms);
    Py_END_ALLOW_THREADS return Py_BuildValue("(is)", rc, rc < 0 ? rayc_last_error() : "");
}

static PyObject *py_pg_remove(PyObject *self, PyObject *id)
{
    rayc_pg pg;
    if (pg_of(id, &pg) < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_pg_remove(&pg);
    Py_END_ALLOW_THREADS if (rc < 0) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *py_pg_get(PyObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    rayc_pg pg;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_pg_get(name, &pg);
    Py_END_ALLOW_THREADS if (rc == RAYC_ENOENT) Py_RETURN_NONE;
    if (rc < 0)
        return raise_rc(rc);
    return PyBytes_FromStringAndSize((const char *)pg.id, RAYC_PG_ID_SIZE);
}

/* ---- cluster -------------------------------------------------------------------------- */

static PyObject *text_result(char *text)
{
    if (!text)
        return raise_rc(RAYC_EUNAVAIL);
    PyObject *s = PyUnicode_FromString(text);
    free(text);
    return s;
}

static PyObject *py_resources_json(PyObject *self, PyObject *args)
{
    int available = 0;
    if (!PyArg_ParseTuple(args, "|p", &available))
        return NULL;
    char *text;
    Py_BEGIN_ALLOW_THREADS text = rayc_resources_json(available);
    Py_END_ALLOW_THREADS return text_result(text);
}

static PyObject *py_nodes_json(PyObject *self, PyObject *unused)
{
    char *text;
    Py_BEGIN_ALLOW_THREADS text = rayc_nodes_json();
    Py_END_ALLOW_THREADS return text_result(text);
}

static PyObject *py_pg_table_json(PyObject *self, PyObject *args)
{
    PyObject *id = Py_None;
    rayc_pg pg;
    if (!PyArg_ParseTuple(args, "|O", &id) || (id != Py_None && pg_of(id, &pg) < 0))
        return NULL;
    char *text;
    Py_BEGIN_ALLOW_THREADS text = rayc_pg_table_json(id != Py_None ? &pg : NULL);
    Py_END_ALLOW_THREADS return text_result(text);
}

static PyObject *py_named_actors_json(PyObject *self, PyObject *args)
{
    const char *ns = NULL;
    int all = 0;
    if (!PyArg_ParseTuple(args, "zp", &ns, &all))
        return NULL;
    char *text;
    Py_BEGIN_ALLOW_THREADS text = rayc_named_actors_json(ns, all);
    Py_END_ALLOW_THREADS return text_result(text);
}

static PyObject *py_state_json(PyObject *self, PyObject *args)
{
    const char *resource;
    long long limit = 0;
    if (!PyArg_ParseTuple(args, "s|L", &resource, &limit))
        return NULL;
    char *text;
    Py_BEGIN_ALLOW_THREADS text = rayc_state_json(resource, (int64_t)limit);
    Py_END_ALLOW_THREADS return text_result(text);
}

static PyObject *py_kv_put(PyObject *self, PyObject *args)
{
    const char *ns, *key;
    Py_buffer v;
    int overwrite = 1;
    if (!PyArg_ParseTuple(args, "ssy*|p", &ns, &key, &v, &overwrite))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_kv_put(ns, key, v.buf, (size_t)v.len, overwrite);
    Py_END_ALLOW_THREADS PyBuffer_Release(&v);
    if (rc < 0)
        return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *py_kv_get(PyObject *self, PyObject *args)
{
    const char *ns, *key;
    if (!PyArg_ParseTuple(args, "ss", &ns, &key))
        return NULL;
    void *value = NULL;
    size_t size = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_kv_get(ns, key, &value, &size);
    Py_END_ALLOW_THREADS if (rc == RAYC_ENOENT) Py_RETURN_NONE;
    if (rc < 0)
        return raise_rc(rc);
    PyObject *b = PyBytes_FromStringAndSize(value, (Py_ssize_t)size);
    free(value);
    return b;
}

static PyObject *py_runtime_context(PyObject *self, PyObject *unused)
{
    rayc_runtime_context c;
    if (rayc_get_runtime_context(&c) < 0)
        return raise_rc(RAYC_ESTATE);
    int gpus[64];
    int n = rayc_get_gpu_ids(gpus, 64);
    PyObject *gpu_list = PyList_New(n < 64 ? n : 64);
    for (int i = 0; gpu_list && i < n && i < 64; i++)
        PyList_SET_ITEM(gpu_list, i, PyLong_FromLong(gpus[i]));
    PyObject *d = Py_BuildValue(
        "{s:y#,s:y#,s:y#,s:y#,s:y#,s:O,s:O,s:s,s:s,s:s,s:d,s:d,s:N,s:y#}", "node_id", (const char *)c.node_id,
        (Py_ssize_t)RAYC_NODE_ID_SIZE, "job_id", (const char *)c.job_id, (Py_ssize_t)RAYC_JOB_ID_SIZE, "task_id",
        (const char *)c.task_id, (Py_ssize_t)RAYC_TASK_ID_SIZE, "worker_id", (const char *)c.worker_id, (Py_ssize_t)28,
        "actor_id", (const char *)c.actor_id, (Py_ssize_t)RAYC_ACTOR_ID_SIZE, "in_task", c.in_task ? Py_True : Py_False,
        "is_actor", c.is_actor ? Py_True : Py_False, "task_name", c.task_name ? c.task_name : "", "namespace",
        c.namespace_ ? c.namespace_ : "", "node_ip", c.node_ip, "num_cpus", c.num_cpus, "num_gpus", c.num_gpus, "gpu_ids", gpu_list, "placement_group_id",
        (const char *)c.placement_group_id, (Py_ssize_t)(c.in_placement_group ? RAYC_PG_ID_SIZE : 0));
    return d;
}

static PyObject *py_last_error(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(rayc_last_error());
}

/* ---- worker mode ---------------------------------------------------------------------- */

/* The task's arguments as ObjectBuffers that hold them (a value kept by user code stays
 * valid after the task). */
static PyObject *exec_args(const rayc_object *args, size_t nargs)
{
    PyObject *list = PyList_New((Py_ssize_t)nargs);
    for (size_t i = 0; list && i < nargs; i++) {
        rayc_object held;
        if (rayc_object_retain(&args[i], &held) < 0) {
            Py_CLEAR(list);
            PyErr_SetString(PyExc_RuntimeError, "cannot hold a task argument");
            break;
        }
        PyObject *b = buf_wrap(&held);
        if (!b) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, b);
    }
    return list;
}

/* The pending Python exception as text, for rayc_task_fail. Clears it. */
static void exec_fail(rayc_task_ctx *ctx, const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *text = NULL;
    PyObject *tbmod = PyImport_ImportModule("traceback");
    if (tbmod && value) {
        PyObject *lines = PyObject_CallMethod(tbmod, "format_exception", "OOO", type ? type : Py_None, value,
                                              tb ? tb : Py_None);
        if (lines) {
            PyObject *sep = PyUnicode_FromString("");
            text = sep ? PyUnicode_Join(sep, lines) : NULL;
            Py_XDECREF(sep);
            Py_DECREF(lines);
        }
    }
    PyErr_Clear();
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    rayc_task_fail(ctx, "%s: %s", what, s ? s : "an error that could not be formatted");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(tbmod);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Stores the executor's results: one sequence of buffer-like parts per return. */
static int exec_returns(rayc_task_ctx *ctx, PyObject *results)
{
    int n = rayc_task_num_returns(ctx);
    PyObject *fast = PySequence_Fast(results, "the executor must return one list of parts per result");
    if (!fast)
        return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "the task returned %zd values, but num_returns is %d",
                     PySequence_Fast_GET_SIZE(fast), n);
        Py_DECREF(fast);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        parts_view p;
        if ((rc = parts_get(PySequence_Fast_GET_ITEM(fast, i), "a result must be a list of buffers", &p)) < 0)
            break;
        /* A raised error travels as the value (header "RC", kind 1): the task failed. */
        const unsigned char *head = p.n > 0 && p.iov[0].size >= 3 ? p.iov[0].data : NULL;
        if (i == 0 && head && head[0] == 'R' && head[1] == 'C' && head[2] == 1)
            rayc_task_mark_failed(ctx, NULL);
        /* Large results go to the store: copying without the GIL lets other threads run. */
        Py_BEGIN_ALLOW_THREADS rc = rayc_return_iov(ctx, i, p.iov, (size_t)p.n);
        Py_END_ALLOW_THREADS parts_release(&p);
        if (rc < 0)
            PyErr_SetString(PyExc_RuntimeError, "cannot store a result");
    }
    Py_DECREF(fast);
    return rc;
}

/* The task this thread runs now (report_generator_item). */
static __thread rayc_task_ctx *thread_ctx;

/* The thread running the current normal task, for ray.cancel without force (interrupt).
 * Written with the GIL held; task_seq tells an interrupt that came too late (the task
 * ended) from one for the task it was meant for. */
static unsigned long running_thread;
static pthread_t running_pthread;
static unsigned long task_seq;

/* The task thread is the worker's main thread (normal tasks run there): a SIGINT aimed at it
 * wakes a blocking call such as time.sleep, and Python's handler raises KeyboardInterrupt
 * there, as Ray's cancel does. */
static void *interrupt_thread(void *arg)
{
    unsigned long seq = (unsigned long)(uintptr_t)arg;
    PyGILState_STATE g = PyGILState_Ensure();
    if (running_thread && task_seq == seq)
        pthread_kill(running_pthread, SIGINT);
    PyGILState_Release(g);
    return NULL;
}

/* On the core's loop thread: never waits for the GIL there, a thread of its own does. */
static void exec_interrupt(void)
{
    pthread_t t;
    unsigned long seq = __atomic_load_n(&task_seq, __ATOMIC_RELAXED);
    if (pthread_create(&t, NULL, interrupt_thread, (void *)(uintptr_t)seq) == 0)
        pthread_detach(t);
}

static int exec_run_task(rayc_task_ctx *ctx, const char *function, const rayc_object *args, size_t nargs)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = -1;
    __atomic_store_n(&task_seq, task_seq + 1, __ATOMIC_RELAXED);
    running_thread = PyThread_get_thread_ident();
    running_pthread = pthread_self();
    thread_ctx = ctx;
    PyObject *a = exec_args(args, nargs);
    PyObject *res = a ? PyObject_CallMethod(executor, "run_task", "sOi", function, a, rayc_task_num_returns(ctx))
                      : NULL;
    running_thread = 0;
    thread_ctx = NULL;
    if (res && exec_returns(ctx, res) == 0)
        rc = 0;
    if (rc < 0)
        exec_fail(ctx, "the Python worker could not run the task");
    Py_XDECREF(res);
    Py_XDECREF(a);
    PyGILState_Release(g);
    return rc;
}

static void *exec_create_actor(rayc_task_ctx *ctx, const char *class_name, const rayc_object *args, size_t nargs)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *a = exec_args(args, nargs);
    PyObject *self = a ? PyObject_CallMethod(executor, "create_actor", "sO", class_name, a) : NULL;
    if (!self)
        exec_fail(ctx, "the actor's constructor failed");
    Py_XDECREF(a);
    PyGILState_Release(g);
    return self;
}

/* ---- TaskHandle: an actor call the executor may finish later ---------------------------- */

/* Passed to call_method. handle.defer() takes the call over (an async actor's coroutine);
 * the core's task thread is then free for the next call, and handle.finish(results) (or
 * handle.fail(text)) answers it later, from any thread. Unused, it is inert once
 * call_method has returned. */
typedef struct {
    PyObject_HEAD rayc_task_ctx *ctx;
    int state; /* HANDLE_* */
} TaskHandleObject;

enum { HANDLE_IN_CALL, HANDLE_DEFERRED, HANDLE_DONE };

static PyObject *handle_defer(PyObject *self, PyObject *unused)
{
    TaskHandleObject *h = (TaskHandleObject *)self;
    if (h->state != HANDLE_IN_CALL || !rayc_task_defer(h->ctx)) {
        PyErr_SetString(PyExc_RuntimeError, "defer() is for an actor call, once, while it runs");
        return NULL;
    }
    h->state = HANDLE_DEFERRED;
    Py_RETURN_NONE;
}

static PyObject *handle_end(TaskHandleObject *h, int rc)
{
    rayc_task_ctx *ctx = h->ctx;
    h->state = HANDLE_DONE;
    h->ctx = NULL;
    Py_BEGIN_ALLOW_THREADS rayc_task_finish(ctx, rc);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyObject *handle_finish(PyObject *self, PyObject *results)
{
    TaskHandleObject *h = (TaskHandleObject *)self;
    if (h->state != HANDLE_DEFERRED) {
        PyErr_SetString(PyExc_RuntimeError, "finish() answers a deferred call, once");
        return NULL;
    }
    int rc = exec_returns(h->ctx, results);
    if (rc < 0)
        exec_fail(h->ctx, "the Python worker could not store the method's results");
    return handle_end(h, rc);
}

static PyObject *handle_fail(PyObject *self, PyObject *text)
{
    TaskHandleObject *h = (TaskHandleObject *)self;
    const char *s = PyUnicode_AsUTF8(text);
    if (!s)
        return NULL;
    if (h->state != HANDLE_DEFERRED) {
        PyErr_SetString(PyExc_RuntimeError, "fail() answers a deferred call, once");
        return NULL;
    }
    rayc_task_fail(h->ctx, "%s", s);
    return handle_end(h, -1);
}

/* Reports value index of a streaming generator for ctx (the GIL is released while the
 * value is copied and the owner answers). */
static PyObject *report_item(rayc_task_ctx *ctx, long long index, PyObject *parts_seq)
{
    parts_view p;
    if (parts_get(parts_seq, "a value is a list of buffers", &p) < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_report_generator_item(ctx, index, p.iov, (size_t)p.n);
    Py_END_ALLOW_THREADS parts_release(&p);
    if (rc < 0)
        return PyErr_Format(PyExc_RuntimeError, "the generator's owner did not take value %lld", index);
    Py_RETURN_NONE;
}

static PyObject *handle_report_item(PyObject *self, PyObject *args)
{
    TaskHandleObject *h = (TaskHandleObject *)self;
    long long index;
    PyObject *parts;
    if (!PyArg_ParseTuple(args, "LO", &index, &parts))
        return NULL;
    if (h->state != HANDLE_DEFERRED) {
        PyErr_SetString(PyExc_RuntimeError, "report_item() is for a deferred call that is not answered yet");
        return NULL;
    }
    return report_item(h->ctx, index, parts);
}

static void handle_dealloc(PyObject *self)
{
    TaskHandleObject *h = (TaskHandleObject *)self;
    if (h->state == HANDLE_DEFERRED) {
        /* Dropped without an answer: the caller must not wait forever. */
        rayc_task_fail(h->ctx, "the actor dropped this call without answering it");
        rayc_task_finish(h->ctx, -1);
    }
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef handle_methods[] = {
    {"defer", handle_defer, METH_NOARGS, "Takes the call over; answer it with finish() or fail()."},
    {"finish", handle_finish, METH_O, "Answers a deferred call: one list of buffer parts per result."},
    {"fail", handle_fail, METH_O, "Answers a deferred call with a failure of the worker machinery."},
    {"report_item", handle_report_item, METH_VARARGS, "report_item(index, parts): a streaming generator's value."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TaskHandleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ray._raylet.TaskHandle",
    .tp_basicsize = sizeof(TaskHandleObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An actor call that may be answered later.",
    .tp_dealloc = handle_dealloc,
    .tp_methods = handle_methods,
};

static int exec_call_method(void *self, rayc_task_ctx *ctx, const char *method, const rayc_object *args, size_t nargs)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = -1;
    TaskHandleObject *h = PyObject_New(TaskHandleObject, &TaskHandleType);
    if (h) {
        h->ctx = ctx;
        h->state = HANDLE_IN_CALL;
    }
    PyObject *a = h ? exec_args(args, nargs) : NULL;
    thread_ctx = ctx;
    PyObject *res = a ? PyObject_CallMethod(executor, "call_method", "OsOiO", (PyObject *)self, method, a,
                                            rayc_task_num_returns(ctx), (PyObject *)h)
                      : NULL;
    thread_ctx = NULL;
    if (h && h->state != HANDLE_IN_CALL) {
        rc = 0; /* deferred (and perhaps finished already): the handle answers it */
        if (!res)
            PyErr_Print(); /* into the worker's log; the handle still answers the call */
    } else {
        if (res && exec_returns(ctx, res) == 0)
            rc = 0;
        if (rc < 0)
            exec_fail(ctx, "the Python worker could not run the method");
        if (h)
            h->state = HANDLE_DONE;
    }
    Py_XDECREF(res);
    Py_XDECREF(a);
    Py_XDECREF(h);
    PyGILState_Release(g);
    return rc;
}

static void exec_destroy_actor(void *self)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallMethod(executor, "destroy_actor", "O", (PyObject *)self);
    if (!r)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_DECREF((PyObject *)self);
    PyGILState_Release(g);
}

static PyObject *py_report_generator_item(PyObject *self, PyObject *args)
{
    long long index;
    PyObject *parts;
    if (!PyArg_ParseTuple(args, "LO", &index, &parts))
        return NULL;
    if (!thread_ctx) {
        PyErr_SetString(PyExc_RuntimeError, "report_generator_item() is for the task this thread runs");
        return NULL;
    }
    return report_item(thread_ctx, index, parts);
}

static PyObject *py_generator_next(PyObject *self, PyObject *args)
{
    PyObject *g;
    Py_ssize_t index;
    long long timeout_ms = 0;
    rayc_ref gen, item;
    if (!PyArg_ParseTuple(args, "On|L", &g, &index, &timeout_ms) || ref_of(g, &gen) < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_generator_next(&gen, (size_t)index, timeout_ms, &item);
    Py_END_ALLOW_THREADS if (rc == RAYC_ETIMEDOUT) Py_RETURN_NONE;
    if (rc < 0)
        return raise_rc(rc);
    return ref_wrap(&item);
}

static const rayc_executor py_executor = {exec_run_task, exec_create_actor, exec_call_method, exec_destroy_actor,
                                          exec_interrupt};

static PyObject *py_worker_main(PyObject *self, PyObject *args)
{
    PyObject *argv_list, *ex;
    if (!PyArg_ParseTuple(args, "OO", &argv_list, &ex))
        return NULL;
    PyObject *fast = PySequence_Fast(argv_list, "argv must be a list of str");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    char **argv = PyMem_Calloc((size_t)n + 1, sizeof(*argv));
    for (Py_ssize_t i = 0; argv && i < n; i++) {
        const char *s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(fast, i));
        if (!s) {
            PyMem_Free(argv);
            Py_DECREF(fast);
            return NULL;
        }
        argv[i] = (char *)s;
    }
    Py_INCREF(ex);
    Py_XDECREF(executor);
    executor = ex;
    rayc_set_executor(RAYC_LANGUAGE_PYTHON, &py_executor);
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = rayc_worker_main((int)n, argv);
    Py_END_ALLOW_THREADS PyMem_Free(argv);
    Py_DECREF(fast);
    return PyLong_FromLong(rc);
}

/* ---- module --------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"init", (PyCFunction)(void (*)(void))py_init, METH_VARARGS | METH_KEYWORDS, "Joins or starts a cluster."},
    {"find_cluster", py_find_cluster, METH_NOARGS,
     "The GCS address of the cluster `rayc start` runs on this host, or None."},
    {"shutdown", py_shutdown, METH_NOARGS, "Disconnects (stopping a local cluster)."},
    {"is_initialized", py_is_initialized, METH_NOARGS, NULL},
    {"set_ref_class", py_set_ref_class, METH_O, "The ObjectRef subclass that functions return."},
    {"put", py_put, METH_O, "put(parts) -> ObjectRef: the concatenated buffers as one object."},
    {"get", py_get, METH_VARARGS, "get(refs, timeout_ms) -> [(error, message, ObjectBuffer)]."},
    {"wait", py_wait, METH_VARARGS, "wait(refs, num_returns, timeout_ms, fetch_local) -> [ready]."},
    {"cancel", py_cancel, METH_VARARGS, "cancel(ref, force, recursive)."},
    {"serialize_ref", py_serialize_ref, METH_O, "The bytes of a reference and its owner."},
    {"deserialize_ref", py_deserialize_ref, METH_O, "A reference from serialize_ref's bytes."},
    {"submit", py_submit, METH_VARARGS, "submit(function_key, args, options) -> [ObjectRef]."},
    {"actor_create", py_actor_create, METH_VARARGS, "actor_create(class_name, args, options) -> actor ID."},
    {"actor_call", py_actor_call, METH_VARARGS, "actor_call(actor_id, method, args, num_returns, name)."},
    {"actor_kill", py_actor_kill, METH_VARARGS, "actor_kill(actor_id, no_restart)."},
    {"actor_release", py_actor_release, METH_O, "The creator is done with a non-detached actor."},
    {"get_actor", py_get_actor, METH_VARARGS, "get_actor(name, namespace) -> actor ID or None."},
    {"actor_info", py_actor_info, METH_O, "What the GCS says of an actor."},
    {"pg_create", py_pg_create, METH_VARARGS, "pg_create(bundles, strategy, name, detached) -> group ID."},
    {"pg_wait", py_pg_wait, METH_VARARGS, "pg_wait(id, timeout_ms) -> (rc, message)."},
    {"pg_remove", py_pg_remove, METH_O, NULL},
    {"pg_get", py_pg_get, METH_VARARGS, "pg_get(name) -> group ID or None."},
    {"resources_json", py_resources_json, METH_VARARGS, NULL},
    {"nodes_json", py_nodes_json, METH_NOARGS, NULL},
    {"pg_table_json", py_pg_table_json, METH_VARARGS, "pg_table_json(id=None): Ray's placement_group_table rows."},
    {"named_actors_json", py_named_actors_json, METH_VARARGS, "named_actors_json(namespace, all_namespaces)."},
    {"state_json", py_state_json, METH_VARARGS, "state_json(resource, limit=0): ray.util.state rows (JSON)."},
    {"kv_put", py_kv_put, METH_VARARGS, "kv_put(namespace, key, value, overwrite)."},
    {"kv_get", py_kv_get, METH_VARARGS, "kv_get(namespace, key) -> bytes or None."},
    {"runtime_context", py_runtime_context, METH_NOARGS, NULL},
    {"last_error", py_last_error, METH_NOARGS, NULL},
    {"worker_main", py_worker_main, METH_VARARGS, "worker_main(argv, executor) -> exit status."},
    {"report_generator_item", py_report_generator_item, METH_VARARGS,
     "report_generator_item(index, parts): a value of the streaming generator this thread runs."},
    {"generator_next", py_generator_next, METH_VARARGS,
     "generator_next(gen_ref, index, timeout_ms) -> ObjectRef, or None if not reported yet."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "ray._raylet", "rayc's binding of librayc.", -1, methods};

PyMODINIT_FUNC PyInit__raylet(void)
{
    if (PyType_Ready(&ObjectRefType) < 0 || PyType_Ready(&ObjectBufferType) < 0 || PyType_Ready(&TaskHandleType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    RaycError = PyErr_NewException("ray._raylet.RaycError", PyExc_RuntimeError, NULL);
    Py_INCREF(&ObjectRefType);
    ref_class = &ObjectRefType;
    Py_INCREF(&ObjectRefType);
    PyModule_AddObject(m, "ObjectRef", (PyObject *)&ObjectRefType);
    Py_INCREF(&ObjectBufferType);
    PyModule_AddObject(m, "ObjectBuffer", (PyObject *)&ObjectBufferType);
    Py_INCREF(RaycError);
    PyModule_AddObject(m, "RaycError", RaycError);
    static const struct {
        const char *name;
        int value;
    } constants[] = {
        {"ERR_TASK_FAILED", RAYC_ERR_TASK_FAILED},   {"ERR_WORKER_DIED", RAYC_ERR_WORKER_DIED},
        {"ERR_NODE_DIED", RAYC_ERR_NODE_DIED},       {"ERR_UNSCHEDULABLE", RAYC_ERR_UNSCHEDULABLE},
        {"ERR_CANCELLED", RAYC_ERR_CANCELLED},       {"ERR_OBJECT_LOST", RAYC_ERR_OBJECT_LOST},
        {"ERR_OWNER_DIED", RAYC_ERR_OWNER_DIED},     {"ERR_FUNCTION_NOT_FOUND", RAYC_ERR_FUNCTION_NOT_FOUND},
        {"ERR_TIMEOUT", RAYC_ERR_TIMEOUT},           {"ERR_ACTOR_DIED", RAYC_ERR_ACTOR_DIED},
        {"ERR_PG_REMOVED", RAYC_ERR_PG_REMOVED},     {"RC_ETIMEDOUT", RAYC_ETIMEDOUT},
        {"ERR_OBJECT_UNRECONSTRUCTABLE", RAYC_ERR_OBJECT_UNRECONSTRUCTABLE},
        {"ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS", RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS},
        {"ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED", RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED},
        {"RC_ENOENT", RAYC_ENOENT},                  {"RC_EEXIST", RAYC_EEXIST},
        {"RC_EINVAL", RAYC_EINVAL},                  {"RC_EBUSY", RAYC_EBUSY},
        {"STRATEGY_DEFAULT", RAYC_STRATEGY_DEFAULT},
        {"STRATEGY_SPREAD", RAYC_STRATEGY_SPREAD},   {"STRATEGY_NODE_AFFINITY", RAYC_STRATEGY_NODE_AFFINITY},
        {"STRATEGY_COST", RAYC_STRATEGY_COST},       {"PG_PACK", RAYC_PG_PACK},
        {"PG_SPREAD", RAYC_PG_SPREAD},               {"PG_STRICT_PACK", RAYC_PG_STRICT_PACK},
        {"PG_STRICT_SPREAD", RAYC_PG_STRICT_SPREAD},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++)
        PyModule_AddIntConstant(m, constants[i].name, constants[i].value);
    return m;
}

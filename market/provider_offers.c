/*
 * A provider's offers file, read again whenever it changes (prices move): shared by the local
 * and ssh providers. A file that does not parse (half-written, or wrong) keeps the offers
 * read before and says why; only the first read must succeed.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "market_provider.h"
#include "rc_alloc.h"
#include "rc_err.h"

void mk_offers_file_init(mk_offers_file *f, const char *config_dir, const char *offers)
{
    memset(f, 0, sizeof(*f));
    char path[PATH_MAX * 2];
    if (offers[0] == '/' || !config_dir)
        snprintf(path, sizeof(path), "%s", offers);
    else
        snprintf(path, sizeof(path), "%s/%s", config_dir, offers);
    f->path = rc_strdup(path);
}

void mk_offers_file_free(mk_offers_file *f)
{
    mk_offers_free(f->offers, f->n_offers);
    rc_free(f->path);
    memset(f, 0, sizeof(*f));
}

int mk_offers_file_read(mk_offers_file *f, const char *provider, mk_offers_check_fn check, void *arg,
                        const mk_offer **out, size_t *n, int *changed, char *err, size_t errlen)
{
    *changed = 0;
    struct stat st;
    if (stat(f->path, &st) != 0) {
        snprintf(err, errlen, "provider %s: cannot read its offers file %s: %s", provider, f->path, strerror(errno));
        return RC_ENOENT;
    }
    if (!f->loaded || st.st_mtim.tv_sec != f->mtime.tv_sec || st.st_mtim.tv_nsec != f->mtime.tv_nsec ||
        st.st_size != f->size) {
        char *text = NULL;
        if (auth_read_file(f->path, &text) < 0) {
            snprintf(err, errlen, "provider %s: cannot read %s: %s", provider, f->path, strerror(errno));
            return RC_EIO;
        }
        mk_offer *offers = NULL;
        size_t count = 0;
        char perr[512];
        int rc = mk_offers_parse(text, strlen(text), provider, &offers, &count, perr, sizeof(perr));
        rc_free(text);
        if (rc == 0 && check && (rc = check(arg, offers, count, perr, sizeof(perr))) < 0) {
            mk_offers_free(offers, count);
            offers = NULL;
        }
        if (rc < 0) {
            /* A half-written file: keep the offers we had, and say why. */
            if (snprintf(err, errlen, "%s: %s", f->path, perr) >= (int)errlen)
                err[errlen - 1] = '\0';
            if (!f->loaded)
                return rc;
        } else {
            mk_offers_free(f->offers, f->n_offers);
            f->offers = offers;
            f->n_offers = count;
            *changed = 1;
        }
        f->mtime = st.st_mtim;
        f->size = st.st_size;
        f->loaded = 1;
    }
    *out = f->offers;
    *n = f->n_offers;
    return 0;
}

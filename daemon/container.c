#include "container.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

container *container_new(void)
{
    return xcalloc(1, sizeof(container));
}

static void free_labels(ctr_label *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

void container_free(container *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->hostname);
    free(c->image);
    free(c->image_id);
    free(c->network_mode);
    free_labels(c->labels, c->nlabels);
    free_labels(c->image_labels, c->nimage_labels);
    for (size_t i = 0; i < c->nnets; i++) {
        free(c->nets[i].name);
        free(c->nets[i].ip);
        free(c->nets[i].gateway);
        for (size_t j = 0; j < c->nets[i].naliases; j++)
            free(c->nets[i].aliases[j]);
        free(c->nets[i].aliases);
    }
    free(c->nets);
    free(c->ports);
    free(c);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static ctr_label *dup_labels(const ctr_label *v, size_t n)
{
    ctr_label *d = xcalloc(n, sizeof(ctr_label));
    for (size_t i = 0; i < n; i++) {
        d[i].key = dup_or_null(v[i].key);
        d[i].value = dup_or_null(v[i].value);
    }
    return d;
}

container *container_dup(const container *c)
{
    container *d = container_new();
    memcpy(d->id, c->id, sizeof(d->id));
    d->name = dup_or_null(c->name);
    d->hostname = dup_or_null(c->hostname);
    d->image = dup_or_null(c->image);
    d->image_id = dup_or_null(c->image_id);
    d->network_mode = dup_or_null(c->network_mode);
    d->pid = c->pid;
    d->nimage_labels = c->nimage_labels;
    d->image_labels = dup_labels(c->image_labels, c->nimage_labels);
    d->image_labels_known = c->image_labels_known;
    d->running = c->running;
    d->paused = c->paused;
    d->started_at = c->started_at;
    d->finished_at = c->finished_at;
    d->nlabels = c->nlabels;
    d->labels = dup_labels(c->labels, c->nlabels);
    d->nnets = c->nnets;
    d->nets = xcalloc(c->nnets, sizeof(ctr_net));
    for (size_t i = 0; i < c->nnets; i++) {
        d->nets[i].name = dup_or_null(c->nets[i].name);
        d->nets[i].ip = dup_or_null(c->nets[i].ip);
        d->nets[i].gateway = dup_or_null(c->nets[i].gateway);
        d->nets[i].naliases = c->nets[i].naliases;
        d->nets[i].aliases = xcalloc(c->nets[i].naliases, sizeof(char *));
        for (size_t j = 0; j < c->nets[i].naliases; j++)
            d->nets[i].aliases[j] = dup_or_null(c->nets[i].aliases[j]);
    }
    d->nports = c->nports;
    d->ports = xcalloc(c->nports, sizeof(ctr_port));
    if (c->nports)
        memcpy(d->ports, c->ports, c->nports * sizeof(ctr_port));
    return d;
}

const char *container_label(const container *c, const char *key)
{
    for (size_t i = 0; i < c->nlabels; i++)
        if (c->labels[i].key && strcmp(c->labels[i].key, key) == 0)
            return c->labels[i].value ? c->labels[i].value : "";
    return NULL;
}

const char *container_image_label(const container *c, const char *key)
{
    if (!c->image_labels_known)
        return NULL;
    for (size_t i = 0; i < c->nimage_labels; i++)
        if (c->image_labels[i].key && strcmp(c->image_labels[i].key, key) == 0)
            return c->image_labels[i].value ? c->image_labels[i].value : "";
    return NULL;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * algorithm), so no timegm() and no TZ games are needed. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t container_parse_time(const char *s)
{
    if (s == NULL)
        return 0;
    const char *p = s;
    int y, mo, d, h, mi, se;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return 0;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &se))
        return 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return 0;
    int ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        for (; n < 3; n++)
            ms *= 10;
    }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
            return 0;
        off = sign * (oh * 3600 + om * 60);
    } else if (*p != 'Z' && *p != 'z') {
        return 0;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    return secs * 1000 + ms;
}

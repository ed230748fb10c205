#include <errno.h>
#include <stdarg.h>

#include "names.h"
#include "test.h"
#include "util.h"

/* Builds a container with a name and NULL-terminated key/value label pairs. */
static container *mk(const char *name, ...)
{
    container *c = container_new();
    strlcpy_(c->id, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
             sizeof(c->id));
    c->name = name ? xstrdup(name) : NULL;
    va_list ap;
    va_start(ap, name);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            break;
        const char *v = va_arg(ap, const char *);
        c->labels = xrealloc(c->labels, (c->nlabels + 1) * sizeof(ctr_label));
        c->labels[c->nlabels].key = xstrdup(k);
        c->labels[c->nlabels].value = xstrdup(v);
        c->nlabels++;
    }
    va_end(ap);
    return c;
}

static container *mk_compose(const char *project, const char *service, const char *number)
{
    char name[256];
    snprintf(name, sizeof(name), "%s-%s-%s", project, service, number ? number : "1");
    if (number)
        return mk(name, "com.docker.compose.project", project, "com.docker.compose.service",
                  service, "com.docker.compose.container-number", number, NULL);
    return mk(name, "com.docker.compose.project", project, "com.docker.compose.service", service,
              NULL);
}

static int has_name(const names_result *r, const char *name)
{
    for (size_t i = 0; i < r->nnames; i++)
        if (strcmp(r->names[i], name) == 0)
            return 1;
    return 0;
}

/* Every derived name must be a valid RFC 1123 name: this is the property the
 * DNS table relies on, whatever the input. */
static int valid_name(const char *s)
{
    size_t n = strlen(s), lab = 0;
    if (n == 0 || n > NAMES_NAME_MAX)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (s[i] == '.' || s[i] == '\0') {
            if (lab == 0 || lab > NAMES_LABEL_MAX || s[i - 1] == '-' || s[i - lab] == '-')
                return 0;
            lab = 0;
            continue;
        }
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
        lab++;
    }
    return 1;
}

static int all_valid(const names_result *r)
{
    for (size_t i = 0; i < r->nnames; i++) {
        if (!valid_name(r->names[i]))
            return 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->names[i], r->names[j]) == 0)
                return 0;
    }
    return r->service_alias == NULL || valid_name(r->service_alias);
}

TEST(sanitize_label_basic)
{
    char out[64];
    CHECK_INT(names_sanitize_label("pg", out, sizeof(out)), 2);
    CHECK_STR(out, "pg");
    CHECK_INT(names_sanitize_label("MyPG", out, sizeof(out)), 4);
    CHECK_STR(out, "mypg");
    CHECK_INT(names_sanitize_label("my_pg", out, sizeof(out)), 5);
    CHECK_STR(out, "my-pg");
    CHECK_INT(names_sanitize_label("a.b c/d", out, sizeof(out)), 7);
    CHECK_STR(out, "a-b-c-d");
    /* Runs of '-' are kept, as the header promises. */
    CHECK_INT(names_sanitize_label("a__b", out, sizeof(out)), 4);
    CHECK_STR(out, "a--b");
    CHECK_INT(names_sanitize_label("0123", out, sizeof(out)), 4);
    CHECK_STR(out, "0123");
}

TEST(sanitize_label_edges)
{
    char out[64];
    CHECK_INT(names_sanitize_label("--_pg_--", out, sizeof(out)), 2);
    CHECK_STR(out, "pg");
    CHECK_INT(names_sanitize_label("-", out, sizeof(out)), -EINVAL);
    CHECK_INT(names_sanitize_label("", out, sizeof(out)), -EINVAL);
    CHECK_INT(names_sanitize_label("___...", out, sizeof(out)), -EINVAL);
    CHECK_INT(names_sanitize_label("\xc3\xa9\xc3\xa9", out, sizeof(out)), -EINVAL);
    CHECK_INT(names_sanitize_label(NULL, out, sizeof(out)), -EINVAL);
    /* One '-' per UTF-8 character, not per byte. */
    CHECK_INT(names_sanitize_label("na\xc3\xafve", out, sizeof(out)), 5);
    CHECK_STR(out, "na-ve");
    CHECK_INT(names_sanitize_label("caf\xc3\xa9", out, sizeof(out)), 3);
    CHECK_STR(out, "caf");
    CHECK_INT(names_sanitize_label("\xe2\x82\xac"
                                   "db",
                                   out, sizeof(out)),
              2); /* euro sign */
    CHECK_STR(out, "db");
    CHECK_INT(names_sanitize_label("a\xf0\x9f\x90\xb3z", out, sizeof(out)), 3); /* whale */
    CHECK_STR(out, "a-z");
    /* A stray continuation byte is still one invalid character. */
    CHECK_INT(names_sanitize_label("a\x80z", out, sizeof(out)), 3);
    CHECK_STR(out, "a-z");
    /* Bytes >= 0x80 are never letters, whatever the locale. */
    CHECK_INT(names_sanitize_label("A\xc4Z", out, sizeof(out)), 3);
    CHECK_STR(out, "a-z");
}

TEST(sanitize_label_cut)
{
    char in[200], out[64];
    memset(in, 'a', 100);
    in[100] = '\0';
    CHECK_INT(names_sanitize_label(in, out, sizeof(out)), 63);
    CHECK_INT(strlen(out), 63);
    /* Exactly 63 stays whole. */
    in[63] = '\0';
    CHECK_INT(names_sanitize_label(in, out, sizeof(out)), 63);
    /* The cut lands on '-': re-trimmed. */
    memset(in, 'a', 62);
    memcpy(in + 62, "__bbbb", 7);
    CHECK_INT(names_sanitize_label(in, out, sizeof(out)), 62);
    CHECK(out[61] == 'a');
    /* Leading junk does not count towards the 63 bytes. */
    memset(in, '_', 50);
    memset(in + 50, 'x', 63);
    in[113] = '\0';
    CHECK_INT(names_sanitize_label(in, out, sizeof(out)), 63);
    CHECK(out[0] == 'x' && out[62] == 'x');
    /* A small buffer cuts shorter but never overflows. */
    char small[4];
    CHECK_INT(names_sanitize_label("abcdef", small, sizeof(small)), 3);
    CHECK_STR(small, "abc");
    CHECK_INT(names_sanitize_label("abcdef", small, 0), -EINVAL);
}

TEST(sanitize_name)
{
    char out[NAMES_NAME_MAX + 1];
    CHECK_INT(names_sanitize_name("B.C", out, sizeof(out)), 3);
    CHECK_STR(out, "b.c");
    CHECK_INT(names_sanitize_name(".a..b_x.", out, sizeof(out)), 5);
    CHECK_STR(out, "a.b-x");
    CHECK_INT(names_sanitize_name("a.__.b", out, sizeof(out)), 3);
    CHECK_STR(out, "a.b");
    CHECK_INT(names_sanitize_name("...", out, sizeof(out)), -EINVAL);
    CHECK_INT(names_sanitize_name("", out, sizeof(out)), -EINVAL);
    CHECK_INT(names_sanitize_name(NULL, out, sizeof(out)), -EINVAL);
    char small[4];
    CHECK_INT(names_sanitize_name("ab.cd", small, sizeof(small)), -ENOSPC);

    /* 4 labels of 63 + 3 dots = 255 > 253; 3 labels of 63 + one of 61 = 253. */
    char in[400];
    char lab[64];
    memset(lab, 'x', 63);
    lab[63] = '\0';
    snprintf(in, sizeof(in), "%s.%s.%s.%s", lab, lab, lab, lab);
    CHECK_INT(names_sanitize_name(in, out, sizeof(out)), -EINVAL);
    lab[61] = '\0';
    char lab63[64];
    memset(lab63, 'y', 63);
    lab63[63] = '\0';
    snprintf(in, sizeof(in), "%s.%s.%s.%s", lab63, lab63, lab63, lab);
    CHECK_INT(names_sanitize_name(in, out, sizeof(out)), 253);
    CHECK(valid_name(out));
    /* A label over 63 bytes is cut, not rejected. */
    char longlab[100];
    memset(longlab, 'z', 99);
    longlab[99] = '\0';
    snprintf(in, sizeof(in), "%s.q", longlab);
    CHECK_INT(names_sanitize_name(in, out, sizeof(out)), 65);
}

TEST(in_domain)
{
    CHECK(names_in_domain("pg.loop.test", "loop.test"));
    CHECK(names_in_domain("PG.Loop.Test", "loop.test"));
    CHECK(names_in_domain("pg.loop.test.", "loop.test"));
    CHECK(names_in_domain("pg.loop.test", "loop.test."));
    CHECK(names_in_domain("loop.test", "loop.test"));
    CHECK(names_in_domain("a.b.loop.test", "loop.test"));
    CHECK(!names_in_domain("pgloop.test", "loop.test"));
    CHECK(!names_in_domain("loop.test.com", "loop.test"));
    CHECK(!names_in_domain("test", "loop.test"));
    CHECK(!names_in_domain("", "loop.test"));
    CHECK(!names_in_domain(NULL, "loop.test"));
    CHECK(!names_in_domain("pg.loop.test", NULL));
}

TEST(plain_container)
{
    container *c = mk("pg", NULL);
    names_result r;
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "pg.loop.test");
    CHECK(r.service_alias == NULL);
    CHECK(r.project == NULL);
    CHECK(r.service == NULL);
    CHECK_INT(r.replica, 0);
    CHECK_STR(r.lease_key, "name:pg");
    CHECK(r.skipped == NULL);
    names_result_free(&r);
    CHECK(r.names == NULL && r.lease_key == NULL);
    names_result_free(&r); /* idempotent */
    container_free(c);

    c = mk("MyPG", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "mypg.loop.test");
    CHECK_STR(r.lease_key, "name:MyPG"); /* the container name as Docker knows it */
    names_result_free(&r);
    container_free(c);

    c = mk("my_pg", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "my-pg.loop.test");
    CHECK_STR(r.lease_key, "name:my_pg");
    names_result_free(&r);
    container_free(c);

    /* A leading '/' (Docker's raw form) is not part of the name. */
    c = mk("/redis", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "redis.loop.test");
    CHECK_STR(r.lease_key, "name:redis");
    names_result_free(&r);
    container_free(c);

    /* Another domain, given with a stray trailing dot and capitals. */
    c = mk("pg", NULL);
    CHECK_INT(names_derive(c, "Docker.Internal.", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "pg.docker.internal");
    names_result_free(&r);
    container_free(c);
}

TEST(no_valid_name)
{
    container *c = mk("___", NULL);
    names_result r;
    CHECK_INT(names_derive(c, "loop.test", &r), -EINVAL);
    CHECK_INT(r.nnames, 0);
    CHECK_STR(r.skipped, "no valid DNS name");
    CHECK_STR(r.lease_key, "name:___");
    names_result_free(&r);
    container_free(c);

    /* No name at all: the lease falls back to the id. */
    c = mk(NULL, NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), -EINVAL);
    CHECK_STR(r.skipped, "no valid DNS name");
    CHECK_STR(r.lease_key, "id:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    names_result_free(&r);
    container_free(c);

    /* But a loophole.names entry rescues it and becomes the primary. */
    c = mk("___", "loophole.names", "db", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "db.loop.test");
    CHECK(r.skipped == NULL);
    names_result_free(&r);
    container_free(c);

    CHECK_INT(names_derive(NULL, "loop.test", &r), -EINVAL);
    CHECK(r.skipped != NULL);
    CHECK_INT(r.nnames, 0);
    names_result_free(&r);
    CHECK_INT(names_derive(c, "loop.test", NULL), -EINVAL);
}

TEST(compose_replicas)
{
    for (int n = 1; n <= 3; n++) {
        char num[8], want[64], cname[64], lease[64];
        snprintf(num, sizeof(num), "%d", n);
        container *c = mk_compose("myapp", "web", num);
        names_result r;
        CHECK_INT(names_derive(c, "loop.test", &r), 0);
        REQUIRE(r.nnames == 2);
        snprintf(want, sizeof(want), "web-%d.myapp.loop.test", n);
        CHECK_STR(r.names[0], want);
        snprintf(cname, sizeof(cname), "myapp-web-%d.loop.test", n);
        CHECK_STR(r.names[1], cname);
        CHECK_STR(r.service_alias, "web.myapp.loop.test");
        CHECK_STR(r.project, "myapp");
        CHECK_STR(r.service, "web");
        CHECK_INT(r.replica, n);
        snprintf(lease, sizeof(lease), "compose:myapp/web/%d", n);
        CHECK_STR(r.lease_key, lease);
        CHECK(r.skipped == NULL);
        CHECK(all_valid(&r));
        names_result_free(&r);
        container_free(c);
    }
}

TEST(compose_number)
{
    names_result r;
    /* Missing container-number: replica 1. */
    container *c = mk_compose("myapp", "db", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames >= 1);
    CHECK_STR(r.names[0], "db-1.myapp.loop.test");
    CHECK_INT(r.replica, 1);
    CHECK_STR(r.lease_key, "compose:myapp/db/1");
    names_result_free(&r);
    container_free(c);

    /* Garbage, zero and huge numbers are treated as missing; padding and
     * whitespace are not garbage. */
    static const struct {
        const char *in;
        int want;
    } cases[] = {
        {"abc", 1}, {"0", 1},   {"-2", 1},   {"", 1},           {"99999999999999999999", 1},
        {"2x", 1},  {" 7 ", 7}, {"012", 12}, {"999999", 999999}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        c = mk_compose("p", "s", cases[i].in);
        CHECK_INT(names_derive(c, "loop.test", &r), 0);
        CHECK_INT(r.replica, cases[i].want);
        CHECK(all_valid(&r));
        names_result_free(&r);
        container_free(c);
    }
}

TEST(compose_sanitised)
{
    names_result r;
    /* Compose's own container name uses '_' in old versions. */
    container *c =
        mk("my_app_web_1", "com.docker.compose.project", "my_app", "com.docker.compose.service",
           "Web.Front", "com.docker.compose.container-number", "1", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 2);
    CHECK_STR(r.names[0], "web-front-1.my-app.loop.test");
    CHECK_STR(r.names[1], "my-app-web-1.loop.test");
    CHECK_STR(r.service_alias, "web-front.my-app.loop.test");
    CHECK_STR(r.project, "my_app");    /* as given */
    CHECK_STR(r.service, "Web.Front"); /* as given */
    CHECK_STR(r.lease_key, "compose:my-app/web-front/1");
    names_result_free(&r);
    container_free(c);

    /* myapp_web_1 and myapp-web-1 give the same container-name entry, which
     * is not listed twice. */
    c = mk("myapp_web_1", "com.docker.compose.project", "myapp", "com.docker.compose.service",
           "web", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 2);
    CHECK_STR(r.names[1], "myapp-web-1.loop.test");
    names_result_free(&r);
    container_free(c);

    /* A service with no valid character: not compose, just the name. */
    c = mk("odd", "com.docker.compose.project", "p", "com.docker.compose.service", "__", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "odd.loop.test");
    CHECK(r.service_alias == NULL && r.project == NULL && r.service == NULL);
    CHECK_INT(r.replica, 0);
    CHECK_STR(r.lease_key, "name:odd");
    names_result_free(&r);
    container_free(c);

    /* Only a project label: not compose. */
    c = mk("solo", "com.docker.compose.project", "p", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    CHECK(r.service_alias == NULL && r.project == NULL);
    CHECK_STR(r.lease_key, "name:solo");
    names_result_free(&r);
    container_free(c);
}

TEST(compose_long_service)
{
    /* A 63-byte service: "<service>-<n>" must still be one label <= 63, with
     * the replica number intact so replicas stay distinct. */
    char svc[64];
    memset(svc, 's', 63);
    svc[63] = '\0';
    svc[60] = '_'; /* the cut lands next to it: must be re-trimmed */
    names_result r1, r2;
    container *c1 = mk("x1", "com.docker.compose.project", "p", "com.docker.compose.service", svc,
                       "com.docker.compose.container-number", "1", NULL);
    container *c2 = mk("x12", "com.docker.compose.project", "p", "com.docker.compose.service", svc,
                       "com.docker.compose.container-number", "12", NULL);
    CHECK_INT(names_derive(c1, "loop.test", &r1), 0);
    CHECK_INT(names_derive(c2, "loop.test", &r2), 0);
    REQUIRE(r1.nnames >= 1 && r2.nnames >= 1);
    CHECK(all_valid(&r1));
    CHECK(all_valid(&r2));
    CHECK(strcmp(r1.names[0], r2.names[0]) != 0);
    char want1[128], want2[128];
    snprintf(want1, sizeof(want1), "%.60s-1.p.loop.test", svc); /* 60 s + "-1" */
    snprintf(want2, sizeof(want2), "%.60s-12.p.loop.test", svc);
    CHECK_STR(r1.names[0], want1);
    CHECK_STR(r2.names[0], want2);
    /* The alias carries the (sanitised, cut) service as one label. */
    REQUIRE(r1.service_alias != NULL);
    CHECK_STR(r1.service_alias, r2.service_alias);
    names_result_free(&r1);
    names_result_free(&r2);
    container_free(c1);
    container_free(c2);
}

TEST(oneoff)
{
    names_result r;
    container *c = mk("myapp-web-run-3f2a", "com.docker.compose.project", "myapp",
                      "com.docker.compose.service", "web", "com.docker.compose.container-number",
                      "1", "com.docker.compose.oneoff", "True", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_STR(r.names[0], "myapp-web-run-3f2a.loop.test");
    CHECK(r.service_alias == NULL);
    CHECK(r.project == NULL && r.service == NULL);
    CHECK_INT(r.replica, 0);
    CHECK_STR(r.lease_key, "name:myapp-web-run-3f2a");
    names_result_free(&r);
    container_free(c);

    /* oneoff=False is an ordinary replica. */
    c = mk("myapp-web-1", "com.docker.compose.project", "myapp", "com.docker.compose.service",
           "web", "com.docker.compose.oneoff", "False", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 2);
    CHECK_STR(r.names[0], "web-1.myapp.loop.test");
    CHECK_STR(r.lease_key, "compose:myapp/web/1");
    names_result_free(&r);
    container_free(c);
}

TEST(enable_label)
{
    static const char *const off[] = {"false", "FALSE", "False", "0",      "no",
                                      "No",    "off",   "OFF",   " false "};
    for (size_t i = 0; i < ARRAY_SIZE(off); i++) {
        names_result r;
        container *c = mk("pg", "loophole.enable", off[i], "loophole.names", "extra", NULL);
        CHECK_INT(names_derive(c, "loop.test", &r), -EINVAL);
        CHECK_INT(r.nnames, 0);
        CHECK(r.names == NULL);
        REQUIRE(r.skipped != NULL);
        CHECK(strncmp(r.skipped, "disabled by label loophole.enable=", 34) == 0);
        CHECK_STR(r.lease_key, "name:pg");
        names_result_free(&r);
        container_free(c);
    }
    names_result r;
    container *c = mk("pg", "loophole.enable", "false", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), -EINVAL);
    CHECK_STR(r.skipped, "disabled by label loophole.enable=false");
    names_result_free(&r);
    container_free(c);

    /* A disabled compose replica still says which project and lease it is. */
    c = mk("myapp-web-2", "com.docker.compose.project", "myapp", "com.docker.compose.service",
           "web", "com.docker.compose.container-number", "2", "loophole.enable", "no", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), -EINVAL);
    CHECK_STR(r.skipped, "disabled by label loophole.enable=no");
    CHECK(r.service_alias == NULL);
    CHECK_STR(r.project, "myapp");
    CHECK_INT(r.replica, 2);
    CHECK_STR(r.lease_key, "compose:myapp/web/2");
    names_result_free(&r);
    container_free(c);

    static const char *const on[] = {"true", "1", "yes", "", "garbage", "falsey"};
    for (size_t i = 0; i < ARRAY_SIZE(on); i++) {
        c = mk("pg", "loophole.enable", on[i], NULL);
        CHECK_INT(names_derive(c, "loop.test", &r), 0);
        CHECK(r.skipped == NULL);
        CHECK_INT(r.nnames, 1);
        names_result_free(&r);
        container_free(c);
    }
}

TEST(names_label)
{
    names_result r;
    container *c = mk("pg", "loophole.names", "a,b.c", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 3);
    CHECK_STR(r.names[0], "pg.loop.test");
    CHECK_STR(r.names[1], "a.loop.test");
    CHECK_STR(r.names[2], "b.c.loop.test");
    names_result_free(&r);
    container_free(c);

    /* Spaces, empty entries, duplicates (also of the primary), the domain
     * suffix in any case, invalid characters and an all-invalid entry. */
    c = mk("pg", "loophole.names",
           "  a , ,a,,pg, B.C.LOOP.TEST , d.loop.test., My_DB , ___ , x.y. , loop.test", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 7);
    CHECK_STR(r.names[0], "pg.loop.test");
    CHECK_STR(r.names[1], "a.loop.test");
    CHECK_STR(r.names[2], "b.c.loop.test");
    CHECK_STR(r.names[3], "d.loop.test");
    CHECK_STR(r.names[4], "my-db.loop.test");
    CHECK_STR(r.names[5], "x.y.loop.test");
    /* The bare domain is not taken as already suffixed: no container may
     * claim the zone apex. */
    CHECK_STR(r.names[6], "loop.test.loop.test");
    CHECK(all_valid(&r));
    names_result_free(&r);
    container_free(c);

    /* An entry naming the service alias is left to the alias. */
    c = mk("myapp-web-1", "com.docker.compose.project", "myapp", "com.docker.compose.service",
           "web", "loophole.names", "web.myapp,api", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 3);
    CHECK_STR(r.names[0], "web-1.myapp.loop.test");
    CHECK_STR(r.names[1], "myapp-web-1.loop.test");
    CHECK_STR(r.names[2], "api.loop.test");
    CHECK_STR(r.service_alias, "web.myapp.loop.test");
    CHECK(!has_name(&r, "web.myapp.loop.test"));
    names_result_free(&r);
    container_free(c);

    /* Only commas and blanks. */
    c = mk("pg", "loophole.names", " , ,, ", NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    CHECK_INT(r.nnames, 1);
    names_result_free(&r);
    container_free(c);
}

TEST(names_label_cap)
{
    buf b = {0};
    for (int i = 0; i < NAMES_EXTRA_MAX + 10; i++)
        buf_appendf(&b, "n%d,", i);
    container *c = mk("pg", "loophole.names", b.data, NULL);
    buf_free(&b);
    names_result r;
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    CHECK_INT(r.nnames, 1 + NAMES_EXTRA_MAX);
    CHECK(has_name(&r, "n0.loop.test"));
    CHECK(!has_name(&r, "n70.loop.test"));
    names_result_free(&r);
    container_free(c);
}

TEST(long_names)
{
    /* An extra name that fits alone but not with the domain is dropped; the
     * rest survive. */
    char lab63[64], entry[300];
    memset(lab63, 'q', 63);
    lab63[63] = '\0';
    snprintf(entry, sizeof(entry), "%s.%s.%s.%.52s", lab63, lab63, lab63, lab63); /* 244 */
    buf v = {0};
    buf_appendf(&v, "ok,%s", entry);
    container *c = mk("pg", "loophole.names", v.data, NULL);
    buf_free(&v);
    names_result r;
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 2);
    CHECK_STR(r.names[1], "ok.loop.test");
    names_result_free(&r);
    container_free(c);

    /* Exactly 253 with the domain is kept: 63.63.63.51 + ".loop.test" (10). */
    snprintf(entry, sizeof(entry), "%s.%s.%s.%.51s", lab63, lab63, lab63, lab63);
    c = mk("pg", "loophole.names", entry, NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 2);
    CHECK_INT(strlen(r.names[1]), 253);
    CHECK(all_valid(&r));
    names_result_free(&r);
    container_free(c);

    /* A domain so long that every name overflows: skipped. */
    char domain[260];
    snprintf(domain, sizeof(domain), "%s.%s.%s.%.55s", lab63, lab63, lab63, lab63); /* 247 */
    c = mk("postgres", NULL);
    CHECK_INT(names_derive(c, domain, &r), -EINVAL);
    CHECK_STR(r.skipped, "no valid DNS name");
    CHECK_INT(r.nnames, 0);
    names_result_free(&r);
    container_free(c);

    /* Compose under that domain: the short container name fits, the compose
     * name and alias do not. */
    c = mk("ab", "com.docker.compose.project", "myapp", "com.docker.compose.service", "web", NULL);
    snprintf(domain, sizeof(domain), "%s.%s.%s.%.59s", lab63, lab63, lab63, lab63); /* 251 */
    CHECK_INT(names_derive(c, domain, &r), -EINVAL); /* "ab." + 251 = 254 */
    names_result_free(&r);
    free(c->name);
    c->name = xstrdup("a");
    CHECK_INT(names_derive(c, domain, &r), 0); /* "a." + 251 = 253 */
    REQUIRE(r.nnames == 1);
    CHECK_INT(strlen(r.names[0]), 253);
    CHECK(r.service_alias == NULL);
    CHECK_STR(r.lease_key, "compose:myapp/web/1");
    names_result_free(&r);
    container_free(c);

    /* A 200-byte container name is cut to one 63-byte label. */
    char longname[201];
    memset(longname, 'L', 200);
    longname[200] = '\0';
    c = mk(longname, NULL);
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    REQUIRE(r.nnames == 1);
    CHECK_INT(strlen(r.names[0]), 63 + 10);
    CHECK(all_valid(&r));
    names_result_free(&r);
    container_free(c);
}

/* Hostile bytes everywhere: whatever comes out must be valid and bounded. */
TEST(garbage)
{
    unsigned int seed = 12345;
    for (int iter = 0; iter < 2000; iter++) {
        char s[5][80];
        for (int k = 0; k < 5; k++) {
            size_t n = (seed = seed * 1103515245u + 12345u) >> 16 & 63;
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                int b = (int)(seed >> 16 & 255);
                s[k][i] = (char)(b == 0 ? '.' : b);
            }
            s[k][n] = '\0';
        }
        container *c =
            mk(s[0], "com.docker.compose.project", s[1], "com.docker.compose.service", s[2],
               "com.docker.compose.container-number", s[3], "loophole.names", s[4], NULL);
        names_result r;
        int rc = names_derive(c, "loop.test", &r);
        CHECK(rc == 0 ? r.skipped == NULL && r.nnames > 0 : r.skipped != NULL && r.nnames == 0);
        CHECK(r.lease_key != NULL);
        CHECK(all_valid(&r));
        for (size_t i = 0; i < r.nnames; i++)
            CHECK(names_in_domain(r.names[i], "loop.test"));
        names_result_free(&r);
        container_free(c);
    }
}

/* A 63-byte service ending in "-3" is cut, for replica 3, to exactly its own
 * name: that replica is the name, and the alias is not also handed out (it
 * would be one name in names[] and as the alias). */
TEST(cut_service_is_its_replica)
{
    char svc[64];
    memset(svc, 's', 61);
    memcpy(svc + 61, "-3", 3);
    container *c = mk_compose("p", svc, "3");
    names_result r;
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    char want[128];
    snprintf(want, sizeof(want), "%s.p.loop.test", svc);
    CHECK(has_name(&r, want));
    CHECK(r.service_alias == NULL);
    names_result_free(&r);
    container_free(c);
    /* Replica 2 of the same service keeps the alias. */
    c = mk_compose("p", svc, "2");
    CHECK_INT(names_derive(c, "loop.test", &r), 0);
    CHECK_STR(r.service_alias, want);
    CHECK(!has_name(&r, want));
    names_result_free(&r);
    container_free(c);
}

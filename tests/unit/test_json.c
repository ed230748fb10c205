/* The bounded JSON parser, its getters and the generator helpers; the
 * hostile documents every parse site in the tree must survive. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test.h"
#include "util.h"

static int parse(const char *s, int depth, yajl_val *v, char *err, size_t errlen)
{
    return json_parse(s, strlen(s), 1 << 20, depth, v, err, errlen);
}

TEST(parse_values)
{
    yajl_val v;
    char err[128];
    REQUIRE(parse("{\"s\":\"x\",\"n\":-42,\"d\":1.5,\"big\":99999999999999999999,\"t\":true,"
                  "\"f\":false,\"z\":null,\"a\":[1,[2],{}],\"o\":{\"k\":\"v\"},\"s\":\"dup\"}",
                  8, &v, err, sizeof(err)) == 0);
    CHECK(YAJL_IS_OBJECT(v));
    CHECK_INT(json_len(v), 10); /* duplicates are kept, in order */
    CHECK_STR(json_str(v, "s", NULL), "x");
    CHECK_STR(json_key_at(v, 9), "s");
    CHECK_STR(json_str(json_at(v, 9), NULL), "dup");
    long long i = 0;
    CHECK_INT(json_int(v, &i, "n", NULL), 0);
    CHECK_INT(i, -42);
    CHECK_INT(json_int(v, &i, "d", NULL), -EINVAL);
    CHECK_INT(json_int(v, &i, "big", NULL), -EINVAL);
    CHECK_INT(json_int(v, &i, "missing", NULL), -ENOENT);
    CHECK_INT(json_int(v, &i, "z", NULL), -ENOENT);
    CHECK(YAJL_IS_DOUBLE(json_get(v, "d", NULL)));
    CHECK(YAJL_GET_DOUBLE(json_get(v, "d", NULL)) == 1.5);
    CHECK_STR(YAJL_GET_NUMBER(json_get(v, "big", NULL)), "99999999999999999999");
    bool b = false;
    CHECK_INT(json_bool(v, &b, "t", NULL), 0);
    CHECK(b);
    CHECK_INT(json_bool(v, &b, "f", NULL), 0);
    CHECK(!b);
    CHECK_INT(json_bool(v, &b, "s", NULL), -EINVAL);
    CHECK_INT(json_bool(v, &b, "o", "nope", NULL), -ENOENT);
    CHECK(YAJL_IS_NULL(json_get(v, "z", NULL)));
    yajl_val a = json_get(v, "a", NULL);
    CHECK(YAJL_IS_ARRAY(a));
    CHECK_INT(json_len(a), 3);
    CHECK(YAJL_IS_ARRAY(json_at(a, 1)));
    CHECK(YAJL_IS_OBJECT(json_at(a, 2)));
    CHECK(json_at(a, 3) == NULL);
    CHECK(json_key_at(a, 0) == NULL);
    CHECK_STR(json_str(v, "o", "k", NULL), "v");
    CHECK(json_str(v, "o", "k", "deeper", NULL) == NULL);
    CHECK(json_str(v, "n", NULL) == NULL);
    const char *s = "unset";
    CHECK_INT(json_opt_str(v, "s", &s), 0);
    CHECK_STR(s, "x");
    CHECK_INT(json_opt_str(v, "z", &s), 0);
    CHECK(s == NULL);
    CHECK_INT(json_opt_str(v, "missing", &s), 0);
    CHECK_INT(json_opt_str(v, "n", &s), -EINVAL);
    CHECK_INT(json_opt_str(a, "n", &s), -EINVAL);
    json_free(v);

    /* Getters take NULL and scalars without complaint. */
    CHECK(json_get(NULL, "a", NULL) == NULL);
    CHECK(json_member(NULL, "a") == NULL);
    CHECK_INT(json_len(NULL), 0);
    CHECK(json_at(NULL, 0) == NULL);

    /* Any value may be the top level. */
    REQUIRE(parse("\"top\"", 1, &v, err, sizeof(err)) == 0);
    CHECK_STR(json_str(v, NULL), "top");
    json_free(v);
    REQUIRE(parse(" 7 ", 1, &v, err, sizeof(err)) == 0);
    CHECK(YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) == 7);
    json_free(v);
    /* Escapes and UTF-8 decode. */
    REQUIRE(parse("[\"a\\\"b\\u00e9\\n\"]", 2, &v, err, sizeof(err)) == 0);
    CHECK_STR(json_str(json_at(v, 0), NULL), "a\"b\xc3\xa9\n");
    json_free(v);
}

TEST(parse_refusals)
{
    yajl_val v = (yajl_val)1;
    char err[128];
    static const char *const bad[] = {
        "",
        "   ",
        "{",
        "[1,]",
        "{\"a\" 1}",
        "nul",
        "[1] [2]",
        "/* c */ [1]",
        "[1] // c",
        "{\"a\":1}x",
        "'a'",
        "[\"\xff\"]",
        "[01]",
        "{1:2}",
        "[\"\\u0000\"]",
        "{\"a\\u0000b\":1}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        int rc = parse(bad[i], 8, &v, err, sizeof(err));
        if (rc != -EINVAL)
            fprintf(stderr, "  case %zu (%s): rc=%d\n", i, bad[i], rc);
        CHECK_INT(rc, -EINVAL);
        CHECK(v == NULL);
        CHECK(err[0] != '\0');
        CHECK(strchr(err, '\n') == NULL);
    }
    /* yajl's reason, first line only, without its trailing " .". */
    CHECK_INT(parse("garbage", 8, &v, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "lexical error: invalid char in json text");
    CHECK_INT(parse("[\"\\u0000\"]", 8, &v, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "u0000") != NULL);
    /* err may be NULL. */
    CHECK_INT(parse("{", 8, &v, NULL, 0), -EINVAL);

    /* A raw NUL cannot cut the document short into something valid. */
    static const char nul[] = "{\"a\":1}\0garbage";
    CHECK_INT(json_parse(nul, sizeof(nul) - 1, 100, 8, &v, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "NUL") != NULL);
    /* The size cap, checked before anything is parsed. */
    CHECK_INT(json_parse("[1, 2]", 6, 5, 8, &v, err, sizeof(err)), -EFBIG);
    CHECK(strstr(err, "too large") != NULL);
    CHECK_INT(json_parse("[1, 2]", 6, 6, 8, &v, err, sizeof(err)), 0);
    json_free(v);
    /* Text need not be terminated: only len bytes count. */
    CHECK_INT(json_parse("[1]]]]", 3, 100, 8, &v, err, sizeof(err)), 0);
    json_free(v);
}

TEST(depth)
{
    yajl_val v;
    char err[128];
    /* Exactly at the limit parses; one more level is refused. */
    CHECK_INT(parse("[[[]]]", 3, &v, err, sizeof(err)), 0);
    json_free(v);
    CHECK_INT(parse("[[[[]]]]", 3, &v, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "nested deeper than 3 levels");
    CHECK_INT(parse("{\"a\":{\"b\":[{}]}}", 4, &v, err, sizeof(err)), 0);
    json_free(v);
    CHECK_INT(parse("{\"a\":{\"b\":[{\"c\":[]}]}}", 4, &v, err, sizeof(err)), -EINVAL);
    /* Brackets inside strings are characters, not levels. */
    CHECK_INT(parse("[\"[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{\"]", 1, &v, err, sizeof(err)), 0);
    json_free(v);

    /* The known crash: comment-wrapped, 400,000 deep. Refused because of the
     * comment and, without it, because of the depth; either way promptly and
     * without building a deep tree. */
    size_t len;
    char *deep = hostile_deep_doc(400000, &len);
    CHECK_INT(json_parse(deep, len, 16u << 20, JSON_MAX_DEPTH, &v, err, sizeof(err)), -EINVAL);
    CHECK(v == NULL);
    CHECK(strstr(err, "comment") != NULL);
    CHECK_INT(json_parse(deep + 5, len - 10, 16u << 20, JSON_MAX_DEPTH, &v, err, sizeof(err)),
              -EINVAL);
    CHECK_STR(err, "nested deeper than 64 levels");
    /* Objects too, and an unclosed document. */
    for (size_t i = 0; i < 400000; i++)
        deep[5 + i] = i % 2 ? '[' : '{';
    CHECK_INT(json_parse(deep + 5, 400000, 16u << 20, JSON_MAX_DEPTH, &v, err, sizeof(err)),
              -EINVAL);
    free(deep);
}

TEST(pretty)
{
    buf out = {0};
    CHECK_INT(json_pretty("{\"a\":[1,\"x\"],\"b\":null}", 22, 1 << 20, 8, &out), 0);
    REQUIRE(out.data != NULL);
    buf_append(&out, "", 1);
    CHECK_STR(out.data, "{\n  \"a\": [\n    1,\n    \"x\"\n  ],\n  \"b\": null\n}\n");
    buf_free(&out);
    size_t len;
    char *deep = hostile_deep_doc(400000, &len);
    CHECK_INT(json_pretty(deep, len, 16u << 20, JSON_MAX_DEPTH, &out), -EINVAL);
    CHECK_INT(json_pretty(deep + 5, len - 10, 16u << 20, JSON_MAX_DEPTH, &out), -EINVAL);
    CHECK(out.len == 0);
    free(deep);
    CHECK_INT(json_pretty("[1]\0", 4, 100, 8, &out), -EINVAL);
    CHECK_INT(json_pretty("[1]", 3, 2, 8, &out), -EFBIG);
    CHECK_INT(json_pretty("", 0, 100, 8, &out), -EINVAL);
    CHECK(out.len == 0);
}

TEST(gen)
{
    yajl_gen g = json_gen_new(false);
    REQUIRE(g != NULL);
    int rc = 0;
    rc |= yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -EINVAL;
    rc |= json_kv_str(g, "name", "pg");
    rc |= json_kv_str(g, "ip", NULL);
    rc |= json_kv_int(g, "port", 5432);
    rc |= json_kv_bool(g, "kafka", true);
    rc |= json_kv_null(g, "problem");
    rc |= json_gen_str(g, "list");
    rc |= yajl_gen_array_open(g) == yajl_gen_status_ok ? 0 : -EINVAL;
    rc |= json_gen_str(g, "a");
    rc |= yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -EINVAL;
    rc |= yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -EINVAL;
    CHECK_INT(rc, 0);
    char *s;
    size_t len;
    CHECK_INT(json_gen_take(g, true, &s, &len), 0);
    CHECK_STR(s, "{\"name\":\"pg\",\"ip\":null,\"port\":5432,\"kafka\":true,\"problem\":null,"
                 "\"list\":[\"a\"]}\n");
    CHECK_INT(len, strlen(s));
    /* What we generate parses back. */
    yajl_val v;
    CHECK_INT(json_parse(s, len, 1 << 20, 4, &v, NULL, 0), 0);
    CHECK_STR(json_str(v, "name", NULL), "pg");
    json_free(v);
    free(s);
    yajl_gen_free(g);

    /* Invalid UTF-8 (say from a container name) is refused, not emitted. */
    g = json_gen_new(false);
    yajl_gen_map_open(g);
    CHECK_INT(json_kv_str(g, NULL, "x"), -EINVAL); /* keys must be strings */
    CHECK_INT(json_kv_str(g, "name", "bad\xff"), -EINVAL);
    yajl_gen_free(g);
}

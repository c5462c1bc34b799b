/*
 * gw_encoding_test.c -- Accept-Encoding negotiation (a table of the RFC
 * 9110 cases, then random headers checked against properties that must
 * hold whatever the input) and gzip bodies (inflated back by zlib).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "gw_encoding.h"

static bool
enc_gzip(const char *value)
{
    gw_accept a;

    gw_accept_init(&a);
    gw_accept_add(&a, value);
    return gw_accept_gzip(&a);
}

static void
test_accept_table(void **state)
{
    static const struct {
        const char *header; /* NULL: no header at all */
        bool gzip;
    } cases[] = {
        {NULL, false},
        {"", false},
        {"   ", false},
        {",,, ,", false},
        {"identity", false},
        {"gzip", true},
        {"GZip", true},
        {"x-gzip", true},
        /* Python requests, curl --compressed, browsers. */
        {"gzip, deflate", true},
        {"gzip, deflate, br", true},
        {"gzip, deflate, br, zstd", true},
        {"deflate", false},
        {"br", false},
        {"deflate, br;q=1.0", false},
        {"gzip;q=0", false},
        {"gzip;q=0.0", false},
        {"gzip;q=0.000", false},
        {"gzip; q=0", false},
        {"gzip ;q=0", false},
        {"gzip;Q=0", false},
        {"gzip;q=0.001", true},
        {"gzip;q=1", true},
        {"gzip;q=1.", true},
        {"gzip;q=1.000", true},
        {"gzip;q=0.5", true},
        /* Invalid qvalues: the header is not understood, plain. */
        {"gzip;q=1.5", false},
        {"gzip;q=2", false},
        {"gzip;q=0.0001", false},
        {"gzip;q=", false},
        {"gzip;q=abc", false},
        {"gzip;q=\"1\"", false},
        {"gzip;q=-1", false},
        {"gzip;q=.5", false},
        {"gzip q=1", false},
        {"gzip;", false},
        {";q=1", false},
        {"gzip,,", true},
        {",gzip", true},
        {"*", true},
        {"*;q=0", false},
        {"*;q=0.3", true},
        {"*, gzip;q=0", false},
        {"gzip;q=0, *", false},
        {"gzip, *;q=0", true},
        {"identity, gzip", true},
        {"identity;q=1, gzip;q=0.5", false},
        {"identity;q=0.5, gzip;q=0.5", true},
        {"identity;q=0.5, gzip;q=1", true},
        {"identity;q=0, gzip", true},
        /* Ranked against identity only when identity is ranked. */
        {"gzip;q=0.2", true},
        {"gzip;q=0.2, *;q=1", true},
        /* Named twice: the lowest q counts, a refusal wins. */
        {"gzip, gzip;q=0", false},
        {"gzip;q=0, gzip", false},
        {"x-gzip;q=0, gzip", false},
        /* Other parameters are skipped, with token or quoted values. */
        {"gzip;level=9", true},
        {"gzip;level=\"a, b;q=0\"", true},
        {"gzip;level=\"unterminated", false},
        {"gzip;level=\"a\\\"b\";q=0", false},
        {"gzip;level=", false},
        {"\tgzip\t;\tq=0.9\t,\tbr", true},
        {"gzip\r\n", false},
        {"gzipx", false},
        {"gzip/1", false},
        {"compress, gzip;q=0.1, identity;q=0.05", true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = enc_gzip(cases[i].header);

        if (got != cases[i].gzip)
            fail_msg("Accept-Encoding \"%s\": %s, expected %s",
                     cases[i].header != NULL ? cases[i].header : "(none)",
                     got ? "gzip" : "plain", cases[i].gzip ? "gzip" : "plain");
    }
}

/* A list may span several header lines: they combine like one list. */
static void
test_accept_lines(void **state)
{
    gw_accept a;

    (void)state;
    gw_accept_init(&a);
    gw_accept_add(&a, "deflate");
    gw_accept_add(&a, "gzip");
    assert_true(gw_accept_gzip(&a));
    gw_accept_add(&a, "gzip;q=0");
    assert_false(gw_accept_gzip(&a));

    gw_accept_init(&a);
    gw_accept_add(&a, "gzip");
    gw_accept_add(&a, NULL);
    assert_true(gw_accept_gzip(&a));
    gw_accept_add(&a, "gzip;q=oops");
    assert_false(gw_accept_gzip(&a));
}

static void
test_compressible(void **state)
{
    (void)state;
    assert_true(gw_encoding_compressible("application/json"));
    assert_true(gw_encoding_compressible("Application/JSON; charset=utf-8"));
    assert_true(gw_encoding_compressible("text/plain; version=0.0.4"));
    assert_true(gw_encoding_compressible("text/html; charset=utf-8"));
    assert_true(gw_encoding_compressible("text/javascript; charset=utf-8"));
    assert_true(gw_encoding_compressible("image/svg+xml"));
    assert_true(gw_encoding_compressible("application/problem+json"));
    assert_false(gw_encoding_compressible("application/octet-stream"));
    assert_false(gw_encoding_compressible("image/png"));
    assert_false(gw_encoding_compressible("application/jsonx"));
    assert_false(gw_encoding_compressible("+json"));
    assert_false(gw_encoding_compressible(""));
    assert_false(gw_encoding_compressible(NULL));
}

/* ---- random headers ---- */

/* xorshift64*: reproducible from its seed (printed on failure). */
static uint64_t enc_rng_state;

static uint64_t
enc_rng(void)
{
    enc_rng_state ^= enc_rng_state >> 12;
    enc_rng_state ^= enc_rng_state << 25;
    enc_rng_state ^= enc_rng_state >> 27;
    return enc_rng_state * 2685821657736338717ULL;
}

/* A random header from the pieces the grammar is made of, plus any byte. */
static void
enc_random_header(char *buf, size_t cap)
{
    static const char *const pieces[] = {
        "gzip", "GZIP",  "x-gzip", "identity", "*",   "deflate", "br",
        ",",    ", ",    ";",      "; ",       "q=",  "Q=",      "q=0",
        "q=1",  "q=0.5", "0",      "1",        ".",   "000",     "9",
        " ",    "\t",    "\"",     "\\",       "=",   "level",   "a",
        "",     "gz",    "ip",     "1.000",    "0.0", "q=1.001", "q=0.0001"};
    size_t n = 0, parts = enc_rng() % 12;

    for (size_t i = 0; i < parts; i++) {
        const char *p;
        char byte[2];

        if (enc_rng() % 10 == 0) {
            /* Any byte but NUL (the header ends there). */
            byte[0] = (char)(1 + enc_rng() % 255);
            byte[1] = '\0';
            p = byte;
        } else {
            p = pieces[enc_rng() % (sizeof(pieces) / sizeof(pieces[0]))];
        }
        if (n + strlen(p) + 1 > cap)
            break;
        memcpy(buf + n, p, strlen(p));
        n += strlen(p);
    }
    buf[n] = '\0';
}

static bool
enc_names_gzip(const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        if (strncasecmp(p, "gzip", 4) == 0 || *p == '*')
            return true;
    return false;
}

/*
 * Properties, over 200,000 random headers (ASan/UBSan watch the parser):
 *  - the answer is the same when asked twice;
 *  - a header that names neither gzip nor "*" never gets gzip;
 *  - appending ", gzip;q=0" (a refusal) always gives plain;
 *  - a header that gets gzip still does with ", deflate" appended and when
 *    split into two header lines at an element boundary of its own.
 */
static void
test_accept_random(void **state)
{
    char header[160], longer[200];
    uint64_t seed = 0x5eed0f11ce5ULL;

    int n_gzip = 0, n_split = 0;

    (void)state;
    enc_rng_state = seed;
    for (int i = 0; i < 200000; i++) {
        bool gzip;

        enc_random_header(header, sizeof(header));
        gzip = enc_gzip(header);
        n_gzip += gzip;
        if (enc_gzip(header) != gzip)
            fail_msg("seed %llx #%d: \"%s\" not deterministic",
                     (unsigned long long)seed, i, header);
        if (gzip && !enc_names_gzip(header))
            fail_msg("seed %llx #%d: \"%s\" gets gzip without naming it",
                     (unsigned long long)seed, i, header);
        snprintf(longer, sizeof(longer), "%s, gzip;q=0", header);
        if (enc_gzip(longer))
            fail_msg("seed %llx #%d: \"%s\" gets gzip",
                     (unsigned long long)seed, i, longer);
        if (!gzip)
            continue;
        snprintf(longer, sizeof(longer), "%s, deflate", header);
        if (!enc_gzip(longer))
            fail_msg("seed %llx #%d: \"%s\" lost gzip",
                     (unsigned long long)seed, i, longer);
        /* Split after the first comma outside quotes, when the part
         * before it is a whole element list on its own. */
        {
            gw_accept a;
            const char *comma = strchr(header, ',');

            if (comma == NULL || memchr(header, '"', (size_t)(comma - header)))
                continue;
            snprintf(longer, sizeof(longer), "%.*s", (int)(comma - header),
                     header);
            gw_accept_init(&a);
            gw_accept_add(&a, longer);
            gw_accept_add(&a, comma + 1);
            if (!gw_accept_gzip(&a))
                fail_msg("seed %llx #%d: \"%s\" split in two lost gzip",
                         (unsigned long long)seed, i, header);
            n_split++;
        }
    }
    /* The generator reaches both answers and the split case often. */
    print_message("random headers: %d of 200000 get gzip, %d split\n", n_gzip,
                  n_split);
    assert_true(n_gzip > 2000 && n_gzip < 198000);
    assert_true(n_split > 200);
}

/* ---- gzip bodies ---- */

/* Inflates a gzip member of at most want bytes (one more is room to
 * notice a longer one); returns the bytes (malloc'd) and *len. */
static unsigned char *
enc_gunzip(const char *in, size_t in_len, size_t want, size_t *len)
{
    z_stream zs;
    size_t cap = want + 1;
    unsigned char *out = malloc(cap);
    int rv;

    assert_non_null(out);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    rv = inflate(&zs, Z_FINISH);
    if (rv != Z_STREAM_END)
        fail_msg("inflate: %d (%s)", rv, zs.msg != NULL ? zs.msg : "");
    /* One member, nothing after it. */
    assert_int_equal(zs.avail_in, 0);
    *len = zs.total_out;
    inflateEnd(&zs);
    return out;
}

static void
enc_roundtrip(const void *in, size_t len)
{
    char *gz;
    size_t gz_len, back_len;
    unsigned char *back;

    assert_int_equal(gw_gzip(in, len, &gz, &gz_len), 0);
    /* A gzip member: magic, deflate, then the data. */
    assert_true(gz_len >= 18);
    assert_int_equal((unsigned char)gz[0], 0x1f);
    assert_int_equal((unsigned char)gz[1], 0x8b);
    assert_int_equal(gz[2], 8);
    back = enc_gunzip(gz, gz_len, len, &back_len);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, in, len);
    free(back);
    free(gz);
}

static void
test_gzip_roundtrip(void **state)
{
    static const char json[] =
        "{\"acknowledgement\": {\"schema_version\": \"cavra.go-backend-pilot."
        "rollback-drill-acknowledgement-audit-delivery-recovery-escalation-"
        "ack.v1\", \"product\": \"CAVRA\"}, \"metadata\": {\"recovery_"
        "escalation_acknowledgement\": {\"schema_version\": \"cavra.go-"
        "backend-pilot.rollback-drill-acknowledgement-audit-delivery-"
        "recovery-escalation-ack.v1\", \"product\": \"CAVRA\"}}}";
    size_t sizes[] = {0, 1, 255, 256, 511, 512, 4096, 40000, 200000};
    char *gz;
    size_t gz_len;

    (void)state;
    enc_roundtrip(json, strlen(json));
    assert_int_equal(gw_gzip(json, strlen(json), &gz, &gz_len), 0);
    /* The repeated record is what gzip removes. */
    assert_true(gz_len < strlen(json) * 3 / 4);
    free(gz);
    enc_rng_state = 42;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *buf = malloc(sizes[i] > 0 ? sizes[i] : 1);

        assert_non_null(buf);
        /* Random bytes (incompressible) and a repeated text. */
        for (size_t j = 0; j < sizes[i]; j++)
            buf[j] = (unsigned char)enc_rng();
        enc_roundtrip(buf, sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            buf[j] = (unsigned char)json[j % strlen(json)];
        enc_roundtrip(buf, sizes[i]);
        free(buf);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_table),
        cmocka_unit_test(test_accept_lines),
        cmocka_unit_test(test_compressible),
        cmocka_unit_test(test_accept_random),
        cmocka_unit_test(test_gzip_roundtrip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

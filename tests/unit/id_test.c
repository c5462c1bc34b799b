/*
 * id_test.c -- unit tests for cv_id (SHA-256 hex and record ids).
 *
 * Expected digests were computed outside the code under test with
 * `printf '%s' '<text>' | sha256sum`. Run: ctest -L unit, or the binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cv_id.h"

/*
 * The canonical text of the test material, and its SHA-256. "café" is
 * written as UTF-8 bytes: the canonical form does not escape non-ASCII.
 */
#define ID_TEST_CANON                                                          \
    "{\"a\":\"slack\",\"b\":[1,2,{\"x\":true,\"y\":null}],\"c\":"              \
    "\"caf\xc3\xa9\"}"
#define ID_TEST_CANON_SHA                                                      \
    "ca3559934bbfa4198f780e8263a48cde675ff615066e81950f2e069750c1c1f6"

/* The material, keys deliberately out of order at every level. */
static json_t *
id_test_material(void)
{
    json_t *m;
    json_error_t jerr;

    m = json_loads("{\"c\":\"caf\\u00e9\",\"b\":[1,2,{\"y\":null,\"x\":true}],"
                   "\"a\":\"slack\"}",
                   0, &jerr);
    assert_non_null(m);
    return m;
}

static void
test_id_sha256_known_vectors(void **state)
{
    char hex[CV_SHA256_HEX_LEN + 1];

    (void)state;
    cv_sha256_hex("", 0, hex);
    assert_string_equal(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cv_sha256_hex(NULL, 0, hex);
    assert_string_equal(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cv_sha256_hex("abc", 3, hex);
    assert_string_equal(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* len is honoured: bytes after it do not count. */
    cv_sha256_hex("abcdef", 3, hex);
    assert_string_equal(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(strlen(hex), CV_SHA256_HEX_LEN);
}

static void
test_id_canonical_form(void **state)
{
    json_t *m = id_test_material();
    char *canon;

    (void)state;
    /* Pins the serialisation the ids depend on (jansson flags). */
    canon = json_dumps(m, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(canon);
    assert_string_equal(canon, ID_TEST_CANON);
    free(canon);
    json_decref(m);
}

static void
test_id_record_id_known(void **state)
{
    json_t *m = id_test_material();
    char id[CV_ID_MAX];
    char hex[CV_SHA256_HEX_LEN + 1];

    (void)state;
    assert_int_equal(cv_record_id("gordackrecoveryesc-", m, id, sizeof(id)), 0);
    assert_string_equal(id, "gordackrecoveryesc-ca3559934bbfa419");

    /* The same value from cv_sha256_hex over the literal canonical text. */
    cv_sha256_hex(ID_TEST_CANON, strlen(ID_TEST_CANON), hex);
    assert_string_equal(hex, ID_TEST_CANON_SHA);
    assert_memory_equal(id + strlen("gordackrecoveryesc-"), hex, 16);
    json_decref(m);
}

static void
test_id_record_id_key_order(void **state)
{
    json_t *a = json_object();
    json_t *b = json_object();
    char ida[CV_ID_MAX];
    char idb[CV_ID_MAX];

    (void)state;
    json_object_set_new(a, "plan_id", json_string("gordackrecoveryesc-1"));
    json_object_set_new(a, "provider", json_string("slack"));
    json_object_set_new(a, "n", json_integer(3));
    json_object_set_new(b, "n", json_integer(3));
    json_object_set_new(b, "provider", json_string("slack"));
    json_object_set_new(b, "plan_id", json_string("gordackrecoveryesc-1"));
    assert_int_equal(cv_record_id("rcd-", a, ida, sizeof(ida)), 0);
    assert_int_equal(cv_record_id("rcd-", b, idb, sizeof(idb)), 0);
    assert_string_equal(ida, idb);

    /* A different value gives a different id. */
    json_object_set_new(b, "provider", json_string("teams"));
    assert_int_equal(cv_record_id("rcd-", b, idb, sizeof(idb)), 0);
    assert_string_not_equal(ida, idb);
    json_decref(a);
    json_decref(b);
}

static void
test_id_record_id_prefix(void **state)
{
    json_t *m = json_object();
    char id[CV_ID_MAX];

    (void)state;
    /* "{}" hashes to 44136fa355b3678a... */
    assert_int_equal(cv_record_id("gordackexecsched-", m, id, sizeof(id)), 0);
    assert_string_equal(id, "gordackexecsched-44136fa355b3678a");
    /* The prefix is not part of the hashed material. */
    assert_int_equal(cv_record_id("rcd-", m, id, sizeof(id)), 0);
    assert_string_equal(id, "rcd-44136fa355b3678a");
    /* Empty and NULL prefixes give the bare 16 hex digits. */
    assert_int_equal(cv_record_id("", m, id, sizeof(id)), 0);
    assert_string_equal(id, "44136fa355b3678a");
    assert_int_equal(cv_record_id(NULL, m, id, sizeof(id)), 0);
    assert_string_equal(id, "44136fa355b3678a");
    json_decref(m);
}

static void
test_id_record_id_non_object(void **state)
{
    json_t *m = json_string("plain");
    char id[CV_ID_MAX];

    (void)state;
    /* A bare string is valid material: canonical text "\"plain\"". */
    assert_int_equal(cv_record_id("x-", m, id, sizeof(id)), 0);
    assert_string_equal(id, "x-945603a8f587786b");
    json_decref(m);
}

static void
test_id_record_id_buffer_size(void **state)
{
    json_t *m = json_object();
    char id[CV_ID_MAX];

    (void)state;
    /* "rcd-" + 16 hex + NUL = 21 bytes: 21 fits, 20 does not. */
    assert_int_equal(cv_record_id("rcd-", m, id, 21), 0);
    assert_string_equal(id, "rcd-44136fa355b3678a");
    memset(id, 'x', sizeof(id));
    assert_int_equal(cv_record_id("rcd-", m, id, 20), -1);
    /* A failed call leaves an empty string, never a partial id. */
    assert_int_equal(id[0], '\0');
    assert_int_equal(id[20], 'x');
    assert_int_equal(cv_record_id("rcd-", m, id, 1), -1);
    assert_int_equal(id[0], '\0');
    assert_int_equal(cv_record_id("rcd-", m, id, 0), -1);
    json_decref(m);
}

static void
test_id_record_id_bad_arguments(void **state)
{
    json_t *m = json_object();
    char id[CV_ID_MAX] = "unchanged";

    (void)state;
    assert_int_equal(cv_record_id("rcd-", NULL, id, sizeof(id)), -1);
    assert_int_equal(id[0], '\0');
    assert_int_equal(cv_record_id("rcd-", m, NULL, 64), -1);
    json_decref(m);
}

/* The one hex codec: lowercase out, either case in, exact length only. */
static void
test_id_hex_codec(void **state)
{
    const unsigned char bytes[4] = {0x00, 0x9f, 0xa0, 0xff};
    unsigned char back[4];
    char hex[9];

    (void)state;
    cv_hex_encode(bytes, 4, hex);
    assert_string_equal(hex, "009fa0ff");
    assert_int_equal(cv_hex_decode(hex, 4, back), 0);
    assert_memory_equal(back, bytes, 4);
    assert_int_equal(cv_hex_decode("009FA0FF", 4, back), 0);
    assert_memory_equal(back, bytes, 4);
    assert_int_equal(cv_hex_decode("009fa0f", 4, back), -1);   /* short */
    assert_int_equal(cv_hex_decode("009fa0ff0", 4, back), -1); /* long */
    assert_int_equal(cv_hex_decode("009fa0fg", 4, back), -1);  /* not hex */
    assert_int_equal(cv_hex_decode(" 09fa0ff", 4, back), -1);
    assert_int_equal(cv_hex_decode(NULL, 4, back), -1);
    assert_int_equal(cv_hex_decode("", 0, back), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_sha256_known_vectors),
        cmocka_unit_test(test_id_canonical_form),
        cmocka_unit_test(test_id_record_id_known),
        cmocka_unit_test(test_id_record_id_key_order),
        cmocka_unit_test(test_id_record_id_prefix),
        cmocka_unit_test(test_id_record_id_non_object),
        cmocka_unit_test(test_id_record_id_buffer_size),
        cmocka_unit_test(test_id_record_id_bad_arguments),
        cmocka_unit_test(test_id_hex_codec),
    };

    return cmocka_run_group_tests_name("id", tests, NULL, NULL);
}

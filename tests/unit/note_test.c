/*
 * note_test.c -- unit tests for cv_note (C2SP signed notes and
 * tlog-checkpoints with Ed25519).
 *
 * Known answers come from golang.org/x/mod/sumdb/note's note_test.go: the
 * PeterNeumann and EnochRoot verifier keys, the PeterNeumann private key
 * (its Ed25519 seed, written here as a PEM file) and the signed notes;
 * Ed25519 is deterministic, so signing that text with that key must give
 * the very note of the Go test. The checkpoint example is the one of
 * c2sp.org/tlog-checkpoint. Run: ctest -R unit.note, or the binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cv_id.h"
#include "cv_note.h"

#define NT_PETER_VKEY                                                          \
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define NT_ENOCH_VKEY                                                          \
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
/* The seed of PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALV... (after the
 * 0x01 algorithm byte). */
#define NT_PETER_SEED                                                          \
    "810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173"
#define NT_TEXT                                                                \
    "If you think cryptography is the answer to your problem,\n"               \
    "then you don't know what your problem is.\n"
#define NT_PETER_SIG                                                           \
    "\xe2\x80\x94 PeterNeumann "                                               \
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng" \
    "otpRZb6KE6RyyBwJnAM=\n"
#define NT_ENOCH_SIG                                                           \
    "\xe2\x80\x94 EnochRoot "                                                  \
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG" \
    "wnWLox33WWd1RvMc+QQ=\n"

typedef struct nt_state {
    char dir[64];
} nt_state;

static int
nt_setup(void **state)
{
    nt_state *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -1;
    snprintf(s->dir, sizeof(s->dir), "/tmp/cv-note-test.XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    *state = s;
    return 0;
}

static int
nt_teardown(void **state)
{
    nt_state *s = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
    if (system(cmd) != 0)
        return -1;
    free(s);
    return 0;
}

static char *
nt_path(const nt_state *s, const char *name)
{
    static char buf[4][128];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, sizeof(buf[0]), "%s/%s", s->dir, name);
    return p;
}

static cv_note_verifier *
nt_verifier(const char *vkey)
{
    char why[160] = "";
    cv_note_verifier *v = cv_note_verifier_parse(vkey, why, sizeof(why));

    if (v == NULL)
        fail_msg("verifier %s refused: %s", vkey, why);
    return v;
}

/* cv_note_verify on a C string; returns its result, frees the body. */
static int
nt_verify(const char *note, const cv_note_verifier *v, char *why, size_t whylen)
{
    char *body = NULL;
    int rv = cv_note_verify(note, strlen(note), v, &body, why, whylen);

    if (rv == 0)
        assert_non_null(body);
    else
        assert_null(body);
    free(body);
    return rv;
}

static void
test_note_go_vectors_verify(void **state)
{
    cv_note_verifier *peter = nt_verifier(NT_PETER_VKEY);
    cv_note_verifier *enoch = nt_verifier(NT_ENOCH_VKEY);
    const char *note = NT_TEXT "\n" NT_PETER_SIG;
    char *body = NULL;
    char why[160];

    (void)state;
    assert_int_equal(
        cv_note_verify(note, strlen(note), peter, &body, why, sizeof(why)), 0);
    assert_string_equal(body, NT_TEXT);
    free(body);
    /* A note with both signatures opens with either key. */
    note = NT_TEXT "\n" NT_PETER_SIG NT_ENOCH_SIG;
    assert_int_equal(nt_verify(note, peter, why, sizeof(why)), 0);
    assert_int_equal(nt_verify(note, enoch, why, sizeof(why)), 0);
    assert_int_equal(
        cv_note_verify(note, strlen(note), enoch, NULL, why, sizeof(why)), 0);
    /* Only Peter's: Enoch's key finds nothing. */
    note = NT_TEXT "\n" NT_PETER_SIG;
    assert_int_equal(nt_verify(note, enoch, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "no signature by key EnochRoot"));
    /* Repeated lines: the first by the key decides. */
    note = NT_TEXT "\n" NT_PETER_SIG NT_PETER_SIG NT_ENOCH_SIG;
    assert_int_equal(nt_verify(note, peter, why, sizeof(why)), 0);
    cv_note_verifier_free(peter);
    cv_note_verifier_free(enoch);
}

/* The malformed notes of the Go test, plus tampering. */
static void
test_note_refused(void **state)
{
    cv_note_verifier *peter = nt_verifier(NT_PETER_VKEY);
    static const char sig[] = NT_PETER_SIG;
    const char *bad[] = {
        NT_TEXT,
        NT_TEXT "\n",
        "\x01" NT_TEXT "\n" NT_PETER_SIG,
        "\xff" NT_TEXT "\n" NT_PETER_SIG,
        NT_TEXT "\n" NT_PETER_SIG "Unexpected line.\n",
        NT_TEXT "\n"
                "\xe2\x80\x94 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAc"
                "ElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        NT_TEXT "\n"
                "- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNI"
                "uGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        /* unpadded, and padded twice */
        NT_TEXT "\n"
                "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr"
                "8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n",
        NT_TEXT "\n"
                "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr"
                "8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM==\n",
        /* a non-canonical last character (trailing bits set) */
        NT_TEXT "\n"
                "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr"
                "8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAN=\n",
        NT_TEXT "\n\xe2\x80\x94 PeterNeumann AAAA\n",
        NT_TEXT "\n\xe2\x80\x94 \n",
        NT_TEXT "\n\xe2\x80\x94  x08go/ZJ=\n",
        "",
        "\n\n",
        "\n",
    };
    char note[1024], why[160];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (nt_verify(bad[i], peter, why, sizeof(why)) != -1)
            fail_msg("accepted malformed note %zu", i);
    }
    /* A byte inserted in the signature: invalid for this key. */
    snprintf(note, sizeof(note), "%s\n%.*sABCD%s", NT_TEXT, 60, sig, sig + 60);
    assert_int_equal(nt_verify(note, peter, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "invalid signature for key PeterNeumann"));
    /* Every single bit of the text, and of the signature's bytes. */
    snprintf(note, sizeof(note), "%s\n%s", NT_TEXT, NT_PETER_SIG);
    for (size_t i = 0; i < strlen(NT_TEXT) - 1; i++) {
        note[i] ^= 0x01;
        assert_int_equal(nt_verify(note, peter, why, sizeof(why)), -1);
        note[i] ^= 0x01;
    }
    {
        size_t off = strlen(NT_TEXT) + 1 + strlen("\xe2\x80\x94 PeterNeumann ");

        /* Swap one base64 character for another valid one. */
        for (size_t i = off; i < off + 86; i++) {
            char c = note[i];

            note[i] = c == 'A' ? 'B' : 'A';
            assert_int_equal(nt_verify(note, peter, why, sizeof(why)), -1);
            note[i] = c;
        }
        assert_int_equal(nt_verify(note, peter, why, sizeof(why)), 0);
    }
    /* 101 signature lines are too many (short lines of another key, to
     * stay under CV_NOTE_MAX_LEN). */
    {
        static const char other[] = "\xe2\x80\x94 o AAAAAAA=\n";
        size_t n = strlen(NT_TEXT "\n" NT_PETER_SIG), ol = strlen(other);
        char *many = malloc(n + 100 * ol + 1);

        assert_non_null(many);
        memcpy(many, NT_TEXT "\n" NT_PETER_SIG, n);
        for (int i = 0; i < 100; i++)
            memcpy(many + n + (size_t)i * ol, other, ol);
        many[n + 100 * ol] = '\0';
        assert_int_equal(nt_verify(many, peter, why, sizeof(why)), -1);
        assert_non_null(strstr(why, "more than 100 signatures"));
        many[n + 99 * ol] = '\0';
        assert_int_equal(nt_verify(many, peter, why, sizeof(why)), 0);
        free(many);
    }
    assert_int_equal(cv_note_verify(NULL, 0, peter, NULL, why, sizeof(why)),
                     -1);
    assert_int_equal(
        cv_note_verify(NT_TEXT, strlen(NT_TEXT), NULL, NULL, NULL, 0), -1);
    cv_note_verifier_free(peter);
}

static void
test_note_verifier_key_manglings(void **state)
{
    char b[] = NT_PETER_VKEY;
    size_t len = strlen(b);
    char sub[sizeof(b)];
    char why[160];
    static const char *const bad[] = {
        /* wrong key length, with the matching key hash (Go test) */
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADK"
        "EY==",
        /* unknown algorithm, with the matching key hash (Go test) */
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "PeterNeumann",
        "",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW+",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    };

    (void)state;
    /* Every proper substring and every byte changed is refused. */
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i + 1; j <= len; j++) {
            if (i == 0 && j == len)
                continue;
            memcpy(sub, b + i, j - i);
            sub[j - i] = '\0';
            if (cv_note_verifier_parse(sub, why, sizeof(why)) != NULL)
                fail_msg("accepted verifier key substring \"%s\"", sub);
        }
    }
    for (size_t i = 0; i < len; i++) {
        b[i]++;
        if (cv_note_verifier_parse(b, why, sizeof(why)) != NULL)
            fail_msg("accepted mangled verifier key \"%s\"", b);
        b[i]--;
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cv_note_verifier_parse(bad[i], why, sizeof(why)) != NULL)
            fail_msg("accepted bad verifier key \"%s\"", bad[i]);
    }
    assert_null(cv_note_verifier_parse(NULL, NULL, 0));
    cv_note_verifier_free(nt_verifier(b));
    cv_note_verifier_free(NULL);
}

/* Writes the Ed25519 seed (hex) as a PEM private key file with mode. */
static void
nt_write_pem(const char *path, const char *seedhex, mode_t mode)
{
    uint8_t seed[32];
    EVP_PKEY *key;
    FILE *f;

    assert_int_equal(cv_hex_decode(seedhex, 32, seed), 0);
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    assert_non_null(key);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL),
                     1);
    fclose(f);
    EVP_PKEY_free(key);
    assert_int_equal(chmod(path, mode), 0);
}

/* Go's private key, as a PEM file, signs exactly Go's note. */
static void
test_note_go_vector_sign(void **state)
{
    nt_state *s = *state;
    const char *path = nt_path(s, "peter.pem");
    cv_note_signer *signer;
    char vkey[256], why[160] = "";
    char *note;

    nt_write_pem(path, NT_PETER_SEED, 0600);
    signer = cv_note_signer_load(path, "PeterNeumann", why, sizeof(why));
    if (signer == NULL)
        fail_msg("%s", why);
    assert_int_equal(cv_note_signer_vkey(signer, vkey, sizeof(vkey)),
                     (int)strlen(NT_PETER_VKEY));
    assert_string_equal(vkey, NT_PETER_VKEY);
    assert_int_equal(cv_note_signer_vkey(signer, vkey, 10), -1);
    note = cv_note_sign(signer, NT_TEXT);
    assert_non_null(note);
    assert_string_equal(note, NT_TEXT "\n" NT_PETER_SIG);
    free(note);
    /* Bodies that would not survive a round trip are not signed. */
    assert_null(cv_note_sign(signer, "no newline"));
    assert_null(cv_note_sign(signer, ""));
    assert_null(cv_note_sign(signer, "a\n\nb\n"));
    assert_null(cv_note_sign(signer, "tab\there\n"));
    assert_null(cv_note_sign(signer, "\xff\n"));
    assert_null(cv_note_sign(NULL, NT_TEXT));
    /* A note verifiers would refuse as too long is not made. */
    {
        char *big = malloc(CV_NOTE_MAX_LEN);

        assert_non_null(big);
        memset(big, 'a', CV_NOTE_MAX_LEN - 100);
        big[CV_NOTE_MAX_LEN - 100] = '\n';
        big[CV_NOTE_MAX_LEN - 99] = '\0';
        assert_null(cv_note_sign(signer, big));
        big[CV_NOTE_MAX_LEN - 200] = '\n';
        big[CV_NOTE_MAX_LEN - 199] = '\0';
        note = cv_note_sign(signer, big);
        assert_non_null(note);
        assert_true(strlen(note) <= CV_NOTE_MAX_LEN);
        free(note);
        free(big);
    }
    cv_note_signer_free(signer);
    cv_note_signer_free(NULL);
    /* A name a note cannot carry is refused. */
    assert_null(cv_note_signer_load(path, "Peter Neumann", why, sizeof(why)));
    assert_null(cv_note_signer_load(path, "a+b", why, sizeof(why)));
    assert_null(cv_note_signer_load(path, "", why, sizeof(why)));
}

static void
test_note_key_files(void **state)
{
    nt_state *s = *state;
    const char *path = nt_path(s, "log.pem");
    const char *other = nt_path(s, "other.pem");
    cv_note_signer *signer, *signer2;
    cv_note_verifier *v, *v2;
    char vkey[256], why[160] = "";
    struct stat st;
    char *note;
    FILE *f;

    assert_int_equal(cv_note_key_generate(path, why, sizeof(why)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Never overwritten. */
    assert_int_equal(cv_note_key_generate(path, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cannot create"));
    assert_int_equal(cv_note_key_generate(other, why, sizeof(why)), 0);

    signer = cv_note_signer_load(path, "cavra.example/log", why, sizeof(why));
    assert_non_null(signer);
    signer2 = cv_note_signer_load(other, "cavra.example/log", why, sizeof(why));
    assert_non_null(signer2);
    assert_true(cv_note_signer_vkey(signer, vkey, sizeof(vkey)) > 0);
    v = nt_verifier(vkey);
    assert_true(cv_note_signer_vkey(signer2, vkey, sizeof(vkey)) > 0);
    v2 = nt_verifier(vkey);

    note =
        cv_note_sign(signer, "cavra.example/log\n5\n"
                             "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
    assert_non_null(note);
    assert_int_equal(nt_verify(note, v, why, sizeof(why)), 0);
    /* Same name, another key: no signature by it. */
    assert_int_equal(nt_verify(note, v2, why, sizeof(why)), -1);
    note[18] = '6'; /* the size */
    assert_int_equal(nt_verify(note, v, why, sizeof(why)), -1);
    free(note);

    /* Group- or world-readable keys are refused; so are other files. */
    assert_int_equal(chmod(path, 0640), 0);
    assert_null(cv_note_signer_load(path, "log", why, sizeof(why)));
    assert_non_null(strstr(why, "readable by group or others"));
    assert_int_equal(chmod(path, 0604), 0);
    assert_null(cv_note_signer_load(path, "log", why, sizeof(why)));
    assert_null(cv_note_signer_load(nt_path(s, "missing.pem"), "log", why,
                                    sizeof(why)));
    assert_null(cv_note_signer_load(s->dir, "log", why, sizeof(why)));
    f = fopen(nt_path(s, "junk.pem"), "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(chmod(nt_path(s, "junk.pem"), 0600), 0);
    assert_null(
        cv_note_signer_load(nt_path(s, "junk.pem"), "log", why, sizeof(why)));
    assert_int_equal(
        cv_note_key_generate(nt_path(s, "no/such/dir.pem"), why, sizeof(why)),
        -1);
    cv_note_signer_free(signer);
    cv_note_signer_free(signer2);
    cv_note_verifier_free(v);
    cv_note_verifier_free(v2);
}

/* The c2sp.org/tlog-checkpoint example and our own form. */
static void
test_note_checkpoint_round_trip(void **state)
{
    static const char example[] =
        "example.com/behind-the-sofa\n20852163\n"
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    cv_checkpoint cp, back;
    char why[160];
    char *text;

    (void)state;
    assert_int_equal(
        cv_checkpoint_parse(example, strlen(example), &cp, why, sizeof(why)),
        0);
    assert_string_equal(cp.origin, "example.com/behind-the-sofa");
    assert_int_equal(cp.size, 20852163);
    assert_int_equal(cp.root[0], 0x0a);
    assert_int_equal(cp.root[31], 0x62);
    assert_string_equal(cp.time, "");
    text = cv_checkpoint_format(&cp);
    assert_non_null(text);
    assert_string_equal(text, example);
    free(text);

    memset(&cp, 0, sizeof(cp));
    snprintf(cp.origin, sizeof(cp.origin), "cavra.example/evidence");
    cp.size = 0;
    snprintf(cp.time, sizeof(cp.time), "2026-12-05T05:30:00.123456Z");
    text = cv_checkpoint_format(&cp);
    assert_non_null(text);
    assert_string_equal(text, "cavra.example/evidence\n0\n"
                              "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                              "time 2026-12-05T05:30:00.123456Z\n");
    assert_int_equal(
        cv_checkpoint_parse(text, strlen(text), &back, why, sizeof(why)), 0);
    assert_memory_equal(&back, &cp, sizeof(cp));
    free(text);
    /* Extension lines we do not know are kept out of the struct. */
    {
        static const char ext[] =
            "o\n9223372036854775807\n"
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\nother ext\n"
            "time 2026-12-05T05:30:00Z\n";

        assert_int_equal(
            cv_checkpoint_parse(ext, strlen(ext), &back, why, sizeof(why)), 0);
        assert_int_equal(back.size, INT64_MAX);
        assert_string_equal(back.time, "2026-12-05T05:30:00Z");
    }
    /* What format refuses. */
    memset(&cp, 0, sizeof(cp));
    assert_null(cv_checkpoint_format(&cp)); /* empty origin */
    snprintf(cp.origin, sizeof(cp.origin), "a\nb");
    assert_null(cv_checkpoint_format(&cp));
    snprintf(cp.origin, sizeof(cp.origin), "ok");
    cp.size = -1;
    assert_null(cv_checkpoint_format(&cp));
    cp.size = 1;
    snprintf(cp.time, sizeof(cp.time), "yesterday");
    assert_null(cv_checkpoint_format(&cp));
    memset(cp.origin, 'a', sizeof(cp.origin)); /* no NUL */
    cp.time[0] = '\0';
    assert_null(cv_checkpoint_format(&cp));
    assert_null(cv_checkpoint_format(NULL));
}

static void
test_note_checkpoint_refused(void **state)
{
#define NT_ROOT "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    static const char *const bad[] = {
        "",
        "\n",
        "o\n",
        "o\n1\n",
        "o\n1\n" NT_ROOT "\n", /* empty extension line */
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", /* no newline */
        "\n1\n" NT_ROOT,                                      /* empty origin */
        "o\n01\n" NT_ROOT,                                    /* leading zero */
        "o\n-1\n" NT_ROOT,
        "o\n+1\n" NT_ROOT,
        "o\n 1\n" NT_ROOT,
        "o\n1 \n" NT_ROOT,
        "o\n\n" NT_ROOT,
        "o\n1x\n" NT_ROOT,
        "o\n9223372036854775808\n" NT_ROOT, /* INT64_MAX + 1 */
        "o\n99999999999999999999999\n" NT_ROOT,
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", /* bits */
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I==\n",
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n", /* 31 bytes */
        "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", /* url */
        "o\n1\n" NT_ROOT "time 2026-12-05T05:30:00\n",
        "o\n1\n" NT_ROOT "time 2026-12-05 05:30:00Z\n",
        "o\n1\n" NT_ROOT "time 2026-12-05T05:30:00.Z\n",
        "o\n1\n" NT_ROOT "time 2026-12-05T05:30:00.1234567890Z\n",
        "o\n1\n" NT_ROOT "time 2026-12-05T05:30:00Zjunk\n",
        "o\n1\n" NT_ROOT "time 2026-12-05T05:30:00Z\n"
        "time 2026-12-05T05:30:00Z\n",
        "o\r\n1\n" NT_ROOT,
        "o\xff\n1\n" NT_ROOT,
    };
    cv_checkpoint cp;
    char why[160];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (cv_checkpoint_parse(bad[i], strlen(bad[i]), &cp, why,
                                sizeof(why)) != -1)
            fail_msg("accepted malformed checkpoint %zu", i);
        assert_true(why[0] != '\0');
    }
    /* A NUL inside the given length is refused, not read past. */
    assert_int_equal(
        cv_checkpoint_parse("o\n1\n\0" NT_ROOT, 5 + 45, &cp, why, sizeof(why)),
        -1);
    assert_int_equal(cv_checkpoint_parse(NULL, 0, &cp, why, sizeof(why)), -1);
    {
        char *big = malloc(CV_NOTE_MAX_LEN + 2);

        assert_non_null(big);
        memset(big, 'a', CV_NOTE_MAX_LEN + 1);
        big[CV_NOTE_MAX_LEN] = '\n';
        assert_int_equal(cv_checkpoint_parse(big, CV_NOTE_MAX_LEN + 1, &cp, why,
                                             sizeof(why)),
                         -1);
        free(big);
    }
#undef NT_ROOT
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_note_go_vectors_verify),
        cmocka_unit_test(test_note_refused),
        cmocka_unit_test(test_note_verifier_key_manglings),
        cmocka_unit_test(test_note_go_vector_sign),
        cmocka_unit_test(test_note_key_files),
        cmocka_unit_test(test_note_checkpoint_round_trip),
        cmocka_unit_test(test_note_checkpoint_refused),
    };

    return cmocka_run_group_tests_name("note", tests, nt_setup, nt_teardown);
}

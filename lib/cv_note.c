/*
 * cv_note.c -- C2SP signed notes and tlog-checkpoints with Ed25519 (see
 * cv_note.h for the formats).
 *
 * The rules follow c2sp.org/signed-note and c2sp.org/tlog-checkpoint as
 * golang.org/x/mod/sumdb/note applies them, so that notes we sign open
 * with the Go package and the notes of the Go tests open here:
 *  - a note is valid UTF-8 without ASCII control characters other than
 *    newline; its text ends at the LAST blank line; after it come 1..100
 *    lines "<em dash> <name> <base64(key hash[4] || signature)>";
 *  - a key name is non-empty UTF-8 without Unicode spaces or '+';
 *  - for a verifier, the first line carrying its name and key hash
 *    decides: a bad signature there fails the whole note, later lines by
 *    the same key are ignored, lines by other keys are skipped;
 *  - base64 is RFC 4648 section 4 with padding, and only its canonical
 *    form is accepted (a decoder that let trailing bits vary would give
 *    one signature several spellings).
 * Every parser here reads untrusted text: lengths are checked before
 * every read, nothing is assumed NUL-terminated beyond the given length.
 */
#include "cv_note.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cv_id.h"

#define CV_NOTE_ED25519    0x01 /* signature type of Ed25519 keys */
#define CV_NOTE_SIG_LEN    64
#define CV_NOTE_PUB_LEN    32
#define CV_NOTE_MAX_SIGS   100
#define CV_NOTE_DASH       "\xe2\x80\x94 " /* U+2014 and a space */
#define CV_NOTE_DASH_LEN   4
#define CV_NOTE_ROOT_B64   44 /* base64 of 32 bytes */
#define CV_NOTE_SIGB64_MAX 96 /* base64 of 4 + 64 bytes is 92 */

struct cv_note_signer {
    EVP_PKEY *key;
    char name[CV_NOTE_NAME_MAX];
    uint8_t pub[CV_NOTE_PUB_LEN];
    uint8_t hash[4];
};

struct cv_note_verifier {
    EVP_PKEY *key;
    char name[CV_NOTE_NAME_MAX];
    uint8_t hash[4];
};

/* Fills why (NULL-tolerant); returns -1 so callers can `return
 * cv_note_fail(...)`. */
static int
cv_note_fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- text rules ---------------------------------------------------------- */

/* Decodes one UTF-8 sequence at s[0..len); returns its length and the
 * code point in *cp, or 0 when it is not valid UTF-8 (overlong forms,
 * surrogates and values above U+10FFFF included). */
static size_t
cv_note_utf8(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint32_t c;
    size_t n;

    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* Unicode White_Space (what Go's unicode.IsSpace reports). */
static bool
cv_note_is_space(uint32_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* s[0..len) is valid UTF-8 without control characters other than '\n'
 * (and without NUL). */
static bool
cv_note_text_ok(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;

    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t n = cv_note_utf8(p + i, len - i, &c);

        if (n == 0 || (c < 0x20 && c != '\n') || c == 0x7f)
            return false;
        i += n;
    }
    return true;
}

/* A key name: 1..CV_NOTE_NAME_MAX-1 bytes of UTF-8, no space, no '+', no
 * control character. */
static bool
cv_note_name_ok(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;

    if (len == 0 || len >= CV_NOTE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t n = cv_note_utf8(p + i, len - i, &c);

        if (n == 0 || c < 0x20 || c == 0x7f || c == '+' || cv_note_is_space(c))
            return false;
        i += n;
    }
    return true;
}

/* ---- base64 (strict) ----------------------------------------------------- */

/* Standard base64 of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
static void
cv_note_b64_encode(const uint8_t *data, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, data, (int)n);
}

static bool
cv_note_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Decodes the canonical padded base64 s[0..len) into out (room for max
 * bytes). Returns the decoded length, or -1 for anything else: a length
 * that is not a multiple of 4, a character outside the alphabet, padding
 * not at the end, non-zero trailing bits, or more than max bytes.
 */
static int
cv_note_b64_decode(const char *s, size_t len, uint8_t *out, size_t max)
{
    uint8_t buf[128];
    char again[sizeof(buf) / 3 * 4 + 8];
    size_t pad = 0;
    int n;

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(buf))
        return -1;
    if (s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++) {
        if (!cv_note_b64_char(s[i]))
            return -1;
    }
    /* EVP_DecodeBlock counts padding as zero bytes: take them off. */
    n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
    if (n < 0 || (size_t)n < pad || (size_t)n - pad > max)
        return -1;
    n -= (int)pad;
    /* Canonical: re-encoding gives the same text. */
    cv_note_b64_encode(buf, (size_t)n, again);
    if (strlen(again) != len || memcmp(again, s, len) != 0)
        return -1;
    memcpy(out, buf, (size_t)n);
    return n;
}

/* ---- checkpoints --------------------------------------------------------- */

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z", the shape cv_time_format writes. */
static bool
cv_note_time_ok(const char *s, size_t len)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t i;

    if (len < sizeof(shape) || len >= sizeof(((cv_checkpoint *)0)->time))
        return false;
    for (i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    if (s[i] == '.') {
        size_t digits = 0;

        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (digits == 0 || digits > 9)
            return false;
    }
    return i == len - 1 && s[i] == 'Z';
}

char *
cv_checkpoint_format(const cv_checkpoint *cp)
{
    char root[CV_NOTE_ROOT_B64 + 1];
    size_t olen, tlen, cap;
    char *out;
    int n;

    if (cp == NULL || cp->size < 0)
        return NULL;
    olen = strnlen(cp->origin, sizeof(cp->origin));
    tlen = strnlen(cp->time, sizeof(cp->time));
    if (olen == 0 || olen == sizeof(cp->origin) ||
        !cv_note_text_ok(cp->origin, olen) ||
        memchr(cp->origin, '\n', olen) != NULL)
        return NULL;
    if (tlen == sizeof(cp->time) ||
        (tlen > 0 && !cv_note_time_ok(cp->time, tlen)))
        return NULL;
    cv_note_b64_encode(cp->root, CV_MERKLE_HASH_LEN, root);
    cap = olen + tlen + sizeof(root) + 48;
    if ((out = malloc(cap)) == NULL)
        return NULL;
    n = snprintf(out, cap, "%s\n%" PRId64 "\n%s\n", cp->origin, cp->size, root);
    if (tlen > 0)
        snprintf(out + n, cap - (size_t)n, "time %s\n", cp->time);
    return out;
}

/* The next line of s[*pos..len) without its '\n' in *line and *llen; -1 when
 * no '\n' is left. */
static int
cv_note_line(const char *s, size_t len, size_t *pos, const char **line,
             size_t *llen)
{
    const char *nl;

    if (*pos >= len)
        return -1;
    if ((nl = memchr(s + *pos, '\n', len - *pos)) == NULL)
        return -1;
    *line = s + *pos;
    *llen = (size_t)(nl - *line);
    *pos += *llen + 1;
    return 0;
}

int
cv_checkpoint_parse(const char *body, size_t len, cv_checkpoint *cp, char *why,
                    size_t whylen)
{
    cv_checkpoint out;
    const char *line;
    size_t llen, pos = 0;
    int64_t size = 0;
    bool have_time = false;

    if (body == NULL || cp == NULL)
        return cv_note_fail(why, whylen, "no checkpoint");
    if (len > CV_NOTE_MAX_LEN)
        return cv_note_fail(why, whylen, "checkpoint longer than %d bytes",
                            CV_NOTE_MAX_LEN);
    if (len == 0 || body[len - 1] != '\n')
        return cv_note_fail(why, whylen, "checkpoint must end with a newline");
    if (!cv_note_text_ok(body, len))
        return cv_note_fail(why, whylen,
                            "checkpoint must be UTF-8 without control "
                            "characters");
    memset(&out, 0, sizeof(out));
    /* 1. origin */
    if (cv_note_line(body, len, &pos, &line, &llen) != 0 || llen == 0 ||
        llen >= sizeof(out.origin))
        return cv_note_fail(why, whylen,
                            "checkpoint origin must be 1..%d bytes",
                            (int)sizeof(out.origin) - 1);
    memcpy(out.origin, line, llen);
    /* 2. tree size: decimal, no sign, no leading zero */
    if (cv_note_line(body, len, &pos, &line, &llen) != 0 || llen == 0 ||
        (llen > 1 && line[0] == '0'))
        return cv_note_fail(why, whylen, "checkpoint size is malformed");
    for (size_t i = 0; i < llen; i++) {
        if (line[i] < '0' || line[i] > '9' ||
            size > (INT64_MAX - (line[i] - '0')) / 10)
            return cv_note_fail(why, whylen, "checkpoint size is malformed");
        size = size * 10 + (line[i] - '0');
    }
    out.size = size;
    /* 3. root hash */
    if (cv_note_line(body, len, &pos, &line, &llen) != 0 ||
        llen != CV_NOTE_ROOT_B64 ||
        cv_note_b64_decode(line, llen, out.root, CV_MERKLE_HASH_LEN) !=
            CV_MERKLE_HASH_LEN)
        return cv_note_fail(why, whylen,
                            "checkpoint root must be the base64 of 32 bytes");
    /* 4. extension lines: non-empty; ours is "time <RFC 3339>" */
    while (pos < len) {
        if (cv_note_line(body, len, &pos, &line, &llen) != 0 || llen == 0)
            return cv_note_fail(why, whylen,
                                "checkpoint has an empty extension line");
        if (llen > 5 && memcmp(line, "time ", 5) == 0) {
            if (have_time || !cv_note_time_ok(line + 5, llen - 5))
                return cv_note_fail(why, whylen,
                                    "checkpoint time must appear once, as "
                                    "RFC 3339 UTC");
            memcpy(out.time, line + 5, llen - 5);
            have_time = true;
        }
    }
    *cp = out;
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

/* The key hash: SHA-256(name || "\n" || 0x01 || pub)[0:4]. */
static int
cv_note_key_hash(const char *name, const uint8_t pub[CV_NOTE_PUB_LEN],
                 uint8_t out[4])
{
    static const uint8_t sep[2] = {'\n', CV_NOTE_ED25519};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int rv = -1;

    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, name, strlen(name)) == 1 &&
        EVP_DigestUpdate(ctx, sep, sizeof(sep)) == 1 &&
        EVP_DigestUpdate(ctx, pub, CV_NOTE_PUB_LEN) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &n) == 1 && n == 32) {
        memcpy(out, md, 4);
        rv = 0;
    }
    EVP_MD_CTX_free(ctx);
    return rv;
}

int
cv_note_key_generate(const char *path, char *why, size_t whylen)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    FILE *f = NULL;
    int fd = -1, rv = -1;

    if (path == NULL || path[0] == '\0')
        return cv_note_fail(why, whylen, "no key path");
    if ((ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL ||
        EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
        cv_note_fail(why, whylen, "cannot generate an Ed25519 key");
        goto done;
    }
    /* O_EXCL: never overwrite a key whose checkpoints someone trusts. */
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600)) < 0) {
        cv_note_fail(why, whylen, "cannot create %s: %s", path,
                     strerror(errno));
        goto done;
    }
    if (fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
        cv_note_fail(why, whylen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        goto done;
    }
    fd = -1; /* f owns it */
    if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1) {
        cv_note_fail(why, whylen, "cannot write %s", path);
        fclose(f);
        unlink(path);
        goto done;
    }
    if (fclose(f) != 0) {
        cv_note_fail(why, whylen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        goto done;
    }
    rv = 0;
done:
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

/* A PEM password callback that gives none: an encrypted key fails
 * instead of prompting on a terminal. */
static int
cv_note_no_password_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

cv_note_signer *
cv_note_signer_load(const char *path, const char *name, char *why,
                    size_t whylen)
{
    cv_note_signer *s = NULL;
    EVP_PKEY *key = NULL;
    struct stat st;
    size_t publen = CV_NOTE_PUB_LEN;
    FILE *f = NULL;
    int fd;

    if (path == NULL || name == NULL || !cv_note_name_ok(name, strlen(name))) {
        cv_note_fail(why, whylen,
                     "key name must be 1..%d bytes of UTF-8 without spaces "
                     "or '+'",
                     CV_NOTE_NAME_MAX - 1);
        return NULL;
    }
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW)) < 0) {
        cv_note_fail(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cv_note_fail(why, whylen, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((st.st_mode & 077) != 0) {
        cv_note_fail(why, whylen,
                     "%s is readable by group or others (mode %03o): "
                     "chmod 600 it",
                     path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return NULL;
    }
    if ((f = fdopen(fd, "r")) == NULL) {
        cv_note_fail(why, whylen, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    key = PEM_read_PrivateKey(f, NULL, cv_note_no_password_cb, NULL);
    fclose(f);
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519 ||
        EVP_PKEY_get_raw_public_key(key, NULL, &publen) != 1 ||
        publen != CV_NOTE_PUB_LEN) {
        cv_note_fail(why, whylen, "%s holds no unencrypted Ed25519 PEM key",
                     path);
        EVP_PKEY_free(key);
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        cv_note_fail(why, whylen, "out of memory");
        EVP_PKEY_free(key);
        return NULL;
    }
    s->key = key;
    memcpy(s->name, name, strlen(name) + 1); /* checked above */
    if (EVP_PKEY_get_raw_public_key(key, s->pub, &publen) != 1 ||
        cv_note_key_hash(s->name, s->pub, s->hash) != 0) {
        cv_note_fail(why, whylen, "cannot read the public key of %s", path);
        cv_note_signer_free(s);
        return NULL;
    }
    return s;
}

void
cv_note_signer_free(cv_note_signer *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->key);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

int
cv_note_signer_vkey(const cv_note_signer *s, char *out, size_t outlen)
{
    uint8_t raw[1 + CV_NOTE_PUB_LEN];
    char hex[9], b64[48];
    int n;

    if (s == NULL || out == NULL)
        return -1;
    raw[0] = CV_NOTE_ED25519;
    memcpy(raw + 1, s->pub, CV_NOTE_PUB_LEN);
    cv_hex_encode(s->hash, 4, hex);
    cv_note_b64_encode(raw, sizeof(raw), b64);
    n = snprintf(out, outlen, "%s+%s+%s", s->name, hex, b64);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    return n;
}

char *
cv_note_sign(const cv_note_signer *s, const char *body)
{
    uint8_t sig[4 + CV_NOTE_SIG_LEN];
    char b64[CV_NOTE_SIGB64_MAX + 1];
    size_t siglen = CV_NOTE_SIG_LEN, blen, cap;
    EVP_MD_CTX *md;
    char *out;
    int ok;

    if (s == NULL || body == NULL)
        return NULL;
    blen = strlen(body);
    /* The body must survive a round trip: it ends with one newline, has
     * no blank line and only the characters a note may hold. */
    if (blen == 0 || body[blen - 1] != '\n' || strstr(body, "\n\n") != NULL ||
        !cv_note_text_ok(body, blen) || blen > CV_NOTE_MAX_LEN)
        return NULL;
    if ((md = EVP_MD_CTX_new()) == NULL)
        return NULL;
    ok = EVP_DigestSignInit(md, NULL, NULL, NULL, s->key) == 1 &&
         EVP_DigestSign(md, sig + 4, &siglen, (const uint8_t *)body, blen) ==
             1 &&
         siglen == CV_NOTE_SIG_LEN;
    EVP_MD_CTX_free(md);
    if (!ok)
        return NULL;
    memcpy(sig, s->hash, 4);
    cv_note_b64_encode(sig, sizeof(sig), b64);
    cap = blen + 1 + CV_NOTE_DASH_LEN + strlen(s->name) + 1 + strlen(b64) + 2;
    if ((out = malloc(cap)) == NULL)
        return NULL;
    snprintf(out, cap, "%s\n" CV_NOTE_DASH "%s %s\n", body, s->name, b64);
    /* A note longer than verifiers read would never open. */
    if (strlen(out) > CV_NOTE_MAX_LEN) {
        free(out);
        return NULL;
    }
    return out;
}

cv_note_verifier *
cv_note_verifier_parse(const char *vkey, char *why, size_t whylen)
{
    const char *p1, *p2;
    uint8_t raw[1 + CV_NOTE_PUB_LEN], hash[4], want[4];
    char name[CV_NOTE_NAME_MAX];
    cv_note_verifier *v;
    size_t nlen, klen;

    if (vkey == NULL || strlen(vkey) > 512) {
        cv_note_fail(why, whylen, "verifier key is missing or too long");
        return NULL;
    }
    /* name + hex8 + base64: exactly two '+' outside the base64 part. */
    if ((p1 = strchr(vkey, '+')) == NULL ||
        (p2 = strchr(p1 + 1, '+')) == NULL) {
        cv_note_fail(why, whylen, "verifier key must be name+hash+key");
        return NULL;
    }
    nlen = (size_t)(p1 - vkey);
    if (!cv_note_name_ok(vkey, nlen)) {
        cv_note_fail(why, whylen, "verifier key name is malformed");
        return NULL;
    }
    memcpy(name, vkey, nlen);
    name[nlen] = '\0';
    {
        char hex[9];

        if (p2 - p1 - 1 != 8) {
            cv_note_fail(why, whylen, "verifier key hash must be 8 hex digits");
            return NULL;
        }
        memcpy(hex, p1 + 1, 8);
        hex[8] = '\0';
        if (cv_hex_decode(hex, 4, want) != 0) {
            cv_note_fail(why, whylen, "verifier key hash must be 8 hex digits");
            return NULL;
        }
    }
    klen = strlen(p2 + 1);
    if (cv_note_b64_decode(p2 + 1, klen, raw, sizeof(raw)) !=
            (int)sizeof(raw) ||
        raw[0] != CV_NOTE_ED25519) {
        cv_note_fail(why, whylen,
                     "verifier key must be the base64 of 0x01 and a 32-byte "
                     "Ed25519 key");
        return NULL;
    }
    if (cv_note_key_hash(name, raw + 1, hash) != 0 ||
        memcmp(hash, want, 4) != 0) {
        cv_note_fail(why, whylen,
                     "verifier key hash does not match its name and key");
        return NULL;
    }
    if ((v = calloc(1, sizeof(*v))) == NULL) {
        cv_note_fail(why, whylen, "out of memory");
        return NULL;
    }
    memcpy(v->name, name, nlen + 1);
    memcpy(v->hash, hash, 4);
    v->key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw + 1,
                                         CV_NOTE_PUB_LEN);
    if (v->key == NULL) {
        cv_note_fail(why, whylen, "verifier key is not a usable Ed25519 key");
        cv_note_verifier_free(v);
        return NULL;
    }
    return v;
}

void
cv_note_verifier_free(cv_note_verifier *v)
{
    if (v == NULL)
        return;
    EVP_PKEY_free(v->key);
    free(v);
}

/* Ed25519 verification of msg[0..len) against a 64-byte signature. */
static bool
cv_note_ed25519_ok(EVP_PKEY *key, const uint8_t *sig, const char *msg,
                   size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok;

    ok = md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
         EVP_DigestVerify(md, sig, CV_NOTE_SIG_LEN, (const uint8_t *)msg,
                          len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

int
cv_note_verify(const char *note, size_t len, const cv_note_verifier *v,
               char **body, char *why, size_t whylen)
{
    const char *line;
    size_t split, pos, llen, text_len;
    int lines = 0;
    bool found = false;

    if (body != NULL)
        *body = NULL;
    if (note == NULL || v == NULL)
        return cv_note_fail(why, whylen, "no note or no key");
    if (len > CV_NOTE_MAX_LEN)
        return cv_note_fail(why, whylen, "note longer than %d bytes",
                            CV_NOTE_MAX_LEN);
    if (!cv_note_text_ok(note, len))
        return cv_note_fail(why, whylen,
                            "note must be UTF-8 without control characters");
    /* The text ends at the last blank line. */
    for (split = len; split >= 2; split--) {
        if (note[split - 2] == '\n' && note[split - 1] == '\n')
            break;
    }
    if (split < 2)
        return cv_note_fail(why, whylen, "note has no signature block");
    text_len = split - 1; /* up to and including the first '\n' */
    pos = split;
    if (pos >= len || note[len - 1] != '\n')
        return cv_note_fail(why, whylen, "note signatures must be whole lines");
    while (pos < len) {
        const char *name, *b64;
        size_t name_len, b64_len;
        uint8_t sig[4 + CV_NOTE_SIG_LEN];
        int n;

        if (cv_note_line(note, len, &pos, &line, &llen) != 0)
            return cv_note_fail(why, whylen, "note signature line is cut");
        if (++lines > CV_NOTE_MAX_SIGS)
            return cv_note_fail(why, whylen, "note has more than %d signatures",
                                CV_NOTE_MAX_SIGS);
        if (llen < CV_NOTE_DASH_LEN ||
            memcmp(line, CV_NOTE_DASH, CV_NOTE_DASH_LEN) != 0)
            return cv_note_fail(why, whylen,
                                "note signature line must start with an em "
                                "dash and a space");
        name = line + CV_NOTE_DASH_LEN;
        b64 = memchr(name, ' ', llen - CV_NOTE_DASH_LEN);
        if (b64 == NULL)
            return cv_note_fail(why, whylen,
                                "note signature line must be '- name sig'");
        name_len = (size_t)(b64 - name);
        b64++;
        b64_len = llen - CV_NOTE_DASH_LEN - name_len - 1;
        if (!cv_note_name_ok(name, name_len))
            return cv_note_fail(why, whylen,
                                "note signature key name is malformed");
        /* Other algorithms' signatures may be longer than ours: only their
         * shape is checked. */
        {
            uint8_t any[CV_NOTE_SIGB64_MAX];

            n = cv_note_b64_decode(b64, b64_len, any, sizeof(any));
            if (n < 5)
                return cv_note_fail(why, whylen,
                                    "note signature is not base64 of a key "
                                    "hash and a signature");
            memcpy(sig, any, n < (int)sizeof(sig) ? (size_t)n : sizeof(sig));
        }
        if (found || name_len != strlen(v->name) ||
            memcmp(name, v->name, name_len) != 0 ||
            memcmp(sig, v->hash, 4) != 0)
            continue;
        /* The first line by this key decides. */
        if (n != (int)sizeof(sig) ||
            !cv_note_ed25519_ok(v->key, sig + 4, note, text_len))
            return cv_note_fail(why, whylen, "invalid signature for key %s",
                                v->name);
        found = true;
    }
    if (!found)
        return cv_note_fail(why, whylen, "note has no signature by key %s",
                            v->name);
    if (body != NULL) {
        if ((*body = malloc(text_len + 1)) == NULL)
            return cv_note_fail(why, whylen, "out of memory");
        memcpy(*body, note, text_len);
        (*body)[text_len] = '\0';
    }
    return 0;
}

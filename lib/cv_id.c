/*
 * cv_id.c -- SHA-256 hex digests and content-derived record ids.
 *
 * A record id is a pure function of its identifying material: the same
 * material gives the same id in every service and on every replay, which
 * is what makes idempotent writes and offline verification possible. The
 * canonical form is jansson's compact output with sorted keys, so the
 * order in which a caller built the object does not matter.
 */
#include "cv_id.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define CV_ID_HEX_DIGITS 16 /* hex digits of the digest kept in an id */

void
cv_hex_encode(const void *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = bytes;

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int
cv_hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int
cv_hex_decode(const char *hex, size_t n, unsigned char *out)
{
    if (hex == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = cv_hex_digit(hex[2 * i]), lo;

        /* hi first: a short text ends at its NUL before lo is read. */
        if (hi < 0 || (lo = cv_hex_digit(hex[2 * i + 1])) < 0)
            return -1;
        out[i] = (unsigned char)(hi * 16 + lo);
    }
    return hex[2 * n] == '\0' ? 0 : -1;
}

void
cv_sha256_hex(const void *data, size_t len, char out[CV_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok;

    ok = EVP_Digest(len > 0 ? data : "", len, md, &mdlen, EVP_sha256(), NULL);
    if (ok != 1 || mdlen != CV_SHA256_HEX_LEN / 2) {
        /*
         * Only an allocation failure inside OpenSSL gets here. The API
         * has no error return, so write all zeros: never garbage, and a
         * digest that matches nothing, so verification notices.
         */
        memset(out, '0', CV_SHA256_HEX_LEN);
        out[CV_SHA256_HEX_LEN] = '\0';
        return;
    }
    cv_hex_encode(md, mdlen, out);
}

int
cv_record_id(const char *prefix, const json_t *material, char *out,
             size_t outlen)
{
    char hex[CV_SHA256_HEX_LEN + 1];
    char *canon = NULL;
    size_t plen;
    int rv = -1;

    if (out != NULL && outlen > 0)
        out[0] = '\0';
    if (prefix == NULL)
        prefix = "";
    plen = strlen(prefix);
    if (out == NULL || material == NULL || outlen < plen + CV_ID_HEX_DIGITS + 1)
        goto done;

    /*
     * JSON_ENCODE_ANY so that a bare string or array is also valid
     * material; no JSON_ENSURE_ASCII, so non-ASCII text hashes as UTF-8.
     */
    canon =
        json_dumps(material, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    if (canon == NULL)
        goto done;
    cv_sha256_hex(canon, strlen(canon), hex);
    memcpy(out, prefix, plen);
    memcpy(out + plen, hex, CV_ID_HEX_DIGITS);
    out[plen + CV_ID_HEX_DIGITS] = '\0';
    rv = 0;

done:
    free(canon);
    return rv;
}

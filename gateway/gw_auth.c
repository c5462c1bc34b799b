/*
 * gw_auth.c -- token file loading and bearer token checks.
 */
#include "gw_auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_id.h"

#define GW_AUTH_ACTOR_MAX 128

typedef struct gw_token {
    char sha256[CV_SHA256_HEX_LEN + 1];
    char actor[GW_AUTH_ACTOR_MAX + 1];
    unsigned int roles;
} gw_token;

struct gw_auth {
    gw_token *tokens;
    size_t n;
};

static bool
gw_is_hex64(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (!isxdigit((unsigned char)s[n]))
            return false;
    return n == CV_SHA256_HEX_LEN;
}

/* Parses one non-comment line into tok; returns 0 or -1. */
static int
gw_auth_parse_line(char *line, gw_token *tok)
{
    char *save = NULL, *hash, *actor, *roles;

    hash = strtok_r(line, " \t\r\n", &save);
    actor = strtok_r(NULL, " \t\r\n", &save);
    roles = strtok_r(NULL, " \t\r\n", &save);
    if (hash == NULL || actor == NULL || roles == NULL ||
        strtok_r(NULL, " \t\r\n", &save) != NULL || !gw_is_hex64(hash) ||
        strlen(actor) > GW_AUTH_ACTOR_MAX)
        return -1;
    for (size_t i = 0; hash[i] != '\0'; i++)
        tok->sha256[i] = (char)tolower((unsigned char)hash[i]);
    tok->sha256[CV_SHA256_HEX_LEN] = '\0';
    snprintf(tok->actor, sizeof(tok->actor), "%s", actor);
    tok->roles = 0;
    for (char *p = roles; *p != '\0';) {
        size_t len = strcspn(p, ",");
        unsigned int bit = cv_role_bit(p, len);

        if (bit == 0)
            return -1;
        tok->roles |= bit;
        p += len;
        if (*p == ',' && *++p == '\0')
            return -1; /* a trailing comma names no role */
    }
    return 0;
}

int
gw_auth_load(const char *path, gw_auth **out, cv_error *err)
{
    gw_auth *auth;
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;

    *out = NULL;
    if ((f = fopen(path, "r")) == NULL)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "cannot read token file %s", path);
    if ((auth = calloc(1, sizeof(*auth))) == NULL) {
        fclose(f);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    while (getline(&line, &cap, f) != -1) {
        char *p = line;
        gw_token *grown;

        lineno++;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        grown = realloc(auth->tokens, (auth->n + 1) * sizeof(gw_token));
        if (grown == NULL) {
            cv_error_set(err, CV_INTERNAL, "out of memory");
            goto fail;
        }
        auth->tokens = grown;
        if (gw_auth_parse_line(p, &auth->tokens[auth->n]) != 0) {
            cv_error_set(err, CV_INVALID_ARGUMENT,
                         "token file %s line %d: expected '<sha256 hex> "
                         "<actor> <role>[,<role>...]' with known roles",
                         path, lineno);
            goto fail;
        }
        auth->n++;
    }
    free(line);
    fclose(f);
    *out = auth;
    return 0;

fail:
    free(line);
    fclose(f);
    gw_auth_free(auth);
    return err->code;
}

void
gw_auth_free(gw_auth *auth)
{
    if (auth == NULL)
        return;
    free(auth->tokens);
    free(auth);
}

size_t
gw_auth_count(const gw_auth *auth)
{
    return auth != NULL ? auth->n : 0;
}

void
gw_auth_roles_text(unsigned int roles, char *out, size_t outlen)
{
    cv_roles_text(roles, " or ", out, outlen);
}

/* A new cv.Actor for tok (NULL on OOM). */
static Cv__Actor *
gw_auth_actor(const gw_token *tok)
{
    Cv__Actor *a = calloc(1, sizeof(*a));
    char subject[32];
    size_t n = 0;

    if (a == NULL)
        return NULL;
    cv__actor__init(a);
    /* The subject names the token by a short hash prefix, never itself. */
    snprintf(subject, sizeof(subject), "token:%.12s", tok->sha256);
    a->actor = strdup(tok->actor);
    a->subject = strdup(subject);
    /* Every bit a token holds is a known role (checked at load). */
    a->roles = calloc(CV_ROLE_COUNT, sizeof(char *));
    if (a->roles != NULL)
        for (unsigned int bit = 1; bit <= CV_ROLE_ANY; bit <<= 1)
            if (tok->roles & bit)
                a->roles[n++] = strdup(cv_role_name(bit));
    a->n_roles = n;
    return a;
}

int
gw_auth_check(const gw_auth *auth, const char *authorization,
              unsigned int allowed_roles, Cv__Actor **actor, cv_error *err)
{
    char hash[CV_SHA256_HEX_LEN + 1];
    const char *token;
    const gw_token *tok = NULL;

    *actor = NULL;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "a bearer token is required (Authorization: "
                            "Bearer <token>)");
    token = authorization + 7;
    while (*token == ' ')
        token++;
    if (*token == '\0')
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "a bearer token is required (Authorization: "
                            "Bearer <token>)");
    cv_sha256_hex(token, strlen(token), hash);
    for (size_t i = 0; i < auth->n; i++)
        if (strcmp(auth->tokens[i].sha256, hash) == 0)
            tok = &auth->tokens[i];
    if (tok == NULL)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the bearer token is not valid");
    if ((tok->roles & (allowed_roles | CV_ROLE_ADMIN)) == 0) {
        char need[128];

        gw_auth_roles_text(allowed_roles | CV_ROLE_ADMIN, need, sizeof(need));
        return cv_error_set(err, CV_PERMISSION_DENIED,
                            "actor %s lacks the role for this call (needs %s)",
                            tok->actor, need);
    }
    if ((*actor = gw_auth_actor(tok)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    return 0;
}

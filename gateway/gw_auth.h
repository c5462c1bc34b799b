/*
 * gw_auth.h -- bearer tokens and roles (docs/operator-guide.md).
 *
 * The token file has one token per line: "<sha256 hex of the token>
 * <actor name> <role>[,<role>...]"; blank lines and lines starting with
 * '#' are skipped. Only hashes are ever held: a presented token is hashed
 * and looked up. Roles: release_manager, platform_owner, executive,
 * auditor, service, admin (admin may do everything).
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"
#include "cv_method.h"
#include "rpc.pb-c.h"

/* Role bits and names are the registry's (CV_ROLE_*, cv_role_name). */

typedef struct gw_auth gw_auth;

/* Loads a token file. Returns 0 and *out, or CV_INVALID_ARGUMENT naming
 * the line that is malformed (never its token hash). */
int gw_auth_load(const char *path, gw_auth **out, cv_error *err);

void gw_auth_free(gw_auth *auth);

/* Number of tokens loaded. */
size_t gw_auth_count(const gw_auth *auth);

/*
 * Checks an Authorization header value against the table and the roles a
 * route allows (CV_ROLE_* bits). Returns 0 with *actor set to a new cv.Actor
 * (free with cv__actor__free_unpacked), CV_UNAUTHENTICATED when the header is
 * missing or the token unknown, CV_PERMISSION_DENIED when the actor lacks every
 * allowed role. Error messages never contain the token.
 */
int gw_auth_check(const gw_auth *auth, const char *authorization,
                  unsigned int allowed_roles, Cv__Actor **actor, cv_error *err);

/* Writes "release_manager or admin" style text for roles into out. */
void gw_auth_roles_text(unsigned int roles, char *out, size_t outlen);

#endif

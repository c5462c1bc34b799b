/*
 * cv_method.h -- the one method registry: every RPC is declared here once.
 *
 * A method's name, message types, roles, transaction mode, whether it
 * stores a record and takes an Idempotency-Key, and its REST binding (if
 * any) live in one table (cv_method.c). The services bind their handlers
 * to these entries by name; the RPC server reads the transaction mode and
 * roles from it; the gateway's route table, the OpenAPI document and
 * `cavra-rpc` are all derived from it. Adding a method means one row here
 * and one handler in its service.
 */
#ifndef CV_METHOD_H
#define CV_METHOD_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "cv_db.h"

/* Role bits (docs/operator-guide.md); a method lists the roles that may call
 * it. `admin` may call everything. */
#define CV_ROLE_RELEASE_MANAGER 0x01u
#define CV_ROLE_PLATFORM_OWNER  0x02u
#define CV_ROLE_EXECUTIVE       0x04u
#define CV_ROLE_AUDITOR         0x08u
#define CV_ROLE_SERVICE         0x10u
#define CV_ROLE_ADMIN           0x20u
#define CV_ROLE_ANY             0x3fu
#define CV_ROLE_COUNT           6 /* bits in CV_ROLE_ANY */

/* enum cv_tx_mode (how the RPC layer opens a method's transaction) is
 * declared in cv_db.h. */

enum cv_service_id {
    CV_SVC_ACK = 0,
    CV_SVC_RETRY = 1,
    CV_SVC_REPORT = 2,
    CV_SVC_COUNT = 3,
};

typedef struct cv_method_info {
    const char *name; /* "ack.Acknowledge" */
    enum cv_service_id service;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
    unsigned int roles;  /* CV_ROLE_* bits that may call it (admin always) */
    enum cv_tx_mode tx;  /* chosen at BEGIN by the RPC layer */
    bool stores_record;  /* a success may store a new record (REST 201) */
    bool keyed;          /* takes an Idempotency-Key */
    const char *summary; /* one line, for docs and OpenAPI */
    /* REST binding; http_method NULL when the method is RPC-only. */
    const char *http_method; /* "GET", "POST" */
    const char *path;        /* with {field} segments copied into request */
    int timeout_ms;          /* 0: the gateway default */
} cv_method_info;

extern const cv_method_info cv_methods[];
extern const size_t cv_method_count;

/* The entry named `name`, or NULL. */
const cv_method_info *cv_method_find(const char *name);

/* True when the method's reply is a cv.RawBody (`bytes body`, `string
 * content_type`): the gateway then serves body as is, with that
 * Content-Type, instead of transcoding the reply to JSON. The reply type
 * is the flag, so a raw method needs no code of its own anywhere. */
bool cv_method_raw_reply(const cv_method_info *m);

/* "ack", "retry", "report". */
const char *cv_service_name(enum cv_service_id svc);

/* The docs/operator-guide.md name of one role bit ("release_manager"), or NULL
 * when bit is not exactly one CV_ROLE_* bit. */
const char *cv_role_name(unsigned int bit);

/* The CV_ROLE_* bit named by the len bytes at name, or 0 when unknown. */
unsigned int cv_role_bit(const char *name, size_t len);

/*
 * Writes the names of the bits set in roles, in bit order, separated by
 * sep ("release_manager or service"), into out (outlen bytes with the
 * NUL; truncated, never overrun). Unknown bits are skipped.
 */
void cv_roles_text(unsigned int roles, const char *sep, char *out,
                   size_t outlen);

/* "none", "write", "write-snapshot", "read", "read-snapshot". */
const char *cv_tx_mode_name(enum cv_tx_mode tx);

#endif

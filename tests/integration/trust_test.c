/*
 * trust_test.c -- the RPC trust boundary, against the real cavra-ack and
 * PostgreSQL: signed envelopes, replays, who may name an actor, roles
 * enforced by the service itself, and evidence recording both the actor
 * and the principal that carried the call.
 *
 * Envelopes are built and signed here with the test principals of
 * cv_test_keys_init (and one key no service knows), then sent as raw
 * bytes on a REQ socket of our own, so each field can be forged. The
 * same checks run for session-authenticated envelopes (a signed offer,
 * then HMACs under the session key): unknown session, bad MAC, replay,
 * stale deadline, one principal's session used with another's key id,
 * a non-delegating actor, roles; and a replayed or altered offer.
 * Needs CAVRA_DATABASE_URL (scripts/test.sh sets it).
 * Run: ctest -R integration.trust, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ack.pb-c.h"
#include "cv_principal.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "cv_time.h"

static cv_test_stack tt_stack;
static char tt_plan_id[96];
static cv_identity *tt_operator, *tt_auditor, *tt_harness, *tt_stranger;
static char tt_stranger_key[300];

typedef struct tt_reply {
    int code; /* -1: no reply */
    char msg[256];
    Cv__AcknowledgeReply *ack; /* on OK for Acknowledge */
    bool granted;              /* the reply grants a session */
    uint8_t session_id[CV_SESSION_ID_LEN], session_pub[32];
    bool session_unknown;
} tt_reply;

/* A session as a caller holds it. */
typedef struct tt_session {
    const cv_identity *owner;
    uint8_t id[CV_SESSION_ID_LEN];
    uint8_t key[CV_SESSION_KEY_LEN];
} tt_session;

/* Sends packed envelope bytes and reads the reply. */
static void
tt_send(const uint8_t *bytes, size_t len, tt_reply *out)
{
    nng_socket sock;
    nng_msg *m;
    Cv__RpcReply *rep;

    memset(out, 0, sizeof(*out));
    out->code = -1;
    assert_int_equal(nng_req0_open(&sock), 0);
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 10000);
    assert_int_equal(nng_dial(sock, tt_stack.ack_url, NULL, 0), 0);
    assert_int_equal(nng_msg_alloc(&m, len), 0);
    memcpy(nng_msg_body(m), bytes, len);
    assert_int_equal(nng_sendmsg(sock, m, 0), 0);
    if (nng_recvmsg(sock, &m, 0) == 0) {
        rep = cv__rpc_reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        if (rep != NULL) {
            out->code = rep->has_code ? rep->code : -1;
            snprintf(out->msg, sizeof(out->msg), "%s",
                     rep->message != NULL ? rep->message : "");
            if (out->code == 0 && rep->has_payload && rep->payload.len > 0 &&
                !rep->has_session_id)
                out->ack = cv__acknowledge_reply__unpack(NULL, rep->payload.len,
                                                         rep->payload.data);
            if (rep->has_session_id && rep->session_id.len == 16 &&
                rep->has_session_pub && rep->session_pub.len == 32) {
                out->granted = true;
                memcpy(out->session_id, rep->session_id.data, 16);
                memcpy(out->session_pub, rep->session_pub.data, 32);
            }
            out->session_unknown =
                rep->has_session_unknown && rep->session_unknown;
            cv__rpc_reply__free_unpacked(rep, NULL);
        }
        nng_msg_free(m);
    }
    nng_close(sock);
}

/* How to forge an envelope. */
typedef struct tt_forge {
    const cv_identity *signer; /* NULL: unsigned */
    const char *actor;         /* envelope actor name, or NULL */
    const char *role;          /* the actor's one role, or NULL */
    int64_t deadline_delta_ms; /* from now; 0: 10 s */
    bool flip_payload_bit;     /* after signing */
    const char *method;        /* NULL: ack.Acknowledge */
    /* Session: MAC under it instead of signing (signer ignored). */
    const tt_session *session;
    const char *key_id;       /* with session: claim this key id */
    const uint8_t *offer_pub; /* with signer: offer this X25519 key */
    bool flip_offer_bit;      /* after signing */
} tt_forge;

/* Packs an Acknowledge of (tt_plan_id, webhook) with a unique
 * external_ref into *bytes (malloc'd). */
static size_t
tt_envelope(const tt_forge *f, const char *ref, uint8_t **bytes)
{
    Cv__AcknowledgeRequest req = CV__ACKNOWLEDGE_REQUEST__INIT;
    Cv__RpcRequest env = CV__RPC_REQUEST__INIT;
    Cv__Actor actor = CV__ACTOR__INIT;
    char *roles[1];
    cv_envelope_sig_buf sig;
    uint8_t *payload;
    size_t plen, len;
    cv_error err;

    req.plan_id = tt_plan_id;
    req.provider = "webhook";
    req.acknowledged_by = "self-declared";
    req.external_ref = (char *)ref;
    plen = cv__acknowledge_request__get_packed_size(&req);
    payload = malloc(plen + 1);
    assert_non_null(payload);
    cv__acknowledge_request__pack(&req, payload);
    env.method = (char *)(f->method != NULL ? f->method : "ack.Acknowledge");
    env.request_id = (char *)ref;
    env.has_deadline_unix_ms = 1;
    env.deadline_unix_ms =
        cv_now_us() / 1000 +
        (f->deadline_delta_ms != 0 ? f->deadline_delta_ms : 10000);
    if (f->actor != NULL) {
        actor.actor = (char *)f->actor;
        if (f->role != NULL) {
            roles[0] = (char *)f->role;
            actor.roles = roles;
            actor.n_roles = 1;
        }
        env.actor = &actor;
    }
    env.has_payload = 1;
    env.payload.data = payload;
    env.payload.len = plen;
    cv_error_clear(&err);
    uint8_t offer[32];
    if (f->offer_pub != NULL) {
        memcpy(offer, f->offer_pub, sizeof(offer));
        env.has_session_offer = 1;
        env.session_offer.data = offer;
        env.session_offer.len = sizeof(offer);
    }
    if (f->session != NULL)
        assert_int_equal(
            cv_envelope_mac(f->key_id != NULL
                                ? f->key_id
                                : cv_identity_key_id(f->session->owner),
                            f->session->key, f->session->id, &env, &sig, &err),
            0);
    else if (f->signer != NULL)
        assert_int_equal(cv_envelope_sign(f->signer, &env, &sig, &err), 0);
    if (f->flip_payload_bit)
        payload[plen / 2] ^= 0x01;
    if (f->flip_offer_bit)
        offer[3] ^= 0x01;
    len = cv__rpc_request__get_packed_size(&env);
    *bytes = malloc(len);
    assert_non_null(*bytes);
    cv__rpc_request__pack(&env, *bytes);
    free(payload);
    return len;
}

static long
tt_stored(const char *ref)
{
    return cv_test_db_scalar(
        "SELECT count(*) FROM evidence_events WHERE record->>'external_ref' = "
        "$1",
        ref);
}

/* Sends a forged Acknowledge and checks its code; returns the reply. */
static void
tt_expect(const tt_forge *f, const char *ref, int code, const char *detail,
          tt_reply *out)
{
    uint8_t *bytes;
    size_t len = tt_envelope(f, ref, &bytes);

    tt_send(bytes, len, out);
    free(bytes);
    if (out->code != code)
        fail_msg("%s: code %d (%s), expected %d", ref, out->code, out->msg,
                 code);
    if (detail != NULL && strstr(out->msg, detail) == NULL)
        fail_msg("%s: detail \"%s\" lacks \"%s\"", ref, out->msg, detail);
}

static void
tt_ref(char *out, size_t len, const char *what)
{
    snprintf(out, len, "TT-%s-%ld", what, (long)getpid());
}

/* Sends f's Acknowledge (reference tt_ref(what)), which must be stored as
 * acknowledged by `actor` with one evidence event naming actor and
 * principal. Returns whether the reply granted a session. */
static bool
tt_expect_stored(const tt_forge *f, const char *what, const char *actor,
                 const char *principal)
{
    char ref[64], who[192];
    tt_reply r;

    tt_ref(ref, sizeof(ref), what);
    tt_expect(f, ref, 0, NULL, &r);
    assert_non_null(r.ack);
    assert_string_equal(r.ack->acknowledgement->acknowledged_by, actor);
    protobuf_c_message_free_unpacked(&r.ack->base, NULL);
    snprintf(who, sizeof(who), "{%s,%s,%s}", ref, actor, principal);
    assert_int_equal(cv_test_db_scalar("SELECT count(*) FROM evidence_events"
                                       " WHERE request_id = ($1::text[])[1]"
                                       " AND actor = ($1::text[])[2]"
                                       " AND principal = ($1::text[])[3]",
                                       who),
                     1);
    return r.granted;
}

static void
test_trust_refused_envelopes_store_nothing(void **state)
{
    static const struct {
        const char *what;
        tt_forge f;
        const char *detail;
    } cases[] = {
        {"unsigned", {.signer = NULL}, "not signed"},
        {"unknown-key", {.signer = NULL}, "unknown key"},
        {"bad-signature", {.flip_payload_bit = true}, "does not verify"},
        {"stale", {.deadline_delta_ms = -2000}, "deadline"},
        {"far-ahead", {.deadline_delta_ms = 6 * 60 * 1000}, "deadline"},
    };
    char ref[64];
    tt_reply r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tt_forge f = cases[i].f;

        if (i == 1)
            f.signer = tt_stranger;
        else if (i > 1)
            f.signer = tt_operator;
        tt_ref(ref, sizeof(ref), cases[i].what);
        tt_expect(&f, ref, CV_UNAUTHENTICATED, cases[i].detail, &r);
        assert_int_equal(tt_stored(ref), 0);
    }
}

static void
test_trust_replay_refused(void **state)
{
    tt_forge f = {.signer = tt_operator};
    char ref[64];
    uint8_t *bytes;
    size_t len;
    tt_reply r;

    (void)state;
    tt_ref(ref, sizeof(ref), "replay");
    len = tt_envelope(&f, ref, &bytes);
    tt_send(bytes, len, &r);
    assert_int_equal(r.code, 0);
    if (r.ack != NULL)
        protobuf_c_message_free_unpacked(&r.ack->base, NULL);
    /* The very same signed bytes again: a replay, refused. */
    tt_send(bytes, len, &r);
    free(bytes);
    assert_int_equal(r.code, CV_UNAUTHENTICATED);
    assert_non_null(strstr(r.msg, "replay"));
    assert_int_equal(tt_stored(ref), 1);
}

static void
test_trust_only_a_delegate_names_the_actor(void **state)
{
    tt_forge as_cfo = {.signer = tt_operator, .actor = "cfo", .role = "admin"};
    tt_forge as_self = {.signer = tt_operator};
    tt_forge via_harness = {
        .signer = tt_harness, .actor = "alice", .role = "release_manager"};
    char ref[64];
    tt_reply r;

    (void)state;
    tt_ref(ref, sizeof(ref), "cfo");
    tt_expect(&as_cfo, ref, CV_PERMISSION_DENIED, "may not act for another",
              &r);
    assert_int_equal(tt_stored(ref), 0);

    /* Acting as itself: the principal is the acknowledger, whatever the
     * body declares, and evidence names it twice (actor and principal). */
    tt_expect_stored(&as_self, "self", "test-operator", "test-operator");

    /* A delegating principal names the end user: actor alice, carried by
     * test-harness. */
    tt_expect_stored(&via_harness, "alice", "alice", "test-harness");
}

static void
test_trust_service_enforces_roles(void **state)
{
    tt_forge auditor = {.signer = tt_auditor};
    tt_forge delegated_auditor = {
        .signer = tt_harness, .actor = "audrey", .role = "auditor"};
    tt_forge auditor_reads = {.signer = tt_auditor, .method = "ack.Health"};
    char ref[64];
    tt_reply r;

    (void)state;
    tt_ref(ref, sizeof(ref), "auditor");
    tt_expect(&auditor, ref, CV_PERMISSION_DENIED, "release_manager", &r);
    assert_int_equal(tt_stored(ref), 0);
    /* The end user's roles count, not the gateway's. */
    tt_ref(ref, sizeof(ref), "audrey");
    tt_expect(&delegated_auditor, ref, CV_PERMISSION_DENIED, "release_manager",
              &r);
    assert_int_equal(tt_stored(ref), 0);
    /* Health is open to every authenticated principal. */
    tt_ref(ref, sizeof(ref), "health");
    tt_expect(&auditor_reads, ref, 0, NULL, &r);
    if (r.ack != NULL)
        protobuf_c_message_free_unpacked(&r.ack->base, NULL);
}

/* Opens a session for who with a signed Health call offering one. */
static void
tt_open_session(const cv_identity *who, tt_session *out)
{
    cv_session_offer offer;
    tt_forge f = {.signer = who, .method = "ack.Health"};
    char ref[64];
    tt_reply r;
    cv_error err;

    assert_int_equal(cv_session_offer_new(&offer, &err), 0);
    f.offer_pub = offer.pub;
    snprintf(ref, sizeof(ref), "TT-hello-%s-%ld", cv_identity_name(who),
             (long)getpid());
    tt_expect(&f, ref, 0, NULL, &r);
    assert_true(r.granted);
    out->owner = who;
    memcpy(out->id, r.session_id, sizeof(out->id));
    assert_int_equal(cv_session_accept(&offer, cv_identity_key_id(who),
                                       r.session_id, 16, r.session_pub, 32,
                                       out->key, &err),
                     0);
    cv_session_offer_free(&offer);
}

static void
test_trust_session_accepted(void **state)
{
    tt_session op, harness;
    tt_forge as_op, via_harness;

    (void)state;
    tt_open_session(tt_operator, &op);
    tt_open_session(tt_harness, &harness);
    as_op = (tt_forge){.session = &op};
    via_harness = (tt_forge){
        .session = &harness, .actor = "alice", .role = "release_manager"};
    /* Acting as itself over a session: stored, with the principal. */
    assert_false(tt_expect_stored(&as_op, "session-self", "test-operator",
                                  "test-operator"));
    /* A delegating principal's session names the end user. */
    tt_expect_stored(&via_harness, "session-alice", "alice", "test-harness");
}

static void
test_trust_session_refusals_store_nothing(void **state)
{
    tt_session op, aud, bogus;
    char ref[64];
    tt_reply r;

    (void)state;
    tt_open_session(tt_operator, &op);
    tt_open_session(tt_auditor, &aud);
    /* A session id this service never granted. */
    bogus = op;
    bogus.id[0] ^= 0xff;
    bogus.id[9] ^= 0x5a;
    {
        const struct {
            const char *what;
            tt_forge f;
            int code;
            const char *detail;
        } cases[] = {
            {"s-unknown",
             {.session = &bogus},
             CV_UNAUTHENTICATED,
             "unknown session"},
            {"s-bad-mac",
             {.session = &op, .flip_payload_bit = true},
             CV_UNAUTHENTICATED,
             "does not verify"},
            {"s-stale",
             {.session = &op, .deadline_delta_ms = -2000},
             CV_UNAUTHENTICATED,
             "deadline"},
            {"s-far-ahead",
             {.session = &op, .deadline_delta_ms = 6 * 60 * 1000},
             CV_UNAUTHENTICATED,
             "deadline"},
            /* The operator's session with the auditor's key id, and the
             * auditor's session claiming the operator: neither passes. */
            {"s-other-principal",
             {.session = &op, .key_id = NULL},
             CV_UNAUTHENTICATED,
             "another principal"},
            {"s-borrowed",
             {.session = &aud, .key_id = NULL},
             CV_UNAUTHENTICATED,
             "another principal"},
            {"s-cfo",
             {.session = &op, .actor = "cfo", .role = "admin"},
             CV_PERMISSION_DENIED,
             "may not act for another"},
            {"s-auditor",
             {.session = &aud},
             CV_PERMISSION_DENIED,
             "release_manager"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            tt_forge f = cases[i].f;

            if (strcmp(cases[i].what, "s-other-principal") == 0)
                f.key_id = cv_identity_key_id(tt_auditor);
            if (strcmp(cases[i].what, "s-borrowed") == 0)
                f.key_id = cv_identity_key_id(tt_operator);
            tt_ref(ref, sizeof(ref), cases[i].what);
            tt_expect(&f, ref, cases[i].code, cases[i].detail, &r);
            assert_int_equal(r.session_unknown, i == 0);
            assert_int_equal(tt_stored(ref), 0);
        }
    }
    /* A MAC'd envelope sent twice: the nonce is refused the second time. */
    {
        tt_forge f = {.session = &op};
        uint8_t *bytes;
        size_t len;

        tt_ref(ref, sizeof(ref), "s-replay");
        len = tt_envelope(&f, ref, &bytes);
        tt_send(bytes, len, &r);
        assert_int_equal(r.code, 0);
        if (r.ack != NULL)
            protobuf_c_message_free_unpacked(&r.ack->base, NULL);
        tt_send(bytes, len, &r);
        free(bytes);
        assert_int_equal(r.code, CV_UNAUTHENTICATED);
        assert_non_null(strstr(r.msg, "replay"));
        assert_int_equal(tt_stored(ref), 1);
    }
}

/* The offer is part of what is signed; a replayed hello grants nothing. */
static void
test_trust_session_offer_bound(void **state)
{
    cv_session_offer offer;
    tt_forge f = {.signer = tt_operator};
    char ref[64];
    uint8_t *bytes;
    size_t len;
    tt_reply r;
    cv_error err;

    (void)state;
    assert_int_equal(cv_session_offer_new(&offer, &err), 0);
    f.offer_pub = offer.pub;
    f.flip_offer_bit = true;
    tt_ref(ref, sizeof(ref), "offer-altered");
    tt_expect(&f, ref, CV_UNAUTHENTICATED, "does not verify", &r);
    assert_false(r.granted);
    assert_int_equal(tt_stored(ref), 0);

    f.flip_offer_bit = false;
    tt_ref(ref, sizeof(ref), "offer-replayed");
    len = tt_envelope(&f, ref, &bytes);
    tt_send(bytes, len, &r);
    assert_int_equal(r.code, 0);
    assert_true(r.granted);
    if (r.ack != NULL)
        protobuf_c_message_free_unpacked(&r.ack->base, NULL);
    tt_send(bytes, len, &r);
    free(bytes);
    assert_int_equal(r.code, CV_UNAUTHENTICATED);
    assert_false(r.granted);
    assert_int_equal(tt_stored(ref), 1);
    cv_session_offer_free(&offer);
}

/* Every service connection says which process holds it. */
static void
test_trust_connections_named(void **state)
{
    (void)state;
    assert_true(cv_test_db_scalar("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE application_name = $1",
                                  "cavra-ack") >= 1);
    /* With its own login (scripts/test.sh), every one of the service's
     * connections is that login, never the owner. */
    if (getenv("CAVRA_TEST_OWNER_DATABASE_URL") != NULL)
        assert_int_equal(
            cv_test_db_scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                              "application_name = $1 AND usename <> "
                              "'cavra_app'",
                              "cavra-ack"),
            0);
}

static int
tt_setup(void **state)
{
    Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
    Cv__RecordPlanReply *plan;
    cv_rpc_client *cli;
    char line[256];
    cv_error err;

    (void)state;
    if (cv_test_stack_start(&tt_stack, CV_STACK_ACK) != 0)
        return -1;
    cv_error_clear(&err);
    if (cv_identity_load(cv_test_key_path("test-operator.key"), &tt_operator,
                         &err) != 0 ||
        cv_identity_load(cv_test_key_path("test-auditor.key"), &tt_auditor,
                         &err) != 0 ||
        cv_identity_load(cv_test_key_path("test-harness.key"), &tt_harness,
                         &err) != 0)
        return -1;
    snprintf(tt_stranger_key, sizeof(tt_stranger_key), "%s.stranger",
             tt_stack.dir);
    if (cv_identity_generate("stranger", tt_stranger_key, "admin", false, line,
                             sizeof(line), &err) != 0 ||
        cv_identity_load(tt_stranger_key, &tt_stranger, &err) != 0)
        return -1;
    if (cv_rpc_client_open(tt_stack.ack_url, &cli, &err) != 0)
        return -1;
    route.provider = "webhook";
    plan = cv_test_record_plan_rpc(cli, "trust-test", &route, 1, NULL);
    snprintf(tt_plan_id, sizeof(tt_plan_id), "%s", plan->plan->plan_id);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    cv_rpc_client_close(cli);
    return 0;
}

static int
tt_teardown(void **state)
{
    (void)state;
    cv_identity_free(tt_operator);
    cv_identity_free(tt_auditor);
    cv_identity_free(tt_harness);
    cv_identity_free(tt_stranger);
    unlink(tt_stranger_key);
    return cv_test_stack_stop(&tt_stack);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trust_refused_envelopes_store_nothing),
        cmocka_unit_test(test_trust_replay_refused),
        cmocka_unit_test(test_trust_only_a_delegate_names_the_actor),
        cmocka_unit_test(test_trust_service_enforces_roles),
        cmocka_unit_test(test_trust_connections_named),
        cmocka_unit_test(test_trust_session_accepted),
        cmocka_unit_test(test_trust_session_refusals_store_nothing),
        cmocka_unit_test(test_trust_session_offer_bound),
    };

    return cmocka_run_group_tests_name("trust", tests, tt_setup, tt_teardown);
}

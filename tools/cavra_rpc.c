/*
 * cavra-rpc -- command-line client of the public NNG RPC interface
 * (docs/api.md): one call to one service, JSON in, JSON out, no gateway.
 *
 *   cavra-rpc [--url URL] [--request-id ID] [--idempotency-key K]
 *             [--actor NAME] [--timeout-ms N] METHOD [JSON | -]
 *   cavra-rpc --list
 *
 *   cavra-rpc ack.Health
 *   cavra-rpc ack.RecordPlan '{"escalation_routes": [{"provider": "slack"}]}'
 *   cavra-rpc ack.GetPlan '{"plan_id": "gordackrecoveryesc-..."}'
 *   echo '{}' | cavra-rpc report.Dashboard -
 *
 * METHOD is "<service>.<Name>"; JSON is the request message as the REST API
 * takes it (proto field names, lower-case enum names; path parameters such
 * as plan_id are ordinary fields here), "-" reads it from stdin, and it
 * defaults to {}. The reply message is printed to stdout as indented JSON.
 * When the reply is a record that already existed, or an idempotent replay,
 * a note says so on stderr. An error prints {"code", "detail",
 * "request_id"} on stderr and exits 1; a usage error exits 2.
 *
 * The service URL is --url, else the service's variable (CAVRA_ACK_URL,
 * CAVRA_RETRY_URL, CAVRA_REPORT_URL), else its default
 * (tcp://127.0.0.1:7101, :7102, :7103), chosen by METHOD's prefix.
 *
 * Trust: the NNG interface is internal and trusts its callers. Whatever
 * --actor names is sent as the verified actor (actor NAME, subject "cli",
 * no roles) and overrides self-declared names such as acknowledged_by; no
 * token is checked. Tokens and roles are checked by the gateway only, so
 * the service URLs belong on a private network.
 *
 * Design notes:
 *  - The methods are not listed here: they come from the method registry
 *    in lib (cv_methods[], lib/cv_method.h: name, service, request and
 *    reply descriptors), plus "<service>.Health" that every service
 *    answers when the registry does not list it. The gateway is not
 *    linked. --list prints the registry: types, transaction, key, roles
 *    and REST binding of each method.
 *  - The call is the library's cv_rpc_call, which also reports the
 *    reply's existing/replayed flags. Before it, the client waits (at most
 *    CV_CLI_CONNECT_MS) to connect, so a stopped service is reported at
 *    once as UNAVAILABLE instead of after the call's timeout.
 */
#include <jansson.h>
#include <nng/nng.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_error.h"
#include "cv_rpc.h"
#include "cv_transcode.h"
#include "cv_method.h"
#include "rpc.pb-c.h"

#define CV_CLI_EXIT_ERROR      1
#define CV_CLI_EXIT_USAGE      2
#define CV_CLI_TIMEOUT_DEFAULT 10000
#define CV_CLI_TIMEOUT_MAX     3600000
#define CV_CLI_CONNECT_MS      2000
#define CV_CLI_REQUEST_ID_MAX  128 /* the gateway's X-Request-Id rule */
#define CV_CLI_IDEM_KEY_MAX    255 /* docs/api.md */
#define CV_CLI_ACTOR_MAX       128
/* A request larger than this cannot fit a service's receive limit. */
#define CV_CLI_BODY_MAX CV_RPC_RECV_MAX

/* Where each service listens by default: the same variables and defaults
 * as the services (services/<svc>/<svc>_rpc.h) and the gateway. Indexed
 * by the registry's service id; the name is cv_service_name's. */
typedef struct cv_cli_service {
    enum cv_service_id id;
    const char *url_env;
    const char *default_url;
} cv_cli_service;

static const cv_cli_service cv_cli_services[CV_SVC_COUNT] = {
    [CV_SVC_ACK] = {CV_SVC_ACK, "CAVRA_ACK_URL", "tcp://127.0.0.1:7101"},
    [CV_SVC_RETRY] = {CV_SVC_RETRY, "CAVRA_RETRY_URL", "tcp://127.0.0.1:7102"},
    [CV_SVC_REPORT] = {CV_SVC_REPORT, "CAVRA_REPORT_URL",
                       "tcp://127.0.0.1:7103"},
};

typedef struct cv_cli_method {
    const char *name;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
} cv_cli_method;

typedef struct cv_cli_opts {
    const char *url;
    const char *request_id;
    const char *idempotency_key;
    const char *actor;
    const char *method;
    const char *body; /* JSON text, "-" for stdin, NULL for {} */
    int timeout_ms;
    bool list;
    bool help;
} cv_cli_opts;

static void
cv_cli_usage(FILE *f)
{
    fprintf(f,
            "usage: cavra-rpc [--url URL] [--request-id ID] "
            "[--idempotency-key K]\n"
            "                 [--actor NAME] [--timeout-ms N] METHOD "
            "[JSON | -]\n"
            "       cavra-rpc --list    (the method registry)\n"
            "\n"
            "Calls one CAVRA RPC over NNG and prints the reply as JSON.\n"
            "JSON is the request message (default {}; - reads stdin).\n"
            "URL defaults to CAVRA_ACK_URL / CAVRA_RETRY_URL / "
            "CAVRA_REPORT_URL by\n"
            "METHOD's prefix, else tcp://127.0.0.1:7101 / 7102 / 7103.\n"
            "--timeout-ms defaults to %d.\n"
            "\n"
            "The NNG interface trusts its callers: --actor is sent as the\n"
            "verified actor (subject \"cli\", no roles) and no token is "
            "checked.\n"
            "Tokens are checked by the gateway only.\n"
            "\n"
            "Exit status: 0 OK, 1 error (JSON on stderr), 2 usage error.\n",
            CV_CLI_TIMEOUT_DEFAULT);
}

/* Says what is wrong with the command line; returns exit status 2. */
static int __attribute__((format(printf, 1, 2)))
cv_cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("cavra-rpc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (cavra-rpc --help)\n", stderr);
    return CV_CLI_EXIT_USAGE;
}

/* Prints {"code","detail"[,"request_id"]} on stderr; returns exit 1. */
static int
cv_cli_fail(const cv_error *err, const char *request_id)
{
    json_t *doc = json_pack("{s:s, s:s}", "code", cv_code_name(err->code),
                            "detail", err->msg);

    if (doc != NULL && request_id != NULL)
        json_object_set_new(doc, "request_id", json_string(request_id));
    if (doc == NULL || json_dumpf(doc, stderr, 0) != 0)
        fprintf(stderr, "%s: %s", cv_code_name(err->code), err->msg);
    fputc('\n', stderr);
    json_decref(doc);
    return CV_CLI_EXIT_ERROR;
}

/* ---- methods: the registry (lib/cv_method.h) plus <service>.Health ---- */

/* The service named by METHOD's prefix ("ack." ...), or NULL. */
static const cv_cli_service *
cv_cli_service_of(const char *method)
{
    const char *dot = strchr(method, '.');

    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < CV_SVC_COUNT; i++) {
        const char *name = cv_service_name(cv_cli_services[i].id);
        size_t n = strlen(name);

        if ((size_t)(dot - method) == n && strncmp(method, name, n) == 0)
            return &cv_cli_services[i];
    }
    return NULL;
}

static bool
cv_cli_is_health(const char *method, const cv_cli_service *svc)
{
    const char *name = cv_service_name(svc->id);
    size_t n = strlen(name);

    return strncmp(method, name, n) == 0 && method[n] == '.' &&
           strcmp(method + n + 1, "Health") == 0;
}

/* Finds METHOD. Returns 0 and fills out, or -1 when no service has it. */
static int
cv_cli_find_method(const char *name, cv_cli_method *out)
{
    const cv_cli_service *svc = cv_cli_service_of(name);
    const cv_method_info *m = cv_method_find(name);

    if (svc == NULL)
        return -1;
    if (m != NULL) {
        out->name = m->name;
        out->request = m->request;
        out->reply = m->reply;
        return 0;
    }
    if (cv_cli_is_health(name, svc)) {
        out->name = name;
        out->request = &cv__health_request__descriptor;
        out->reply = &cv__health_reply__descriptor;
        return 0;
    }
    return -1;
}

/* Prints one registry entry: its types, then what the registry says of
 * it (transaction, key, roles, REST binding). */
static void
cv_cli_list_method(const cv_method_info *m)
{
    char roles[160];

    cv_roles_text(m->roles, ", ", roles, sizeof(roles));
    printf("%-22s %s -> %s\n", m->name, m->request->name, m->reply->name);
    printf("    %s transaction%s%s; roles: %s%s\n", cv_tx_mode_name(m->tx),
           m->keyed ? "; takes an idempotency key" : "",
           m->stores_record ? "; stores a record" : "",
           roles[0] != '\0' ? roles : "none", /* admin may call anything */
           (m->roles & CV_ROLE_ADMIN) != 0 ? "" : " (and admin)");
    if (m->http_method != NULL && m->timeout_ms > 0)
        printf("    REST: %s %s -> %d (gateway timeout %d ms)\n",
               m->http_method, m->path, m->stores_record ? 201 : 200,
               m->timeout_ms);
    else if (m->http_method != NULL)
        printf("    REST: %s %s -> %d\n", m->http_method, m->path,
               m->stores_record ? 201 : 200);
    if (m->summary != NULL)
        printf("    %s\n", m->summary);
}

/* --list: the registry, grouped by service, then each service's Health
 * unless the registry lists it. */
static int
cv_cli_list(void)
{
    for (size_t s = 0; s < CV_SVC_COUNT; s++) {
        const char *svc = cv_service_name(cv_cli_services[s].id);
        char health[64];

        for (size_t i = 0; i < cv_method_count; i++)
            if (cv_methods[i].service == cv_cli_services[s].id)
                cv_cli_list_method(&cv_methods[i]);
        snprintf(health, sizeof(health), "%s.Health", svc);
        if (cv_method_find(health) == NULL)
            printf("%-22s %s -> %s\n    answered by every service; no "
                   "transaction; any caller\n",
                   health, cv__health_request__descriptor.name,
                   cv__health_reply__descriptor.name);
    }
    return fflush(stdout) == 0 ? 0 : CV_CLI_EXIT_ERROR;
}

/* ---- arguments ---- */

/*
 * Matches argv[*i] against "--name VALUE" or "--name=VALUE". Returns 1 with
 * *value set (and *i advanced past a separate value), 0 when argv[*i] is
 * another option, -1 when the value is missing.
 */
static int
cv_cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static bool
cv_cli_request_id_sane(const char *id)
{
    size_t n = 0;

    for (; id[n] != '\0'; n++) {
        char c = id[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("._:-", c) != NULL))
            return false;
    }
    return n >= 1 && n <= CV_CLI_REQUEST_ID_MAX;
}

/* 1..max bytes of printable ASCII; spaces only when allow_space. */
static bool
cv_cli_printable(const char *s, size_t max, bool allow_space)
{
    size_t n = strlen(s);

    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < (allow_space ? 0x20 : 0x21) || s[i] > 0x7e)
            return false;
    return true;
}

/* Fills o from argv. Returns 0, or the usage exit status after saying
 * what is wrong. */
static int
cv_cli_parse(int argc, char **argv, cv_cli_opts *o)
{
    static const char *const names[] = {"--url", "--request-id",
                                        "--idempotency-key", "--actor",
                                        "--timeout-ms"};
    const char *timeout = NULL;
    const char **slots[] = {&o->url, &o->request_id, &o->idempotency_key,
                            &o->actor, &timeout};
    bool options_done = false;
    int npos = 0;

    memset(o, 0, sizeof(*o));
    o->timeout_ms = CV_CLI_TIMEOUT_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int m = 0;

        if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
            if (npos == 0)
                o->method = a;
            else if (npos == 1)
                o->body = a;
            else
                return cv_cli_usage_error("unexpected argument %s", a);
            npos++;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "--list") == 0) {
            o->list = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = true;
            continue;
        }
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && m == 0;
             k++) {
            m = cv_cli_opt(argc, argv, &i, names[k], slots[k]);
            if (m < 0)
                return cv_cli_usage_error("%s needs a value", names[k]);
        }
        if (m == 0)
            return cv_cli_usage_error("unknown option %s", a);
    }
    if (o->help)
        return 0;
    if (o->list)
        return npos == 0 ? 0 : cv_cli_usage_error("--list takes no METHOD");
    if (o->method == NULL)
        return cv_cli_usage_error("METHOD is missing");
    if (timeout != NULL) {
        char *end;
        long t = strtol(timeout, &end, 10);

        if (end == timeout || *end != '\0' || t < 1 || t > CV_CLI_TIMEOUT_MAX)
            return cv_cli_usage_error(
                "--timeout-ms must be an integer from 1 to 3600000, not %s",
                timeout);
        o->timeout_ms = (int)t;
    }
    if (o->url != NULL && o->url[0] == '\0')
        return cv_cli_usage_error("--url is empty");
    if (o->request_id != NULL && !cv_cli_request_id_sane(o->request_id))
        return cv_cli_usage_error(
            "--request-id must be 1..128 of [A-Za-z0-9._:-]");
    if (o->idempotency_key != NULL &&
        !cv_cli_printable(o->idempotency_key, CV_CLI_IDEM_KEY_MAX, true))
        return cv_cli_usage_error(
            "--idempotency-key must be 1..255 printable ASCII characters");
    if (o->actor != NULL &&
        !cv_cli_printable(o->actor, CV_CLI_ACTOR_MAX, false))
        return cv_cli_usage_error("--actor must be 1..128 printable ASCII "
                                  "characters without spaces");
    return 0;
}

/* True when NNG can parse url (a scheme, "://", and an address). */
static bool
cv_cli_url_sane(const char *url)
{
    nng_url *u = NULL;

    if (nng_url_parse(&u, url) != 0)
        return false;
    nng_url_free(u);
    return true;
}

/* ---- the request body ---- */

/*
 * Reads the whole of f into a NUL-terminated buffer that the caller frees
 * with free(). Returns 0, or an error (a body over CV_CLI_BODY_MAX is
 * INVALID_ARGUMENT).
 */
static int
cv_cli_read_all(FILE *f, char **out, size_t *len, cv_error *err)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);

    *out = NULL;
    *len = 0;
    if (buf == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (;;) {
        size_t got;

        if (n + 1 >= cap) {
            char *nb;

            if (cap > CV_CLI_BODY_MAX) {
                free(buf);
                return cv_error_set(err, CV_INVALID_ARGUMENT,
                                    "request body is larger than %d bytes",
                                    CV_CLI_BODY_MAX);
            }
            if ((nb = realloc(buf, cap * 2)) == NULL) {
                free(buf);
                return cv_error_set(err, CV_INTERNAL, "out of memory");
            }
            buf = nb;
            cap *= 2;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "cannot read the request body from stdin");
    }
    if (n > CV_CLI_BODY_MAX) {
        free(buf);
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "request body is larger than %d bytes",
                            CV_CLI_BODY_MAX);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/*
 * Builds the request message from the body argument. Returns 0 with *out
 * (free with protobuf_c_message_free_unpacked(*out, NULL)), or
 * INVALID_ARGUMENT naming the field, as the gateway would.
 */
static int
cv_cli_request(const cv_cli_method *m, const char *body, ProtobufCMessage **out,
               cv_error *err)
{
    char *text = NULL;
    size_t len;
    int rv;

    if (body == NULL)
        return cv_json_text_to_message(m->request, "{}", 2, out, err);
    if (strcmp(body, "-") != 0) {
        len = strlen(body);
        if (len > CV_CLI_BODY_MAX)
            return cv_error_set(err, CV_INVALID_ARGUMENT,
                                "request body is larger than %d bytes",
                                CV_CLI_BODY_MAX);
        return cv_json_text_to_message(m->request, body, len, out, err);
    }
    if ((rv = cv_cli_read_all(stdin, &text, &len, err)) != 0)
        return rv;
    rv = cv_json_text_to_message(m->request, text, len, out, err);
    free(text);
    return rv;
}

/* ---- the call ---- */

/*
 * Connects to url and makes the call. Returns 0 with *reply (free with
 * protobuf_c_message_free_unpacked), or the service's or the transport's
 * code with err set.
 */
static int
cv_cli_call(const char *url, const cv_cli_method *m,
            const ProtobufCMessage *request, const cv_rpc_call_opts *opts,
            ProtobufCMessage **reply, cv_error *err)
{
    cv_rpc_client *cli = NULL;
    int connect_ms = opts->timeout_ms < CV_CLI_CONNECT_MS ? opts->timeout_ms
                                                          : CV_CLI_CONNECT_MS;
    int rv;

    *reply = NULL;
    if ((rv = cv_rpc_client_open(url, &cli, err)) == 0 &&
        (rv = cv_rpc_client_wait_connected(cli, connect_ms, err)) == 0)
        rv = cv_rpc_call(cli, m->name, request, m->reply, reply, opts, err);
    cv_rpc_client_close(cli);
    return rv;
}

/* Prints msg as indented JSON on stdout. Returns 0 or an error. */
static int
cv_cli_print_reply(const ProtobufCMessage *msg, cv_error *err)
{
    json_t *doc = cv_message_to_json(msg);
    int rv = 0;

    if (doc == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) !=
            0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        rv = cv_error_set(err, CV_INTERNAL, "cannot write the reply");
    json_decref(doc);
    return rv;
}

int
main(int argc, char **argv)
{
    Cv__Actor actor = CV__ACTOR__INIT;
    ProtobufCMessage *request = NULL, *reply = NULL;
    bool existing = false, replayed = false;
    const cv_cli_service *svc;
    const char *url;
    cv_cli_method m;
    cv_cli_opts o;
    cv_error err;
    char rid[CV_CLI_REQUEST_ID_MAX + 1];
    int rv;

    if ((rv = cv_cli_parse(argc, argv, &o)) != 0)
        return rv;
    if (o.help) {
        cv_cli_usage(stdout);
        return 0;
    }
    if (o.list)
        return cv_cli_list();
    if (cv_cli_find_method(o.method, &m) != 0)
        return cv_cli_usage_error(
            "unknown method %s; --list shows every method", o.method);
    svc = cv_cli_service_of(o.method);
    url = o.url != NULL ? o.url : getenv(svc->url_env);
    if (url == NULL || url[0] == '\0')
        url = svc->default_url;
    if (!cv_cli_url_sane(url))
        return cv_cli_usage_error("%s is not an NNG URL such as "
                                  "tcp://127.0.0.1:7101 or ipc:///path",
                                  url);

    cv_error_clear(&err);
    if (cv_cli_request(&m, o.body, &request, &err) != 0)
        return cv_cli_fail(&err, NULL);
    if (o.request_id != NULL)
        snprintf(rid, sizeof(rid), "%s", o.request_id);
    else
        cv_rpc_new_request_id(rid, sizeof(rid));
    if (o.actor != NULL) {
        /* Trusted as-is: see "Trust" at the top of this file. */
        actor.actor = (char *)o.actor;
        actor.subject = "cli";
    }
    {
        cv_rpc_call_opts opts = {
            .request_id = rid,
            .actor = o.actor != NULL ? &actor : NULL,
            .idempotency_key = o.idempotency_key,
            .timeout_ms = o.timeout_ms,
            .existing = &existing,
            .replayed = &replayed,
        };

        if (cv_cli_call(url, &m, request, &opts, &reply, &err) != 0 ||
            cv_cli_print_reply(reply, &err) != 0) {
            rv = cv_cli_fail(&err, rid);
            goto out;
        }
    }
    if (existing)
        fprintf(stderr, "cavra-rpc: existing: the reply is a record that "
                        "already existed; nothing new was stored\n");
    if (replayed)
        fprintf(stderr, "cavra-rpc: replayed: the stored reply for this "
                        "idempotency key; nothing new was stored\n");
    rv = 0;
out:
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
    protobuf_c_message_free_unpacked(request, NULL);
    return rv;
}

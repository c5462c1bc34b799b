/*
 * cv_tls.c -- TLS settings of NNG listeners and dialers (see cv_tls.h).
 */
#include "cv_tls.h"

#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
cv_tls_url(const char *url)
{
    return url != NULL && strncmp(url, "tls+tcp", 7) == 0;
}

static const char *
cv_tls_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Builds a config; own certificate optional for clients. */
static int
cv_tls_config(nng_tls_mode mode, const char *server_name, nng_tls_config **out,
              cv_error *err)
{
    const char *ca = cv_tls_env("CAVRA_TLS_CA_FILE");
    const char *cert = cv_tls_env("CAVRA_TLS_CERT_FILE");
    const char *key = cv_tls_env("CAVRA_TLS_KEY_FILE");
    nng_tls_config *cfg = NULL;
    int rv;

    *out = NULL;
    if (ca == NULL)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "tls+tcp needs CAVRA_TLS_CA_FILE (the deployment "
                            "CA)");
    if (mode == NNG_TLS_MODE_SERVER && (cert == NULL || key == NULL))
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "a tls+tcp service needs CAVRA_TLS_CERT_FILE and "
                            "CAVRA_TLS_KEY_FILE");
    if ((cert == NULL) != (key == NULL))
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "CAVRA_TLS_CERT_FILE and CAVRA_TLS_KEY_FILE go "
                            "together");
    if ((rv = nng_tls_config_alloc(&cfg, mode)) != 0)
        return cv_error_set(err, CV_INTERNAL, "TLS: %s", nng_strerror(rv));
    if ((rv = nng_tls_config_ca_file(cfg, ca)) != 0) {
        cv_error_set(err, CV_INVALID_ARGUMENT,
                     "cannot load CAVRA_TLS_CA_FILE %s: %s", ca,
                     nng_strerror(rv));
        goto fail;
    }
    if (cert != NULL) {
        /* nng wants certificate and key in one file, or both as text. */
        FILE *cf = fopen(cert, "r"), *kf = fopen(key, "r");
        char *ctext = NULL, *ktext = NULL;
        size_t clen = 0, klen = 0;

        if (cf != NULL && kf != NULL) {
            FILE *cm = open_memstream(&ctext, &clen);
            FILE *km = open_memstream(&ktext, &klen);
            int c;

            while (cm != NULL && (c = fgetc(cf)) != EOF)
                fputc(c, cm);
            while (km != NULL && (c = fgetc(kf)) != EOF)
                fputc(c, km);
            if (cm != NULL)
                fclose(cm);
            if (km != NULL)
                fclose(km);
        }
        if (cf != NULL)
            fclose(cf);
        if (kf != NULL)
            fclose(kf);
        rv = ctext != NULL && ktext != NULL
                 ? nng_tls_config_own_cert(cfg, ctext, ktext, NULL)
                 : NNG_ENOENT;
        free(ctext);
        if (ktext != NULL) {
            memset(ktext, 0, klen);
            free(ktext);
        }
        if (rv != 0) {
            cv_error_set(err, CV_INVALID_ARGUMENT,
                         "cannot load CAVRA_TLS_CERT_FILE/KEY_FILE: %s",
                         nng_strerror(rv));
            goto fail;
        }
    }
    if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
        (server_name != NULL &&
         (rv = nng_tls_config_server_name(cfg, server_name)) != 0)) {
        cv_error_set(err, CV_INTERNAL, "TLS: %s", nng_strerror(rv));
        goto fail;
    }
    *out = cfg;
    return 0;
fail:
    nng_tls_config_free(cfg);
    return err != NULL ? err->code : CV_INVALID_ARGUMENT;
}

int
cv_tls_setup_listener(nng_listener l, cv_error *err)
{
    nng_tls_config *cfg;
    int rv;

    if ((rv = cv_tls_config(NNG_TLS_MODE_SERVER, NULL, &cfg, err)) != 0)
        return rv;
    rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
    nng_tls_config_free(cfg); /* the listener holds its own reference */
    return rv == 0
               ? 0
               : cv_error_set(err, CV_INTERNAL, "TLS: %s", nng_strerror(rv));
}

int
cv_tls_setup_dialer(nng_dialer d, const char *url, cv_error *err)
{
    char host[256] = "";
    const char *p = strstr(url, "://");
    nng_tls_config *cfg;
    int rv;

    /* The service's name to verify: the URL's host, without the port. */
    if (p != NULL) {
        size_t n = strcspn(p + 3, ":/");

        if (n < sizeof(host)) {
            memcpy(host, p + 3, n);
            host[n] = '\0';
        }
    }
    if ((rv = cv_tls_config(NNG_TLS_MODE_CLIENT, host[0] ? host : NULL, &cfg,
                            err)) != 0)
        return rv;
    rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
    nng_tls_config_free(cfg);
    return rv == 0
               ? 0
               : cv_error_set(err, CV_INTERNAL, "TLS: %s", nng_strerror(rv));
}

/*
 * cv_tls.h -- NNG's TLS transport (tls+tcp://) for RPCs that cross hosts.
 *
 * Certificates come from a deployment CA (docker/README.md shows how to
 * make them). The environment names the files:
 *
 *     CAVRA_TLS_CA_FILE    the deployment CA (PEM): peers must chain to it
 *     CAVRA_TLS_CERT_FILE  this process's certificate (PEM)
 *     CAVRA_TLS_KEY_FILE   its private key (PEM)
 *
 * A service (server side) requires all three and requires clients to
 * present a certificate from the CA (mutual TLS); a caller (client side)
 * needs the CA and verifies the service's name against the URL's host,
 * and presents its own certificate when one is given. The signed envelope
 * (cv_principal.h) still says who the caller is: TLS keeps the bytes
 * private and binds the connection to the deployment.
 */
#ifndef CV_TLS_H
#define CV_TLS_H

#include <nng/nng.h>
#include <stdbool.h>

#include "cv_error.h"

/* True when url uses the TLS transport. */
bool cv_tls_url(const char *url);

/* Configures TLS on a listener (server) or dialer (client) for url from
 * the environment above. Returns 0, or CV_INVALID_ARGUMENT naming the
 * missing or unreadable setting. */
int cv_tls_setup_listener(nng_listener l, cv_error *err);
int cv_tls_setup_dialer(nng_dialer d, const char *url, cv_error *err);

#endif

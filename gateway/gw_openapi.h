/*
 * gw_openapi.h -- the OpenAPI 3 document of the REST API, generated from
 * the route table and the protobuf-c descriptors (so it cannot drift from
 * what the gateway serves).
 */
#ifndef GW_OPENAPI_H
#define GW_OPENAPI_H

#include <jansson.h>

/* Returns a new JSON document (caller json_decref's it), NULL on OOM. */
json_t *gw_openapi_document(void);

#endif

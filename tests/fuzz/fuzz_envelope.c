/*
 * fuzz_envelope.c -- libFuzzer target for the RPC envelope as a service
 * receives it: cv.RpcRequest unpack and protobuf_c_message_check, then
 * the payload unpacked and checked as the named method's request (or,
 * for an unknown name, as the request the first byte picks).
 */
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdlib.h>

#include "cv_method.h"
#include "cv_transcode.h"
#include "rpc.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const cv_method_info *m;
    const ProtobufCMessageDescriptor *desc;
    Cv__RpcRequest *req;
    ProtobufCMessage *request;
    json_t *json;

    if (size == 0 || size > 1 << 16)
        return 0;
    req = cv__rpc_request__unpack(NULL, size - 1, data + 1);
    if (req == NULL)
        return 0;
    if (!protobuf_c_message_check(&req->base) || req->method == NULL ||
        !req->has_payload) {
        cv__rpc_request__free_unpacked(req, NULL);
        return 0;
    }
    m = cv_method_find(req->method);
    desc =
        m != NULL ? m->request : cv_methods[data[0] % cv_method_count].request;
    request = protobuf_c_message_unpack(desc, NULL, req->payload.len,
                                        req->payload.data);
    if (request != NULL) {
        /* The services render checked requests into JSON records. */
        if (protobuf_c_message_check(request) &&
            (json = cv_message_to_json(request)) != NULL)
            json_decref(json);
        protobuf_c_message_free_unpacked(request, NULL);
    }
    cv__rpc_request__free_unpacked(req, NULL);
    return 0;
}

/*
 * fuzz_transcode.c -- libFuzzer target for the JSON -> protobuf
 * transcoder, over every request message in the method registry.
 *
 * The first byte picks the method, the rest is the request body. A
 * message that transcodes must pass protobuf_c_message_check, pack, unpack
 * back and render to JSON again.
 */
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdlib.h>

#include "cv_method.h"
#include "cv_transcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *desc;
    ProtobufCMessage *msg = NULL;
    ProtobufCMessage *back;
    cv_error err;
    uint8_t *buf;
    size_t len;
    json_t *json;

    if (size == 0 || size > 1 << 16)
        return 0;
    desc = cv_methods[data[0] % cv_method_count].request;
    if (cv_json_text_to_message(desc, (const char *)data + 1, size - 1, &msg,
                                &err) != 0) {
        if (msg != NULL || err.code == 0)
            abort(); /* an error leaves *out NULL and says why */
        return 0;
    }
    if (msg == NULL || !protobuf_c_message_check(msg))
        abort();
    len = protobuf_c_message_get_packed_size(msg);
    if ((buf = malloc(len + 1)) != NULL) {
        if (protobuf_c_message_pack(msg, buf) != len)
            abort();
        back = protobuf_c_message_unpack(desc, NULL, len, buf);
        if (back == NULL || !protobuf_c_message_check(back))
            abort();
        protobuf_c_message_free_unpacked(back, NULL);
        free(buf);
    }
    if ((json = cv_message_to_json(msg)) != NULL)
        json_decref(json);
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}

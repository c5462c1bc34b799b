/*
 * fuzz_checkpoint.c -- libFuzzer target for the signed-note and
 * tlog-checkpoint parsers (lib/cv_note.c), which read text from the
 * witness file, the API and auditors' files.
 *
 * Properties checked on every input:
 *  - cv_checkpoint_parse: a checkpoint it accepts formats back into a
 *    text that parses to the same checkpoint;
 *  - cv_note_verify with the fixed fuzz key: never crashes; a note it
 *    accepts has a body that is a prefix of the note and itself parses
 *    as note text;
 *  - cv_note_sign: any text it agrees to sign verifies, body intact;
 *  - cv_note_verifier_parse: never crashes; a key it accepts verifies a
 *    note signed by the fuzz key exactly when it is the fuzz key's own
 *    text (up to the case of its hex key hash).
 * Any violation aborts, which the fuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_note.h"
#include "proof_fuzz_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_checkpoint_round_trip(const char *text, size_t size)
{
    cv_checkpoint cp, back;
    char why[192];
    char *again;

    if (cv_checkpoint_parse(text, size, &cp, why, sizeof(why)) != 0)
        return;
    if ((again = cv_checkpoint_format(&cp)) == NULL) {
        fprintf(stderr, "accepted checkpoint does not format\n");
        abort();
    }
    if (cv_checkpoint_parse(again, strlen(again), &back, why, sizeof(why)) !=
            0 ||
        memcmp(&cp, &back, sizeof(cp)) != 0) {
        fprintf(stderr, "checkpoint round trip changed it: %s\n", why);
        abort();
    }
    free(again);
}

/* a and b are the same verifier key text, the hex hash (between the
 * first two '+') compared without case. */
static int
fuzz_checkpoint_same_vkey(const char *a, const char *b)
{
    int plus = 0;

    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a, y = *b;

        if (x == '+')
            plus++;
        if (plus == 1 && x >= 'A' && x <= 'F')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return *a == *b;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_note_signer *signer;
    cv_note_verifier *verifier, *other;
    char *text, *body = NULL, *note;
    char why[192], vkey[256];

    if (size > CV_NOTE_MAX_LEN + 16)
        return 0;
    proof_fuzz_key(&signer, &verifier);
    /* Exactly size bytes, no terminator: the parsers take a length. */
    if ((text = malloc(size ? size : 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    fuzz_checkpoint_round_trip(text, size);
    if (cv_note_verify(text, size, verifier, &body, why, sizeof(why)) == 0) {
        size_t blen = strlen(body);

        if (blen >= size || memcmp(body, text, blen) != 0) {
            fprintf(stderr, "verified body is not the note's prefix\n");
            abort();
        }
        fuzz_checkpoint_round_trip(body, blen);
        free(body);
    } else if (body != NULL) {
        fprintf(stderr, "failed verify left a body\n");
        abort();
    }
    free(text);

    /* The same bytes as a C string: a body to sign, a verifier key. */
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if ((note = cv_note_sign(signer, text)) != NULL) {
        if (cv_note_verify(note, strlen(note), verifier, &body, why,
                           sizeof(why)) != 0 ||
            strcmp(body, text) != 0) {
            fprintf(stderr, "signed note does not verify: %s\n", why);
            abort();
        }
        free(body);
        free(note);
    }
    if ((other = cv_note_verifier_parse(text, why, sizeof(why))) != NULL) {
        note =
            cv_note_sign(signer, "cavra.fuzz/evidence\n1\n"
                                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                                 "\n");
        if (note == NULL ||
            cv_note_signer_vkey(signer, vkey, sizeof(vkey)) < 0 ||
            (cv_note_verify(note, strlen(note), other, NULL, why,
                            sizeof(why)) == 0) !=
                fuzz_checkpoint_same_vkey(text, vkey)) {
            fprintf(stderr, "verifier key \"%s\" misjudges the fuzz key\n",
                    text);
            abort();
        }
        free(note);
        cv_note_verifier_free(other);
    }
    free(text);
    return 0;
}

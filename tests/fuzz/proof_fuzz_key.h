/*
 * proof_fuzz_key.h -- the fixed Ed25519 key of the checkpoint and proof
 * fuzz targets, so that their seed corpora can hold notes and proofs that
 * verify (the fuzzer then mutates valid inputs and reaches every check).
 * A test key, public on purpose: it signs nothing but fuzz seeds.
 *
 * proof_fuzz_signer() writes it once as a PEM file (0600, removed right
 * after loading) and returns the signer and its verifier; both live for
 * the whole process.
 */
#ifndef PROOF_FUZZ_KEY_H
#define PROOF_FUZZ_KEY_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_id.h"
#include "cv_note.h"

#define PROOF_FUZZ_ORIGIN "cavra.fuzz/evidence"
#define PROOF_FUZZ_SEED                                                        \
    "7f0c1d5e8a9b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbc"

static cv_note_signer *proof_fuzz_signer_;
static cv_note_verifier *proof_fuzz_verifier_;

/* Loads the key on the first call; aborts when it cannot (a broken
 * harness must not look like a clean run). */
static void
proof_fuzz_key(cv_note_signer **signer, cv_note_verifier **verifier)
{
    if (proof_fuzz_signer_ == NULL) {
        char path[] = "/tmp/cv-fuzz-key.XXXXXX";
        unsigned char seed[32];
        char vkey[256], why[160];
        EVP_PKEY *key;
        FILE *f;
        int fd;

        if (cv_hex_decode(PROOF_FUZZ_SEED, 32, seed) != 0 ||
            (key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
                                                32)) == NULL ||
            (fd = mkstemp(path)) < 0 || fchmod(fd, 0600) != 0 ||
            (f = fdopen(fd, "w")) == NULL ||
            PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 ||
            fclose(f) != 0)
            abort();
        EVP_PKEY_free(key);
        proof_fuzz_signer_ =
            cv_note_signer_load(path, PROOF_FUZZ_ORIGIN, why, sizeof(why));
        unlink(path);
        if (proof_fuzz_signer_ == NULL ||
            cv_note_signer_vkey(proof_fuzz_signer_, vkey, sizeof(vkey)) < 0 ||
            (proof_fuzz_verifier_ =
                 cv_note_verifier_parse(vkey, why, sizeof(why))) == NULL)
            abort();
    }
    *signer = proof_fuzz_signer_;
    *verifier = proof_fuzz_verifier_;
}

#endif

/*
 * cavra-keygen -- creates an RPC caller's Ed25519 key pair.
 *
 *     cavra-keygen NAME KEYFILE ROLES [--delegate]
 *
 * Writes the private key to KEYFILE (mode 0600; an existing file is never
 * overwritten) and prints the principals-file line that lets services
 * accept the caller:
 *
 *     NAME ed25519:<public key hex> ROLES [delegate]
 *
 * ROLES is a comma-separated list of release_manager, platform_owner,
 * executive, auditor, service, admin. --delegate lets the principal act
 * for end users (only the gateway should have it). The caller then sets
 * CAVRA_RPC_KEY_FILE=KEYFILE; services read CAVRA_PRINCIPALS_FILE.
 * Exit status: 0 written, 1 could not write, 2 usage.
 *
 *     cavra-keygen --evidence KEYFILE [ORIGIN]
 *
 * creates instead the evidence log's checkpoint signing key (docs/evidence.md,
 * mode 0600, for CAVRA_EVIDENCE_KEY_FILE) and prints its verifier key,
 * the text GET /runtime/evidence/public-key serves (ORIGIN defaults to
 * cavra.local/evidence and must match CAVRA_EVIDENCE_ORIGIN).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cv_note.h"
#include "cv_principal.h"
#include "cv_tlog.h"

int
main(int argc, char **argv)
{
    char line[256];
    bool delegate = false;
    cv_error err;

    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--evidence") == 0) {
        const char *origin = argc == 4 ? argv[3] : CV_TLOG_DEFAULT_ORIGIN;
        char why[200], vkey[512];
        cv_note_signer *s;

        if (cv_note_key_generate(argv[2], why, sizeof(why)) != 0 ||
            (s = cv_note_signer_load(argv[2], origin, why, sizeof(why))) ==
                NULL) {
            fprintf(stderr, "cavra-keygen: %s\n", why);
            return 1;
        }
        if (cv_note_signer_vkey(s, vkey, sizeof(vkey)) < 0) {
            cv_note_signer_free(s);
            return 1;
        }
        cv_note_signer_free(s);
        printf("%s\n", vkey);
        return 0;
    }
    if (argc == 5 && strcmp(argv[4], "--delegate") == 0) {
        delegate = true;
        argc--;
    }
    if (argc != 4 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: cavra-keygen NAME KEYFILE ROLES [--delegate]\n"
                "  writes KEYFILE (mode 0600) and prints the principals line\n"
                "       cavra-keygen --evidence KEYFILE [ORIGIN]\n"
                "  writes the evidence signing key, prints its verifier key\n");
        return 2;
    }
    cv_error_clear(&err);
    if (cv_identity_generate(argv[1], argv[2], argv[3], delegate, line,
                             sizeof(line), &err) != 0) {
        fprintf(stderr, "cavra-keygen: %s\n", err.msg);
        return err.code == CV_INVALID_ARGUMENT ? 2 : 1;
    }
    printf("%s\n", line);
    return 0;
}

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
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cv_principal.h"

int
main(int argc, char **argv)
{
    char line[256];
    bool delegate = false;
    cv_error err;

    if (argc == 5 && strcmp(argv[4], "--delegate") == 0) {
        delegate = true;
        argc--;
    }
    if (argc != 4 || argv[1][0] == '-') {
        fprintf(
            stderr,
            "usage: cavra-keygen NAME KEYFILE ROLES [--delegate]\n"
            "  writes KEYFILE (mode 0600) and prints the principals line\n");
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

/*
 * redact_corpus.h -- the redaction corpora shared by the unit test, the
 * end-to-end test and the fuzz seeds (docs/api.md).
 *
 * REDACT_SECRETS: text an operator might paste, by family; `secret` is
 * the substring that must not survive cv_redact(). REDACT_BENIGN: ordinary
 * operator text that must come through unchanged.
 *
 * Every token is a fake. Vendor prefixes are split into adjacent string
 * literals so that secret scanners do not flag this file.
 */
#ifndef REDACT_CORPUS_H
#define REDACT_CORPUS_H

#include <stddef.h>

typedef struct redact_case {
    const char *family;
    const char *text;
    const char *secret;
} redact_case;

/* Random-looking bodies reused by several vendor formats. */
#define RC_B36   "q7Rk2VxN9mLp4TzW8bYc3HsJ6dFg1Ae5Ku0o"
#define RC_B22   "Zt4Qm8Kp2Wx6Rv1Ny5Lb3H"
#define RC_B43   "Jq7Xv2Lm9Pk4Rw8Tz1Nb6Yc3Hs5Df0Ga2Ek7Uo9Wi4"
#define RC_HEX32 "9e107d9d372bb6826bd81d3542a419d6"
#define RC_HEX64                                                               \
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static const redact_case REDACT_SECRETS[] = {
    /* ---- name/value pairs in every spelling ---- */
    {"pair", "login failed, password=hunter2", "hunter2"},
    {"pair", "password = hunter2 then retried", "hunter2"},
    {"pair", "password:hunter2", "hunter2"},
    {"pair", "Password: \"hunter2\"", "hunter2"},
    {"pair", "passwd='hunter2' in the old config", "hunter2"},
    {"pair", "pwd=hunter2;", "hunter2"},
    {"pair", "API_KEY : 3f9a1c7e5b2d44aa", "3f9a1c7e5b2d44aa"},
    {"pair", "password\t=\thunter2", "hunter2"},
    {"pair", "mysql -u root --password=hunter2 -h db", "hunter2"},
    {"pair", "PGPASSWORD=hunter2 psql -h db", "hunter2"},
    {"pair", "client_secret=hunter2&grant_type=client_credentials", "hunter2"},
    {"pair", "\"api_key\" => \"hunter2\"", "hunter2"},
    {"pair", "creds {'token': 'hunter2'}", "hunter2"},
    {"pair", "<password>hunter2</password>", "hunter2"},
    {"json", "{\"password\": \"hunter2\"}", "hunter2"},
    {"json", "{\"password\":\"hunter2\",\"user\":\"ops\"}", "hunter2"},
    {"json-escaped", "cfg {\\\"password\\\":\\\"hunter2\\\"}", "hunter2"},
    {"json-escaped", "body=\"{\\\"api_key\\\": \\\"hunter2\\\"}\"", "hunter2"},
    {"url-encoded", "u=b&password%3Dhunter2", "hunter2"},
    {"url-encoded", "form: user%3Dops%26password%3Dhunter2%26x%3D1", "hunter2"},
    {"url-encoded", "password%3A%20hunter2", "hunter2"},
    {"yaml", "db:\n  host: db1\n  password: hunter2\n", "hunter2"},
    {"yaml", "secrets:\n  api_token: 'hunter2'\n", "hunter2"},
    {"env-file", "DB_PASSWORD=hunter2\nDB_HOST=db1\n", "hunter2"},
    {"env-file", "export API_TOKEN=\"hunter2\"", "hunter2"},
    {"header", "Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"},
    {"header", "Authorization: Bearer hunter2.abc", "hunter2"},
    {"header", "X-Api-Key: 3f9a1c7e5b2d44aa", "3f9a1c7e5b2d44aa"},
    {"header", "Cookie: session=hunter2; theme=dark", "hunter2"},
    {"header", "Proxy-Authorization: Digest username=ops, response=hunter2",
     "hunter2"},
    {"decorated", "API key: 3f9a1c7e5b2d44aa", "3f9a1c7e5b2d44aa"},
    {"decorated", "password (prod): hunter2", "hunter2"},
    {"decorated", "client secret: hunter2", "hunter2"},
    {"decorated", "Access Token = hunter2", "hunter2"},
    {"decorated", "db password [staging] := hunter2", "hunter2"},
    {"decorated", "secret key [staging] = hunter2", "hunter2"},
    {"decorated", "Slack bot token: xoxb-hunter2", "hunter2"},
    /* ---- URLs ---- */
    {"url", "https://ops:hunter2@ex.com/path", "hunter2"},
    {"url", "callback https://ex.com/cb?code=Qm9sdA1z failed", "Qm9sdA1z"},
    {"url", "https://ex.com/cb#access_token=Qm9sdA1z&state=1", "Qm9sdA1z"},
    {"url", "see https:\\/\\/ex.com\\/cb?code=Qm9sdA1z", "Qm9sdA1z"},
    {"url", "https://ex.com/caf\xc3\xa9?token=Qm9sdA1z", "Qm9sdA1z"},
    {"url", "https://ex.com/\xc3\xbc/x/cb?code=Qm9sdA1z end", "Qm9sdA1z"},
    {"url", "ftp://admin:hunter2@files.ex.com/", "hunter2"},
    {"url", "reset link: https://ex.com/reset?t=Qm9sdA1z.", "Qm9sdA1z"},
    {"url", "<a href=\"https://ex.com/x?sig=Qm9sdA1z\">x</a>", "Qm9sdA1z"},
    {"url",
     "https://hooks.slack.com/services/T024BE7LD/B01ABCD2E/"
     "XXXXXXXXXXXXXXXXXXXXXXXX",
     "XXXXXXXXXXXXXXXXXXXXXXXX"},
    {"url",
     "hooks.slack.com/services/T024BE7LD/B01ABCD2E/aB3dE5gH7jK9mN1pQ3rS5t",
     "aB3dE5gH7jK9mN1pQ3rS5t"},
    /* ---- connection strings ---- */
    {"conn", "postgres://cavra:hunter2@db:5432/cavra", "hunter2"},
    {"conn", "postgresql://u:p4ssw0rd@h/db?sslmode=require", "p4ssw0rd"},
    {"conn", "mongodb+srv://admin:hunter2@cluster0.ex.net/app", "hunter2"},
    {"conn", "redis://:hunter2@cache:6379/0", "hunter2"},
    {"conn", "host=db user=cavra password=hunter2 dbname=cavra", "hunter2"},
    {"conn", "Server=tcp:x.database.windows.net;User ID=u;Password=hunter2;",
     "hunter2"},
    {"conn",
     "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xN"
     "OcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
     "KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
     "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq"},
    /* ---- vendor tokens ---- */
    {"aws",
     "key AKIA"
     "IOSFODNN7EXAMPLE leaked",
     "IOSFODNN7EXAMPLE"},
    {"aws",
     "ASIA"
     "Y34FZKBOKMUTVV7A in the log",
     "Y34FZKBOKMUTVV7A"},
    {"aws", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI"},
    {"aws", "secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"},
    {"gcp",
     "maps key AI"
     "zaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
     "9tSrke72PouQMnMX"},
    {"gcp", "\"private_key_id\": \"" RC_HEX32 "\"", RC_HEX32},
    {"azure",
     "client secret abc8Q~"
     "aBcD.EfGh-IjKl_MnOp~QrSt.UvWx-Yz01_234",
     "aBcD.EfGh-IjKl"},
    {"azure", "sas ?sv=2022-11-02&ss=b&sig=Qm9sdA1zK2x%2Fz", "Qm9sdA1z"},
    {"github",
     "gh"
     "p_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
     "aBcDeFgHiJkLmN"},
    {"github",
     "gh"
     "o_16C7e42F292c6912E7710c838347Ae178B4a",
     "16C7e42F292c"},
    {"github",
     "gh"
     "s_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
     "aBcDeFgHiJkLmN"},
    {"github",
     "github_"
     "pat_11ABCDEFG0123456789_"
     "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRS",
     "abcdefghijklmnopqrstuvwxyz"},
    {"gitlab",
     "token glpat-"
     "xY1zA2bC3dE4fG5hI6jK",
     "xY1zA2bC3dE4fG5hI6jK"},
    {"gitlab",
     "glpat-"
     "aaaaaaaaaaaaaaaaaaaa",
     "aaaaaaaaaaaaaaaaaaaa"},
    {"slack",
     "xox"
     "b-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
     "abcdefghijklmnopqrstuvwx"},
    {"slack",
     "xox"
     "p-1234-5678-9012-abcdef123456",
     "abcdef123456"},
    {"slack",
     "xox"
     "a-2-1234567890-abcdefabcdef",
     "abcdefabcdef"},
    {"slack",
     "xox"
     "o-1234567890-abcdefabcdef",
     "abcdefabcdef"},
    {"slack",
     "xox"
     "s-1234567890-abcdefabcdef",
     "abcdefabcdef"},
    {"slack",
     "xox"
     "c-1234567890-1234567890-abcdefabcdef",
     "abcdefabcdef"},
    {"slack",
     "xox"
     "d-aBcD1234%2BeFgH%2FiJkL%3D",
     "aBcD1234"},
    {"slack",
     "xox"
     "r-1234567890-abcdefabcdef",
     "abcdefabcdef"},
    {"slack",
     "xap"
     "p-1-A0123456789-1234567890-abcdef0123",
     "abcdef0123"},
    {"stripe",
     "sk_"
     "live_" RC_B36,
     RC_B36},
    {"stripe",
     "rk_"
     "live_" RC_B36,
     RC_B36},
    {"stripe",
     "sk_"
     "test_"
     "4eC39HqLyjWDarjtT1zdp7dc",
     "4eC39HqLyjWDarjtT1zdp7dc"},
    {"stripe",
     "whsec_"
     "Mq7Rk2VxN9mLp4TzW8bYc3Hs",
     "Mq7Rk2VxN9mLp4TzW8bYc3Hs"},
    {"npm", "//registry.npmjs.org/:_authToken=npm_" RC_B36, RC_B36},
    {"npm", "npm_" RC_B36, RC_B36},
    {"pypi",
     "pypi-"
     "AgEIcHlwaS5vcmcCJGE0ZjE2ZWQ1LTFlNTAtNDk1Ny1iZjQ4LWI2ZjMyYzM1ZTI2NAACKlsz",
     "AgEIcHlwaS5vcmc"},
    {"twilio", "sid AC" RC_HEX32, RC_HEX32},
    {"twilio", "api key SK" RC_HEX32, RC_HEX32},
    {"sendgrid", "SG." RC_B22 "." RC_B43, RC_B43},
    {"jwt",
     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
     "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
     "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"},
    {"jwt", "id_token eyJhbGciOiJub25lIn0.eyJzdWIiOiJvcHMifQ.",
     "eyJzdWIiOiJvcHMifQ"},
    /* ---- PEM private keys ---- */
    {"pem",
     "-----BEGIN RSA PRIVATE "
     "KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n"
     "Z1BjP5CE/Wm/Rr500P\n-----END RSA PRIVATE KEY-----\n",
     "Z1BjP5CE"},
    {"pem",
     "key: -----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA "
     "-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAAA"},
    {"pem", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n", "MHcCAQEEIBkg"},
    {"pem",
     "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\nkqhkiG9w0\\n-----END "
     "PRIVATE KEY-----",
     "kqhkiG9w0"},
    /* ---- long high-entropy strings ---- */
    {"entropy", "digest " RC_HEX64 " mismatch", RC_HEX64},
    {"entropy", "value da39a3ee5e6b4b0d3255bfef95601890afd80709 rejected",
     "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
    {"entropy", "blob dGhpcyBpcyBhIHZlcnkgc2VjcmV0IHBhc3N3b3JkIGluZGVlZA==",
     "dGhpcyBpcyBhIHZlcnkgc2VjcmV0IHBhc3N3b3JkIGluZGVlZA"},
    {"entropy", "failed-with-key-" RC_B36, RC_B36},
    {"entropy", "k=" RC_B43 "&x", RC_B43},
};

static const char *const REDACT_BENIGN[] = {
    "INC-123 rollback complete",
    "Escalated OPS-4521 to tier 2; see ticket #4521.",
    "see https://status.example.com/incidents/123",
    "https://github.com/org/repo/pull/1234 merged",
    "runbook: https://docs.example.com/runbooks/db-failover#step-3",
    "db-primary-01.eu-west-1.rds.amazonaws.com is healthy",
    "api.payments.svc.cluster.local:8443 answered 503",
    "commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 reverted the change",
    "reverted in commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "commit 9fceb02 fixed it",
    "deployed v2.14.3-rc.1 (build 20241205.3)",
    "go1.22.4, openssl 3.0.13, kernel 6.1.0-18-amd64",
    "Retry after the provider's 503; next attempt at 2026-12-05T02:00:00Z.",
    "The password policy requires rotation every 90 days.",
    "token bucket refilled after the burst",
    "Use Bearer token authentication for the API.",
    "Basic troubleshooting steps were followed.",
    "rotate the api key tomorrow",
    "plan 3fa85f64-5717-4562-b3fc-2c963f66afa6 retried",
    "gordackrecoveryesc-0123456789abcdef is open",
    "pod payments-api-7d9f8c6b5-x2k4q restarted twice",
    "paged oncall@example.com and the SRE channel #ops-recovery",
    "IP 10.0.3.17:5432 unreachable; IPv6 fe80::1 fine",
    "/var/log/nginx/error.log shows upstream timeouts",
    "Mean latency 245ms, p99 1.2s, error rate 0.3%",
    "Customer account ACME-EU-0042 affected",
    "password reset email sent to the user",
    "CVE-2024-3094 patched on all hosts",
    "key rotation done for service account payments-sa",
    "Sessions were dropped during the failover.",
    "arn:aws:iam::123456789012:role/ops-recovery assumed",
    "Error: connection refused (ECONNREFUSED) 127.0.0.1:6379",
    "auth service returned 401 for 3 minutes",
    "author: jane, reviewer: omar",
    "region=eu-west-1 cluster=prod-2 replicas=3",
    "Node.js 20.11.1 and Python 3.12 in the image",
    "Stripe charge ch_3MmlLrLkdIwHu7ix0snN0B refunded",
    "the AKIA key was rotated yesterday",
    "Sent hugs xoxo to the team",
    "Fixed by rolling back to release-2024.12.01",
    "Webhook delivery to https://hooks.example.com/recovery timed out",
    "SELECT count(*) FROM attempts returned 0",
    "Duration: 00:14:32 (14 minutes)",
    ("https://github.com/org/repo/commit/"
     "9fceb02d0ae598e95dc970b74767f19372d61af8"),
    "secret: REDACTED",
    "Temperature of rack B12 nominal",
};

#define REDACT_SECRETS_N (sizeof(REDACT_SECRETS) / sizeof(REDACT_SECRETS[0]))
#define REDACT_BENIGN_N  (sizeof(REDACT_BENIGN) / sizeof(REDACT_BENIGN[0]))

#endif

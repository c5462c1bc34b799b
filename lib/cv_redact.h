/*
 * cv_redact.h -- public-safety scanner for free text (docs/api.md).
 *
 * Before any free-text field is stored it passes through cv_redact():
 *  - URL query strings become "?REDACTED" (the fragment is dropped too);
 *  - URL user-info ("https://user:pw@host") is dropped;
 *  - "Bearer <x>" and "Basic <x>" credentials become "Bearer REDACTED";
 *  - "name: value" / "name=value" pairs whose name looks like a secret
 *    (authorization, api-key, api_key, apikey, token, secret, password,
 *    passwd, pwd, access_key, private_key, client_secret, session, cookie,
 *    signature, x-api-key, ...) keep the name and get the value REDACTED;
 *    Names may be quoted (also JSON-escaped \"name\"), URL-encoded
 *    (password%3Dx), XML (<password>x</password>), two words ("API key")
 *    or decorated ("password (prod): x");
 *  - PEM private key blocks lose their body; webhook URLs whose path is
 *    the secret (hooks.slack.com/services/...) lose the path;
 *  - long high-entropy tokens become REDACTED: 32+ chars of base64/hex/
 *    url-safe alphabet mixing character classes, AWS keys (AKIA/ASIA +16),
 *    Slack tokens (xox[abcdeoprs]-...), GitHub tokens (ghp_/gho_/ghs_...,
 *    github_pat_), GitLab glpat-, GCP AIza, Stripe sk_/rk_live_, npm_,
 *    pypi-, Twilio AC/SK+32 hex, SendGrid SG., Azure client secrets,
 *    JWTs (eyJ...).
 * A git object id right after "commit"/"revision" is public and kept.
 * Ordinary prose, ids such as "gordackrecoveryesc-0123456789abcdef",
 * provider names and short numbers are left alone.
 */
#ifndef CV_REDACT_H
#define CV_REDACT_H

/*
 * Returns a malloc'd redacted copy of text (caller frees with free()), or
 * NULL when text is NULL or out of memory. When count is not NULL, the
 * number of redactions applied is ADDED to *count.
 */
char *cv_redact(const char *text, int *count);

#endif

/*
 * gw_console.h -- serves the Evidence Console: GET / is index.html, and
 * GET /console/<name> the page's assets, from the console folder shipped
 * with the gateway (no CDN, no internet).
 */
#ifndef GW_CONSOLE_H
#define GW_CONSOLE_H

#include <stddef.h>

/*
 * Looks url up in the console folder dir. Returns 0 with *text (malloc'd,
 * caller frees with free(); MHD_RESPMEM_MUST_FREE takes it), *len and the
 * content type; -1 when url is not a console file.
 */
int gw_console_lookup(const char *dir, const char *url, char **text,
                      size_t *len, const char **type);

#endif

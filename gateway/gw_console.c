/*
 * gw_console.c -- static files of the Evidence Console.
 *
 * Only names of [a-z0-9._-] directly inside the folder are served, so no
 * URL can reach outside it.
 */
#include "gw_console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_CONSOLE_FILE_MAX (2 * 1024 * 1024)

static const char *
gw_console_type(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot == NULL)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    if (strcmp(dot, ".json") == 0)
        return "application/json";
    return "application/octet-stream";
}

static int
gw_console_name_ok(const char *name)
{
    if (name[0] == '\0' || name[0] == '.' || strlen(name) > 64)
        return 0;
    for (const char *p = name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

int
gw_console_lookup(const char *dir, const char *url, char **text, size_t *len,
                  const char **type)
{
    const char *name;
    char path[1024];
    FILE *f;
    long size;

    if (dir == NULL)
        return -1;
    if (strcmp(url, "/") == 0 || strcmp(url, "/console") == 0 ||
        strcmp(url, "/console/") == 0)
        name = "index.html";
    else if (strncmp(url, "/console/", 9) == 0)
        name = url + 9;
    else
        return -1;
    if (!gw_console_name_ok(name))
        return -1;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        size > GW_CONSOLE_FILE_MAX || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    if ((*text = malloc((size_t)size + 1)) == NULL) {
        fclose(f);
        return -1;
    }
    *len = fread(*text, 1, (size_t)size, f);
    fclose(f);
    *type = gw_console_type(name);
    return 0;
}

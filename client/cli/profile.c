/*
 * profile.c - client profiles (profile.h).
 */
#include "profile.h"

#include "parley.h"
#include "timefmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest config file read: a few contexts are a few hundred bytes. */
#define S_CONFIG_MAX (256 * 1024)

int
cli_config_path(char *buf, size_t cap)
{
    const char *env = getenv("PARLEY_CONFIG");
    int n;
    if (env != NULL && *env != '\0')
        n = snprintf(buf, cap, "%s", env);
    else if ((env = getenv("XDG_CONFIG_HOME")) != NULL && env[0] == '/')
        n = snprintf(buf, cap, "%s/parley/config", env);
    else if ((env = getenv("HOME")) != NULL && *env != '\0')
        n = snprintf(buf, cap, "%s/.config/parley/config", env);
    else
        return -1;
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int
s_fail(char *err, size_t cap, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
s_fail(char *err, size_t cap, const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, cap, "%s:%d: ", path, line);
    if (n >= 0 && (size_t)n < cap) {
        va_start(ap, fmt);
        vsnprintf(err + n, cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * A path setting as the file means it: "~/x" under $HOME, an absolute
 * path as it is, a relative one beside the config file. Returns a heap
 * string or NULL.
 */
static char *
s_path_value(const char *value, const char *config_path)
{
    char *out = NULL;
    if (value[0] == '~' && value[1] == '/') {
        const char *home = getenv("HOME");
        if (home == NULL || *home == '\0')
            return NULL;
        if (asprintf(&out, "%s%s", home, value + 1) < 0)
            return NULL;
        return out;
    }
    const char *slash = strrchr(config_path, '/');
    if (value[0] == '/' || slash == NULL)
        return strdup(value);
    if (asprintf(&out, "%.*s/%s", (int)(slash - config_path), config_path,
                 value) < 0)
        return NULL;
    return out;
}

/* Store a string setting once: a second one is an error. */
static int
s_set_once(char **field, char *value, char *err, size_t cap, const char *path,
           int line, const char *key)
{
    if (value == NULL)
        return s_fail(err, cap, path, line, "out of memory");
    if (*field != NULL) {
        free(value);
        return s_fail(err, cap, path, line, "\"%s\" given twice in one context",
                      key);
    }
    *field = value;
    return 0;
}

/* Apply one "key value" line to context x. */
static int
s_setting(cli_context_t *x, const char *key, const char *value,
          const char *path, int line, char *err, size_t cap)
{
    if (strcmp(key, "server") == 0)
        return s_set_once(&x->server, strdup(value), err, cap, path, line, key);
    if (strcmp(key, "key") == 0)
        return s_set_once(&x->key, s_path_value(value, path), err, cap, path,
                          line, key);
    if (strcmp(key, "keyring") == 0)
        return s_set_once(&x->keyring, s_path_value(value, path), err, cap,
                          path, line, key);
    if (strcmp(key, "curve-server-key") == 0)
        return s_set_once(&x->curve_server_key, s_path_value(value, path), err,
                          cap, path, line, key);
    if (strcmp(key, "curve-key") == 0)
        return s_set_once(&x->curve_key, s_path_value(value, path), err, cap,
                          path, line, key);
    if (strcmp(key, "timeout") == 0) {
        int64_t ms;
        if (cli_parse_duration(value, 1, &ms) < 0 || ms <= 0 || ms > 86400000)
            return s_fail(err, cap, path, line,
                          "timeout: \"%s\" is not a duration such as 5 or 2.5s",
                          value);
        x->timeout_ms = (int)ms;
        return 0;
    }
    return s_fail(err, cap, path, line,
                  "unknown setting \"%s\" (a context takes server, key, "
                  "keyring, curve-server-key, curve-key and timeout)",
                  key);
}

int
cli_config_parse(const char *text, const char *path, cli_config_t *out,
                 char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if ((out->path = strdup(path)) == NULL)
        return s_fail(err, cap, path, 0, "out of memory");
    int line = 0;
    for (const char *p = text; *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char buf[1024], *key, *value, *save = NULL;
        line++;
        if (len >= sizeof(buf))
            return s_fail(err, cap, path, line, "line longer than %zu bytes",
                          sizeof(buf) - 1);
        memcpy(buf, p, len);
        buf[len] = '\0';
        p = end != NULL ? end + 1 : p + len;
        key = strtok_r(buf, " \t\r", &save);
        if (key == NULL || key[0] == '#')
            continue;
        value = strtok_r(NULL, " \t\r", &save);
        char *extra = strtok_r(NULL, " \t\r", &save);
        if (value == NULL)
            return s_fail(err, cap, path, line, "\"%s\" needs a value", key);
        if (extra != NULL && extra[0] != '#')
            return s_fail(err, cap, path, line,
                          "\"%s\": one value expected, found \"%s\" after it "
                          "(an endpoint list is one value: EP,EP)",
                          key, extra);
        if (strcmp(key, "default-context") == 0) {
            if (out->default_context != NULL)
                return s_fail(err, cap, path, line,
                              "default-context given twice");
            if ((out->default_context = strdup(value)) == NULL)
                return s_fail(err, cap, path, line, "out of memory");
            continue;
        }
        if (strcmp(key, "context") == 0) {
            if (!parley_slug_valid(value))
                return s_fail(err, cap, path, line,
                              "context name \"%s\" is not a slug "
                              "([a-z0-9][a-z0-9-]{0,31})",
                              value);
            if (cli_config_find(out, value) != NULL)
                return s_fail(err, cap, path, line,
                              "context \"%s\" defined twice", value);
            cli_context_t *grown =
                realloc(out->contexts, (out->n + 1) * sizeof(*grown));
            if (grown == NULL)
                return s_fail(err, cap, path, line, "out of memory");
            out->contexts = grown;
            memset(&grown[out->n], 0, sizeof(grown[0]));
            grown[out->n].line = line;
            if ((grown[out->n].name = strdup(value)) == NULL)
                return s_fail(err, cap, path, line, "out of memory");
            out->n++;
            continue;
        }
        if (out->n == 0)
            return s_fail(err, cap, path, line,
                          "\"%s\" before any \"context NAME\" line", key);
        if (s_setting(&out->contexts[out->n - 1], key, value, path, line, err,
                      cap)
            < 0)
            return -1;
    }
    if (out->default_context != NULL
        && cli_config_find(out, out->default_context) == NULL)
        return s_fail(err, cap, path, line,
                      "default-context \"%s\" is not defined in the file",
                      out->default_context);
    return 0;
}

int
cli_config_load(const char *path, cli_config_t *out, char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        if (e == ENOENT)
            return -ENOENT;
        snprintf(err, cap, "%s: %s", path, strerror(e));
        return -1;
    }
    char *text = malloc(S_CONFIG_MAX + 1);
    size_t n = text != NULL ? fread(text, 1, S_CONFIG_MAX + 1, f) : 0;
    int bad = text == NULL || ferror(f);
    fclose(f);
    if (bad || n > S_CONFIG_MAX || memchr(text, '\0', n) != NULL) {
        snprintf(err, cap, "%s: %s", path,
                 text == NULL ? "out of memory"
                 : bad        ? "read error"
                 : n > S_CONFIG_MAX ? "larger than 256 KiB"
                                    : "holds a NUL byte");
        free(text);
        return -1;
    }
    text[n] = '\0';
    int rc = cli_config_parse(text, path, out, err, cap);
    free(text);
    return rc;
}

const cli_context_t *
cli_config_find(const cli_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->contexts[i].name, name) == 0)
            return &cfg->contexts[i];
    return NULL;
}

void
cli_config_free(cli_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n; i++) {
        cli_context_t *x = &cfg->contexts[i];
        free(x->name);
        free(x->server);
        free(x->key);
        free(x->keyring);
        free(x->curve_server_key);
        free(x->curve_key);
    }
    free(cfg->contexts);
    free(cfg->default_context);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

/*
 * webhook.h - the webhook handler of `parley sub --webhook URL`: one HTTP
 * request per attempt, made with libcurl, in the body format of the tool
 * that receives it.
 *
 * Every request carries "Idempotency-Key: <daemon id>/<seq>" (the same
 * for every attempt of an update, so a receiver can drop repeats) and the
 * --header lines. TLS certificates are verified (libcurl's default, never
 * turned off), only http and https are allowed, redirects are not
 * followed, and the proxy comes from the environment (http_proxy,
 * https_proxy, no_proxy), as libcurl reads it. A 2xx answer is success;
 * any other answer, a refused connection or a timeout is a failed
 * attempt, retried by the alert path (alert.h).
 *
 * Body formats (docs/alerts.md shows each):
 *   json        the --json object of the update (with signed_body and
 *               signature, so the receiver can verify it)
 *   slack       {"text": LINE}, LINE escaped for Slack (& < >)
 *   mattermost  {"text": LINE}
 *   matrix      PUT URL/TXNID {"msgtype": "m.notice", "body": LINE}, the
 *               transaction id made from the Idempotency-Key
 *   ntfy        the headline (and body) as text, with Title, Tags and
 *               (for decisive statuses) Priority headers
 *   teams       an Adaptive Card message (Teams workflow webhooks)
 * where LINE is the update as `parley sub` prints it, without the time:
 *   #<seq> <negotiation> phase <n> [<parties>] <status>: <headline>
 */
#ifndef PARLEY_CLI_WEBHOOK_H
#define PARLEY_CLI_WEBHOOK_H

#include "alert.h"

typedef enum {
    CLI_HOOK_JSON = 0,
    CLI_HOOK_SLACK,
    CLI_HOOK_MATTERMOST,
    CLI_HOOK_MATRIX,
    CLI_HOOK_NTFY,
    CLI_HOOK_TEAMS,
} cli_hook_format_t;

/* The format names, "json|slack|...", for messages. */
extern const char cli_hook_formats[];

/* Parse a --webhook-format name. 0 or -1. */
int cli_hook_format_parse(const char *name, cli_hook_format_t *out);

/* Most request headers: ours and the --header lines. */
#define CLI_HOOK_HEADERS_MAX 40

/* One request, as it goes out. */
typedef struct cli_hook_request {
    char *url;                          /* heap */
    const char *method;                 /* "POST" or "PUT" */
    char *body;                         /* heap, body_len bytes */
    size_t body_len;
    char *headers[CLI_HOOK_HEADERS_MAX]; /* heap "Name: value" */
    size_t n_headers;
} cli_hook_request_t;

/*
 * Build the request for update d in format fmt to url, with the
 * Idempotency-Key key and the extra headers ("Name: value", n of them,
 * which replace ours of the same name).
 *
 * Returns:   0 or -ENOMEM (-EINVAL for too many headers).
 * Ownership: free with cli_hook_request_free(), also after a failure.
 * Threads:   safe.
 */
int cli_hook_request(cli_hook_format_t fmt, const char *url,
                     const parley_delivery_t *d, const char *key,
                     char *const *extra, size_t n_extra,
                     cli_hook_request_t *out);

/* Free a request's strings; it is empty afterwards. */
void cli_hook_request_free(cli_hook_request_t *r);

/*
 * Check a --header argument: "Name: value" or "Name:value", a token
 * name, no CR or LF. Returns 0 with the normalised "Name: value" in a
 * heap string *out, or -1.
 */
int cli_hook_header_parse(const char *arg, char **out);

/* The handler state; see cli_webhook_init(). */
typedef struct cli_webhook cli_webhook_t;

/* The handler operations for cli_alerts_init(). */
extern const cli_handler_ops_t cli_webhook_ops;

/*
 * Make the handler: requests to url in format fmt, with the extra
 * headers, each attempt limited to timeout_ms (connecting to 10 s at
 * most), up to max_jobs at once.
 *
 * Returns:   the handler, or NULL with errno set (EINVAL: a URL that is
 *            not http:// or https://; ENOMEM; EIO: libcurl failed).
 * Ownership: extra is borrowed; free with cli_webhook_free().
 */
cli_webhook_t *cli_webhook_new(const char *url, cli_hook_format_t fmt,
                               char *const *extra, size_t n_extra,
                               int timeout_ms, int max_jobs);

/* Requests sent (attempts started). */
unsigned long cli_webhook_sent(const cli_webhook_t *w);

/* Free the handler; requests under way are abandoned. Accepts NULL. */
void cli_webhook_free(cli_webhook_t **w);

#endif /* PARLEY_CLI_WEBHOOK_H */

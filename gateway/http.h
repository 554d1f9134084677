/*
 * http.h - what http.c and sse.c share: the per-request context and the
 * helpers that make answers with the gateway's headers.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "gateway.h"

#include <microhttpd.h>

/* A request being handled (libmicrohttpd's con_cls). */
typedef struct gw_req {
    gw_t *gw;
    struct MHD_Connection *conn;
    gw_route_t route;
    bool post;                     /* POST /v1/updates */
    bool too_large;                /* its body passed max_request_bytes */
    char *body;                    /* POST body so far */
    size_t body_len;
    gw_query_t query;              /* GET /v1/updates waiting for a replay */
    bool waiting;                  /* suspended until answer is set */
    uint64_t request_id;           /* publish: the forwarder's id */
    struct gw_req *next_publishing;
    struct MHD_Response *answer;   /* made while suspended */
    unsigned answer_status;
} gw_req_t;

/*
 * Add the headers every answer carries (no caching of API answers,
 * nosniff, no referrer; CORS when configured). Returns 0 or -ENOMEM.
 */
int gw_http_headers(const gw_t *gw, struct MHD_Response *r, bool api);

/*
 * Queue a JSON error answer: {"error":CODE,"message":TEXT} with status.
 * Counts the status. Returns libmicrohttpd's result.
 */
enum MHD_Result gw_http_error(gw_t *gw, struct MHD_Connection *c,
                              unsigned status, const char *code,
                              const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Queue r with status, count it, and release the caller's reference. */
enum MHD_Result gw_http_queue(gw_t *gw, struct MHD_Connection *c,
                              unsigned status, struct MHD_Response *r);

/* Make a response owning the bytes data (freed with free()); NULL on
 * failure (data is freed). type is the Content-Type. */
struct MHD_Response *gw_http_owned(gw_t *gw, char *data, size_t len,
                                   const char *type, bool api);

/* The connection counts as having sent a whole request (its header
 * deadline is over). */
void gw_http_request_complete(gw_t *gw, struct MHD_Connection *c);

#endif /* GW_HTTP_H */

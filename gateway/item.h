/*
 * item.h - an update (or a gap) as the gateway holds it: the fields that
 * filters and the state look at, and the forms it is sent in, made once
 * and shared by the window, the state and every client.
 *
 * An update's JSON is the delivery's JSON (docs/protocol.md section 12)
 * with "signed_body" and "signature" beside the decoded fields, so that
 * a reader checks the signature itself (docs/http.md). Its SSE frame is
 *   id: SEQ \n event: update \n data: JSON \n \n
 * and the JSON is a slice of the frame. A gap (updates the daemon no
 * longer holds) is
 *   id: LAST \n event: gap \n data: {"from":FIRST,"to":LAST} \n \n
 */
#ifndef GW_ITEM_H
#define GW_ITEM_H

#include "parley.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GW_ITEM_UPDATE = 1,
    GW_ITEM_GAP = 2,
} gw_item_type_t;

typedef struct gw_item {
    gw_item_type_t type;
    unsigned refs;          /* holders; freed at 0 (main thread only) */
    uint64_t seq;           /* UPDATE: its seq; GAP: the first seq gone */
    uint64_t seq_last;      /* UPDATE: seq; GAP: the last seq gone */
    parley_kind_t kind;     /* UPDATE */
    uint32_t phase;         /* UPDATE */
    int64_t expires_at;     /* UPDATE: unix ms, 0 = never */
    char negotiation[PARLEY_SLUG_MAX + 1];
    size_t n_parties;
    char parties[PARLEY_PARTIES_MAX][PARLEY_SLUG_MAX + 1];
    char *frame;            /* the SSE frame */
    size_t frame_len;
    size_t json_off;        /* the JSON inside the frame */
    size_t json_len;
} gw_item_t;

/*
 * Make the item of a verified delivery (one reference).
 *
 * Returns:   the item, or NULL with errno set (ENOMEM, or EPROTO for a
 *            delivery the library could not render).
 * Ownership: the caller's reference; drop it with gw_item_unref().
 * Threads:   safe (workers make items; only the main thread shares them).
 */
gw_item_t *gw_item_update(const parley_delivery_t *d);

/* Make the item of a gap from..to (one reference); NULL with errno ENOMEM. */
gw_item_t *gw_item_gap(uint64_t from, uint64_t to);

/* Take one more reference. */
void gw_item_ref(gw_item_t *it);

/* Drop a reference (accepts NULL); the last one frees the item. */
void gw_item_unref(gw_item_t *it);

/* Bytes an item holds, for the window's budget. */
size_t gw_item_bytes(const gw_item_t *it);

/* The JSON of an update, or of a gap's {"from","to"}. */
static inline const char *
gw_item_json(const gw_item_t *it)
{
    return it->frame + it->json_off;
}

#endif /* GW_ITEM_H */

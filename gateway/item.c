/*
 * item.c - making the forms of an update once: JSON with the signed bytes
 * beside the decoded fields, and the SSE frame around it.
 */
#include "item.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The delivery's JSON with the envelope's JSON form merged in (its
 * "signer" is the same value as the delivery's). Returns a string to
 * free() or NULL with errno set.
 */
static char *
s_update_json(const parley_delivery_t *d)
{
    size_t env_len = 0;
    const void *env = parley_delivery_envelope(d, &env_len);
    char *dj = parley_delivery_to_json(d);
    char *ej = env != NULL ? parley_envelope_to_json(env, env_len) : NULL;
    json_t *o = dj != NULL ? json_loads(dj, 0, NULL) : NULL;
    json_t *e = ej != NULL ? json_loads(ej, 0, NULL) : NULL;
    char *out = NULL;
    if (o != NULL && e != NULL && json_object_update(o, e) == 0)
        out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int err = out != NULL ? 0 : (dj == NULL || ej == NULL ? errno : EPROTO);
    json_decref(o);
    json_decref(e);
    free(dj);
    free(ej);
    if (out == NULL)
        errno = err != 0 ? err : ENOMEM;
    return out;
}

/* Put "id: ID\nevent: EVENT\ndata: JSON\n\n" into a new item's frame. */
static int
s_frame(gw_item_t *it, const char *event, uint64_t id, const char *json)
{
    char head[80];
    int h = snprintf(head, sizeof(head), "id: %" PRIu64 "\nevent: %s\ndata: ",
                     id, event);
    size_t jl = strlen(json);
    it->frame = malloc((size_t)h + jl + 3);
    if (it->frame == NULL)
        return -ENOMEM;
    memcpy(it->frame, head, (size_t)h);
    memcpy(it->frame + h, json, jl);
    memcpy(it->frame + h + jl, "\n\n", 3);
    it->frame_len = (size_t)h + jl + 2;
    it->json_off = (size_t)h;
    it->json_len = jl;
    return 0;
}

gw_item_t *
gw_item_update(const parley_delivery_t *d)
{
    const parley_update_t *u = parley_delivery_update(d);
    gw_item_t *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return NULL;
    it->type = GW_ITEM_UPDATE;
    it->refs = 1;
    it->seq = it->seq_last = parley_delivery_seq(d);
    it->kind = parley_update_kind(u);
    it->phase = parley_update_phase(u);
    it->expires_at = parley_update_expires_at(u);
    snprintf(it->negotiation, sizeof(it->negotiation), "%s",
             parley_update_negotiation(u));
    it->n_parties = parley_update_party_count(u);
    if (it->n_parties > PARLEY_PARTIES_MAX)
        it->n_parties = PARLEY_PARTIES_MAX;
    for (size_t i = 0; i < it->n_parties; i++)
        snprintf(it->parties[i], sizeof(it->parties[i]), "%s",
                 parley_update_party(u, i));
    char *json = s_update_json(d);
    if (json == NULL || s_frame(it, "update", it->seq, json) < 0) {
        int err = json == NULL ? errno : ENOMEM;
        free(json);
        free(it);
        errno = err;
        return NULL;
    }
    free(json);
    return it;
}

gw_item_t *
gw_item_gap(uint64_t from, uint64_t to)
{
    char json[64];
    gw_item_t *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return NULL;
    it->type = GW_ITEM_GAP;
    it->refs = 1;
    it->seq = from;
    it->seq_last = to;
    snprintf(json, sizeof(json), "{\"from\":%" PRIu64 ",\"to\":%" PRIu64 "}",
             from, to);
    if (s_frame(it, "gap", to, json) < 0) {
        free(it);
        errno = ENOMEM;
        return NULL;
    }
    return it;
}

void
gw_item_ref(gw_item_t *it)
{
    it->refs++;
}

void
gw_item_unref(gw_item_t *it)
{
    if (it == NULL || --it->refs > 0)
        return;
    free(it->frame);
    free(it);
}

size_t
gw_item_bytes(const gw_item_t *it)
{
    return sizeof(*it) + it->frame_len + 1;
}

/*
 * update.c - the opaque update, delivery and event types: constructors,
 * setters and getters.
 *
 * Setters check what a field can be checked for alone, so a program
 * learns at once which value is wrong; the rules that span fields are
 * parley_update_validate()'s (validate.c).
 */
#include "entries.h"
#include "types.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ update */

parley_update_t *
parley_update_new(void)
{
    parley_update_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        errno = ENOMEM;
    return u;
}

parley_update_t *
parley_update_dup(const parley_update_t *u)
{
    if (u == NULL) {
        errno = -PARLEY_EARG;
        return NULL;
    }
    parley_update_t *copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(copy, u, sizeof(*copy));
    return copy;
}

void
parley_update_destroy(parley_update_t **u)
{
    if (u == NULL || *u == NULL)
        return;
    free(*u);
    *u = NULL;
}

void
parley_update_reset(parley_update_t *u)
{
    if (u != NULL)
        memset(u, 0, sizeof(*u));
}

/* Copy text into a fixed field if it is valid UTF-8 of at most max bytes. */
static int
s_set_text(char *dst, size_t max, const char *text)
{
    if (text == NULL)
        return PARLEY_EARG;
    if (!parley__utf8_valid(text, max))
        return PARLEY_EINVALID;
    memcpy(dst, text, strlen(text) + 1);
    return 0;
}

int
parley_update_set_negotiation(parley_update_t *u, const char *slug)
{
    if (u == NULL || slug == NULL)
        return PARLEY_EARG;
    if (!parley_slug_valid(slug))
        return PARLEY_EINVALID;
    strcpy(u->negotiation, slug);
    return 0;
}

int
parley_update_add_party(parley_update_t *u, const char *slug)
{
    if (u == NULL || slug == NULL)
        return PARLEY_EARG;
    if (!parley_slug_valid(slug) || u->n_parties >= PARLEY_PARTIES_MAX)
        return PARLEY_EINVALID;
    for (size_t i = 0; i < u->n_parties; i++)
        if (strcmp(u->parties[i], slug) == 0)
            return PARLEY_EINVALID;
    strcpy(u->parties[u->n_parties++], slug);
    return 0;
}

void
parley_update_clear_parties(parley_update_t *u)
{
    if (u == NULL)
        return;
    memset(u->parties, 0, sizeof(u->parties));
    u->n_parties = 0;
}

int
parley_update_set_phase(parley_update_t *u, uint32_t phase)
{
    if (u == NULL)
        return PARLEY_EARG;
    if (phase > PARLEY_PHASE_MAX)
        return PARLEY_EINVALID;
    u->phase = phase;
    return 0;
}

int
parley_update_set_status(parley_update_t *u, parley_status_t status)
{
    if (u == NULL)
        return PARLEY_EARG;
    if (parley_status_name(status) == NULL)
        return PARLEY_EINVALID;
    u->status = status;
    return 0;
}

int
parley_update_set_kind(parley_update_t *u, parley_kind_t kind)
{
    if (u == NULL)
        return PARLEY_EARG;
    if (parley_kind_name(kind) == NULL)
        return PARLEY_EINVALID;
    u->kind = kind;
    return 0;
}

int
parley_update_add_reference(parley_update_t *u, uint64_t seq)
{
    if (u == NULL)
        return PARLEY_EARG;
    if (seq == 0 || seq > (uint64_t)INT64_MAX
        || u->n_references >= PARLEY_REFERENCES_MAX)
        return PARLEY_EINVALID;
    u->references[u->n_references++] = seq;
    return 0;
}

void
parley_update_clear_references(parley_update_t *u)
{
    if (u == NULL)
        return;
    memset(u->references, 0, sizeof(u->references));
    u->n_references = 0;
}

int
parley_update_set_headline(parley_update_t *u, const char *text)
{
    return u == NULL ? PARLEY_EARG
                     : s_set_text(u->headline, PARLEY_HEADLINE_MAX, text);
}

int
parley_update_set_body(parley_update_t *u, const char *text)
{
    return u == NULL ? PARLEY_EARG : s_set_text(u->body, PARLEY_BODY_MAX, text);
}

int
parley_update_set_location(parley_update_t *u, const char *text)
{
    return u == NULL ? PARLEY_EARG
                     : s_set_text(u->location, PARLEY_LOCATION_MAX, text);
}

/* Set a time field that may not be negative. */
static int
s_set_time(parley_update_t *u, int64_t *field, int64_t ms)
{
    if (u == NULL)
        return PARLEY_EARG;
    if (ms < 0)
        return PARLEY_EINVALID;
    *field = ms;
    return 0;
}

int
parley_update_set_scheduled_at(parley_update_t *u, int64_t ms)
{
    return s_set_time(u, u != NULL ? &u->scheduled_at : NULL, ms);
}

int
parley_update_set_issued_at(parley_update_t *u, int64_t ms)
{
    return s_set_time(u, u != NULL ? &u->issued_at : NULL, ms);
}

int
parley_update_set_expires_at(parley_update_t *u, int64_t ms)
{
    return s_set_time(u, u != NULL ? &u->expires_at : NULL, ms);
}

int
parley_update_set_signer_seq(parley_update_t *u, uint64_t signer_seq)
{
    if (u == NULL)
        return PARLEY_EARG;
    if (signer_seq > (uint64_t)INT64_MAX)
        return PARLEY_EINVALID;
    u->signer_seq = signer_seq;
    return 0;
}

const char *
parley_update_negotiation(const parley_update_t *u)
{
    return u != NULL ? u->negotiation : "";
}

size_t
parley_update_party_count(const parley_update_t *u)
{
    return u != NULL && u->n_parties <= PARLEY_PARTIES_MAX ? u->n_parties : 0;
}

const char *
parley_update_party(const parley_update_t *u, size_t i)
{
    return i < parley_update_party_count(u) ? u->parties[i] : NULL;
}

uint32_t
parley_update_phase(const parley_update_t *u)
{
    return u != NULL ? u->phase : 0;
}

parley_status_t
parley_update_status(const parley_update_t *u)
{
    return u != NULL ? u->status : PARLEY_STATUS_UNSPECIFIED;
}

parley_kind_t
parley_update_kind(const parley_update_t *u)
{
    return u != NULL ? u->kind : PARLEY_KIND_UPDATE;
}

size_t
parley_update_reference_count(const parley_update_t *u)
{
    return u != NULL && u->n_references <= PARLEY_REFERENCES_MAX
               ? u->n_references
               : 0;
}

uint64_t
parley_update_reference(const parley_update_t *u, size_t i)
{
    return i < parley_update_reference_count(u) ? u->references[i] : 0;
}

const char *
parley_update_headline(const parley_update_t *u)
{
    return u != NULL ? u->headline : "";
}

const char *
parley_update_body(const parley_update_t *u)
{
    return u != NULL ? u->body : "";
}

const char *
parley_update_location(const parley_update_t *u)
{
    return u != NULL ? u->location : "";
}

int64_t
parley_update_scheduled_at(const parley_update_t *u)
{
    return u != NULL ? u->scheduled_at : 0;
}

int64_t
parley_update_issued_at(const parley_update_t *u)
{
    return u != NULL ? u->issued_at : 0;
}

int64_t
parley_update_expires_at(const parley_update_t *u)
{
    return u != NULL ? u->expires_at : 0;
}

uint64_t
parley_update_signer_seq(const parley_update_t *u)
{
    return u != NULL ? u->signer_seq : 0;
}

/* ============================================================== delivery */

parley_delivery_t *
parley_delivery_new(void)
{
    parley_delivery_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        errno = ENOMEM;
    return d;
}

void
parley__delivery_release(parley_delivery_t *d)
{
    if (d->envelope_cap > 0)
        free(d->envelope);
    d->envelope = NULL;
    d->envelope_len = d->envelope_cap = 0;
}

int
parley__delivery_set_envelope(parley_delivery_t *d, const void *env,
                              size_t len)
{
    if (d->envelope_cap < len || d->envelope_cap == 0) {
        size_t cap = len > 256 ? len : 256;
        uint8_t *buf = d->envelope_cap > 0 ? realloc(d->envelope, cap)
                                           : malloc(cap);
        if (buf == NULL)
            return -ENOMEM;
        d->envelope = buf;
        d->envelope_cap = cap;
    }
    if (len > 0)
        memcpy(d->envelope, env, len);
    d->envelope_len = len;
    return 0;
}

/* Copy the NUL-terminated string src into dst (as large as src's field). */
static void
s_copy_str(char *dst, const char *src)
{
    memcpy(dst, src, strlen(src) + 1);
}

void
parley__delivery_move(parley_delivery_t *dst, parley_delivery_t *src)
{
    dst->seq = src->seq;
    dst->received_at = src->received_at;
    memcpy(dst->signer, src->signer, sizeof(dst->signer));
    s_copy_str(dst->signer_id, src->signer_id);
    s_copy_str(dst->signer_name, src->signer_name);
    parley_update_t *du = &dst->update;
    const parley_update_t *su = &src->update;
    s_copy_str(du->negotiation, su->negotiation);
    du->n_parties = su->n_parties;
    for (size_t i = 0; i < su->n_parties && i < PARLEY_PARTIES_MAX; i++)
        s_copy_str(du->parties[i], su->parties[i]);
    du->phase = su->phase;
    du->status = su->status;
    du->kind = su->kind;
    du->n_references = su->n_references;
    if (su->n_references > 0 && su->n_references <= PARLEY_REFERENCES_MAX)
        memcpy(du->references, su->references,
               su->n_references * sizeof(du->references[0]));
    s_copy_str(du->headline, su->headline);
    s_copy_str(du->body, su->body);
    s_copy_str(du->location, su->location);
    du->scheduled_at = su->scheduled_at;
    du->issued_at = su->issued_at;
    du->signer_seq = su->signer_seq;
    du->expires_at = su->expires_at;
    /* The envelopes change hands: each buffer stays with one owner. */
    uint8_t *env = dst->envelope;
    size_t env_cap = dst->envelope_cap;
    dst->envelope = src->envelope;
    dst->envelope_len = src->envelope_len;
    dst->envelope_cap = src->envelope_cap;
    src->envelope = env;
    src->envelope_len = 0;
    src->envelope_cap = env_cap;
}

parley_delivery_t *
parley_delivery_dup(const parley_delivery_t *d)
{
    if (d == NULL) {
        errno = -PARLEY_EARG;
        return NULL;
    }
    parley_delivery_t *copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(copy, d, sizeof(*copy));
    copy->envelope = NULL;
    copy->envelope_len = copy->envelope_cap = 0;
    if (d->envelope != NULL
        && parley__delivery_set_envelope(copy, d->envelope, d->envelope_len)
               < 0) {
        free(copy);
        errno = ENOMEM;
        return NULL;
    }
    return copy;
}

void
parley_delivery_destroy(parley_delivery_t **d)
{
    if (d == NULL || *d == NULL)
        return;
    parley__delivery_release(*d);
    free(*d);
    *d = NULL;
}

uint64_t
parley_delivery_seq(const parley_delivery_t *d)
{
    return d != NULL ? d->seq : 0;
}

int64_t
parley_delivery_received_at(const parley_delivery_t *d)
{
    return d != NULL ? d->received_at : 0;
}

const uint8_t *
parley_delivery_signer(const parley_delivery_t *d)
{
    return d != NULL ? d->signer : NULL;
}

const char *
parley_delivery_signer_id(const parley_delivery_t *d)
{
    return d != NULL ? d->signer_id : "";
}

const char *
parley_delivery_signer_name(const parley_delivery_t *d)
{
    return d != NULL ? d->signer_name : "";
}

const parley_update_t *
parley_delivery_update(const parley_delivery_t *d)
{
    return d != NULL ? &d->update : NULL;
}

const void *
parley_delivery_envelope(const parley_delivery_t *d, size_t *len)
{
    if (len != NULL)
        *len = d != NULL ? d->envelope_len : 0;
    return d != NULL && d->envelope_len > 0 ? d->envelope : NULL;
}

/* ================================================================= event */

void
parley__event_set(parley_event_t *ev, parley_event_type_t type, uint64_t seq)
{
    ev->type = type;
    ev->seq = ev->seq_last = seq;
    ev->code = 0;
    ev->endpoint = NULL;
    ev->entries = NULL;
    ev->n_entries = 0;
    free(ev->evidence);
    ev->evidence = NULL;
    parley_checkpoint_destroy(&ev->checkpoint);
}

void
parley__event_release(parley_event_t *ev)
{
    parley__delivery_release(&ev->delivery);
    free(ev->evidence);
    ev->evidence = NULL;
    parley_checkpoint_destroy(&ev->checkpoint);
}

parley_event_type_t
parley_event_type(const parley_event_t *ev)
{
    return ev != NULL ? ev->type : (parley_event_type_t)0;
}

const parley_delivery_t *
parley_event_delivery(const parley_event_t *ev)
{
    return ev != NULL && ev->type == PARLEY_EVENT_DELIVERY ? &ev->delivery
                                                           : NULL;
}

uint64_t
parley_event_seq(const parley_event_t *ev)
{
    return ev != NULL ? ev->seq : 0;
}

uint64_t
parley_event_seq_last(const parley_event_t *ev)
{
    return ev != NULL ? ev->seq_last : 0;
}

int
parley_event_code(const parley_event_t *ev)
{
    return ev != NULL ? ev->code : 0;
}

const char *
parley_event_endpoint(const parley_event_t *ev)
{
    return ev != NULL ? ev->endpoint : NULL;
}

const char *
parley_event_evidence(const parley_event_t *ev)
{
    return ev != NULL ? ev->evidence : NULL;
}

const parley_checkpoint_t *
parley_event_checkpoint(const parley_event_t *ev)
{
    return ev != NULL ? ev->checkpoint : NULL;
}

size_t
parley_event_entry_count(const parley_event_t *ev)
{
    return ev != NULL && ev->type == PARLEY_EVENT_DELIVERY ? ev->n_entries
                                                           : 0;
}

int
parley_event_entry(const parley_event_t *ev, size_t i,
                   const char **negotiation, const char **party,
                   uint32_t *phase)
{
    if (i >= parley_event_entry_count(ev))
        return PARLEY_EARG;
    const parley__state_key_t *k = &ev->entries[i];
    parley__state_key_out(k, negotiation, party, phase);
    return 0;
}

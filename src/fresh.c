/* fresh.c - intake's reading of new JSON events, kept for the forwarder
 * (see fresh.h).
 *
 * A ring of entries in id order (the order of the puts), so a take is a
 * binary search and the entries the forwarder has taken or that grew old
 * leave from the front. Each entry keeps only what the envelope takes from
 * a parse: one bit per detail present and their text packed in one block.
 *
 * Must not: hand an entry over for bytes other than those it was put for,
 * or grow past FRESH_MAX entries. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fresh.h"

struct entry {
	int64_t	 id;
	int64_t	 put_ms;
	uint64_t hash;
	size_t	 len;
	uint32_t present;	/* bit d: detail d is in blob */
	unsigned char json_object;
	unsigned char taken;
	char	*blob;		/* the present details, each NUL-ended */
};

struct fresh {
	pthread_mutex_t mu;
	struct entry *ring;	/* FRESH_MAX */
	size_t	 head, n;
	int64_t	 last_id;
};

_Static_assert(EVENT_DETAIL_COUNT <= 32, "one bit per detail in present");

/* Not a defence against anyone: ids and lengths already match; this tells
 * a row from another database at the path from the one intake read. */
static uint64_t
body_hash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15u ^ (uint64_t)n, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 32;
	}
	w = 0;
	if (n > i)
		memcpy(&w, s + i, n - i);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
	return h ^ (h >> 29);
}

struct fresh *
fresh_new(void)
{
	struct fresh *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	/* calloc'd pages are touched only as the ring reaches them */
	c->ring = calloc(FRESH_MAX, sizeof(*c->ring));
	if (c->ring == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c->ring);
		free(c);
		return NULL;
	}
	return c;
}

static struct entry *
at(struct fresh *c, size_t i)
{
	return &c->ring[(c->head + i) % FRESH_MAX];
}

/* Drops from the front what was taken, and what is older than the age
 * limit when now_ms >= 0. */
static void
trim(struct fresh *c, int64_t now_ms)
{
	struct entry *e;

	while (c->n > 0) {
		e = at(c, 0);
		if (!e->taken && (now_ms < 0 ||
		    now_ms - e->put_ms <= FRESH_MAX_AGE_MS))
			break;
		free(e->blob);
		memset(e, 0, sizeof(*e));
		c->head = (c->head + 1) % FRESH_MAX;
		c->n--;
	}
}

void
fresh_free(struct fresh *c)
{
	if (c == NULL)
		return;
	while (c->n > 0) {
		at(c, 0)->taken = 1;
		trim(c, -1);
	}
	(void)pthread_mutex_destroy(&c->mu);
	free(c->ring);
	free(c);
}

/* The present details packed in one block; NULL when none is present or
 * on no memory (then *present is 0: the entry says nothing). */
static char *
pack(const struct event *ev, uint32_t *present)
{
	size_t d, total = 0, k, off = 0;
	char *blob;

	*present = 0;
	for (d = 0; d < EVENT_DETAIL_COUNT; d++) {
		if (ev->detail[d] != NULL)
			total += strlen(ev->detail[d]) + 1;
	}
	if (total == 0 || (blob = malloc(total)) == NULL)
		return NULL;
	for (d = 0; d < EVENT_DETAIL_COUNT; d++) {
		if (ev->detail[d] == NULL)
			continue;
		k = strlen(ev->detail[d]) + 1;
		memcpy(blob + off, ev->detail[d], k);
		off += k;
		*present |= 1u << d;
	}
	return blob;
}

void
fresh_put(struct fresh *c, int64_t id, const char *body, size_t len,
    const struct event *ev, int64_t now_ms)
{
	struct entry e;
	int any = 0;
	size_t d;

	if (c == NULL || ev->format != EVENT_JSON)
		return;
	memset(&e, 0, sizeof(e));
	e.id = id;
	e.put_ms = now_ms;
	e.len = len;
	e.hash = body_hash(body, len);
	e.json_object = ev->json_object != 0;
	for (d = 0; d < EVENT_DETAIL_COUNT; d++)
		any |= ev->detail[d] != NULL;
	e.blob = pack(ev, &e.present);
	if (any && e.blob == NULL)
		return;		/* no memory: the forwarder parses */
	(void)pthread_mutex_lock(&c->mu);
	trim(c, now_ms);
	if (id > c->last_id && c->n < FRESH_MAX) {
		*at(c, c->n) = e;
		c->n++;
		c->last_id = id;
		e.blob = NULL;
	}
	(void)pthread_mutex_unlock(&c->mu);
	free(e.blob);
}

/* The index of id among the n entries (ids grow from the front), or n. */
static size_t
find(struct fresh *c, int64_t id)
{
	size_t lo = 0, hi = c->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (at(c, mid)->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && at(c, lo)->id == id ? lo : c->n;
}

/* *ret from an entry (its details copied). */
static int
unpack(const struct entry *e, struct event *ret)
{
	const char *p = e->blob;
	size_t d;

	memset(ret, 0, sizeof(*ret));
	ret->format = EVENT_JSON;
	ret->json_object = e->json_object;
	for (d = 0; d < EVENT_DETAIL_COUNT; d++) {
		if ((e->present & (1u << d)) == 0)
			continue;
		ret->detail[d] = strdup(p);
		if (ret->detail[d] == NULL) {
			event_done(ret);
			return -1;
		}
		p += strlen(p) + 1;
	}
	return 0;
}

int
fresh_take(struct fresh *c, int64_t id, const char *body, size_t len,
    struct event *ret)
{
	struct entry *slot;
	uint64_t hash;
	char *blob = NULL;
	size_t i;
	int rc = -1;

	if (c == NULL)
		return -1;
	if (body == NULL)
		len = 0;
	hash = body_hash(body != NULL ? body : "", len);
	(void)pthread_mutex_lock(&c->mu);
	i = find(c, id);
	if (i < c->n && !(slot = at(c, i))->taken) {
		/* taken whether it matches or not: it never will later */
		if (slot->len == len && slot->hash == hash)
			rc = unpack(slot, ret);
		blob = slot->blob;
		slot->blob = NULL;
		slot->taken = 1;
		trim(c, -1);
	}
	(void)pthread_mutex_unlock(&c->mu);
	free(blob);
	return rc;
}

size_t
fresh_count(struct fresh *c)
{
	size_t n;

	(void)pthread_mutex_lock(&c->mu);
	n = c->n;
	(void)pthread_mutex_unlock(&c->mu);
	return n;
}

/* lg_stats.c - counts and exact latency percentiles of a load generator run.
 * Pure: no I/O and no clock; latencies arrive measured. */
#include <stdlib.h>
#include <string.h>

#include "lg_stats.h"

void
lg_stats_init(struct lg_stats *s)
{
	memset(s, 0, sizeof(*s));
}

void
lg_stats_done(struct lg_stats *s)
{
	if (s == NULL)
		return;
	free(s->lat_ns);
	s->lat_ns = NULL;
	s->n = s->cap = 0;
}

static int
reserve(struct lg_stats *s, size_t more)
{
	size_t cap = s->cap != 0 ? s->cap : 4096;
	uint64_t *p;

	if (more > LG_SAMPLES_MAX - s->n)
		return 1;		/* full: the caller marks truncated */
	while (cap < s->n + more)
		cap *= 2;
	if (cap == s->cap)
		return 0;
	p = realloc(s->lat_ns, cap * sizeof(*p));
	if (p == NULL)
		return -1;
	s->lat_ns = p;
	s->cap = cap;
	return 0;
}

int
lg_stats_response(struct lg_stats *s, unsigned status, const char *body,
    size_t body_len, uint64_t latency_ns)
{
	int r;

	s->responses++;
	if (status < LG_STATUS_MAX)
		s->status[status]++;
	if (status == 200) {
		/* The daemon's two answers (DESIGN "HTTP behaviour"); any
		 * other 200 is counted apart so that the row check stays exact. */
		if (memmem(body, body_len, "\"result\":\"new\"", 14) != NULL)
			s->fresh++;
		else if (memmem(body, body_len, "\"result\":\"duplicate\"", 20)
		    != NULL)
			s->dup++;
		else
			s->ok_other++;
	}
	r = reserve(s, 1);
	if (r == 1) {
		s->truncated = 1;
		return 0;
	}
	if (r == -1)
		return -1;
	s->lat_ns[s->n++] = latency_ns;
	s->sorted = 0;
	return 0;
}

int
lg_stats_merge(struct lg_stats *dst, const struct lg_stats *src)
{
	size_t i, take;
	int r;

	dst->responses += src->responses;
	dst->fresh += src->fresh;
	dst->dup += src->dup;
	dst->ok_other += src->ok_other;
	dst->errors += src->errors;
	dst->timeouts += src->timeouts;
	dst->reconnects += src->reconnects;
	dst->sent_dup += src->sent_dup;
	dst->sent_form += src->sent_form;
	for (i = 0; i < LG_STATUS_MAX; i++)
		dst->status[i] += src->status[i];
	dst->truncated |= src->truncated;
	take = src->n;
	r = reserve(dst, take);
	if (r == -1)
		return -1;
	if (r == 1) {
		dst->truncated = 1;
		take = LG_SAMPLES_MAX - dst->n;
		if (take != 0 && reserve(dst, take) != 0)
			return -1;
	}
	if (take != 0)
		memcpy(dst->lat_ns + dst->n, src->lat_ns, take * sizeof(uint64_t));
	dst->n += take;
	dst->sorted = 0;
	return 0;
}

uint64_t
lg_stats_non200(const struct lg_stats *s)
{
	return s->responses - s->status[200];
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t
lg_stats_percentile(struct lg_stats *s, unsigned per_10000)
{
	uint64_t rank;

	if (s->n == 0)
		return 0;
	if (!s->sorted) {
		qsort(s->lat_ns, s->n, sizeof(uint64_t), cmp_u64);
		s->sorted = 1;
	}
	/* Nearest rank: the smallest sample with at least p of all at or
	 * below it. */
	rank = ((uint64_t)s->n * per_10000 + 9999) / 10000;
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->lat_ns[rank - 1];
}

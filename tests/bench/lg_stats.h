/* lg_stats.h - what one load generator thread saw: responses by outcome and
 * every latency, so percentiles are exact (sorted samples, not buckets).
 * Owned by one thread while it runs; merged by main afterwards. */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stddef.h>
#include <stdint.h>

#define LG_STATUS_MAX	600	/* codes 100..599; anything else is an error */
/* Ceiling on samples per thread (8 bytes each): far above any bench run
 * (a 5 s run at 100k req/s keeps 500k); past it `truncated` is set. */
#define LG_SAMPLES_MAX	((size_t)16 * 1024 * 1024)

struct lg_stats {
	uint64_t	 responses;	/* complete HTTP responses, any status */
	uint64_t	 fresh;		/* 200 {"result":"new"} */
	uint64_t	 dup;		/* 200 {"result":"duplicate"} */
	uint64_t	 ok_other;	/* 200 with neither result */
	uint64_t	 errors;	/* requests that got no complete response */
	uint64_t	 timeouts;	/* of which: no answer within the timeout */
	uint64_t	 reconnects;	/* connections opened after the first */
	uint64_t	 sent_dup;	/* requests that re-sent an acknowledged id */
	uint64_t	 sent_form;	/* requests with a form body */
	uint64_t	 status[LG_STATUS_MAX];
	uint64_t	*lat_ns;	/* one per response */
	size_t		 n, cap;
	int		 truncated;
	int		 sorted;
};

/* Empty statistics; allocates nothing. */
void	lg_stats_init(struct lg_stats *);
/* Frees the samples. NULL-safe. */
void	lg_stats_done(struct lg_stats *);
/* Counts one complete response: its status, whether a 200 said new or
 * duplicate, and its latency. -1 on no memory (the counts are kept). */
int	lg_stats_response(struct lg_stats *, unsigned status,
	    const char *body, size_t body_len, uint64_t latency_ns);
/* Adds src's counts and samples to dst. -1 on no memory. */
int	lg_stats_merge(struct lg_stats *dst, const struct lg_stats *src);
/* Responses whose status is not 200. */
uint64_t lg_stats_non200(const struct lg_stats *);
/* Nearest-rank percentile of the latencies in ns (per_10000: 9900 is p99,
 * 10000 the maximum), 0 when there are none. Sorts the samples on first use. */
uint64_t lg_stats_percentile(struct lg_stats *, unsigned per_10000);

#endif

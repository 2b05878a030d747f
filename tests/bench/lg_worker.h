/* lg_worker.h - one load generator thread: its connections, each with one
 * request in flight, in a closed loop or at a fixed rate.
 *
 * main fills a plan, starts the workers, and meets them at two barriers:
 * after `connected` (every worker has opened its connections or failed) it
 * sets start_ns/end_ns (or abort), and after `go` the workers run. The plan
 * is read-only for the workers except the two atomic counters. */
#ifndef LG_WORKER_H
#define LG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lg_conn.h"
#include "lg_stats.h"

struct lg_plan {
	struct lg_target target;
	const unsigned char *key;	/* the signing secret */
	size_t		 key_len;
	unsigned	 threads;
	unsigned	 conns;		/* per thread */
	double		 dup_ratio;	/* share re-sending an acknowledged id */
	double		 form_ratio;	/* share of new events sent as forms */
	int64_t		 interval_ns;	/* per thread between sends; 0: closed
					 * loop */
	int64_t		 timeout_ns;	/* per request */
	uint64_t	 max_requests;	/* over all threads; 0: until end_ns */
	int64_t		 start_ns;	/* CLOCK_MONOTONIC */
	int64_t		 end_ns;	/* no request starts after it; 0: none */
	int		 abort;		/* a worker failed to set up */
	_Atomic uint64_t issued;	/* requests started, all threads */
	_Atomic uint64_t next_id;	/* the next new event's id */
	pthread_barrier_t connected, go;
};

struct lg_worker {
	struct lg_plan	*plan;
	unsigned	 index;
	pthread_t	 thread;
	struct lg_stats	 stats;		/* the worker's own; read after join */
	int64_t		 first_ns;	/* first and last response (monotonic) */
	int64_t		 last_ns;
	int		 failed;	/* set-up failed; the reason in err */
	char		 err[256];
};

/* Monotonic clock in ns. */
int64_t	lg_now_ns(void);
/* The thread body: arg is a struct lg_worker. Returns NULL. */
void	*lg_worker_run(void *arg);

#endif

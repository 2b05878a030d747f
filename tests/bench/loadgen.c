/* loadgen.c - HTTP load generator for cfhookd: N threads x M keep-alive
 * connections posting signed Cashfree webhooks, one request in flight per
 * connection, for a duration or a request count, closed loop or at a fixed
 * rate. Reports counts by outcome and exact latency percentiles.
 *
 *   loadgen -s SECRET_FILE [options] http://HOST:PORT/PATH
 *   loadgen --sign-cost N -s SECRET_FILE
 *
 * Requests are built and signed on the fly (lg_req.c); --sign-cost measures
 * what that costs per request, to show it is not what limits a run. Only
 * libc and libcrypto: no HTTP library between the numbers and the socket.
 *
 * Output: a human line, then one machine-readable line starting "LOADGEN "
 * of key=value pairs (see report()). Exit 0 when the run happened (errors
 * are counted, not fatal), 1 on bad usage, 2 when it could not run. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lg_conn.h"
#include "lg_req.h"
#include "lg_stats.h"
#include "lg_worker.h"

#define THREADS_MAX	64
#define CONNS_MAX	10000	/* per thread */
#define SECRET_MAX	1024

struct opts {
	unsigned	 threads, conns;
	double		 seconds, rate, dup, form, timeout_s;
	unsigned long long requests, id_base, sign_cost;
	const char	*secret_file, *unix_path, *url;
	int		 quiet;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: loadgen -s SECRET_FILE [options] http://HOST:PORT/PATH\n"
	    "       loadgen -s SECRET_FILE --sign-cost N\n"
	    "  -t, --threads N      threads [2]\n"
	    "  -c, --conns N        keep-alive connections per thread [32]\n"
	    "  -d, --duration S     seconds of load [5]\n"
	    "  -n, --requests N     stop after N requests instead\n"
	    "  -r, --rate R         requests per second over all threads\n"
	    "                       (latency from when each was due) [0: "
	    "closed loop]\n"
	    "  -D, --dup F          share of requests re-sending an "
	    "acknowledged id [0]\n"
	    "  -f, --form F         share of new events sent as form "
	    "bodies [0]\n"
	    "  -s, --secret-file F  signing secret (first line that is not "
	    "blank or #)\n"
	    "  -U, --unix PATH      connect to this unix socket (the URL "
	    "gives Host, path)\n"
	    "  -i, --id-base N      first cf_payment_id [wall clock in "
	    "us]\n"
	    "  -T, --timeout S      per request [30]\n"
	    "  -q, --quiet          only the LOADGEN line\n"
	    "      --sign-cost N    time building and signing N requests, "
	    "then exit\n");
}

static int
parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int
parse_ull(const char *s, unsigned long long lo, unsigned long long hi,
    unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned long long v;

	if (parse_ull(s, lo, hi, &v) == -1)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
parse_opt(struct opts *o, int ch, const char *arg)
{
	switch (ch) {
	case 't': return parse_uint(arg, 1, THREADS_MAX, &o->threads);
	case 'c': return parse_uint(arg, 1, CONNS_MAX, &o->conns);
	case 'd': return parse_double(arg, 0.001, 86400, &o->seconds);
	case 'n': return parse_ull(arg, 1, 1ULL << 40, &o->requests);
	case 'r': return parse_double(arg, 0, 1e7, &o->rate);
	case 'D': return parse_double(arg, 0, 1, &o->dup);
	case 'f': return parse_double(arg, 0, 1, &o->form);
	case 'T': return parse_double(arg, 0.001, 3600, &o->timeout_s);
	case 'i': return parse_ull(arg, 1, 1ULL << 62, &o->id_base);
	case 'S': return parse_ull(arg, 1, 100000000, &o->sign_cost);
	case 's': o->secret_file = arg; return 0;
	case 'U': o->unix_path = arg; return 0;
	case 'q': o->quiet = 1; return 0;
	default: return -1;
	}
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "conns", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "dup", required_argument, NULL, 'D' },
		{ "form", required_argument, NULL, 'f' },
		{ "secret-file", required_argument, NULL, 's' },
		{ "unix", required_argument, NULL, 'U' },
		{ "id-base", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "sign-cost", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "t:c:d:n:r:D:f:s:U:i:T:qh", longs,
	    NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			exit(0);
		}
		if (parse_opt(o, ch, optarg) == -1) {
			if (ch != '?')
				fprintf(stderr, "loadgen: bad value for -%c: "
				    "'%s'\n", ch, optarg);
			return -1;
		}
	}
	if (o->secret_file == NULL) {
		fprintf(stderr, "loadgen: -s SECRET_FILE is required\n");
		return -1;
	}
	if (o->sign_cost != 0)
		return optind == argc ? 0 : -1;
	if (optind != argc - 1) {
		fprintf(stderr, "loadgen: one URL expected\n");
		return -1;
	}
	o->url = argv[optind];
	return 0;
}

/* The first line that is neither blank nor a # comment, trimmed, as
 * cfhookd reads its secret file. */
static int
read_secret(const char *path, char *out, size_t cap, size_t *len)
{
	char line[SECRET_MAX + 2];
	FILE *fp;
	char *p;
	size_t n;
	int rc = -1;

	fp = fopen(path, "re");
	if (fp == NULL) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		p = line;
		n = strlen(p);
		while (n > 0 && strchr(" \t\r\n", p[n - 1]) != NULL)
			n--;
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		if (n == 0 || *p == '#')
			continue;
		if (n > cap)
			break;
		memcpy(out, p, n);
		*len = n;
		rc = 0;
		break;
	}
	OPENSSL_cleanse(line, sizeof(line));
	(void)fclose(fp);
	if (rc == -1)
		fprintf(stderr, "loadgen: %s: no usable secret\n", path);
	return rc;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int64_t
wall_minus_mono_ns(void)
{
	struct timespec w;

	(void)clock_gettime(CLOCK_REALTIME, &w);
	return (int64_t)w.tv_sec * 1000000000LL + w.tv_nsec - lg_now_ns();
}

static double
us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

/* The human line, then the LOADGEN line that scripts parse: every count
 * (non-200 statuses as status_NNN=), latencies in us, the generator's own
 * CPU per response, and the wall-clock ms of the first and last response. */
static void
report(const struct opts *o, struct lg_stats *s, double secs, double cpu_s,
    int64_t first_ms, int64_t last_ms)
{
	double rps = secs > 0 ? (double)s->responses / secs : 0;
	double cpu_us = s->responses ? cpu_s * 1e6 / (double)s->responses : 0;
	unsigned i;

	if (!o->quiet)
		printf("loadgen: %u x %u connections, %.2f s: %llu responses, "
		    "%.1f req/s; 200 new %llu, 200 duplicate %llu, 200 other "
		    "%llu, non-200 %llu, errors %llu; latency p50 %.3f ms, "
		    "p90 %.3f ms, p99 %.3f ms, max %.3f ms\n", o->threads,
		    o->conns, secs, (unsigned long long)s->responses, rps,
		    (unsigned long long)s->fresh, (unsigned long long)s->dup,
		    (unsigned long long)s->ok_other,
		    (unsigned long long)lg_stats_non200(s),
		    (unsigned long long)s->errors,
		    us(lg_stats_percentile(s, 5000)) / 1000,
		    us(lg_stats_percentile(s, 9000)) / 1000,
		    us(lg_stats_percentile(s, 9900)) / 1000,
		    us(lg_stats_percentile(s, 10000)) / 1000);
	printf("LOADGEN threads=%u conns=%u requests=%llu seconds=%.3f "
	    "rps=%.1f new=%llu duplicate=%llu ok_other=%llu non200=%llu "
	    "errors=%llu timeouts=%llu reconnects=%llu sent_dup=%llu "
	    "sent_form=%llu p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f "
	    "gen_cpu_us=%.2f first_ms=%lld last_ms=%lld truncated=%d",
	    o->threads, o->threads * o->conns,
	    (unsigned long long)s->responses, secs, rps,
	    (unsigned long long)s->fresh, (unsigned long long)s->dup,
	    (unsigned long long)s->ok_other,
	    (unsigned long long)lg_stats_non200(s),
	    (unsigned long long)s->errors, (unsigned long long)s->timeouts,
	    (unsigned long long)s->reconnects,
	    (unsigned long long)s->sent_dup, (unsigned long long)s->sent_form,
	    us(lg_stats_percentile(s, 5000)), us(lg_stats_percentile(s, 9000)),
	    us(lg_stats_percentile(s, 9900)), us(lg_stats_percentile(s, 10000)),
	    cpu_us, (long long)first_ms, (long long)last_ms, s->truncated);
	for (i = 0; i < LG_STATUS_MAX; i++)
		if (i != 200 && s->status[i] != 0)
			printf(" status_%u=%llu", i,
			    (unsigned long long)s->status[i]);
	printf("\n");
}

/* Builds and signs n JSON requests; prints the cost per request and of the
 * HMAC alone, after checking the reused key context against a one-shot
 * HMAC (a wrong signature here would make every figure meaningless). */
static int
sign_cost(const unsigned char *key, size_t klen, unsigned long long n)
{
	char req[LG_REQ_MAX], body[LG_REQ_MAX], sig[45], want[45];
	unsigned char mac[32];
	struct lg_req_key *k = lg_req_key_new(key, klen);
	size_t blen = lg_req_body(1, LG_REQ_JSON, body, sizeof(body)), mlen;
	unsigned long long i;
	int64_t t0, t1, t2;
	int rc = 2;

	/* Twice: the second MAC re-uses the keyed context, as every request
	 * of a run does. */
	if (k == NULL || blen == 0 ||
	    lg_req_sign(k, "1", 1, body, blen, sig) == -1 ||
	    lg_req_sign(k, "1746427759733", 13, body, blen, sig) == -1)
		goto out;
	/* One-shot over the concatenation, done the slow, obvious way. */
	memmove(body + 13, body, blen);
	memcpy(body, "1746427759733", 13);
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen,
	    (unsigned char *)body, blen + 13, mac, sizeof(mac), &mlen) == NULL ||
	    EVP_EncodeBlock((unsigned char *)want, mac, 32) != 44 ||
	    strcmp(sig, want) != 0) {
		fprintf(stderr, "loadgen: signature self-check failed\n");
		goto out;
	}
	t0 = lg_now_ns();
	for (i = 0; i < n; i++)
		if (lg_req_build(k, "localhost", "/webhooks/cashfree", i + 1,
		    LG_REQ_JSON, 1, 1746427759733LL, req, sizeof(req)) == 0)
			goto out;
	t1 = lg_now_ns();
	for (i = 0; i < n; i++)
		if (lg_req_sign(k, "1746427759733", 13, body + 13, blen, sig))
			goto out;
	t2 = lg_now_ns();
	printf("SIGNCOST requests=%llu body_bytes=%zu build_sign_ns=%.0f "
	    "hmac_ns=%.0f\n", n, blen, (double)(t1 - t0) / (double)n,
	    (double)(t2 - t1) / (double)n);
	rc = 0;
out:
	lg_req_key_free(k);
	return rc;
}

static void
plan_init(struct lg_plan *p, const struct opts *o, const unsigned char *key,
    size_t klen)
{
	p->key = key;
	p->key_len = klen;
	p->threads = o->threads;
	p->conns = o->conns;
	p->dup_ratio = o->dup;
	p->form_ratio = o->form;
	p->interval_ns = o->rate > 0 ?
	    (int64_t)(1e9 * o->threads / o->rate) : 0;
	p->timeout_ns = (int64_t)(o->timeout_s * 1e9);
	p->max_requests = o->requests;
	atomic_init(&p->issued, 0);
	atomic_init(&p->next_id, o->id_base);
}

/* Starts the workers, gives them one start time, joins and merges. */
static int
run(const struct opts *o, struct lg_plan *p, struct lg_worker *w,
    struct lg_stats *all)
{
	int64_t offset, last = 0, first = 0;
	double cpu0, secs;
	unsigned i, started = 0;
	int rc = 0;

	for (i = 0; i < o->threads; i++) {
		w[i].plan = p;
		w[i].index = i;
		lg_stats_init(&w[i].stats);
	}
	(void)pthread_barrier_init(&p->connected, NULL, o->threads + 1);
	(void)pthread_barrier_init(&p->go, NULL, o->threads + 1);
	for (i = 0; i < o->threads; i++) {
		if (pthread_create(&w[i].thread, NULL, lg_worker_run, &w[i])) {
			fprintf(stderr, "loadgen: cannot start threads\n");
			exit(2);	/* the others wait at a barrier */
		}
		started++;
	}
	(void)pthread_barrier_wait(&p->connected);
	for (i = 0; i < o->threads; i++)
		if (w[i].failed) {
			fprintf(stderr, "loadgen: %s: %s\n", o->url, w[i].err);
			p->abort = 1;
			rc = 2;
			break;
		}
	cpu0 = cpu_seconds();
	offset = wall_minus_mono_ns();
	p->start_ns = lg_now_ns();
	p->end_ns = o->requests ? 0 : p->start_ns + (int64_t)(o->seconds * 1e9);
	(void)pthread_barrier_wait(&p->go);
	for (i = 0; i < started; i++)
		(void)pthread_join(w[i].thread, NULL);
	for (i = 0; i < o->threads; i++) {
		if (rc == 0 && w[i].failed) {
			fprintf(stderr, "loadgen: %s\n", w[i].err);
			rc = 2;
		}
		if (lg_stats_merge(all, &w[i].stats) == -1)
			rc = 2;
		if (w[i].first_ns && (first == 0 || w[i].first_ns < first))
			first = w[i].first_ns;
		if (w[i].last_ns > last)
			last = w[i].last_ns;
		lg_stats_done(&w[i].stats);
	}
	if (rc != 0)
		return rc;
	secs = (double)((last ? last : lg_now_ns()) - p->start_ns) / 1e9;
	report(o, all, secs, cpu_seconds() - cpu0,
	    first ? (first + offset) / 1000000 : 0,
	    last ? (last + offset) / 1000000 : 0);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct lg_plan plan;	/* big (the target) and shared */
	struct opts o = { 2, 32, 5, 0, 0, 0, 30, 0, 0, 0, NULL, NULL, NULL, 0 };
	unsigned char key[SECRET_MAX];
	struct lg_worker *w = NULL;
	struct lg_stats all;
	char err[512];
	size_t klen = 0;
	int rc;

	(void)signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv, &o) == -1) {
		usage(stderr);
		return 1;
	}
	if (read_secret(o.secret_file, (char *)key, sizeof(key), &klen) == -1)
		return 2;
	if (o.sign_cost != 0) {
		rc = sign_cost(key, klen, o.sign_cost);
		OPENSSL_cleanse(key, sizeof(key));
		return rc;
	}
	if (lg_target_parse(o.url, o.unix_path, &plan.target, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "loadgen: %s\n", err);
		return 1;
	}
	if (o.id_base == 0)
		o.id_base = (unsigned long long)(wall_minus_mono_ns() +
		    lg_now_ns()) / 1000;
	plan_init(&plan, &o, key, klen);
	w = calloc(o.threads, sizeof(*w));
	if (w == NULL)
		return 2;
	lg_stats_init(&all);
	rc = run(&o, &plan, w, &all);
	lg_stats_done(&all);
	free(w);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

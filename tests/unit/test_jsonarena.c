/* test_jsonarena.c - jansson's per-thread arena: malloc outside a scope,
 * the arena inside one, roll-back and reuse, values that outlive their
 * scope, bodies larger than a block, and jansson used on other threads at
 * the same time (envelopes are built and dumped there, then free()d). Run
 * under AddressSanitizer by make asan, which also sees any leak or overlap
 * these paths could cause. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "check.h"
#include "event.h"
#include "jsonarena.h"

#define PAYMENT	"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"order\":" \
		"{\"order_id\":\"o_1\"},\"payment\":{\"cf_payment_id\":" \
		"12345678901234567890,\"payment_amount\":1.8,"	\
		"\"payment_status\":\"SUCCESS\"}}}"

static json_malloc_t jmalloc;
static json_free_t jfree;

static void
test_installed_before_main(void)
{
	json_get_alloc_funcs(&jmalloc, &jfree);
	CHECK(jmalloc != NULL && jfree != NULL);
	CHECK(jmalloc != (json_malloc_t)malloc);
	CHECK(jfree != (json_free_t)free);
}

static void
test_outside_a_scope_is_malloc(void)
{
	json_t *s = json_string("plain");
	void *p = jmalloc(100);

	CHECK(p != NULL && !jsonarena_owns(p));
	CHECK(s != NULL && !jsonarena_owns(s));
	CHECK_INT(jsonarena_live(), 0);
	jfree(p);
	json_decref(s);
	jfree(NULL);
}

/* Allocations come from the block; the latest one freed is rolled back,
 * and an empty block starts again from its first byte. */
static void
test_bump_rollback_reuse(void)
{
	char *a, *b, *c, *d;

	jsonarena_begin();
	a = jmalloc(10);
	b = jmalloc(10);
	CHECK(jsonarena_owns(a) && jsonarena_owns(b));
	CHECK(b > a);
	CHECK_INT(jsonarena_live(), 2);
	jfree(b);
	c = jmalloc(10);
	CHECK(c == b);
	jfree(a);			/* not the latest: its room waits */
	CHECK_INT(jsonarena_live(), 1);
	d = jmalloc(10);
	CHECK(d > c);
	jfree(d);
	jfree(c);
	CHECK_INT(jsonarena_live(), 0);
	d = jmalloc(1);
	CHECK(d == a);			/* empty: from the start again */
	jfree(d);
	jsonarena_end();
	CHECK_INT(jsonarena_live(), 0);
}

/* Every size is aligned for any type and gets bytes of its own. */
static void
test_alignment_and_no_overlap(void)
{
	unsigned char *p[48];
	size_t i, k;

	jsonarena_begin();
	for (i = 0; i < 48; i++) {
		p[i] = jmalloc(i);
		CHECK(p[i] != NULL && jsonarena_owns(p[i]));
		CHECK_INT((uintptr_t)p[i] % 16, 0);
		memset(p[i], (int)i, i);
	}
	for (i = 1; i < 48; i++) {
		CHECK(p[i] != p[i - 1]);
		for (k = 0; k < i; k++)
			CHECK_INT(p[i][k], i);
	}
	for (i = 0; i < 48; i++)
		jfree(p[i]);
	CHECK_INT(jsonarena_live(), 0);
	jsonarena_end();
}

/* A value still referenced at the end keeps its block: the next scope
 * works in a new one and never writes over it. */
static void
test_value_outlives_its_scope(void)
{
	json_t *kept, *v;
	int i;

	jsonarena_begin();
	kept = json_string("kept across scopes");
	jsonarena_end();
	CHECK(jsonarena_owns(kept));
	CHECK(jsonarena_live() > 0);
	jsonarena_begin();
	for (i = 0; i < 200; i++) {
		v = json_pack("{s:s, s:i}", "filler", "xxxxxxxxxxxxxxxx", "n",
		    i);
		CHECK(v != NULL && jsonarena_owns(v));
		json_decref(v);
	}
	CHECK_STR(json_string_value(kept), "kept across scopes");
	jsonarena_end();
	json_decref(kept);		/* outside any scope: still known */
	CHECK_INT(jsonarena_live(), 0);
	CHECK(!jsonarena_owns(kept));	/* its block is gone */
}

static void
test_nested_scopes(void)
{
	void *a, *b, *c;

	jsonarena_begin();
	jsonarena_begin();
	a = jmalloc(8);
	jsonarena_end();
	b = jmalloc(8);			/* the outer scope is still open */
	jsonarena_end();
	c = jmalloc(8);
	CHECK(jsonarena_owns(a) && jsonarena_owns(b));
	CHECK(!jsonarena_owns(c));
	jfree(a);
	jfree(b);
	jfree(c);
	jsonarena_end();		/* one too many: harmless */
	CHECK_INT(jsonarena_live(), 0);
}

/* A body whose tree does not fit one block: the rest comes from malloc,
 * and every value is read back and released. */
static void
test_body_larger_than_the_arena(void)
{
	struct buf b;
	json_error_t err;
	json_t *root, *first, *last;
	char item[64];
	int i, n = 8000, outside = 0;

	buf_init(&b, 1024 * 1024);
	CHECK(buf_puts(&b, "[") == 0);
	for (i = 0; i < n; i++) {
		(void)snprintf(item, sizeof(item),
		    "%s{\"id\":%d,\"s\":\"v%d\"}", i > 0 ? "," : "", i, i);
		CHECK(buf_puts(&b, item) == 0);
	}
	CHECK(buf_puts(&b, "]") == 0);
	CHECK(b.len > 2 * JSONARENA_BLOCK);
	jsonarena_begin();
	root = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &err);
	CHECK(json_array_size(root) == (size_t)n);
	first = json_array_get(root, 0);
	last = json_array_get(root, (size_t)n - 1);
	CHECK(jsonarena_owns(first));
	CHECK(!jsonarena_owns(last));
	for (i = 0; i < n; i++)
		outside += !jsonarena_owns(json_array_get(root, (size_t)i));
	CHECK(outside > n / 2);
	CHECK_INT(json_integer_value(json_object_get(last, "id")), n - 1);
	CHECK_STR(json_string_value(json_object_get(first, "s")), "v0");
	json_decref(root);
	CHECK_INT(jsonarena_live(), 0);
	jsonarena_end();
	buf_done(&b);
}

static void
test_one_allocation_over_a_block(void)
{
	void *p;

	jsonarena_begin();
	p = jmalloc(JSONARENA_BLOCK + 1);
	CHECK(p != NULL && !jsonarena_owns(p));
	memset(p, 1, JSONARENA_BLOCK + 1);
	jfree(p);
	jsonarena_end();
}

/* event_from_json releases its whole tree, on every path: a body that
 * parses, one parsed again with a number blanked, one that is no JSON. */
static void
test_event_leaves_nothing_behind(void)
{
	static const char *bodies[] = {
		PAYMENT,
		"{\"type\":\"X\",\"data\":{\"n\":1e400,\"s\":\"\\ud83d\"}}",
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"a\":1,\"a\":2}",
		"{\"type\":\"X\"} trailing",
		"[1,2,3]",
		"",
	};
	struct event ev;
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		CHECK_INT(event_from_json(bodies[i], strlen(bodies[i]), &ev),
		    0);
		CHECK_INT(jsonarena_live(), 0);
		CHECK(!jsonarena_owns(ev.event_key));
		event_done(&ev);
	}
	CHECK_INT(event_from_json(PAYMENT, strlen(PAYMENT), &ev), 0);
	CHECK_STR(ev.event_key,
	    "PAYMENT_SUCCESS_WEBHOOK:12345678901234567890");
	CHECK_STR(ev.amount, "1.8");
	CHECK_STR(ev.order_id, "o_1");
	event_done(&ev);
}

static atomic_int thread_errors;

/* What the forwarder does with jansson (build, dump, free()), and what
 * intake does (parse in a scope), on two threads while the main thread
 * holds a scope open with values in it. */
static void *
other_thread(void *arg)
{
	struct event ev;
	json_t *env;
	char *line;
	int i, parse = arg != NULL;

	for (i = 0; i < 2000; i++) {
		memset(&ev, 0, sizeof(ev));
		if (parse) {
			if (event_from_json(PAYMENT, strlen(PAYMENT),
			    &ev) != 0 || jsonarena_live() != 0 ||
			    strcmp(ev.cf_payment_id, "12345678901234567890")
			    != 0)
				atomic_fetch_add(&thread_errors, 1);
			event_done(&ev);
			continue;
		}
		env = json_pack("{s:i, s:s, s:{s:s}}", "id", i, "type",
		    "PAYMENT_SUCCESS_WEBHOOK", "payload", "k", "v");
		line = env != NULL ? json_dumps(env, JSON_COMPACT) : NULL;
		if (line == NULL || jsonarena_owns(env) ||
		    jsonarena_owns(line))
			atomic_fetch_add(&thread_errors, 1);
		free(line);		/* as envelope.c does: libc's free */
		json_decref(env);
	}
	return NULL;
}

static void
test_other_threads_unaffected(void)
{
	pthread_t t[2];
	int parse = 1;
	json_t *held;
	struct event ev;
	int i;

	jsonarena_begin();
	held = json_pack("{s:s}", "held", "by the main thread");
	CHECK(pthread_create(&t[0], NULL, other_thread, NULL) == 0);
	CHECK(pthread_create(&t[1], NULL, other_thread, &parse) == 0);
	for (i = 0; i < 2000; i++) {
		CHECK(event_from_json(PAYMENT, strlen(PAYMENT), &ev) == 0);
		event_done(&ev);
	}
	CHECK(pthread_join(t[0], NULL) == 0);
	CHECK(pthread_join(t[1], NULL) == 0);
	CHECK_INT(atomic_load(&thread_errors), 0);
	CHECK_STR(json_string_value(json_object_get(held, "held")),
	    "by the main thread");
	CHECK(jsonarena_live() > 0);	/* the object and its parts */
	json_decref(held);
	jsonarena_end();
	CHECK_INT(jsonarena_live(), 0);
}

int
main(void)
{
	RUN(test_installed_before_main);
	RUN(test_outside_a_scope_is_malloc);
	RUN(test_bump_rollback_reuse);
	RUN(test_alignment_and_no_overlap);
	RUN(test_value_outlives_its_scope);
	RUN(test_nested_scopes);
	RUN(test_body_larger_than_the_arena);
	RUN(test_one_allocation_over_a_block);
	RUN(test_event_leaves_nothing_behind);
	RUN(test_other_threads_unaffected);
	return check_finish("test_jsonarena");
}

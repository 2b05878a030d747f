/* test_fresh.c - intake's readings kept for the forwarder: handed over once,
 * only for the same id and bytes, and never past the cache's bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fresh.h"

static const char BODY[] = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
    "{\"order\":{\"order_id\":\"o1\",\"order_amount\":170.00,"
    "\"order_currency\":\"INR\"},\"payment\":{\"cf_payment_id\":\"12\","
    "\"payment_status\":\"SUCCESS\",\"payment_amount\":170.00,"
    "\"payment_currency\":\"INR\"}}}";

static int
read_body(const char *body, struct event *ev)
{
	return event_from_json(body, strlen(body), ev);
}

static void
test_taken_once_as_intake_read_it(void)
{
	struct fresh *c = fresh_new();
	struct event in, out;
	size_t d;

	if (!CHECK(c != NULL) || !CHECK(read_body(BODY, &in) == 0)) {
		fresh_free(c);
		return;
	}
	CHECK_STR(in.detail[EVENT_ORDER_AMOUNT], "170.00");
	fresh_put(c, 5, BODY, strlen(BODY), &in, 1000);
	CHECK_INT(fresh_count(c), 1);
	CHECK(fresh_take(c, 4, BODY, strlen(BODY), &out) == -1);
	if (CHECK(fresh_take(c, 5, BODY, strlen(BODY), &out) == 0)) {
		CHECK_INT(out.json_object, 1);
		CHECK_INT(out.format, EVENT_JSON);
		for (d = 0; d < EVENT_DETAIL_COUNT; d++)
			CHECK_STR(out.detail[d], in.detail[d]);
		event_done(&out);
	}
	CHECK_INT(fresh_count(c), 0);
	CHECK(fresh_take(c, 5, BODY, strlen(BODY), &out) == -1);
	event_done(&in);
	fresh_free(c);
}

/* Other bytes under the same id (another database at the path): nothing,
 * and the entry is gone. */
static void
test_other_bytes_get_nothing(void)
{
	struct fresh *c = fresh_new();
	char other[sizeof(BODY)];
	struct event in, out;

	if (!CHECK(c != NULL) || !CHECK(read_body(BODY, &in) == 0)) {
		fresh_free(c);
		return;
	}
	memcpy(other, BODY, sizeof(BODY));
	other[sizeof(BODY) - 4] ^= 1;		/* same length */
	fresh_put(c, 1, BODY, strlen(BODY), &in, 0);
	CHECK(fresh_take(c, 1, other, strlen(other), &out) == -1);
	CHECK_INT(fresh_count(c), 0);
	CHECK(fresh_take(c, 1, BODY, strlen(BODY), &out) == -1);
	fresh_put(c, 2, BODY, strlen(BODY), &in, 0);
	CHECK(fresh_take(c, 2, BODY, strlen(BODY) - 1, &out) == -1);
	CHECK(fresh_take(c, 2, NULL, 0, &out) == -1);
	event_done(&in);
	fresh_free(c);
}

/* Not JSON, or an id not above the last: not kept. A body that is not an
 * object is kept as such (the envelope's payload is null). */
static void
test_what_is_kept(void)
{
	struct fresh *c = fresh_new();
	struct event in, out;

	if (!CHECK(c != NULL) || !CHECK(read_body("[1]", &in) == 0)) {
		fresh_free(c);
		return;
	}
	CHECK_INT(in.json_object, 0);
	fresh_put(c, 10, "[1]", 3, &in, 0);
	fresh_put(c, 10, "[1]", 3, &in, 0);
	fresh_put(c, 9, "[1]", 3, &in, 0);
	CHECK_INT(fresh_count(c), 1);
	in.format = EVENT_FORM;
	fresh_put(c, 11, "[1]", 3, &in, 0);
	CHECK_INT(fresh_count(c), 1);
	in.format = EVENT_JSON;
	if (CHECK(fresh_take(c, 10, "[1]", 3, &out) == 0)) {
		CHECK_INT(out.json_object, 0);
		CHECK(out.detail[EVENT_ORDER_AMOUNT] == NULL);
		event_done(&out);
	}
	event_done(&in);
	fresh_free(c);
}

/* Full: a put is dropped until the oldest is taken; an entry past the age
 * limit leaves at the next put. Taken ones in the middle leave with the
 * front. */
static void
test_bounds(void)
{
	struct fresh *c = fresh_new();
	struct event in, out;
	int64_t id;

	if (!CHECK(c != NULL) || !CHECK(read_body(BODY, &in) == 0)) {
		fresh_free(c);
		return;
	}
	for (id = 1; id <= FRESH_MAX + 5; id++)
		fresh_put(c, id, BODY, strlen(BODY), &in, 0);
	CHECK_INT(fresh_count(c), FRESH_MAX);
	CHECK(fresh_take(c, FRESH_MAX + 1, BODY, strlen(BODY), &out) == -1);
	if (CHECK(fresh_take(c, 2, BODY, strlen(BODY), &out) == 0))
		event_done(&out);
	CHECK_INT(fresh_count(c), FRESH_MAX);	/* 1 still in front */
	if (CHECK(fresh_take(c, 1, BODY, strlen(BODY), &out) == 0))
		event_done(&out);
	CHECK_INT(fresh_count(c), FRESH_MAX - 2);
	if (CHECK(fresh_take(c, FRESH_MAX, BODY, strlen(BODY), &out) == 0))
		event_done(&out);
	CHECK_INT(fresh_count(c), FRESH_MAX - 2);	/* taken at the back */
	fresh_put(c, FRESH_MAX + 6, BODY, strlen(BODY), &in, 0);
	CHECK_INT(fresh_count(c), FRESH_MAX - 1);
	fresh_put(c, FRESH_MAX + 7, BODY, strlen(BODY), &in,
	    FRESH_MAX_AGE_MS);
	CHECK_INT(fresh_count(c), FRESH_MAX);
	fresh_put(c, FRESH_MAX + 8, BODY, strlen(BODY), &in,
	    FRESH_MAX_AGE_MS + 1);
	CHECK_INT(fresh_count(c), 2);		/* the two put later */
	CHECK(fresh_take(c, 3, BODY, strlen(BODY), &out) == -1);
	if (CHECK(fresh_take(c, FRESH_MAX + 8, BODY, strlen(BODY), &out) == 0))
		event_done(&out);
	event_done(&in);
	fresh_free(c);
}

int
main(void)
{
	RUN(test_taken_once_as_intake_read_it);
	RUN(test_other_bytes_get_nothing);
	RUN(test_what_is_kept);
	RUN(test_bounds);
	fresh_free(NULL);
	return check_finish("test_fresh");
}

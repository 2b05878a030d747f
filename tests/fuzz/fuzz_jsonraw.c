/* fuzz_jsonraw.c - libFuzzer target: jsonraw against jansson itself.
 *
 * For any bytes: jsonraw_find never reads out of bounds (AddressSanitizer),
 * and jsonraw_tame keeps the length and offsets. When jansson accepts the
 * text, tame must change nothing (an accepted text has no number too large),
 * and every path jansson resolves must be found by jsonraw_find with a value
 * of the same kind (string, number, object, ...); a path jansson does not
 * resolve must not be found. When jansson refuses the text for a number too
 * large, tame must have blanked it, the tamed text must not be refused for
 * that reason again, and its paths must match the original text's raw values
 * (a blanked number reads as null). Text holding a raw NUL is only checked
 * for bounds: jansson skips such a byte where JSON allows none, so
 * event_parse_json() refuses it before either parser sees it. Not built by
 * plain make. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonraw.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAGS	(JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static const char *const paths[] = {
	"type", "a", "a.b", "a.b.c", "data", "data.payment.cf_payment_id",
	"data.order.transaction_id", "data.order.order_amount", "",
};

static json_t *
lookup(json_t *v, const char *path)
{
	const char *seg = path, *dot;

	for (;;) {
		if (!json_is_object(v))
			return NULL;
		dot = strchr(seg, '.');
		if (dot == NULL)
			return json_object_get(v, seg);
		v = json_object_getn(v, seg, (size_t)(dot - seg));
		seg = dot + 1;
	}
}

/* Does the raw text t[0..n) have the kind of jansson value v? After
 * jsonraw_tame() a null may stand for a number. */
static int
same_kind(json_t *v, const char *t, size_t n, int tamed)
{
	if (n == 0)
		return 0;
	if (tamed && json_is_null(v) && jsonraw_is_number(t, n))
		return 1;
	if (json_is_string(v))
		return t[0] == '"' && t[n - 1] == '"';
	if (json_is_object(v))
		return t[0] == '{' && t[n - 1] == '}';
	if (json_is_array(v))
		return t[0] == '[' && t[n - 1] == ']';
	if (json_is_number(v))
		return jsonraw_is_number(t, n) &&
		    jsonraw_is_integer(t, n) == json_is_integer(v);
	if (json_is_true(v))
		return n == 4 && memcmp(t, "true", 4) == 0;
	if (json_is_false(v))
		return n == 5 && memcmp(t, "false", 5) == 0;
	return n == 4 && memcmp(t, "null", 4) == 0;
}

static void
check_paths(json_t *root, const char *text, size_t size, int tamed)
{
	size_t i, off, n;
	json_t *v;
	int found;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		v = lookup(root, paths[i]);
		found = jsonraw_find(text, size, paths[i], &off, &n) == 0;
		if (found != (v != NULL))
			abort();
		if (found && (off + n > size ||
		    !same_kind(v, text + off, n, tamed)))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_error_t err;
	json_t *root, *again;
	size_t off, n;
	int changed = 0;
	char *tame;

	tame = jsonraw_tame(text, size, &changed);
	if (tame == NULL)
		return 0;
	if (tame[size] != '\0' || (!changed && memcmp(tame, text, size) != 0))
		abort();
	if (memchr(text, '\0', size) != NULL) {
		(void)jsonraw_find(text, size, paths[5], &off, &n);
		free(tame);
		return 0;
	}
	root = json_loadb(text, size, FLAGS, &err);
	if (root != NULL) {
		if (changed)
			abort();
		if (json_is_object(root))
			check_paths(root, text, size, 0);
	} else if (json_error_code(&err) == json_error_numeric_overflow &&
	    !changed) {
		abort();
	} else if (changed) {
		again = json_loadb(tame, size, FLAGS, &err);
		if (again == NULL &&
		    json_error_code(&err) == json_error_numeric_overflow)
			abort();
		/* What event.c does: jansson reads the tamed copy, the raw
		 * numbers come from the original text. */
		if (json_is_object(again))
			check_paths(again, text, size, 1);
		json_decref(again);
	}
	json_decref(root);
	free(tame);
	return 0;
}

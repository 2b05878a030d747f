/* test_ctl_out.c - cfhookctl's output helpers: terminal escaping, aligned
 * tables, JSON strings from bytes that may not be UTF-8. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctl_out.h"
#include "ctl_zone.h"

static const struct {
	const char *in;
	const char *out;
} esc[] = {
	{ "plain-id_42", "plain-id_42" },
	{ "a\nb", "a\\x0ab" },			/* no forged table rows */
	{ "\x1b[31mred", "\\x1b[31mred" },	/* no terminal escapes */
	{ "tab\there", "tab\\x09here" },
	{ "del\x7f", "del\\x7f" },
	{ "back\\slash", "back\\\\slash" },	/* unambiguous */
	{ "caf\xc3\xa9 \xe2\x82\xb9", "caf\xc3\xa9 \xe2\x82\xb9" },	/* é ₹ */
	{ "c1\xc2\x9b" "2J", "c1\\xc2\\x9b2J" },	/* U+009B CSI */
	{ "bad\xff\xfe", "bad\\xff\\xfe" },
	{ "trunc\xe2\x82", "trunc\\xe2\\x82" },
	{ "over\xc0\xaf", "over\\xc0\\xaf" },	/* overlong '/' */
	{ "sur\xed\xa0\x80", "sur\\xed\\xa0\\x80" },
	{ "", "" },
};

static void
test_escape_table(void)
{
	size_t i;
	char *s;

	for (i = 0; i < sizeof(esc) / sizeof(esc[0]); i++) {
		s = ctl_out_escape(esc[i].in);
		CHECK_STR(s, esc[i].out);
		free(s);
	}
	s = ctl_out_escape(NULL);
	CHECK_STR(s, "-");
	free(s);
}

/* Prints a table into memory and returns it (caller frees). */
static char *
render(struct ctl_table *t, const int *right)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL)
		return NULL;
	ctl_table_print(t, right, fp);
	(void)fclose(fp);
	return text;
}

static void
test_table_aligns_escaped_cells(void)
{
	static const char *const h[] = { "ID", "ORDER", "STATE" };
	static const int right[] = { 1, 0, 0 };
	const char *r1[] = { "7", "o\n1", "done" };
	const char *r2[] = { "1234", "caf\xc3\xa9", NULL };
	struct ctl_table *t = ctl_table_new(3, h);
	char *out;

	if (!CHECK(t != NULL))
		return;
	CHECK(ctl_table_add(t, r1) == 0);
	CHECK(ctl_table_add(t, r2) == 0);
	out = render(t, right);
	CHECK_STR(out,
	    "  ID  ORDER   STATE\n"
	    "   7  o\\x0a1  done\n"
	    "1234  caf\xc3\xa9    -\n");
	free(out);
	ctl_table_free(t);
	ctl_table_free(NULL);
}

static void
test_json_text_never_invalid(void)
{
	json_t *j;

	j = ctl_out_json_text("ok \xe2\x82\xb9", 6);
	CHECK_STR(json_string_value(j), "ok \xe2\x82\xb9");
	json_decref(j);
	j = ctl_out_json_text("a\xff" "b\0c", 5);
	if (CHECK(j != NULL)) {
		CHECK_INT(json_string_length(j), 9);
		CHECK(memcmp(json_string_value(j),
		    "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c", 9) == 0);
	}
	json_decref(j);
	j = ctl_out_json_text(NULL, 0);
	CHECK(json_is_null(j));
	json_decref(j);
}

static void
test_json_time_and_base64(void)
{
	json_t *j;

	struct ctl_zone ist;
	char why[160];

	j = ctl_out_json_time(NULL, 1746427759733LL);
	CHECK_STR(json_string_value(j), "2025-05-05T06:49:19.733Z");
	json_decref(j);
	if (CHECK(ctl_zone_open("+05:30", &ist, why, sizeof(why)) == 0)) {
		j = ctl_out_json_time(&ist, 1746427759733LL);
		CHECK_STR(json_string_value(j),
		    "2025-05-05T12:19:19.733+05:30");
		json_decref(j);
	}
	j = ctl_out_json_time(NULL, -1);
	CHECK(json_is_null(j));
	json_decref(j);
	j = ctl_out_json_base64("\xff\x00\x01", 3);
	CHECK_STR(json_string_value(j), "/wAB");
	json_decref(j);
	j = ctl_out_json_base64("", 0);
	CHECK_STR(json_string_value(j), "");
	json_decref(j);
}

static void
test_fields(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (!CHECK(fp != NULL))
		return;
	ctl_out_field(fp, "order_id", "x\ny");
	ctl_out_field(fp, "last_error", NULL);
	ctl_out_int_field(fp, "deliveries", 3);
	ctl_out_time_field(fp, NULL, "received_at", 1746427759733LL,
	    1746427759733LL + 725000);
	ctl_out_time_field(fp, NULL, "forwarded_at", -1, 0);
	(void)fclose(fp);
	CHECK_STR(text,
	    "  order_id           x\\x0ay\n"
	    "  last_error         -\n"
	    "  deliveries         3\n"
	    "  received_at        2025-05-05T06:49:19Z (12m 5s ago)\n"
	    "  forwarded_at       -\n");
	free(text);
}

int
main(void)
{
	RUN(test_escape_table);
	RUN(test_table_aligns_escaped_cells);
	RUN(test_json_text_never_invalid);
	RUN(test_json_time_and_base64);
	RUN(test_fields);
	return check_finish("test_ctl_out");
}

/* test_form.c - urlencoded decoding (WHATWG), duplicate keys, the form
 * signing string of spec section 5.2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "form.h"

#define VECTORS	"tests/vectors/cashfree-webhooks.json"

/* Parse a C string body; checks the result. */
static enum form_result
parse(const char *body, struct form *f)
{
	return form_parse(body, strlen(body), f);
}

static int
field_is(const struct form *f, size_t i, const char *k, size_t klen,
    const char *v, size_t vlen)
{
	return i < f->n && f->fields[i].key_len == klen &&
	    memcmp(f->fields[i].key, k, klen) == 0 &&
	    f->fields[i].key[klen] == '\0' &&
	    f->fields[i].value_len == vlen &&
	    memcmp(f->fields[i].value, v, vlen) == 0 &&
	    f->fields[i].value[vlen] == '\0';
}

static void
test_decoding_table(void)
{
	static const struct {
		const char *body;
		const char *key;
		const char *value;
	} cases[] = {
		{ "a=b", "a", "b" },
		{ "a=x+y", "a", "x y" },
		{ "a=x%2By", "a", "x+y" },
		{ "a=%2b%2F%3d", "a", "+/=" },
		{ "a=%zz", "a", "%zz" },
		{ "a=%", "a", "%" },
		{ "a=%4", "a", "%4" },
		{ "a=%4g", "a", "%4g" },
		{ "a=100%25", "a", "100%" },
		{ "a=%%41", "a", "%A" },
		{ "a=x=y", "a", "x=y" },
		{ "a=", "a", "" },
		{ "a", "a", "" },
		{ "=v", "", "v" },
		{ "a+b=c", "a b", "c" },
		{ "%61%62=1", "ab", "1" },
		{ "k=%C3%A9", "k", "\xc3\xa9" },
		{ "k=caf\xc3\xa9", "k", "caf\xc3\xa9" },
		{ "k=a;b", "k", "a;b" },
	};
	struct form f;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(parse(cases[i].body, &f), FORM_OK);
		if (!CHECK_INT(f.n, 1) ||
		    !CHECK(field_is(&f, 0, cases[i].key, strlen(cases[i].key),
		    cases[i].value, strlen(cases[i].value))))
			fprintf(stderr, "  body \"%s\"\n", cases[i].body);
		form_done(&f);
	}
}

static void
test_nul_bytes(void)
{
	struct form f;

	CHECK_INT(parse("a=x%00y&b%00c=1", &f), FORM_OK);
	CHECK_INT(f.n, 2);
	CHECK(field_is(&f, 0, "a", 1, "x\0y", 3));
	CHECK(field_is(&f, 1, "b\0c", 3, "1", 1));
	/* form_get finds by full key; form_value refuses values with NUL. */
	CHECK(form_get(&f, "a") == &f.fields[0]);
	CHECK(form_value(&f, "a") == NULL);
	CHECK(form_get(&f, "b") == NULL);
	form_done(&f);
	/* A raw NUL in the body is a byte like any other. */
	CHECK_INT(form_parse("k=a\0b", 5, &f), FORM_OK);
	CHECK(field_is(&f, 0, "k", 1, "a\0b", 3));
	form_done(&f);
}

static void
test_empty_pieces_and_order(void)
{
	struct form f;

	CHECK_INT(parse("a=1&&b=2", &f), FORM_OK);
	CHECK_INT(f.n, 2);
	CHECK(field_is(&f, 0, "a", 1, "1", 1));
	CHECK(field_is(&f, 1, "b", 1, "2", 1));
	form_done(&f);
	CHECK_INT(parse("&&z=1&a&&", &f), FORM_OK);
	CHECK_INT(f.n, 2);
	CHECK(field_is(&f, 0, "z", 1, "1", 1));	/* wire order kept */
	CHECK(field_is(&f, 1, "a", 1, "", 0));
	form_done(&f);
	CHECK_INT(parse("", &f), FORM_OK);
	CHECK_INT(f.n, 0);
	form_done(&f);
	CHECK_INT(parse("&&&", &f), FORM_OK);
	CHECK_INT(f.n, 0);
	form_done(&f);
	/* "=" alone is one field with an empty key and value. */
	CHECK_INT(parse("=", &f), FORM_OK);
	CHECK_INT(f.n, 1);
	CHECK(field_is(&f, 0, "", 0, "", 0));
	form_done(&f);
}

static void
test_duplicates(void)
{
	static const char *dups[] = {
		"a=1&a=2", "a=1&b=2&a=1", "a=1&%61=2", "%61=1&a=2",
		"a+b=1&a%20b=2", "a=1&a", "a&a", "=1&=2",
		"signature=x&signature=y", "x%00=1&x%00=2", "A=1&%41=1",
		"a%=1&a%25=2",
	};
	static const char *ok[] = {
		"a=1&A=2", "a=1&ab=2", "a=1&b=1", "x%00=1&x=2", "a%=1&a%2=2",
	};
	struct form f;
	size_t i;

	for (i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
		if (!CHECK_INT(parse(dups[i], &f), FORM_DUPLICATE))
			fprintf(stderr, "  body \"%s\"\n", dups[i]);
		form_done(&f);
	}
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (!CHECK_INT(parse(ok[i], &f), FORM_OK))
			fprintf(stderr, "  body \"%s\"\n", ok[i]);
		form_done(&f);
	}
}

static void
test_duplicate_among_many(void)
{
	char body[4096];
	struct form f;
	size_t i, o = 0;

	/* 200 distinct keys, then a repeat of the first one encoded. */
	for (i = 0; i < 200; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "k%zu=%zu&",
		    i, i);
	CHECK_INT(parse(body, &f), FORM_OK);
	CHECK_INT(f.n, 200);
	form_done(&f);
	(void)snprintf(body + o, sizeof(body) - o, "%%6b0=x");
	CHECK_INT(parse(body, &f), FORM_DUPLICATE);
	form_done(&f);
}

static void
test_too_many_fields(void)
{
	static char body[FORM_MAX_FIELDS * 8 + 64];
	struct form f;
	size_t i, o = 0;

	for (i = 0; i < FORM_MAX_FIELDS; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "%s%zu=",
		    i > 0 ? "&" : "", i);
	CHECK_INT(parse(body, &f), FORM_OK);
	CHECK_INT(f.n, FORM_MAX_FIELDS);
	form_done(&f);
	(void)snprintf(body + o, sizeof(body) - o, "&x");
	CHECK_INT(parse(body, &f), FORM_TOO_MANY);
	form_done(&f);
	/* Empty pieces do not count. */
	(void)snprintf(body + o, sizeof(body) - o, "&&&&");
	CHECK_INT(parse(body, &f), FORM_OK);
	form_done(&f);
}

static void
test_get_and_value(void)
{
	struct form f;

	CHECK_INT(parse("a=1&ab=2&b=&signature=x%2By", &f), FORM_OK);
	CHECK_STR(form_value(&f, "a"), "1");
	CHECK_STR(form_value(&f, "ab"), "2");
	CHECK_STR(form_value(&f, "b"), "");
	CHECK_STR(form_value(&f, "signature"), "x+y");
	CHECK(form_value(&f, "c") == NULL);
	CHECK(form_value(&f, "A") == NULL);
	CHECK(form_get(&f, "") == NULL);
	form_done(&f);
}

static void
check_signing(const char *body, const char *want, size_t want_len)
{
	struct form f;
	char *s;
	size_t len = 12345;

	CHECK_INT(parse(body, &f), FORM_OK);
	s = form_signing_string(&f, &len);
	if (!CHECK(s != NULL && len == want_len &&
	    memcmp(s, want, len) == 0 && s[len] == '\0'))
		fprintf(stderr, "  body \"%s\" gave \"%s\"\n", body,
		    s == NULL ? "(null)" : s);
	free(s);
	form_done(&f);
}

static void
test_signing_string(void)
{
	/* Byte order: 'A' < 'Z' < '_' < 'a'; a prefix sorts first. */
	check_signing("a=4&_=3&Z=2&A=1", "1234", 4);
	check_signing("ab=2&a=1&b=3", "123", 3);
	check_signing("b=2&signature=SIG&a=1", "12", 2);
	check_signing("signature=only", "", 0);
	check_signing("", "", 0);
	check_signing("Signature=S&signaturex=X&signatur=Y", "SYX", 3);
	/* Decoded values, empty values add nothing, keys are not included. */
	check_signing("y=a+b&x=%2B&z=", "+a b", 4);
	check_signing("k=x%00y", "x\0y", 3);
	/* Bytes >= 0x80 sort after ASCII (unsigned comparison). */
	check_signing("%C3%A9=2&z=1", "12", 2);
	/* The PG v1 notify field order is not the sorted order. */
	check_signing("orderId=1&orderAmount=2&referenceId=3&txStatus=4"
	    "&paymentMode=5&txMsg=6&txTime=7", "2153647", 7);
}

static void
test_signing_string_vector(void)
{
	json_t *root = NULL, *c;
	json_error_t jerr;
	const char *body, *want;
	struct form f;
	size_t i, len = 0;
	char *s;
	int found = 0;

	root = json_load_file(VECTORS, 0, &jerr);
	if (!CHECK(root != NULL && json_is_array(root)))
		return;
	json_array_foreach(root, i, c) {
		if (strcmp(json_string_value(json_object_get(c, "name")),
		    "form_link_paid_sorted") != 0)
			continue;
		found = 1;
		body = json_string_value(json_object_get(c, "body"));
		want = json_string_value(json_object_get(c, "signing_string"));
		if (!CHECK(body != NULL && want != NULL))
			break;
		CHECK_INT(parse(body, &f), FORM_OK);
		s = form_signing_string(&f, &len);
		CHECK(s != NULL);
		CHECK_INT(len, strlen(want));
		CHECK_STR(s, want);
		free(s);
		form_done(&f);
	}
	CHECK(found);
	json_decref(root);
}

static void
test_done_is_safe(void)
{
	struct form f;

	form_done(NULL);
	CHECK_INT(parse("a=1&a=2", &f), FORM_DUPLICATE);
	form_done(&f);
	CHECK(f.fields == NULL && f.n == 0);
	form_done(&f);
}

int
main(void)
{
	RUN(test_decoding_table);
	RUN(test_nul_bytes);
	RUN(test_empty_pieces_and_order);
	RUN(test_duplicates);
	RUN(test_duplicate_among_many);
	RUN(test_too_many_fields);
	RUN(test_get_and_value);
	RUN(test_signing_string);
	RUN(test_signing_string_vector);
	RUN(test_done_is_safe);
	return check_finish("test_form");
}

/* fuzz_form.c - libFuzzer target for form.c: the input is a form body.
 * Checks the decoder's promises on every input: field limit, decoded
 * lengths, NUL terminators, duplicate detection (against a brute-force
 * comparison) and the signing string (against a second computation).
 * Built only by `make fuzz` (scripts/fuzz). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(void)
{
	__builtin_trap();
}

static int
same_key(const struct form_field *a, const struct form_field *b)
{
	return a->key_len == b->key_len &&
	    memcmp(a->key, b->key, a->key_len) == 0;
}

static void
check_fields(const struct form *f, size_t size)
{
	size_t i, j, total = 0;

	if (f->n > FORM_MAX_FIELDS)
		fail();
	for (i = 0; i < f->n; i++) {
		if (f->fields[i].key[f->fields[i].key_len] != '\0' ||
		    f->fields[i].value[f->fields[i].value_len] != '\0')
			fail();
		total += f->fields[i].key_len + f->fields[i].value_len;
		for (j = 0; j < i; j++)
			if (same_key(&f->fields[i], &f->fields[j]))
				fail();
		if (form_get(f, "signature") == NULL &&
		    f->fields[i].key_len == 9 &&
		    memcmp(f->fields[i].key, "signature", 9) == 0)
			fail();
	}
	/* Decoding never lengthens. */
	if (total > size)
		fail();
}

/* The signing string's length is the sum of the non-signature values. */
static void
check_signing(const struct form *f)
{
	size_t i, want = 0, len = 0;
	char *s;

	for (i = 0; i < f->n; i++) {
		if (f->fields[i].key_len == 9 &&
		    memcmp(f->fields[i].key, "signature", 9) == 0)
			continue;
		want += f->fields[i].value_len;
	}
	s = form_signing_string(f, &len);
	if (s == NULL)
		return;		/* no memory */
	if (len != want || s[len] != '\0')
		fail();
	free(s);
}

static int
has_duplicate(const struct form *f)
{
	size_t i, j;

	for (i = 0; i < f->n; i++)
		for (j = 0; j < i; j++)
			if (same_key(&f->fields[i], &f->fields[j]))
				return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f;
	enum form_result r;

	r = form_parse((const char *)data, size, &f);
	if (r == FORM_OK) {
		check_fields(&f, size);
		check_signing(&f);
		(void)form_value(&f, "signature");
	} else if (r == FORM_DUPLICATE) {
		/* The table is complete on a duplicate: confirm it. */
		if (!has_duplicate(&f))
			fail();
	}
	form_done(&f);
	return 0;
}

/* ctl_copy.c - `cfhookctl copy --to URI`: an SQLite database moved into an
 * empty PostgreSQL one (store_copy.h), and what was copied, as text or
 * JSON. The two stores arrive open (ctl.c).
 *
 * Must not: open a database, run SQL, or print a URI unmasked. */
#include <inttypes.h>
#include <stdio.h>

#include <jansson.h>

#include "ctl_cmd.h"
#include "ctl_out.h"
#include "store_copy.h"

static int
copy_json(const struct ctl *c, const struct store_copy_counts *n)
{
	json_t *doc = json_object(), *rows = json_object();
	size_t i;
	int bad = doc == NULL || rows == NULL;

	for (i = 0; !bad && i < STORE_COPY_TABLES; i++)
		bad |= ctl_out_set(rows, n->table[i],
		    json_integer((json_int_t)n->rows[i]));
	if (!bad) {
		bad |= ctl_out_set(doc, "from", json_string(c->db_path));
		bad |= ctl_out_set(doc, "to", json_string(store_path(c->target)));
		bad |= ctl_out_set(doc, "rows", rows);
		rows = NULL;
	}
	json_decref(rows);
	if (bad) {
		json_decref(doc);
		fprintf(stderr, "cfhookctl: out of memory\n");
		return CTL_FAIL;
	}
	return ctl_out_json_print(doc, c->out) == 0 ? CTL_OK : CTL_FAIL;
}

int
ctl_cmd_copy(const struct ctl *c)
{
	struct store_copy_counts n;
	size_t i;

	switch (store_copy(c->st, c->target, &n)) {
	case STORE_COPY_OK:
		break;
	case STORE_COPY_NOT_EMPTY:
		fprintf(stderr, "cfhookctl: '%s' already holds events or "
		    "orders: copy fills an empty database only (nothing "
		    "changed)\n", store_path(c->target));
		return CTL_FAIL;
	case STORE_COPY_UNSUPPORTED:
	case STORE_COPY_ERROR:
		fprintf(stderr, "cfhookctl: copy failed (see above); "
		    "'%s' is as it was\n", store_path(c->target));
		return CTL_FAIL;
	}
	if (c->json)
		return copy_json(c, &n);
	fprintf(c->out, "copied '%s' into '%s' in one transaction:\n",
	    c->db_path, store_path(c->target));
	for (i = 0; i < STORE_COPY_TABLES; i++)
		ctl_out_int_field(c->out, n.table[i], n.rows[i]);
	return CTL_OK;
}

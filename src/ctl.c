/* ctl.c - main() of cfhookctl, the operator's tool (DESIGN "Binaries and
 * commands"): reads the arguments, finds the database (-c FILE's
 * `database`, or -d DBFILE), and runs one command from ctl_cmd.c.
 *
 * Every argument is checked before the database is opened, so a typo never
 * touches it: a usage error exits 2, "not found" or a failure 1, success 0.
 * It runs next to the daemon: the database is opened as an existing file at
 * the current schema (never created or migrated), read-only for the
 * commands that only read (STORE_READONLY: a user who may read the database
 * but not write it can still look), read-write for the only two that write,
 * replay and prune (store_admin_write.c). `copy` reads it and writes a
 * PostgreSQL database named by --to (store_copy.h), created if needed. The
 * database is either an SQLite path or a postgresql:// URI (shown with its
 * password masked).
 * Must not: run SQL (store_admin*.c) or format output (ctl_cmd.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "ctl_cmd.h"
#include "ctl_time.h"
#include "ctl_zone.h"
#include "ledger.h"
#include "log.h"
#include "num.h"
#include "store.h"
#include "store_admin.h"
#include "version.h"

#define DEFAULT_CONFIG	"/etc/cfhookd/cfhookd.conf"
#define DEFAULT_LIMIT	50
#define MAX_ARGS	10000	/* replay IDs per call */

enum opt {
	O_CONFIG, O_DATABASE, O_JSON, O_HELP, O_VERSION, O_STATE, O_TYPE,
	O_ORDER, O_SINCE, O_LIMIT, O_BEFORE, O_DRY_RUN, O_DEAD, O_BODY,
	O_TZ, O_ATTENTION, O_TO, O_COUNT
};

static const struct {
	const char *longname;
	char	 shortname;
	int	 has_value;
} opts[O_COUNT] = {
	[O_CONFIG] = { "--config", 'c', 1 },
	[O_DATABASE] = { "--database", 'd', 1 },
	[O_JSON] = { "--json", 0, 0 },
	[O_HELP] = { "--help", 'h', 0 },
	[O_VERSION] = { "--version", 0, 0 },
	[O_STATE] = { "--state", 0, 1 },
	[O_TYPE] = { "--type", 0, 1 },
	[O_ORDER] = { "--order", 0, 1 },
	[O_SINCE] = { "--since", 0, 1 },
	[O_LIMIT] = { "--limit", 0, 1 },
	[O_BEFORE] = { "--before", 0, 1 },
	[O_DRY_RUN] = { "--dry-run", 0, 0 },
	[O_DEAD] = { "--dead", 0, 0 },
	[O_BODY] = { "--body", 0, 0 },
	[O_TZ] = { "--tz", 0, 1 },
	[O_ATTENTION] = { "--attention", 0, 0 },
	[O_TO] = { "--to", 0, 1 },
};

#define BIT(o)		(1u << (o))
#define GLOBAL_OPTS	(BIT(O_CONFIG) | BIT(O_DATABASE) | BIT(O_JSON) | \
			 BIT(O_HELP) | BIT(O_VERSION) | BIT(O_TZ))

struct args {
	const char *val[O_COUNT];	/* value, or "" for a flag given */
	unsigned seen;			/* BIT(opt) of every option given */
	const char *cmd;
	const char **pos;		/* the command's own arguments */
	size_t	 npos;
};

static const struct {
	const char *name;
	unsigned allowed;		/* options beyond GLOBAL_OPTS */
	size_t	 min_pos, max_pos;
} commands[] = {
	{ "status", 0, 0, 0 },
	{ "list", BIT(O_STATE) | BIT(O_TYPE) | BIT(O_ORDER) | BIT(O_SINCE) |
	    BIT(O_LIMIT), 0, 0 },
	{ "show", BIT(O_BODY), 1, 1 },
	{ "replay", BIT(O_DEAD), 0, MAX_ARGS },
	{ "prune", BIT(O_BEFORE) | BIT(O_DRY_RUN), 0, 0 },
	{ "orders", BIT(O_STATE) | BIT(O_ATTENTION) | BIT(O_SINCE) |
	    BIT(O_LIMIT), 0, 0 },
	{ "order", 0, 1, 1 },
	{ "copy", BIT(O_TO), 0, 0 },
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: cfhookctl [-c FILE | -d DBFILE] [--json] [--tz ZONE] "
	    "COMMAND [ARGS]\n"
	    "\n"
	    "Looks into (and repairs) the event database of cfhookd; safe to "
	    "run while\nthe daemon runs.\n"
	    "\n"
	    "commands:\n"
	    "  status                 counts per forward_state, oldest pending,"
	    " dead,\n"
	    "                         received today, last received\n"
	    "  list [--state pending|done|dead] [--type TYPE] "
	    "[--order ORDER_ID]\n"
	    "       [--since DATE] [--limit N]\n"
	    "                         events, newest first (default limit %d)\n"
	    "  show ID|KEY [--body]   one event: every column, delivery "
	    "history, the\n"
	    "                         envelope of its next delivery, the raw "
	    "body\n"
	    "                         (--body: only the body's exact bytes)\n"
	    "  replay ID|KEY... | replay --dead\n"
	    "                         deliver done or dead events again, with a"
	    " fresh\n"
	    "                         series of attempts\n"
	    "  prune --before DATE [--dry-run]\n"
	    "                         delete done and dead events received "
	    "before DATE;\n"
	    "                         their keys stay, so a re-sent old event "
	    "is still\n"
	    "                         a duplicate; pending events are never "
	    "pruned\n"
	    "  orders [--state PENDING|PAID|FAILED|USER_DROPPED] [--attention]\n"
	    "         [--since DATE] [--limit N]\n"
	    "                         the payment state of each order, most "
	    "recently\n"
	    "                         active first (--since: an event since "
	    "DATE)\n"
	    "  order ORDER_ID         one order and its timeline: events, "
	    "state changes,\n"
	    "                         attention raised, delivery attempts\n"
	    "  copy --to URI          every row of this SQLite database into "
	    "the empty\n"
	    "                         PostgreSQL database URI, in one "
	    "transaction\n"
	    "\n"
	    "  -c, --config FILE      read `database` from this cfhookd config "
	    "[%s]\n"
	    "  -d, --database DBFILE  use this database (a file, or a "
	    "postgresql:// URI)\n"
	    "      --json             machine-readable output\n"
	    "      --tz ZONE          show times (and read DATEs) in ZONE, a tz "
	    "database\n"
	    "                         name (Asia/Kolkata) or an offset (+05:30);"
	    "\n"
	    "                         default $TZ, else UTC; stored times stay "
	    "UTC\n"
	    "      --version, -h, --help\n"
	    "\n"
	    "An all-digit ID|KEY is an event id, anything else an event_key.\n"
	    "DATE: YYYY-MM-DD (midnight) or YYYY-MM-DDTHH:MM:SS in the display "
	    "zone,\n"
	    "either time with Z or +HH:MM, or unix seconds.\n"
	    "Exit status: 0 ok, 1 not found or failed, 2 usage error.\n",
	    DEFAULT_LIMIT, DEFAULT_CONFIG);
}

static int
usage_error(const char *what, const char *arg)
{
	if (arg != NULL)
		fprintf(stderr, "cfhookctl: %s '%s'\n", what, arg);
	else
		fprintf(stderr, "cfhookctl: %s\n", what);
	fprintf(stderr, "try 'cfhookctl --help'\n");
	return CTL_USAGE;
}

/* usage_error() for helpers that return -1. */
static int
fail_usage(const char *what, const char *arg)
{
	(void)usage_error(what, arg);
	return -1;
}

/* Which option argv[*i] is; takes its value ("--x=V", "--x V", "-cV",
 * "-c V"). Returns the option, or -1 with the message printed. */
static int
take_option(int argc, char **argv, int *i, struct args *a)
{
	const char *arg = argv[*i], *eq, *v = NULL;
	size_t n;
	int o;

	eq = strchr(arg, '=');
	n = arg[1] == '-' ? (eq != NULL ? (size_t)(eq - arg) : strlen(arg)) : 2;
	for (o = 0; o < O_COUNT; o++) {
		if (arg[1] == '-' ? strlen(opts[o].longname) == n &&
		    strncmp(arg, opts[o].longname, n) == 0 :
		    opts[o].shortname != 0 && arg[1] == opts[o].shortname)
			break;
	}
	if (o == O_COUNT)
		return fail_usage("unknown option", arg);
	if (opts[o].has_value) {
		if (arg[1] == '-')
			v = eq != NULL ? eq + 1 : NULL;
		else
			v = arg[2] != '\0' ? arg + 2 : NULL;
		if (v == NULL && *i + 1 < argc)
			v = argv[++*i];
		if (v == NULL)
			return fail_usage("missing value for", arg);
	} else if ((arg[1] == '-' && eq != NULL) ||
	    (arg[1] != '-' && arg[2] != '\0')) {
		return fail_usage("option takes no value", arg);
	}
	if ((a->seen & BIT(o)) != 0)
		return fail_usage("option given twice", arg);
	a->seen |= BIT(o);
	a->val[o] = v != NULL ? v : "";
	return o;
}

/* Options may come anywhere; "--" ends them (for a key starting '-'). */
static int
parse_args(int argc, char **argv, struct args *a)
{
	int i, dashdash = 0;

	memset(a, 0, sizeof(*a));
	a->pos = calloc((size_t)argc, sizeof(*a->pos));
	if (a->pos == NULL) {
		fprintf(stderr, "cfhookctl: out of memory\n");
		return CTL_FAIL;
	}
	for (i = 1; i < argc; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0) {
			dashdash = 1;
		} else if (!dashdash && argv[i][0] == '-' &&
		    argv[i][1] != '\0') {
			if (take_option(argc, argv, &i, a) == -1)
				return CTL_USAGE;
		} else if (a->cmd == NULL) {
			a->cmd = argv[i];
		} else {
			a->pos[a->npos++] = argv[i];
		}
	}
	return CTL_OK;
}

/* The command's table index after checking its options and argument
 * count; -1 (message printed) when they do not fit. */
static int
check_command(const struct args *a)
{
	size_t i, n = sizeof(commands) / sizeof(commands[0]);
	unsigned extra;
	int o;

	for (i = 0; i < n; i++) {
		if (strcmp(a->cmd, commands[i].name) == 0)
			break;
	}
	if (i == n)
		return fail_usage("unknown command", a->cmd);
	extra = a->seen & ~(GLOBAL_OPTS | commands[i].allowed);
	for (o = 0; o < O_COUNT; o++) {
		if ((extra & BIT(o)) != 0) {
			fprintf(stderr, "cfhookctl: %s does not take %s\n",
			    a->cmd, opts[o].longname);
			return fail_usage("bad option for", a->cmd);
		}
	}
	if (a->npos < commands[i].min_pos)
		return fail_usage("missing argument for", a->cmd);
	if (a->npos > commands[i].max_pos)
		return fail_usage("unexpected argument", a->pos[a->npos - 1]);
	return (int)i;
}

/* An all-digit argument is an id, anything else an event_key. */
static int
parse_target(const char *s, int64_t *id, const char **key)
{
	uint64_t v;

	*id = 0;
	*key = NULL;
	if (s[0] == '\0')
		return fail_usage("empty event id or key", NULL);
	if (strspn(s, "0123456789") != strlen(s)) {
		*key = s;
		return 0;
	}
	if (num_parse_u64(s, 0, INT64_MAX, &v) == -1)
		return fail_usage("not an event id (too large)", s);
	*id = (int64_t)v;
	return 0;
}

/* A DATE in the display zone unless it names its own. */
static int
parse_date(const char *opt, const char *s, const struct ctl_zone *z,
    int64_t *ret)
{
	int64_t ms;
	int local;

	if (ctl_time_parse(s, &ms, &local) == 0 &&
	    (!local || ctl_zone_from_civil(z, ms, &ms) == 0)) {
		*ret = ms;
		return 0;
	}
	fprintf(stderr, "cfhookctl: %s '%s': not a date; use YYYY-MM-DD, "
	    "YYYY-MM-DDTHH:MM:SS (in %s), either with Z or +HH:MM, or unix "
	    "seconds\n", opt, s, z->name);
	return fail_usage("bad date", NULL);
}

/* --limit N, or the default. 0 / -1 (usage message printed). */
static int
parse_limit(const struct args *a, unsigned *ret)
{
	uint64_t limit = DEFAULT_LIMIT;

	if (a->val[O_LIMIT] != NULL && num_parse_u64(a->val[O_LIMIT], 1,
	    STORE_ADMIN_LIST_MAX, &limit) == -1) {
		fprintf(stderr, "cfhookctl: --limit is a number from 1 to %d\n",
		    STORE_ADMIN_LIST_MAX);
		return fail_usage("bad --limit", a->val[O_LIMIT]);
	}
	*ret = (unsigned)limit;
	return 0;
}

/* list's filters from the options. 0 / -1 (usage message printed). */
static int
list_filter(const struct args *a, const struct ctl_zone *z,
    struct store_admin_filter *f)
{
	const char *st = a->val[O_STATE];

	memset(f, 0, sizeof(*f));
	f->since = -1;
	if (st != NULL && strcmp(st, "pending") != 0 &&
	    strcmp(st, "done") != 0 && strcmp(st, "dead") != 0)
		return fail_usage("--state must be pending, done or dead", st);
	f->state = st;
	f->type = a->val[O_TYPE];
	f->order_id = a->val[O_ORDER];
	if (a->val[O_SINCE] != NULL &&
	    parse_date("--since", a->val[O_SINCE], z, &f->since) == -1)
		return -1;
	return parse_limit(a, &f->limit);
}

/* orders' filters (DESIGN "Orders"). 0 / -1 (usage message printed). */
static int
orders_filter(const struct args *a, const struct ctl_zone *z,
    struct store_orders_filter *f)
{
	const char *st = a->val[O_STATE];
	enum ledger_state ls;

	memset(f, 0, sizeof(*f));
	f->since = -1;
	if (st != NULL && ledger_state_parse(st, &ls) == -1)
		return fail_usage("--state must be PENDING, PAID, FAILED or "
		    "USER_DROPPED", st);
	f->state = st;
	f->attention = a->val[O_ATTENTION] != NULL;
	if (a->val[O_SINCE] != NULL &&
	    parse_date("--since", a->val[O_SINCE], z, &f->since) == -1)
		return -1;
	return parse_limit(a, &f->limit);
}

/* Everything a command needs, checked before the database is opened. */
struct plan {
	int	 cmd;			/* index into commands[] */
	struct ctl_zone zone;		/* --tz, TZ, or UTC */
	struct store_admin_filter filter;
	struct store_orders_filter orders;
	int64_t	 id;			/* show */
	const char *key;
	struct store_admin_replay *req;	/* replay ID|KEY... */
	int64_t	 before;		/* prune */
	const char *to;			/* copy */
};

static int
plan_replay(const struct args *a, struct plan *p)
{
	size_t i;

	if ((a->npos == 0) == (a->val[O_DEAD] == NULL))
		return fail_usage("replay takes event ids or keys, or --dead",
		    NULL);
	if (a->npos == 0)
		return 0;
	p->req = calloc(a->npos, sizeof(*p->req));
	if (p->req == NULL) {
		fprintf(stderr, "cfhookctl: out of memory\n");
		return -1;
	}
	for (i = 0; i < a->npos; i++) {
		if (parse_target(a->pos[i], &p->req[i].id,
		    &p->req[i].key) == -1)
			return -1;
	}
	return 0;
}

/* The display zone: --tz ZONE, else $TZ, else UTC. */
static int
plan_zone(const struct args *a, struct plan *p)
{
	const char *tz = a->val[O_TZ], *from = "--tz";
	char why[256];

	if (tz == NULL) {
		tz = getenv("TZ");
		from = "TZ";
	}
	if (ctl_zone_open(tz, &p->zone, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "cfhookctl: %s: %s\n", from, why);
	return fail_usage("bad time zone", NULL);
}

static int
make_plan(const struct args *a, struct plan *p)
{
	const char *name;

	memset(p, 0, sizeof(*p));
	p->cmd = check_command(a);
	if (p->cmd == -1 || plan_zone(a, p) == -1)
		return -1;
	name = commands[p->cmd].name;
	if (strcmp(name, "list") == 0)
		return list_filter(a, &p->zone, &p->filter);
	if (strcmp(name, "orders") == 0)
		return orders_filter(a, &p->zone, &p->orders);
	if (strcmp(name, "order") == 0 && a->pos[0][0] == '\0')
		return fail_usage("empty order id", NULL);
	if (strcmp(name, "show") == 0)
		return parse_target(a->pos[0], &p->id, &p->key);
	if (strcmp(name, "replay") == 0)
		return plan_replay(a, p);
	if (strcmp(name, "prune") == 0) {
		if (a->val[O_BEFORE] == NULL)
			return fail_usage("prune needs --before DATE", NULL);
		return parse_date("--before", a->val[O_BEFORE], &p->zone,
		    &p->before);
	}
	if (strcmp(name, "copy") == 0) {
		p->to = a->val[O_TO];
		if (p->to == NULL || !store_is_uri(p->to))
			return fail_usage("copy needs --to postgresql://...",
			    NULL);
	}
	return 0;
}

/* Only these write; any other command opens the database read-only. */
static int
command_writes(const char *name)
{
	return strcmp(name, "replay") == 0 || strcmp(name, "prune") == 0;
}

/* The database named by -d, or by `database` in the config (-c, or the
 * installed default). Returns a CTL_* status. */
static int
open_store(const struct args *a, struct config **cfg, const char **path,
    struct store **st)
{
	const char *conf = a->val[O_CONFIG];
	enum durability dur = DURABILITY_FULL;
	enum store_mode mode;
	char shown[STORE_NAME_MAX];

	if (conf != NULL && a->val[O_DATABASE] != NULL)
		return usage_error("give -c FILE or -d DBFILE, not both", NULL);
	*path = a->val[O_DATABASE];
	if (*path == NULL) {
		if (conf == NULL && access(DEFAULT_CONFIG, F_OK) != 0)
			return usage_error("no database: give -c FILE or -d "
			    "DBFILE (" DEFAULT_CONFIG " does not exist)", NULL);
		if (conf == NULL)
			conf = DEFAULT_CONFIG;
		if (config_load(conf, cfg) == -1) {
			fprintf(stderr, "cfhookctl: cannot use the "
			    "configuration (see above)\n");
			return CTL_FAIL;
		}
		*path = (*cfg)->database;
		dur = (*cfg)->durability;
	}
	/* An existing database at our schema; a wrong path is an error,
	 * never a new empty file. */
	mode = command_writes(a->cmd) ? STORE_READ : STORE_READONLY;
	if (store_open(*path, mode, dur, st) == -1) {
		fprintf(stderr, "cfhookctl: cannot open the database '%s'%s "
		    "(see above)\n", store_display_name(*path, shown,
		    sizeof(shown)), mode == STORE_READ ? " for writing" : "");
		return CTL_FAIL;
	}
	*path = store_path(*st);	/* what output may show */
	return CTL_OK;
}

/* copy's target: a PostgreSQL database, its schema created if it has none
 * (an existing cfhookd schema is checked, and upgraded). */
static int
open_target(const char *uri, struct store **st)
{
	char shown[STORE_NAME_MAX];

	if (store_open(uri, STORE_WRITE, DURABILITY_FULL, st) == 0)
		return CTL_OK;
	fprintf(stderr, "cfhookctl: cannot open the target database '%s' "
	    "(see above)\n", store_display_name(uri, shown, sizeof(shown)));
	return CTL_FAIL;
}

static int
run(const struct ctl *c, const struct plan *p, const struct args *a)
{
	const char *name = commands[p->cmd].name;

	if (strcmp(name, "status") == 0)
		return ctl_cmd_status(c);
	if (strcmp(name, "list") == 0)
		return ctl_cmd_list(c, &p->filter);
	if (strcmp(name, "show") == 0)
		return ctl_cmd_show(c, p->id, p->key, a->val[O_BODY] != NULL);
	if (strcmp(name, "replay") == 0 && p->req == NULL)
		return ctl_cmd_replay_dead(c);
	if (strcmp(name, "replay") == 0)
		return ctl_cmd_replay(c, p->req, a->pos, a->npos);
	if (strcmp(name, "orders") == 0)
		return ctl_cmd_orders(c, &p->orders);
	if (strcmp(name, "order") == 0)
		return ctl_cmd_order(c, a->pos[0]);
	if (strcmp(name, "copy") == 0)
		return ctl_cmd_copy(c);
	return ctl_cmd_prune(c, p->before, a->val[O_DRY_RUN] != NULL);
}

int
main(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct store *st = NULL;
	struct args a;
	struct plan p;
	struct ctl c;
	int rc;

	memset(&p, 0, sizeof(p));
	memset(&c, 0, sizeof(c));
	log_init(LOG_LVL_WARNING);
	rc = parse_args(argc, argv, &a);
	if (rc != CTL_OK)
		goto out;
	if (a.val[O_HELP] != NULL || a.val[O_VERSION] != NULL) {
		if (a.val[O_HELP] != NULL)
			usage(stdout);
		else
			printf("cfhookctl %s\n", CFHOOK_VERSION);
		goto out;
	}
	if (a.cmd == NULL) {
		usage(stderr);
		rc = CTL_USAGE;
		goto out;
	}
	if (make_plan(&a, &p) == -1) {
		rc = CTL_USAGE;
		goto out;
	}
	rc = open_store(&a, &cfg, &c.db_path, &st);
	if (rc == CTL_OK && p.to != NULL)
		rc = open_target(p.to, &c.target);
	if (rc != CTL_OK)
		goto out;
	c.st = st;
	c.forward = cfg != NULL ? config_forward_name(cfg) : NULL;
	c.json = a.val[O_JSON] != NULL;
	c.now = clock_wall_ms();
	c.zone = &p.zone;
	c.out = stdout;
	rc = run(&c, &p, &a);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "cfhookctl: cannot write the output\n");
		rc = CTL_FAIL;
	}
out:
	store_close(c.target);
	store_close(st);
	config_free(cfg);
	free(p.req);
	free(a.pos);
	return rc;
}

/* deliver.c - one delivery attempt (DESIGN "Forwarding"): builds the
 * envelope line, and runs the hook (argv, minimal environment, stdin).
 *
 * Must not: touch the database (the dispatcher records outcomes), pass the
 * daemon's environment to a hook, or go through a shell. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "envelope.h"
#include "event.h"
#include "hook.h"
#include "log.h"

#define HOOK_ENV_N	15

/* "NAME=value" in a new string; value NULL reads as empty. */
static char *
env_pair(const char *name, const char *value)
{
	size_t n;
	char *s;

	if (value == NULL)
		value = "";
	n = strlen(name) + strlen(value) + 2;
	s = malloc(n);
	if (s != NULL)
		(void)snprintf(s, n, "%s=%s", name, value);
	return s;
}

/* DESIGN "Orders" and "Events and deduplication": the order as this event
 * left it, and a Payment Link event's status and amount paid, read from the
 * stored body as intake read it (read, or else a parse here; empty when
 * absent). Fills 5 entries. The body is parsed only for a Payment Link
 * event: for the others both link variables are empty whatever it says,
 * and the parse is the most costly part of a delivery after the hook
 * itself. */
static int
order_env(const struct event_row *r, const struct event *read, char **envp)
{
	struct event own;
	const struct event *ev = &own;
	int link = r->type != NULL &&
	    event_detail_applies(r->type, EVENT_LINK_STATUS);

	memset(&own, 0, sizeof(own));
	if (link && read != NULL)
		ev = read;
	else if (link && event_from_row(r->content_type, r->body, r->body_len,
	    &own) == -1)
		return -1;
	envp[0] = env_pair("CFHOOK_LINK_STATUS", ev->detail[EVENT_LINK_STATUS]);
	envp[1] = env_pair("CFHOOK_LINK_AMOUNT_PAID",
	    ev->detail[EVENT_LINK_AMOUNT_PAID]);
	event_done(&own);
	envp[2] = env_pair("CFHOOK_ORDER_STATE", r->order_state);
	envp[3] = env_pair("CFHOOK_ORDER_PAID_NOW",
	    r->order_state != NULL && r->order_paid_now == 1 ? "1" : "0");
	envp[4] = env_pair("CFHOOK_ORDER_ATTENTION", r->order_attention);
	return 0;
}

/* A minimal PATH and the CFHOOK_* variables, nothing inherited from the
 * daemon (no secrets, no NOTIFY_SOCKET, no CREDENTIALS_DIRECTORY); the
 * operator's hook_env pairs follow them (borrowed, not freed). */
static int
hook_env(const struct outbox_row *r, const struct event *read,
    char *const *extra,
    char *envp[HOOK_ENV_N + CONFIG_HOOK_ENV_MAX + 1])
{
	const struct event_row *e = &r->ev;
	char id[24], attempt[16];
	size_t k;
	int i;

	(void)snprintf(id, sizeof(id), "%" PRId64, e->id);
	(void)snprintf(attempt, sizeof(attempt), "%u", r->attempt);
	envp[0] = env_pair("PATH", DELIVER_HOOK_PATH);
	envp[1] = env_pair("CFHOOK_EVENT_ID", id);
	envp[2] = env_pair("CFHOOK_EVENT_KEY", e->event_key);
	envp[3] = env_pair("CFHOOK_TYPE", e->type);
	envp[4] = env_pair("CFHOOK_CF_PAYMENT_ID", e->cf_payment_id);
	envp[5] = env_pair("CFHOOK_ORDER_ID", e->order_id);
	envp[6] = env_pair("CFHOOK_PAYMENT_STATUS", e->payment_status);
	envp[7] = env_pair("CFHOOK_AMOUNT", e->amount);
	envp[8] = env_pair("CFHOOK_CURRENCY", e->currency);
	envp[9] = env_pair("CFHOOK_ATTEMPT", attempt);
	if (order_env(e, read, envp + 10) == -1)
		return -1;
	envp[HOOK_ENV_N] = NULL;
	for (i = 0; i < HOOK_ENV_N; i++) {
		if (envp[i] == NULL)
			return -1;
	}
	for (k = 0; extra != NULL && extra[k] != NULL &&
	    k < CONFIG_HOOK_ENV_MAX; k++)
		envp[HOOK_ENV_N + k] = extra[k];
	envp[HOOK_ENV_N + k] = NULL;
	return 0;
}

static enum deliver_result
to_hook(const struct deliver_hook *t, const struct outbox_row *r,
    const struct event *read, const char *env, size_t len, char *reason,
    size_t reason_len)
{
	const struct event_row *e = &r->ev;
	struct log_fields lf = { e->event_key, e->cf_payment_id, e->order_id };
	char *envp[HOOK_ENV_N + CONFIG_HOOK_ENV_MAX + 1] = { NULL };
	char *argv[5];
	struct hook_run run;
	enum deliver_result res = DELIVER_FAILED;
	int i;

	/* argv [PATH, type, cf_payment_id, order_id]; "" for a missing one,
	 * so the positions never shift. */
	/* execve() takes char *const[] and writes through none of them. */
	argv[0] = (char *)(uintptr_t)t->path;
	argv[1] = e->type != NULL ? e->type : "";
	argv[2] = e->cf_payment_id != NULL ? e->cf_payment_id : "";
	argv[3] = e->order_id != NULL ? e->order_id : "";
	argv[4] = NULL;
	if (hook_env(r, read, t->env, envp) == -1) {
		(void)snprintf(reason, reason_len, "out of memory");
		goto out;
	}
	memset(&run, 0, sizeof(run));
	run.path = t->path;
	run.argv = argv;
	run.envp = envp;
	run.input = env;
	run.input_len = len;
	run.timeout_ms = t->timeout_ms;
	run.cancel_fd = t->cancel_fd;
	run.fields = &lf;
	run.guard = t->guard;
	switch (hook_run(&run, reason, reason_len)) {
	case HOOK_OK:
		res = DELIVER_OK;
		break;
	case HOOK_CANCELLED:
		res = DELIVER_INTERRUPTED;
		break;
	case HOOK_TIMEOUT:
		res = DELIVER_TIMEOUT;
		break;
	case HOOK_FAILED:
		break;
	}
out:
	for (i = 0; i < HOOK_ENV_N; i++)
		free(envp[i]);
	return res;
}

enum outbox_outcome
deliver_outcome(enum deliver_result r)
{
	switch (r) {
	case DELIVER_OK:
		return OUTBOX_DELIVERED;
	case DELIVER_UNANSWERED:
		return OUTBOX_UNANSWERED;
	case DELIVER_INTERRUPTED:
		return OUTBOX_INTERRUPTED;
	case DELIVER_UNSTARTED:
		return OUTBOX_UNSTARTED;
	case DELIVER_FAILED:
	case DELIVER_TIMEOUT:
		break;
	}
	return OUTBOX_FAILED;
}

char *
deliver_envelope(const struct outbox_row *r, const struct event *read,
    size_t *len)
{
	char *env = envelope_build(&r->ev, r->attempt, read, len);

	/* The NUL after the envelope becomes its newline: one whole line, so
	 * `read -r line` in a shell hook succeeds. */
	if (env != NULL)
		env[*len] = '\n';
	return env;
}

enum deliver_result
deliver_hook(const struct deliver_hook *t, const struct outbox_row *r,
    const struct event *read, char *reason, size_t reason_len)
{
	enum deliver_result res;
	size_t len = 0;
	char *env;

	env = deliver_envelope(r, read, &len);
	if (env == NULL) {
		(void)snprintf(reason, reason_len, "out of memory");
		return DELIVER_FAILED;
	}
	res = to_hook(t, r, read, env, len + 1, reason, reason_len);
	free(env);
	return res;
}

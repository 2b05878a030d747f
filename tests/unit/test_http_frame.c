/* test_http_frame.c - the head checks of http_frame.c: Content-Length and
 * Transfer-Encoding framing (RFC 9112 6), field names (5.1), and the path of
 * a request target (3.2). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "http_frame.h"

#define MAXF	4
#define OTHER_CODING	"transfer coding other than chunked"

struct head_case {
	const char *fields[MAXF][2];	/* name, value; name NULL ends */
	enum http_frame_result want;
	const char *why;		/* NULL: any (or none when OK) */
};

static enum http_frame_result
run_head(const struct head_case *hc, const char **why)
{
	struct http_frame f;
	size_t i;

	http_frame_init(&f);
	for (i = 0; i < MAXF && hc->fields[i][0] != NULL; i++)
		http_frame_field(&f, hc->fields[i][0], hc->fields[i][1]);
	return http_frame_done(&f, why);
}

static void
test_heads(void)
{
	static const struct head_case cases[] = {
		/* ordinary requests */
		{ { { "Host", "x" }, { "Content-Length", "10" } },
		    HTTP_FRAME_OK, NULL },
		{ { { "Host", "x" } }, HTTP_FRAME_OK, NULL },
		{ { { "transfer-encoding", "chunked" } }, HTTP_FRAME_OK, NULL },
		{ { { "Transfer-Encoding", "Chunked" } }, HTTP_FRAME_OK, NULL },
		{ { { "x-webhook-signature", "a b=" }, { "X_Odd.Name~", "" } },
		    HTTP_FRAME_OK, NULL },
		/* one length twice, as fields or as a list, is one length */
		{ { { "Content-Length", "5" }, { "content-length", "5" } },
		    HTTP_FRAME_OK, NULL },
		{ { { "Content-Length", "5, 5" } }, HTTP_FRAME_OK, NULL },
		/* conflicting or malformed lengths */
		{ { { "Content-Length", "5" }, { "Content-Length", "6" } },
		    HTTP_FRAME_BAD, "conflicting Content-Length" },
		{ { { "Content-Length", "5, 6" } },
		    HTTP_FRAME_BAD, "conflicting Content-Length" },
		{ { { "Content-Length", "5" }, { "Content-Length", "05x" } },
		    HTTP_FRAME_BAD, "malformed Content-Length" },
		{ { { "Content-Length", "" } },
		    HTTP_FRAME_BAD, "malformed Content-Length" },
		{ { { "Content-Length", "5," } },
		    HTTP_FRAME_BAD, "malformed Content-Length" },
		{ { { "Content-Length", "+5" } },
		    HTTP_FRAME_BAD, "malformed Content-Length" },
		{ { { "Content-Length", "99999999999999999999" } },
		    HTTP_FRAME_BAD, "malformed Content-Length" },
		/* smuggling: both framings */
		{ { { "Content-Length", "5" },
		    { "Transfer-Encoding", "chunked" } },
		    HTTP_FRAME_BAD, "Content-Length with Transfer-Encoding" },
		{ { { "Transfer-Encoding", "gzip" },
		    { "Content-Length", "5" } },
		    HTTP_FRAME_BAD, "Content-Length with Transfer-Encoding" },
		/* chunked must be last and once */
		{ { { "Transfer-Encoding", "chunked, gzip" } },
		    HTTP_FRAME_BAD, "chunked is not the last transfer coding" },
		{ { { "Transfer-Encoding", "chunked" },
		    { "Transfer-Encoding", "chunked" } },
		    HTTP_FRAME_BAD, "chunked applied more than once" },
		{ { { "Transfer-Encoding", "" } },
		    HTTP_FRAME_BAD, "empty Transfer-Encoding" },
		{ { { "Transfer-Encoding", " , " } },
		    HTTP_FRAME_BAD, "empty Transfer-Encoding" },
		/* codings we cannot read: 501 */
		{ { { "Transfer-Encoding", "gzip" } },
		    HTTP_FRAME_UNSUPPORTED, OTHER_CODING },
		{ { { "Transfer-Encoding", "gzip, chunked" } },
		    HTTP_FRAME_UNSUPPORTED, OTHER_CODING },
		{ { { "Transfer-Encoding", "identity" } },
		    HTTP_FRAME_UNSUPPORTED, OTHER_CODING },
		{ { { "Transfer-Encoding", "chunked;x=1" } },
		    HTTP_FRAME_UNSUPPORTED, OTHER_CODING },
		/* chunked, but not as libmicrohttpd recognises it */
		{ { { "Transfer-Encoding", "chunked " } },
		    HTTP_FRAME_UNSUPPORTED,
		    "Transfer-Encoding other than a plain chunked" },
		{ { { "Transfer-Encoding", "chunked," } },
		    HTTP_FRAME_UNSUPPORTED,
		    "Transfer-Encoding other than a plain chunked" },
		{ { { "Transfer-Encoding", "" },
		    { "Transfer-Encoding", "chunked" } },
		    HTTP_FRAME_UNSUPPORTED,
		    "Transfer-Encoding other than a plain chunked" },
		/* field names that are not tokens */
		{ { { "Content-Type ", "application/json" } },
		    HTTP_FRAME_BAD, "malformed header field name" },
		{ { { "Content-Type\t", "application/json" } },
		    HTTP_FRAME_BAD, "malformed header field name" },
		{ { { "Host", "x" }, { "HostContent-Type: a", "x" } },
		    HTTP_FRAME_BAD, "malformed header field name" },
		{ { { "", "x" } }, HTTP_FRAME_BAD,
		    "malformed header field name" },
		{ { { "X(y)", "x" } }, HTTP_FRAME_BAD,
		    "malformed header field name" },
		{ { { "X\xc3\xa9", "x" } }, HTTP_FRAME_BAD,
		    "malformed header field name" },
		/* the first problem is the one reported */
		{ { { "Bad Name", "x" }, { "Content-Length", "1" },
		    { "Content-Length", "2" } },
		    HTTP_FRAME_BAD, "malformed header field name" },
	};
	const char *why;
	enum http_frame_result got;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = "unset";
		got = run_head(&cases[i], &why);
		if (!CHECK_INT(got, cases[i].want))
			fprintf(stderr, "  case %zu (%s)\n", i, why);
		if (cases[i].want == HTTP_FRAME_OK)
			CHECK_STR(why, NULL);
		else if (cases[i].why != NULL)
			CHECK_STR(why, cases[i].why);
	}
}

static void
test_paths(void)
{
	static const struct {
		const char *target, *want;
	} cases[] = {
		{ "/webhooks/cashfree", "/webhooks/cashfree" },
		{ "/", "/" },
		{ "*", "*" },
		{ "http://host/webhooks/cashfree", "/webhooks/cashfree" },
		{ "HTTP://Host:8080/webhooks/cashfree", "/webhooks/cashfree" },
		{ "https://[::1]:8443/a/b", "/a/b" },
		{ "http://host", "/" },
		{ "http://host/", "/" },
		{ "http:///webhooks/cashfree", NULL },
		{ "http://user@host/webhooks/cashfree", NULL },
		{ "http://ho st/x", NULL },
		{ "ftp://host/x", NULL },
		{ "http:/x", NULL },
		{ "webhooks/cashfree", NULL },
		{ "", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!CHECK_STR(http_frame_path(cases[i].target), cases[i].want))
			fprintf(stderr, "  target \"%s\"\n", cases[i].target);
	}
}

int
main(void)
{
	RUN(test_heads);
	RUN(test_paths);
	return check_finish("test_http_frame");
}

/* lg_req.c - builds and signs the load generator's webhook requests.
 *
 * The JSON body follows the shape of the spec's 2023-08-01 sample of a
 * PAYMENT_SUCCESS_WEBHOOK (data.order, data.payment, customer_details,
 * payment_gateway_details, payment_offers; about 1.2 KB); the id becomes
 * cf_payment_id and part of order_id, so each id is one new event and one
 * new order. The form body is a PAYMENT_LINK_EVENT with the fields of the
 * Payment Link webhook flattened (spec section 5.1), keyed by transaction_id.
 * Both are signed with the header scheme over their raw bytes.
 *
 * Must not: allocate per request (the key context is reused), or write past
 * `cap`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "lg_req.h"

#define MAC_LEN	32
#define SIG_LEN	44	/* Base64 of 32 bytes with padding */

struct lg_req_key {
	EVP_MAC		*mac;
	EVP_MAC_CTX	*ctx;	/* keyed once; re-initialised per message */
};

static const char JSON_FMT[] =
    "{\"data\":{\"order\":{\"order_id\":\"bench_%llu\",\"order_amount\":170.00,"
    "\"order_currency\":\"INR\",\"order_tags\":null},\"payment\":{"
    "\"cf_payment_id\":\"%llu\",\"payment_status\":\"SUCCESS\","
    "\"payment_amount\":170.00,\"payment_currency\":\"INR\","
    "\"payment_message\":\"00::Transaction success\","
    "\"payment_time\":\"2025-05-05T12:20:29+05:30\","
    "\"bank_reference\":\"234928698581\",\"auth_id\":null,"
    "\"payment_method\":{\"upi\":{\"channel\":\"collect\","
    "\"upi_id\":\"buyer@ybl\"}},\"payment_group\":\"upi\"},"
    "\"customer_details\":{\"customer_name\":null,"
    "\"customer_id\":\"bench_customer_%llu\","
    "\"customer_email\":\"buyer@example.com\","
    "\"customer_phone\":\"9000000000\"},\"payment_gateway_details\":{"
    "\"gateway_name\":\"CASHFREE\",\"gateway_order_id\":\"1634766330\","
    "\"gateway_payment_id\":\"1504280029\","
    "\"gateway_order_reference_id\":\"abc_124\","
    "\"gateway_settlement\":\"CASHFREE\",\"gateway_status_code\":null},"
    "\"payment_offers\":[{\"offer_id\":"
    "\"0f05e1d0-fbf8-4c9c-a1f0-814c7b2abdba\",\"offer_type\":\"DISCOUNT\","
    "\"offer_meta\":{\"offer_title\":\"50%% off on UPI\","
    "\"offer_description\":\"50%% off for testing\",\"offer_code\":\"UPI50\","
    "\"offer_start_time\":\"2025-01-09T06:23:25.972Z\","
    "\"offer_end_time\":\"2025-12-27T18:30:00Z\"},\"offer_redemption\":{"
    "\"redemption_status\":\"SUCCESS\",\"discount_amount\":1,"
    "\"cashback_amount\":0}}]},\"event_time\":\"2025-05-05T12:20:31+05:30\","
    "\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"}";

static const char FORM_FMT[] =
    "type=PAYMENT_LINK_EVENT&version=1&cf_link_id=%llu"
    "&link_id=bench_link_%llu&link_status=PAID&link_currency=INR"
    "&link_amount=170.00&link_amount_paid=170.00"
    "&link_purpose=Payment+for+bench+order&customer_name=Bench+Buyer"
    "&customer_email=buyer%%40example.com&customer_phone=9000000000"
    "&order_id=CFPay_bench_link_%llu&order_amount=170.00"
    "&transaction_id=%llu&transaction_status=SUCCESS"
    "&event_time=2025-05-05T12%%3A55%%3A06%%2B05%%3A30";

struct lg_req_key *
lg_req_key_new(const void *key, size_t len)
{
	struct lg_req_key *k;
	OSSL_PARAM params[2];

	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (k->mac == NULL)
		goto fail;
	k->ctx = EVP_MAC_CTX_new(k->mac);
	if (k->ctx == NULL)
		goto fail;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(k->ctx, key, len, params) != 1)
		goto fail;
	return k;
fail:
	lg_req_key_free(k);
	return NULL;
}

void
lg_req_key_free(struct lg_req_key *k)
{
	if (k == NULL)
		return;
	EVP_MAC_CTX_free(k->ctx);	/* clears the key schedule */
	EVP_MAC_free(k->mac);
	free(k);
}

int
lg_req_sign(struct lg_req_key *k, const void *a, size_t alen, const void *b,
    size_t blen, char sig[SIG_LEN + 1])
{
	unsigned char mac[MAC_LEN];
	size_t n = 0;
	int rc = -1;

	/* A NULL key re-initialises with the key already set: no allocation
	 * and no key schedule per message. */
	if (EVP_MAC_init(k->ctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(k->ctx, a, alen) != 1 ||
	    EVP_MAC_update(k->ctx, b, blen) != 1 ||
	    EVP_MAC_final(k->ctx, mac, &n, sizeof(mac)) != 1 || n != MAC_LEN)
		goto out;
	if (EVP_EncodeBlock((unsigned char *)sig, mac, MAC_LEN) != SIG_LEN)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

size_t
lg_req_body(uint64_t id, enum lg_req_kind kind, char *out, size_t cap)
{
	unsigned long long v = id;
	int n;

	if (kind == LG_REQ_FORM)
		n = snprintf(out, cap, FORM_FMT, v, v, v, v);
	else
		n = snprintf(out, cap, JSON_FMT, v, v, v);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

size_t
lg_req_build(struct lg_req_key *k, const char *host, const char *path,
    uint64_t id, enum lg_req_kind kind, unsigned attempt, int64_t now_ms,
    char *out, size_t cap)
{
	char body[LG_REQ_MAX], ts[24], sig[SIG_LEN + 1];
	size_t blen;
	int tl, hl;

	blen = lg_req_body(id, kind, body, sizeof(body));
	if (blen == 0)
		return 0;
	tl = snprintf(ts, sizeof(ts), "%lld", (long long)now_ms);
	if (tl < 0 || (size_t)tl >= sizeof(ts))
		return 0;
	if (lg_req_sign(k, ts, (size_t)tl, body, blen, sig) == -1)
		return 0;
	hl = snprintf(out, cap, "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n"
	    "x-webhook-version: 2023-08-01\r\nx-webhook-attempt: %u\r\n"
	    "x-webhook-timestamp: %s\r\nx-webhook-signature: %s\r\n\r\n",
	    path, host, kind == LG_REQ_FORM ?
	    "application/x-www-form-urlencoded" : "application/json",
	    blen, attempt, ts, sig);
	if (hl < 0 || (size_t)hl >= cap || blen > cap - (size_t)hl)
		return 0;
	memcpy(out + hl, body, blen);
	return (size_t)hl + blen;
}

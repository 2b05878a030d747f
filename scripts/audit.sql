-- audit.sql - ready queries over cfhookd's event database (DESIGN "Database").
--
-- All of them, with section titles:
--     sqlite3 -readonly -header -column /var/lib/cfhookd/events.db < audit.sql
-- or copy one SELECT into `sqlite3 -readonly events.db`. Every query only
-- reads, so it is safe while cfhookd runs (WAL: readers never block it).
--
-- Columns used: events(id, event_key, type, cf_payment_id, order_id,
-- payment_status, amount, currency, body, received_at, deliveries,
-- forward_state, forward_attempts, last_error, next_attempt_at),
-- forward_log(event_id, attempt, started_at, finished_at, ok, error).
--
-- Times are unix milliseconds; days here are UTC days. For India time write
-- date(received_at / 1000, 'unixepoch', '+05:30') instead of
-- date(received_at / 1000, 'unixepoch').
-- Amounts are decimal text exactly as Cashfree sent them; sums are taken in
-- hundredths (paise) and printed with two decimals.
-- body is TEXT when the request was valid UTF-8 (every JSON webhook), else
-- a BLOB; json_extract() is only applied where json_valid() says it can be.
--
-- The sqlite3 shell prints text as stored: an order id holding control
-- characters reaches the terminal as they are (`cfhookctl list` escapes
-- them as \xNN). Add `.mode quote` to see them quoted.
--
-- One payment made through a Payment Link arrives twice, as a
-- PAYMENT_SUCCESS_WEBHOOK and as a PAYMENT_LINK_EVENT: the payment queries
-- below count PAYMENT_SUCCESS_WEBHOOK only, so nothing is counted twice.

.print '== Paid orders per UTC day, last 30 days (PAYMENT_SUCCESS_WEBHOOK) =='
SELECT date(received_at / 1000, 'unixepoch') AS day_utc,
       currency,
       count(DISTINCT order_id) AS orders,
       count(*) AS payments,
       printf('%.2f', sum(round(CAST(amount AS REAL) * 100)) / 100.0) AS total
  FROM events
 WHERE type = 'PAYMENT_SUCCESS_WEBHOOK'
   AND received_at >= (CAST(strftime('%s', 'now', 'start of day', '-29 days')
                            AS INTEGER) * 1000)
 GROUP BY day_utc, currency
 ORDER BY day_utc DESC, currency;

.print ''
.print '== Payments received today (UTC) =='
SELECT id,
       strftime('%Y-%m-%dT%H:%M:%SZ', received_at / 1000, 'unixepoch')
           AS received_utc,
       order_id, cf_payment_id, amount, currency, forward_state
  FROM events
 WHERE type = 'PAYMENT_SUCCESS_WEBHOOK'
   AND received_at >= CAST(strftime('%s', 'now', 'start of day') AS INTEGER)
                      * 1000
 ORDER BY id;

.print ''
.print '== Orders with two or more successful payments (refund or check) =='
-- Each row is one order; every cf_payment_id listed is a distinct payment
-- (the same payment delivered twice is one event, see `deliveries`).
SELECT order_id,
       count(*) AS successful_payments,
       group_concat(cf_payment_id, ' ') AS cf_payment_ids,
       group_concat(ifnull(amount, '?') || ' ' || ifnull(currency, ''), ', ')
           AS amounts,
       strftime('%Y-%m-%dT%H:%M:%SZ', min(received_at) / 1000, 'unixepoch')
           AS first_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', max(received_at) / 1000, 'unixepoch')
           AS last_utc
  FROM events
 WHERE type = 'PAYMENT_SUCCESS_WEBHOOK'
   AND order_id IS NOT NULL
 GROUP BY order_id
HAVING count(*) >= 2
 ORDER BY max(received_at) DESC;

.print ''
.print '== Stuck: pending delivery for more than 15 minutes =='
-- Change 15 to taste. A long list usually means the hook keeps failing or
-- the consumer socket is down: see last_error and `cfhookctl show ID`.
SELECT id, event_key, order_id,
       forward_attempts AS attempts,
       strftime('%Y-%m-%dT%H:%M:%SZ', received_at / 1000, 'unixepoch')
           AS received_utc,
       (CAST(strftime('%s', 'now') AS INTEGER) * 1000 - received_at) / 60000
           AS age_min,
       CASE WHEN next_attempt_at > 0
            THEN strftime('%Y-%m-%dT%H:%M:%SZ', next_attempt_at / 1000,
                          'unixepoch') END AS next_attempt_utc,
       last_error
  FROM events
 WHERE forward_state = 'pending'
   AND received_at < (CAST(strftime('%s', 'now') AS INTEGER) - 15 * 60) * 1000
 ORDER BY id;

.print ''
.print '== Dead: every delivery attempt failed (cfhookctl replay ID | --dead) =='
SELECT id, event_key, type, order_id,
       forward_attempts AS attempts,
       strftime('%Y-%m-%dT%H:%M:%SZ', received_at / 1000, 'unixepoch')
           AS received_utc,
       last_error
  FROM events
 WHERE forward_state = 'dead'
 ORDER BY id;

.print ''
.print '== Amount mismatches: successful payment vs its order_amount =='
-- Compared as numbers to the paisa (170.00 = 170). A payment with an offer
-- or discount applied legitimately differs; everything else needs a look.
-- problem 'no order_amount' means the body did not carry one to compare.
SELECT id, order_id, cf_payment_id,
       amount AS paid, currency,
       order_amount, order_currency,
       CASE
         WHEN order_amount IS NULL THEN 'no order_amount'
         WHEN amount IS NULL THEN 'no payment_amount'
         WHEN round(CAST(amount AS REAL) * 100)
              <> round(CAST(order_amount AS REAL) * 100) THEN 'amount differs'
         ELSE 'currency differs'
       END AS problem,
       strftime('%Y-%m-%dT%H:%M:%SZ', received_at / 1000, 'unixepoch')
           AS received_utc
  FROM (SELECT e.*,
               CASE WHEN typeof(body) = 'text' AND json_valid(body)
                    THEN json_extract(body, '$.data.order.order_amount')
               END AS order_amount,
               CASE WHEN typeof(body) = 'text' AND json_valid(body)
                    THEN json_extract(body, '$.data.order.order_currency')
               END AS order_currency
          FROM events AS e
         WHERE type = 'PAYMENT_SUCCESS_WEBHOOK')
 WHERE order_amount IS NULL
    OR amount IS NULL
    OR round(CAST(amount AS REAL) * 100)
       <> round(CAST(order_amount AS REAL) * 100)
    OR (order_currency IS NOT NULL AND currency IS NOT NULL
        AND order_currency <> currency)
 ORDER BY id;

.print ''
.print '== Payment Link events: paid vs link and order =='
-- PAID and PARTIALLY_PAID link events. check:
--   'ok'                   link_amount_paid equals link_amount (PAID) and a
--                          PAYMENT_SUCCESS_WEBHOOK exists for the order
--   'paid differs'         PAID, but link_amount_paid <> link_amount
--   'no payment event'     no PAYMENT_SUCCESS_WEBHOOK for the link's order
--                          (yet): compare with the Cashfree dashboard
-- JSON bodies give every column. For a form-encoded link event the link id
-- and status come from its event_key (PAYMENT_LINK_EVENT:link:status:txn;
-- this assumes a link id without ':') and the link amounts stay empty.
SELECT id,
       link_id, link_status, order_id,
       cf_payment_id AS transaction_id,
       link_amount, link_amount_paid,
       amount AS order_amount, currency,
       CASE
         WHEN NOT EXISTS (SELECT 1 FROM events AS p
                           WHERE p.type = 'PAYMENT_SUCCESS_WEBHOOK'
                             AND p.order_id = l.order_id)
              THEN 'no payment event'
         WHEN link_status = 'PAID'
              AND round(CAST(link_amount_paid AS REAL) * 100)
                  <> round(CAST(link_amount AS REAL) * 100)
              THEN 'paid differs'
         ELSE 'ok'
       END AS "check",
       strftime('%Y-%m-%dT%H:%M:%SZ', received_at / 1000, 'unixepoch')
           AS received_utc
  FROM (SELECT j.*,
               coalesce(json_link_id,
                        substr(event_key, 20,
                               instr(substr(event_key, 20), ':') - 1))
                   AS link_id,
               coalesce(json_link_status,
                        CASE WHEN event_key LIKE
                                  'PAYMENT_LINK_EVENT:%:PARTIALLY_PAID:%'
                             THEN 'PARTIALLY_PAID'
                             WHEN event_key LIKE 'PAYMENT_LINK_EVENT:%:PAID:%'
                             THEN 'PAID' END) AS link_status
          FROM (SELECT e.*,
                       CASE WHEN typeof(body) = 'text' AND json_valid(body)
                            THEN json_extract(body, '$.data.link_id')
                       END AS json_link_id,
                       CASE WHEN typeof(body) = 'text' AND json_valid(body)
                            THEN json_extract(body, '$.data.link_status')
                       END AS json_link_status,
                       CASE WHEN typeof(body) = 'text' AND json_valid(body)
                            THEN json_extract(body, '$.data.link_amount')
                       END AS link_amount,
                       CASE WHEN typeof(body) = 'text' AND json_valid(body)
                            THEN json_extract(body, '$.data.link_amount_paid')
                       END AS link_amount_paid
                  FROM events AS e
                 WHERE type = 'PAYMENT_LINK_EVENT') AS j) AS l
 WHERE link_status IN ('PAID', 'PARTIALLY_PAID')
 ORDER BY id;

.print ''
.print '== Delivered more than once by Cashfree (retries, dashboard resends) =='
SELECT id, event_key, deliveries,
       strftime('%Y-%m-%dT%H:%M:%SZ', received_at / 1000, 'unixepoch')
           AS first_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', last_seen_at / 1000, 'unixepoch')
           AS last_utc
  FROM events
 WHERE deliveries > 1
 ORDER BY last_seen_at DESC
 LIMIT 50;

.print ''
.print '== Forwarding by state and type =='
SELECT forward_state, type, count(*) AS events,
       sum(forward_attempts) AS attempts
  FROM events
 GROUP BY forward_state, type
 ORDER BY forward_state, type;

.print ''
.print '== Failed delivery attempts in the last 24 hours =='
SELECT l.event_id, e.event_key, l.attempt,
       strftime('%Y-%m-%dT%H:%M:%SZ', l.started_at / 1000, 'unixepoch')
           AS started_utc,
       l.error
  FROM forward_log AS l
  LEFT JOIN events AS e ON e.id = l.event_id
 WHERE l.ok = 0
   AND l.started_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 86400) * 1000
 ORDER BY l.id DESC
 LIMIT 100;

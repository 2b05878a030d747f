-- audit.sql - ready queries over cfhookd's event database (DESIGN "Database",
-- "Orders").
--
-- All of them, with section titles:
--     sqlite3 -readonly -header -column /var/lib/cfhookd/events.db < audit.sql
-- or copy one SELECT into `sqlite3 -readonly events.db`. Every query only
-- reads, so it is safe while cfhookd runs (WAL: readers never block it).
--
-- Tables used: orders (the payment state of each order, kept by cfhookd in
-- the transaction of each event: state PENDING | PAID | FAILED |
-- USER_DROPPED, PAID final; successes = distinct successful payments; the
-- attention flags double_payment, amount_mismatch, late_failure),
-- order_payments(order_id, cf_payment_id, event_id), events (one row per
-- distinct event, with order_state / order_paid_now / order_attention as
-- that event left its order) and forward_log (delivery attempts).
--
-- Times are stored as unix milliseconds, UTC. They are shown, and days are
-- cut, in the local time zone of the sqlite3 process, with the offset
-- written out: run it as
--     TZ=Asia/Kolkata sqlite3 ...    for India time (2025-05-05T12:19:19+05:30)
--     TZ=UTC sqlite3 ...             for UTC (2025-05-05T06:49:19Z)
-- (without TZ, the system's zone). Each shown time is
--     strftime('%Y-%m-%dT%H:%M:%S', t / 1000, 'unixepoch', 'localtime')
-- followed by that instant's offset, computed from julianday() the same way
-- in every query.
-- Amounts are decimal text exactly as Cashfree sent them (170.00, 1e2); the
-- ledger compares them as decimals. Sums are taken in hundredths (paise) and
-- printed with two decimals.
-- body is TEXT when the request was valid UTF-8 (every JSON webhook), else
-- a BLOB; json_extract() is only applied where json_valid() says it can be.
--
-- The sqlite3 shell prints text as stored: an order id holding control
-- characters reaches the terminal as they are (`cfhookctl orders` escapes
-- them as \xNN). Add `.mode quote` to see them quoted.

.print '== Paid orders per day, last 30 days (order ledger) =='
-- One row per day and currency; an order counts on the day it became PAID,
-- once, however many events (a Payment Link event and its twin) or payments
-- it had. total sums the amount of the payment that paid each order.
SELECT date(paid_at / 1000, 'unixepoch', 'localtime') AS day,
       currency,
       count(*) AS orders_paid,
       sum(successes > 1) AS paid_twice,
       printf('%.2f', sum(round(CAST(paid_amount AS REAL) * 100)) / 100.0)
           AS total
  FROM orders
 WHERE state = 'PAID'
   AND paid_at >= CAST(strftime('%s', 'now', 'localtime', 'start of day',
                                '-29 days', 'utc') AS INTEGER) * 1000
 GROUP BY day, currency
 ORDER BY day DESC, currency;

.print ''
.print '== Payments received today =='
SELECT id,
       strftime('%Y-%m-%dT%H:%M:%S', received_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(received_at / 1000, 'unixepoch',
                                             'localtime')
                                   - julianday(received_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS received,
       order_id, cf_payment_id, amount, currency, order_state, order_paid_now,
       forward_state
  FROM events
 WHERE type = 'PAYMENT_SUCCESS_WEBHOOK'
   AND received_at >= CAST(strftime('%s', 'now', 'localtime', 'start of day',
                                    'utc') AS INTEGER) * 1000
 ORDER BY id;

.print ''
.print '== Orders paid twice or more (double_payment: refund all but one) =='
-- Each cf_payment_id listed is a distinct successful payment of the order
-- (a Payment Link event and its twin PAYMENT_SUCCESS_WEBHOOK are one).
SELECT o.order_id,
       o.successes,
       (SELECT group_concat(p.cf_payment_id, ' ')
          FROM order_payments AS p WHERE p.order_id = o.order_id)
           AS cf_payment_ids,
       o.paid_amount, o.currency, o.attention,
       strftime('%Y-%m-%dT%H:%M:%S', o.last_event_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN z = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN z < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(z) / 60, abs(z) % 60) END
          FROM (SELECT CAST(round((julianday(o.last_event_at / 1000,
                                             'unixepoch', 'localtime')
                                   - julianday(o.last_event_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS z)) AS last_event
  FROM orders AS o
 WHERE o.successes >= 2
 ORDER BY o.last_event_at DESC;

.print ''
.print '== Amount mismatches: paid amount vs order amount (order ledger) =='
-- Compared as decimals (100 = 100.00 = 1e2), and the currency too. An offer
-- or discount may explain a difference; everything else needs a look.
SELECT order_id, order_amount, currency, paid_amount, paid_currency,
       successes, state, attention,
       strftime('%Y-%m-%dT%H:%M:%S', paid_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(paid_at / 1000, 'unixepoch',
                                             'localtime')
                                   - julianday(paid_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS paid
  FROM orders
 WHERE ',' || attention || ',' LIKE '%,amount_mismatch,%'
 ORDER BY paid_at DESC;

.print ''
.print '== Late failures: FAILED or USER_DROPPED after PAID (never un-fulfil) =='
-- Usually an earlier failed attempt delivered late; the order stays PAID.
SELECT o.order_id, o.state, o.paid_amount, o.currency,
       (SELECT group_concat(e.type || ':' || ifnull(e.cf_payment_id, '-'),
                            ' ')
          FROM events AS e
         WHERE e.order_id = o.order_id AND e.order_state = 'PAID'
           AND e.type IN ('PAYMENT_FAILED_WEBHOOK',
                          'PAYMENT_USER_DROPPED_WEBHOOK')) AS late_events
  FROM orders AS o
 WHERE ',' || o.attention || ',' LIKE '%,late_failure,%'
 ORDER BY o.last_event_at DESC;

.print ''
.print '== Orders not paid, last 7 days (failed, dropped or pending) =='
-- The customer may have given up; a later SUCCESS would move the order.
SELECT order_id, state, order_amount, currency,
       strftime('%Y-%m-%dT%H:%M:%S', last_event_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(last_event_at / 1000,
                                             'unixepoch', 'localtime')
                                   - julianday(last_event_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS last_event
  FROM orders
 WHERE state <> 'PAID'
   AND last_event_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400)
                        * 1000
 ORDER BY last_event_at DESC;

.print ''
.print '== Stuck: pending delivery for more than 15 minutes =='
-- Change 15 to taste. A long list usually means the hook keeps failing or
-- the consumer socket is down: see last_error and `cfhookctl show ID`.
SELECT id, event_key, order_id,
       forward_attempts AS attempts,
       strftime('%Y-%m-%dT%H:%M:%S', received_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(received_at / 1000, 'unixepoch',
                                             'localtime')
                                   - julianday(received_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS received,
       (CAST(strftime('%s', 'now') AS INTEGER) * 1000 - received_at) / 60000
           AS age_min,
       last_error
  FROM events
 WHERE forward_state = 'pending'
   AND received_at < (CAST(strftime('%s', 'now') AS INTEGER) - 15 * 60) * 1000
 ORDER BY id;

.print ''
.print '== Dead: every delivery attempt failed (cfhookctl replay ID | --dead) =='
SELECT id, event_key, type, order_id,
       forward_attempts AS attempts,
       strftime('%Y-%m-%dT%H:%M:%S', received_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(received_at / 1000, 'unixepoch',
                                             'localtime')
                                   - julianday(received_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS received,
       last_error
  FROM events
 WHERE forward_state = 'dead'
 ORDER BY id;

.print ''
.print '== Payment Link events: paid vs link and order =='
-- PAID and PARTIALLY_PAID link events. check:
--   'ok'                   link_amount_paid equals link_amount (PAID) and
--                          the link's order is PAID in the ledger
--   'paid differs'         PAID, but link_amount_paid <> link_amount
--   'order not paid'       the ledger has no PAID order for it (a
--                          transaction that did not succeed)
-- JSON bodies give every column. For a form-encoded link event the link id
-- and status come from its event_key (PAYMENT_LINK_EVENT:link:status:txn;
-- this assumes a link id without ':') and the link amounts stay empty.
SELECT id,
       link_id, link_status, order_id,
       cf_payment_id AS transaction_id,
       link_amount, link_amount_paid,
       amount AS order_amount, currency,
       CASE
         WHEN NOT EXISTS (SELECT 1 FROM orders AS o
                           WHERE o.order_id = l.order_id
                             AND o.state = 'PAID')
              THEN 'order not paid'
         WHEN link_status = 'PAID'
              AND round(CAST(link_amount_paid AS REAL) * 100)
                  <> round(CAST(link_amount AS REAL) * 100)
              THEN 'paid differs'
         ELSE 'ok'
       END AS "check"
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
       strftime('%Y-%m-%dT%H:%M:%S', received_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(received_at / 1000, 'unixepoch',
                                             'localtime')
                                   - julianday(received_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS first,
       strftime('%Y-%m-%dT%H:%M:%S', last_seen_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(last_seen_at / 1000, 'unixepoch',
                                             'localtime')
                                   - julianday(last_seen_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS last
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
       strftime('%Y-%m-%dT%H:%M:%S', l.started_at / 1000, 'unixepoch',
                'localtime') ||
       (SELECT CASE WHEN o = 0 THEN 'Z'
                    ELSE printf('%s%02d:%02d', CASE WHEN o < 0 THEN '-'
                                                    ELSE '+' END,
                                abs(o) / 60, abs(o) % 60) END
          FROM (SELECT CAST(round((julianday(l.started_at / 1000, 'unixepoch',
                                             'localtime')
                                   - julianday(l.started_at / 1000,
                                               'unixepoch')) * 1440)
                            AS INTEGER) AS o)) AS started,
       l.error
  FROM forward_log AS l
  LEFT JOIN events AS e ON e.id = l.event_id
 WHERE l.ok = 0
   AND l.started_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 86400) * 1000
 ORDER BY l.id DESC
 LIMIT 100;

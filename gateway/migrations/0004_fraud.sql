-- 0004: fraud scoring: each merchant's rules document, the velocity events
-- the counters are computed from, and each merchant's daily averages.
--
-- Velocity counters are aggregates over index ranges of an insert-only event
-- table rather than counters updated in place: a sliding window is then
-- exact, "distinct cards per IP" is a count(DISTINCT) instead of a set kept
-- elsewhere, and concurrent checkouts never wait on one hot counter row.
-- The price is a few index entries per event and a periodic DELETE of what
-- left the longest window (fraud_velocity_cleanup; at larger scale, daily
-- partitions dropped whole).

CREATE TABLE gateway.fraud_rules (
    merchant_id  text PRIMARY KEY REFERENCES gateway.merchants (id),
    doc          jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    version      bigint NOT NULL CHECK (version > 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON gateway.fraud_rules TO portcullis_gateway;

-- Keys are BLAKE2b-128 hashes of the normalised card fingerprint, email, IP
-- and device id (computed by fraud/), so no email or IP sits in clear here.
-- No foreign key to merchants: every checkout inserts here, and a key-share
-- lock on the merchant row per insert is a cost without a benefit.
CREATE TABLE gateway.fraud_events (
    merchant_id    text NOT NULL,
    at_ms          bigint NOT NULL,
    currency       text CHECK (currency ~ '^[A-Z]{3}$'),
    card_key       bytea CHECK (length(card_key) = 16),
    email_key      bytea CHECK (length(email_key) = 16),
    ip_key         bytea CHECK (length(ip_key) = 16),
    device_key     bytea CHECK (length(device_key) = 16),
    amount         bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    attempts       smallint NOT NULL DEFAULT 0 CHECK (attempts IN (0, 1)),
    declines       smallint NOT NULL DEFAULT 0 CHECK (declines IN (0, 1)),
    token_failures smallint NOT NULL DEFAULT 0 CHECK (token_failures IN (0, 1))
);
-- One index per key, newest last, carrying every column the counters read,
-- so a load is an index-only range scan per key.
CREATE INDEX fraud_events_card_idx ON gateway.fraud_events (merchant_id, card_key, at_ms)
    INCLUDE (attempts, declines, token_failures, amount, currency) WHERE card_key IS NOT NULL;
CREATE INDEX fraud_events_email_idx ON gateway.fraud_events (merchant_id, email_key, at_ms)
    INCLUDE (card_key, attempts, declines, token_failures, amount, currency)
    WHERE email_key IS NOT NULL;
CREATE INDEX fraud_events_ip_idx ON gateway.fraud_events (merchant_id, ip_key, at_ms)
    INCLUDE (card_key, attempts, declines, token_failures, amount, currency)
    WHERE ip_key IS NOT NULL;
CREATE INDEX fraud_events_device_idx ON gateway.fraud_events (merchant_id, device_key, at_ms)
    INCLUDE (card_key, attempts, declines, token_failures, amount, currency)
    WHERE device_key IS NOT NULL;
CREATE INDEX fraud_events_at_idx ON gateway.fraud_events (at_ms);
GRANT SELECT, INSERT, DELETE ON gateway.fraud_events TO portcullis_gateway;

-- The merchant's recent average amount and usual basket, per currency and
-- UTC day. Each row is split into 64 shards picked at random, so concurrent
-- checkouts of one merchant rarely wait on each other's row lock; a load
-- sums at most 7 x 64 rows (an index range).
CREATE TABLE gateway.fraud_merchant_daily (
    merchant_id  text NOT NULL,
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    day          integer NOT NULL,
    shard        smallint NOT NULL CHECK (shard BETWEEN 0 AND 63),
    n            bigint NOT NULL,
    amount_sum   bigint NOT NULL,
    basket_sum   bigint NOT NULL,
    PRIMARY KEY (merchant_id, currency, day, shard)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON gateway.fraud_merchant_daily TO portcullis_gateway;

-- Records one velocity event (and folds an approved or reviewed attempt into
-- the merchant's daily averages) without committing, so it can run in the
-- caller's transaction, or be PERFORMed from another function of the
-- checkout to save the round trip. p_at_ms NULL: the database clock.
-- Returns the event's time.
CREATE FUNCTION gateway.fraud_event_record(
    p_merchant text, p_at_ms bigint, p_currency text, p_card bytea, p_email bytea, p_ip bytea,
    p_device bytea, p_amount bigint, p_basket bigint, p_attempt boolean, p_declined boolean,
    p_token_failure boolean)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_at bigint := coalesce(p_at_ms, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
BEGIN
    INSERT INTO gateway.fraud_events (merchant_id, at_ms, currency, card_key, email_key, ip_key,
                                      device_key, amount, attempts, declines, token_failures)
    VALUES (p_merchant, v_at, p_currency, p_card, p_email, p_ip, p_device,
            CASE WHEN p_attempt THEN greatest(p_amount, 0) ELSE 0 END,
            p_attempt::int, p_declined::int, p_token_failure::int);
    IF p_attempt AND NOT p_declined AND p_currency IS NOT NULL THEN
        INSERT INTO gateway.fraud_merchant_daily AS d
               (merchant_id, currency, day, shard, n, amount_sum, basket_sum)
        VALUES (p_merchant, p_currency, (v_at / 86400000)::integer, floor(random() * 64)::smallint,
                1, greatest(p_amount, 0),
                CASE WHEN p_basket > 0 THEN p_basket ELSE greatest(p_amount, 0) END)
        ON CONFLICT (merchant_id, currency, day, shard) DO UPDATE
           SET n = d.n + 1, amount_sum = d.amount_sum + EXCLUDED.amount_sum,
               basket_sum = d.basket_sum + EXCLUDED.basket_sum;
    END IF;
    RETURN v_at;
END;
$$;
REVOKE ALL ON FUNCTION gateway.fraud_event_record(text, bigint, text, bytea, bytea, bytea, bytea,
    bigint, bigint, boolean, boolean, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gateway.fraud_event_record(text, bigint, text, bytea, bytea, bytea,
    bytea, bigint, bigint, boolean, boolean, boolean) TO portcullis_gateway;

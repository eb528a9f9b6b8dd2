-- Commit 1 of a checkout, two changes.
--
-- It runs as one autocommit statement, retried when the connection dies,
-- including after a COMMIT that went through. The retry met its own
-- idempotency key and answered "someone else holds it": the shopper got 409
-- request_in_progress, the checkout stayed pending and recovery later failed
-- it, so a sale was lost although nothing had failed (found by
-- it_lost_commit, a proxy that drops the answer of a COMMIT). The key's row
-- names the request's own checkout id, so the retry now recognises itself.
--
-- API.md: a publishable key may read "its own checkouts". A pk lives in
-- shoppers' browsers, so it reads only the checkouts made with it, not every
-- checkout of its merchant (one made server-side with the sk, or with
-- another storefront's pk). The key that made a checkout is recorded with
-- it; rows made before this have none and stay readable by the merchant's
-- keys. checkout_begin gains the key as a new overload; the old signature
-- stays, as a wrapper without a key, for a gatewayd of the previous release
-- still running during an upgrade.
ALTER TABLE gateway.checkouts ADD COLUMN api_key_id text;

CREATE FUNCTION gateway.checkout_begin(
    p_merchant text, p_key text, p_hash bytea, p_checkout text, p_currency text,
    p_amount bigint, p_quote jsonb, p_token text, p_card jsonb, p_customer jsonb,
    p_shipping jsonb, p_capture boolean, p_reservation text, p_reservation_ttl integer,
    p_fraud jsonb, p_payment text, p_provider text, p_attempt_key text, p_lease_s integer,
    p_vel_card bytea, p_vel_email bytea, p_vel_ip bytea, p_vel_device bytea, p_vel_basket bigint,
    p_vel_declined boolean, p_api_key text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gateway.idempotency_keys (merchant_id, key, request_hash, state, resource_id)
    VALUES (p_merchant, p_key, p_hash, 'running', p_checkout)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- The key's row names this very checkout (an id made for this
        -- request alone): our own earlier run, whose COMMIT went through
        -- though its answer was lost with the connection. Everything below
        -- is already recorded; carry on.
        RETURN EXISTS (SELECT 1 FROM gateway.idempotency_keys k
                        WHERE k.merchant_id = p_merchant AND k.key = p_key
                          AND k.resource_id = p_checkout AND k.request_hash = p_hash);
    END IF;
    INSERT INTO gateway.checkouts (id, merchant_id, status, currency, amount, quote, token, card,
        customer, shipping, capture, reservation_id, reservation_ttl, reservation_state, fraud,
        payment_id, idempotency_key, lease_until, api_key_id)
    VALUES (p_checkout, p_merchant, 'pending', p_currency, p_amount, p_quote, p_token, p_card,
        p_customer, p_shipping, p_capture, p_reservation, p_reservation_ttl,
        CASE WHEN p_provider IS NULL THEN 'none' ELSE 'pending' END, p_fraud,
        CASE WHEN p_payment IS NULL THEN NULL ELSE p_payment END, p_key,
        now() + make_interval(secs => p_lease_s), p_api_key);
    IF p_payment IS NOT NULL THEN
        INSERT INTO gateway.payments (id, checkout_id, merchant_id, status, provider, currency,
                                      amount)
        VALUES (p_payment, p_checkout, p_merchant, 'pending', p_provider, p_currency, p_amount);
        INSERT INTO gateway.payment_attempts (payment_id, seq, provider, idempotency_key, state)
        VALUES (p_payment, 1, p_provider, p_attempt_key, 'pending');
    END IF;
    -- the attempt counts toward fraud velocity in this same transaction
    PERFORM gateway.fraud_event_record(p_merchant, NULL, p_currency, p_vel_card, p_vel_email,
                                       p_vel_ip, p_vel_device, p_amount, p_vel_basket, true,
                                       p_vel_declined, false);
    RETURN true;
END;
$$;


CREATE OR REPLACE FUNCTION gateway.checkout_begin(
    p_merchant text, p_key text, p_hash bytea, p_checkout text, p_currency text,
    p_amount bigint, p_quote jsonb, p_token text, p_card jsonb, p_customer jsonb,
    p_shipping jsonb, p_capture boolean, p_reservation text, p_reservation_ttl integer,
    p_fraud jsonb, p_payment text, p_provider text, p_attempt_key text, p_lease_s integer,
    p_vel_card bytea, p_vel_email bytea, p_vel_ip bytea, p_vel_device bytea, p_vel_basket bigint,
    p_vel_declined boolean)
RETURNS boolean
LANGUAGE sql AS $$
    SELECT gateway.checkout_begin(p_merchant, p_key, p_hash, p_checkout, p_currency, p_amount,
        p_quote, p_token, p_card, p_customer, p_shipping, p_capture, p_reservation,
        p_reservation_ttl, p_fraud, p_payment, p_provider, p_attempt_key, p_lease_s, p_vel_card,
        p_vel_email, p_vel_ip, p_vel_device, p_vel_basket, p_vel_declined, NULL::text);
$$;

GRANT EXECUTE ON FUNCTION gateway.checkout_begin(text, text, bytea, text, text, bigint, jsonb,
    text, jsonb, jsonb, jsonb, boolean, text, integer, jsonb, text, text, text, integer, bytea,
    bytea, bytea, bytea, bigint, boolean, text) TO portcullis_gateway;

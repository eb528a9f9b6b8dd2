-- The next provider attempt is recorded only by the request that still owns
-- the checkout. The recovery worker takes a pending checkout over once its
-- lease has run out; without this guard a slow request that lost its lease
-- could still record (and then call) a second provider while recovery was
-- settling the first attempt. Taking over now also moves the checkout to
-- 'processing', so "still pending with a live lease" means "still owned".
CREATE OR REPLACE FUNCTION gateway.attempt_transition(
    p_payment text, p_done_seq integer, p_done_state text, p_done_ref text, p_done_reason text,
    p_next_seq integer, p_next_provider text, p_next_key text, p_lease_s integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gateway.checkouts SET lease_until = now() + make_interval(secs => p_lease_s),
           updated_at = now()
     WHERE payment_id = p_payment AND status = 'pending' AND lease_until > now();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'checkout of payment % is no longer owned by this request', p_payment
              USING ERRCODE = 'P0002';
    END IF;
    UPDATE gateway.payment_attempts SET state = p_done_state, provider_ref = p_done_ref,
           reason = p_done_reason, updated_at = now()
     WHERE payment_id = p_payment AND seq = p_done_seq;
    INSERT INTO gateway.payment_attempts (payment_id, seq, provider, idempotency_key, state)
    VALUES (p_payment, p_next_seq, p_next_provider, p_next_key, 'pending')
    ON CONFLICT DO NOTHING;
    UPDATE gateway.payments SET provider = p_next_provider, updated_at = now()
     WHERE id = p_payment;
END;
$$;

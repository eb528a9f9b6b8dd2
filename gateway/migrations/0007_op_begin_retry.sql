-- Beginning a capture, void or refund is retried when the connection dies,
-- including after a COMMIT that went through. The retry used to meet its own
-- operation and answer 'in_progress' or 'amount_too_large', which was then
-- stored as the idempotency key's answer while the operation went ahead.
-- Now the operation's own id is recognised first ('exists': carry on, and
-- no second audit record).
CREATE OR REPLACE FUNCTION gateway.payment_op_begin(p_merchant text, p_payment text, p_kind text,
                                         p_amount bigint, p_op text, p_key text)
RETURNS TABLE (outcome text, op_amount bigint, provider text, provider_ref text,
               currency text, checkout_id text, status text)
LANGUAGE plpgsql AS $$
DECLARE
    p gateway.payments%ROWTYPE;
    v_busy integer;
    v_pending bigint;
    v_left bigint;
BEGIN
    SELECT * INTO p FROM gateway.payments WHERE id = p_payment AND merchant_id = p_merchant
       FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    provider := p.provider;
    provider_ref := p.provider_ref;
    currency := p.currency;
    checkout_id := p.checkout_id;
    status := p.status;
    -- The same operation again: a retry of a begin whose COMMIT went through
    -- but whose answer was lost with the connection. It is ours, not a rival.
    SELECT o.amount INTO op_amount FROM gateway.payment_operations o
     WHERE o.id = p_op AND o.payment_id = p.id;
    IF FOUND THEN
        outcome := 'exists';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT count(*) INTO v_busy FROM gateway.payment_operations o
     WHERE o.payment_id = p.id AND o.kind IN ('capture', 'void')
       AND o.state IN ('pending', 'unknown');
    IF v_busy > 0 THEN
        outcome := 'in_progress';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_kind IN ('capture', 'void') THEN
        IF p.status <> 'authorized' THEN
            outcome := 'invalid_state';
            RETURN NEXT;
            RETURN;
        END IF;
        op_amount := CASE WHEN p_kind = 'void' THEN p.amount ELSE COALESCE(p_amount, p.amount) END;
        IF op_amount <= 0 OR op_amount > p.amount THEN
            outcome := 'amount_too_large';
            RETURN NEXT;
            RETURN;
        END IF;
    ELSE
        IF p.status NOT IN ('captured', 'partially_refunded') THEN
            outcome := 'invalid_state';
            RETURN NEXT;
            RETURN;
        END IF;
        SELECT COALESCE(sum(o.amount), 0) INTO v_pending FROM gateway.payment_operations o
         WHERE o.payment_id = p.id AND o.kind = 'refund' AND o.state IN ('pending', 'unknown');
        v_left := p.captured_amount - p.refunded_amount - v_pending;
        op_amount := COALESCE(p_amount, v_left);
        IF op_amount <= 0 OR op_amount > v_left THEN
            outcome := 'amount_too_large';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    INSERT INTO gateway.payment_operations (id, payment_id, kind, amount, state, idempotency_key)
    VALUES (p_op, p.id, p_kind, op_amount, 'pending', p_key);
    outcome := 'ok';
    RETURN NEXT;
END;
$$;

-- 0005: checkouts, payments and their attempts, orders, idempotency keys,
-- the event log, webhook endpoints and the transactional outbox.
--
-- Every external side effect sits between two recorded states here:
-- a checkout is inserted 'pending' (with its reservation id and the first
-- payment attempt 'pending') before inventory or a provider is called, and
-- finished in one later transaction. A crash in between leaves rows the
-- recovery worker can finish.

CREATE TABLE gateway.idempotency_keys (
    merchant_id     text NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    state           text NOT NULL CHECK (state IN ('running', 'done')),
    resource_id     text,
    response_status integer,
    response_body   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON gateway.idempotency_keys (created_at);

CREATE TABLE gateway.checkouts (
    id                text PRIMARY KEY,
    merchant_id       text NOT NULL REFERENCES gateway.merchants (id),
    status            text NOT NULL CHECK (status IN ('pending', 'processing', 'succeeded',
                                 'requires_review', 'declined', 'failed')),
    currency          text NOT NULL,
    amount            bigint NOT NULL CHECK (amount >= 0),
    quote             jsonb NOT NULL,
    token             text NOT NULL,
    card              jsonb NOT NULL,
    customer          jsonb,
    shipping          jsonb,
    capture           boolean NOT NULL,
    reservation_id    text NOT NULL,
    reservation_ttl   integer NOT NULL,
    reservation_state text NOT NULL CHECK (reservation_state IN ('none', 'pending', 'reserved',
                                 'committed', 'released')),
    fraud             jsonb,
    error             jsonb,
    order_id          text,
    payment_id        text,
    idempotency_key   text,
    lease_until       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkouts_unfinished_idx ON gateway.checkouts (lease_until)
    WHERE status IN ('pending', 'processing');
CREATE INDEX checkouts_review_idx ON gateway.checkouts (merchant_id, created_at)
    WHERE status = 'requires_review';
CREATE INDEX checkouts_merchant_idx ON gateway.checkouts (merchant_id, created_at);
-- the outbox marks a reservation committed or released by its id
CREATE UNIQUE INDEX checkouts_reservation_idx ON gateway.checkouts (reservation_id);

CREATE TABLE gateway.payments (
    id               text PRIMARY KEY,
    checkout_id      text NOT NULL UNIQUE REFERENCES gateway.checkouts (id),
    merchant_id      text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'processing', 'authorized',
                                'captured', 'partially_refunded', 'refunded', 'voided',
                                'declined', 'failed')),
    provider         text,
    provider_ref     text,
    currency         text NOT NULL,
    amount           bigint NOT NULL CHECK (amount >= 0),
    captured_amount  bigint NOT NULL DEFAULT 0 CHECK (captured_amount >= 0),
    refunded_amount  bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (captured_amount <= amount),
    CHECK (refunded_amount <= captured_amount)
);

CREATE TABLE gateway.payment_attempts (
    payment_id       text NOT NULL REFERENCES gateway.payments (id),
    seq              integer NOT NULL CHECK (seq >= 1),
    provider         text NOT NULL,
    idempotency_key  text NOT NULL UNIQUE,
    state            text NOT NULL CHECK (state IN ('pending', 'authorized', 'captured',
                                'declined', 'unavailable', 'unknown', 'skipped')),
    provider_ref     text,
    reason           text,
    hard             boolean,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, seq)
);

-- Captures, voids and refunds after the checkout: each one an external call
-- recorded before ('pending') and after.
CREATE TABLE gateway.payment_operations (
    id               text PRIMARY KEY,
    payment_id       text NOT NULL REFERENCES gateway.payments (id),
    kind             text NOT NULL CHECK (kind IN ('capture', 'void', 'refund')),
    amount           bigint NOT NULL CHECK (amount >= 0),
    state            text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'unknown')),
    idempotency_key  text NOT NULL UNIQUE,
    provider_ref     text,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_operations_payment_idx ON gateway.payment_operations (payment_id);

CREATE TABLE gateway.orders (
    id           text PRIMARY KEY,
    checkout_id  text NOT NULL UNIQUE REFERENCES gateway.checkouts (id),
    merchant_id  text NOT NULL,
    currency     text NOT NULL,
    subtotal     bigint NOT NULL,
    tax          bigint NOT NULL,
    shipping     bigint NOT NULL,
    total        bigint NOT NULL,
    lines        jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The event log (GET /v1/events). An event's id never changes, whatever
-- the number of deliveries.
CREATE TABLE gateway.events (
    seq          bigserial UNIQUE,
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL,
    type         text NOT NULL,
    object_id    text,
    data         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_merchant_idx ON gateway.events (merchant_id, seq);
-- At most one order.confirmed per checkout, whatever retries happen.
CREATE UNIQUE INDEX events_once_idx ON gateway.events (object_id, type)
    WHERE type IN ('order.confirmed', 'checkout.declined', 'checkout.failed',
                   'checkout.requires_review');

CREATE TABLE gateway.webhook_endpoints (
    merchant_id          text NOT NULL REFERENCES gateway.merchants (id),
    id                   text NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
    url                  text NOT NULL,
    events               text[] NOT NULL,
    secret_sealed        text NOT NULL,
    previous_sealed      text,
    previous_expires_at  timestamptz,
    enabled              boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);

-- The transactional outbox: event deliveries and inventory commit/release
-- requests, written in the same transaction as the state they announce,
-- claimed by any instance with FOR UPDATE SKIP LOCKED.
CREATE TABLE gateway.outbox (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('event', 'inventory_commit',
                                 'inventory_release')),
    merchant_id      text NOT NULL,
    event_id         text,
    endpoint_id      text,
    target           text NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered',
                                 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX outbox_due_idx ON gateway.outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_event_idx ON gateway.outbox (event_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON gateway.idempotency_keys, gateway.checkouts,
    gateway.payments, gateway.payment_attempts, gateway.payment_operations, gateway.orders,
    gateway.events, gateway.webhook_endpoints, gateway.outbox TO portcullis_gateway;
GRANT USAGE, SELECT ON SEQUENCE gateway.events_seq_seq, gateway.outbox_id_seq
    TO portcullis_gateway;

-- ---------------------------------------------------------------------------
-- Money moves as stored procedures: each is one round trip inside the
-- caller's transaction, and each is written as compare-and-set so that
-- running it twice (a retried transaction, the recovery worker racing a slow
-- request) changes nothing the second time.
-- ---------------------------------------------------------------------------

-- An event plus one outbox delivery per subscribed, enabled endpoint. The
-- once-per-checkout event types are unique per object: a second emission is
-- silently dropped.
CREATE FUNCTION gateway.emit_event(p_id text, p_merchant text, p_type text, p_object text,
                                   p_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH ev AS (
        INSERT INTO gateway.events (id, merchant_id, type, object_id, data)
        VALUES (p_id, p_merchant, p_type, p_object, p_data)
        ON CONFLICT DO NOTHING
        RETURNING id, merchant_id, type)
    INSERT INTO gateway.outbox (kind, merchant_id, event_id, endpoint_id, target)
    SELECT 'event', ev.merchant_id, ev.id, w.id, w.url FROM ev
    JOIN gateway.webhook_endpoints w ON w.merchant_id = ev.merchant_id AND w.enabled
     AND (ev.type = ANY (w.events) OR '*' = ANY (w.events));
END;
$$;

-- The checkout object of API.md, built from the rows: the one renderer for
-- responses, stored idempotent replies and event payloads. Absent parts
-- (no order yet, no error) are left out; json_strip_nulls also writes it
-- compactly, in the order built here. PL/pgSQL rather than SQL so that its
-- plan is cached per connection instead of parsed on every call.
CREATE FUNCTION gateway.checkout_json(p_id text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT json_strip_nulls(json_build_object(
        'id', c.id,
        'object', 'checkout',
        'status', c.status,
        'created', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'currency', c.currency,
        'amount', c.amount,
        'capture', c.capture,
        'order', (SELECT json_build_object(
                      'id', o.id, 'currency', o.currency, 'subtotal', o.subtotal, 'tax', o.tax,
                      'shipping', o.shipping, 'total', o.total,
                      'lines', (SELECT COALESCE(json_agg(json_build_object(
                                    'sku', l->>'sku', 'quantity', (l->>'quantity')::bigint,
                                    'unit_amount', (l->>'unit_amount')::bigint,
                                    'amount', (l->>'amount')::bigint,
                                    'tax_amount', COALESCE((l->>'tax_amount')::bigint, 0))
                                    ORDER BY n), '[]'::json)
                                FROM jsonb_array_elements(o.lines) WITH ORDINALITY AS x(l, n)))
                  FROM gateway.orders o WHERE o.checkout_id = c.id),
        'payment', (SELECT json_build_object(
                        'id', p.id, 'status', p.status, 'provider', p.provider,
                        'amount', p.amount, 'captured_amount', p.captured_amount,
                        'refunded_amount', p.refunded_amount,
                        'card', c.card,
                        'attempts', (SELECT COALESCE(json_agg(json_strip_nulls(json_build_object(
                                         'provider', a.provider, 'outcome', a.state,
                                         'reason', a.reason)) ORDER BY a.seq), '[]'::json)
                                     FROM gateway.payment_attempts a
                                     WHERE a.payment_id = p.id AND a.state <> 'skipped'))
                    FROM gateway.payments p WHERE p.checkout_id = c.id),
        'fraud', c.fraud,
        'error', c.error))
    FROM gateway.checkouts c WHERE c.id = p_id);
END;
$$;

-- Commit 1 of a checkout: claim the idempotency key and record the checkout,
-- its payment and the first attempt (a recovery point) before anything
-- outside is called. Returns false, changing nothing, when the key is taken.
CREATE FUNCTION gateway.checkout_begin(
    p_merchant text, p_key text, p_hash bytea, p_checkout text, p_currency text,
    p_amount bigint, p_quote jsonb, p_token text, p_card jsonb, p_customer jsonb,
    p_shipping jsonb, p_capture boolean, p_reservation text, p_reservation_ttl integer,
    p_fraud jsonb, p_payment text, p_provider text, p_attempt_key text, p_lease_s integer,
    p_vel_card bytea, p_vel_email bytea, p_vel_ip bytea, p_vel_device bytea, p_vel_basket bigint,
    p_vel_declined boolean)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gateway.idempotency_keys (merchant_id, key, request_hash, state, resource_id)
    VALUES (p_merchant, p_key, p_hash, 'running', p_checkout)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO gateway.checkouts (id, merchant_id, status, currency, amount, quote, token, card,
        customer, shipping, capture, reservation_id, reservation_ttl, reservation_state, fraud,
        payment_id, idempotency_key, lease_until)
    VALUES (p_checkout, p_merchant, 'pending', p_currency, p_amount, p_quote, p_token, p_card,
        p_customer, p_shipping, p_capture, p_reservation, p_reservation_ttl,
        CASE WHEN p_provider IS NULL THEN 'none' ELSE 'pending' END, p_fraud,
        CASE WHEN p_payment IS NULL THEN NULL ELSE p_payment END, p_key,
        now() + make_interval(secs => p_lease_s));
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

-- Between two attempts (failover): the finished attempt's outcome and the
-- next attempt, recorded together before the next provider is called.
CREATE FUNCTION gateway.attempt_transition(
    p_payment text, p_done_seq integer, p_done_state text, p_done_ref text, p_done_reason text,
    p_next_seq integer, p_next_provider text, p_next_key text, p_lease_s integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gateway.payment_attempts SET state = p_done_state, provider_ref = p_done_ref,
           reason = p_done_reason, updated_at = now()
     WHERE payment_id = p_payment AND seq = p_done_seq;
    INSERT INTO gateway.payment_attempts (payment_id, seq, provider, idempotency_key, state)
    VALUES (p_payment, p_next_seq, p_next_provider, p_next_key, 'pending')
    ON CONFLICT DO NOTHING;
    UPDATE gateway.payments SET provider = p_next_provider, updated_at = now()
     WHERE id = p_payment;
    UPDATE gateway.checkouts SET lease_until = now() + make_interval(secs => p_lease_s),
           updated_at = now()
     WHERE payment_id = p_payment AND status = 'pending';
END;
$$;

-- Commit 2 of a checkout (and the recovery worker's way to finish one):
-- attempt outcome, payment, order, inventory commit or release request, the
-- event, and the stored idempotent response, all at once. Only a checkout
-- that is still pending or processing changes; otherwise the current state is
-- returned untouched.
CREATE FUNCTION gateway.checkout_finish(
    p_checkout text, p_status text, p_http integer, p_attempt_seq integer,
    p_attempt_state text, p_attempt_ref text, p_attempt_reason text, p_attempt_hard boolean,
    p_payment_status text, p_provider text, p_provider_ref text, p_captured bigint,
    p_order text, p_reservation text, p_error jsonb, p_event_type text, p_event_id text,
    p_vel_card bytea, p_vel_email bytea, p_vel_ip bytea, p_vel_device bytea)
RETURNS TABLE (body text, http integer, changed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c gateway.checkouts%ROWTYPE;
    v_body json;
BEGIN
    UPDATE gateway.checkouts SET status = p_status, error = p_error, updated_at = now(),
           lease_until = CASE WHEN p_status = 'processing' THEN now() END,
           order_id = COALESCE(p_order, order_id)
     WHERE id = p_checkout AND status IN ('pending', 'processing')
    RETURNING * INTO c;
    IF NOT FOUND THEN
        SELECT k.response_body, k.response_status, false INTO body, http, changed
          FROM gateway.checkouts x JOIN gateway.idempotency_keys k
            ON k.merchant_id = x.merchant_id AND k.key = x.idempotency_key
         WHERE x.id = p_checkout;
        RETURN NEXT;
        RETURN;
    END IF;
    IF c.payment_id IS NOT NULL AND p_attempt_seq IS NOT NULL THEN
        UPDATE gateway.payment_attempts SET state = p_attempt_state, provider_ref = p_attempt_ref,
               reason = p_attempt_reason, hard = p_attempt_hard, updated_at = now()
         WHERE payment_id = c.payment_id AND seq = p_attempt_seq;
    END IF;
    IF c.payment_id IS NOT NULL THEN
        UPDATE gateway.payments SET status = p_payment_status,
               provider = COALESCE(p_provider, provider),
               provider_ref = COALESCE(p_provider_ref, provider_ref),
               captured_amount = p_captured, updated_at = now()
         WHERE id = c.payment_id;
    END IF;
    IF p_order IS NOT NULL THEN
        INSERT INTO gateway.orders (id, checkout_id, merchant_id, currency, subtotal, tax,
                                    shipping, total, lines)
        VALUES (p_order, c.id, c.merchant_id, c.currency, (c.quote->>'subtotal')::bigint,
                (c.quote->>'tax')::bigint, (c.quote->>'shipping')::bigint,
                (c.quote->>'total')::bigint, c.quote->'lines')
        ON CONFLICT DO NOTHING;
    END IF;
    IF p_reservation IN ('commit', 'release') AND c.reservation_state IN ('pending', 'reserved') THEN
        INSERT INTO gateway.outbox (kind, merchant_id, target)
        VALUES (CASE p_reservation WHEN 'commit' THEN 'inventory_commit'
                ELSE 'inventory_release' END, c.merchant_id, c.reservation_id);
    ELSIF p_reservation = 'reserved' AND c.reservation_state = 'pending' THEN
        UPDATE gateway.checkouts SET reservation_state = 'reserved' WHERE id = c.id;
    ELSIF p_reservation = 'none' AND c.reservation_state = 'pending' THEN
        UPDATE gateway.checkouts SET reservation_state = 'none' WHERE id = c.id;
    END IF;
    v_body := gateway.checkout_json(c.id);
    IF p_event_type IS NOT NULL THEN
        PERFORM gateway.emit_event(p_event_id, c.merchant_id, p_event_type, c.id, v_body::jsonb);
    END IF;
    UPDATE gateway.idempotency_keys SET state = 'done', response_status = p_http,
           response_body = v_body::text, updated_at = now()
     WHERE merchant_id = c.merchant_id AND key = c.idempotency_key;
    IF p_status = 'declined' AND (p_vel_card IS NOT NULL OR p_vel_ip IS NOT NULL) THEN
        -- a provider decline counts toward velocity (the attempt already did)
        PERFORM gateway.fraud_event_record(c.merchant_id, NULL, c.currency, p_vel_card,
                                           p_vel_email, p_vel_ip, p_vel_device, 0, 0, false,
                                           true, false);
    END IF;
    body := v_body::text;
    http := p_http;
    changed := true;
    RETURN NEXT;
END;
$$;

GRANT EXECUTE ON FUNCTION gateway.emit_event(text, text, text, text, jsonb),
    gateway.checkout_json(text),
    gateway.checkout_begin(text, text, bytea, text, text, bigint, jsonb, text, jsonb, jsonb,
                           jsonb, boolean, text, integer, jsonb, text, text, text, integer,
                           bytea, bytea, bytea, bytea, bigint, boolean),
    gateway.attempt_transition(text, integer, text, text, text, integer, text, text, integer),
    gateway.checkout_finish(text, text, integer, integer, text, text, text, boolean, text, text,
                            text, bigint, text, text, jsonb, text, text, bytea, bytea, bytea,
                            bytea)
    TO portcullis_gateway;

-- After the checkout: capture, void and refund are operations recorded
-- 'pending' before the provider is called. The payment row is locked while
-- an operation is admitted, so two refunds can never together exceed the
-- capture and a capture and a void can never both be sent.
CREATE FUNCTION gateway.payment_op_begin(p_merchant text, p_payment text, p_kind text,
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

-- An operation's outcome, and what it does to the payment. Only a pending
-- or unknown operation changes, so a retried finish is harmless.
CREATE FUNCTION gateway.payment_op_finish(p_op text, p_state text, p_ref text, p_reason text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    o gateway.payment_operations%ROWTYPE;
BEGIN
    UPDATE gateway.payment_operations SET state = p_state,
           provider_ref = COALESCE(p_ref, provider_ref), reason = p_reason, updated_at = now()
     WHERE id = p_op AND state IN ('pending', 'unknown')
    RETURNING * INTO o;
    IF NOT FOUND OR p_state <> 'succeeded' THEN
        RETURN FOUND;
    END IF;
    IF o.kind = 'capture' THEN
        UPDATE gateway.payments SET status = 'captured', captured_amount = o.amount,
               updated_at = now() WHERE id = o.payment_id;
    ELSIF o.kind = 'void' THEN
        UPDATE gateway.payments SET status = 'voided', updated_at = now() WHERE id = o.payment_id;
    ELSE
        UPDATE gateway.payments SET refunded_amount = refunded_amount + o.amount,
               status = CASE WHEN refunded_amount + o.amount = captured_amount THEN 'refunded'
                        ELSE 'partially_refunded' END,
               updated_at = now() WHERE id = o.payment_id;
    END IF;
    RETURN true;
END;
$$;

-- A review decision lands on the checkout once the payment operation it
-- needed (capture to approve, void to reject) has succeeded.
CREATE FUNCTION gateway.review_complete(p_checkout text, p_approve boolean, p_order text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    c gateway.checkouts%ROWTYPE;
BEGIN
    UPDATE gateway.checkouts SET
           status = CASE WHEN p_approve THEN 'succeeded' ELSE 'declined' END,
           order_id = CASE WHEN p_approve THEN p_order END,
           error = CASE WHEN p_approve THEN NULL ELSE json_build_object(
               'type', 'fraud_error', 'code', 'fraud_declined',
               'message', 'The payment was rejected in review.')::jsonb END,
           updated_at = now()
     WHERE id = p_checkout AND status = 'requires_review'
    RETURNING * INTO c;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_approve THEN
        INSERT INTO gateway.orders (id, checkout_id, merchant_id, currency, subtotal, tax,
                                    shipping, total, lines)
        VALUES (p_order, c.id, c.merchant_id, c.currency, (c.quote->>'subtotal')::bigint,
                (c.quote->>'tax')::bigint, (c.quote->>'shipping')::bigint,
                (c.quote->>'total')::bigint, c.quote->'lines')
        ON CONFLICT DO NOTHING;
    END IF;
    IF c.reservation_state IN ('pending', 'reserved') THEN
        INSERT INTO gateway.outbox (kind, merchant_id, target)
        VALUES (CASE WHEN p_approve THEN 'inventory_commit' ELSE 'inventory_release' END,
                c.merchant_id, c.reservation_id);
    END IF;
    RETURN true;
END;
$$;

GRANT EXECUTE ON FUNCTION gateway.payment_op_begin(text, text, text, bigint, text, text),
    gateway.payment_op_finish(text, text, text, text),
    gateway.review_complete(text, boolean, text)
    TO portcullis_gateway;

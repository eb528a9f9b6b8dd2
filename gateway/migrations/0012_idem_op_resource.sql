-- Payment operations' idempotency keys, found by their operation.
--
-- The recovery worker finishes a capture, void or refund whose outcome was
-- unknown and then writes the final answer to the key that asked for it,
-- found by the operation's id (resource_id). Without an index that read every
-- key of the merchant (the primary key's prefix): millions of rows for a busy
-- one, for each operation recovered. Checkout keys (resource chk_...) are the
-- bulk of the table and never looked up this way, so the index holds only
-- operation keys (op_..., re_...) and costs a checkout nothing.
CREATE INDEX idempotency_keys_op_resource_idx ON gateway.idempotency_keys (merchant_id, resource_id)
    WHERE resource_id LIKE 'op\_%' OR resource_id LIKE 're\_%';

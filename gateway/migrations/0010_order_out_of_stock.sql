-- order.out_of_stock: a paid order whose inventory reservation ended before
-- its commit arrived, and whose stock was sold meanwhile. Like the other
-- once-per-checkout events it is unique per object, so a dispatcher that
-- dies after emitting it and retries the row emits nothing the second time.
DROP INDEX gateway.events_once_idx;
CREATE UNIQUE INDEX events_once_idx ON gateway.events (object_id, type)
    WHERE type IN ('order.confirmed', 'checkout.declined', 'checkout.failed',
                   'checkout.requires_review', 'order.out_of_stock');

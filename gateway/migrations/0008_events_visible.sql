-- GET /v1/events?after=<id> pages by seq, which an event takes when it is
-- written, not when its transaction commits: with two checkouts finishing at
-- once, seq 101 can be visible while seq 100 is still uncommitted, and a
-- consumer that stored 101 as its cursor would never see 100. Each event now
-- records its transaction, and the list shows only events older than every
-- transaction still running (pg_snapshot_xmin), so the order a consumer sees
-- is final. Rows written before this migration have no txid and count as old.
ALTER TABLE gateway.events ADD COLUMN txid xid8;
ALTER TABLE gateway.events ALTER COLUMN txid SET DEFAULT pg_current_xact_id();

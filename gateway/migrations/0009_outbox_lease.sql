-- The dispatcher's lease on a claimed row lives in its own column. Pushing
-- next_attempt_at out instead (0006's era) changed an indexed column, so each
-- claim wrote an index entry in every index of the row besides the heap; a
-- write to an unindexed column on a page with room is a HOT update, one WAL
-- record. The claim skips rows whose lease has not run out; recording a
-- result clears it. Pages keep room for those updates.
ALTER TABLE gateway.outbox ADD COLUMN leased_until timestamptz;
ALTER TABLE gateway.outbox SET (fillfactor = 70);

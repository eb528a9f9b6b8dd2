-- Whether an earlier try of an inventory commit may have gone through.
--
-- A commit whose answer was lost (a timeout after sending, a 5xx) may have
-- been made. If a later try then hears "no such reservation" (404), the
-- inventory may simply have forgotten a reservation it closed long ago, as
-- services do after a while; taking the stock again would sell it twice.
-- The dispatcher records the doubt here and, with it, leaves such a 404 to a
-- person instead of reclaiming. Not indexed: the row's updates stay HOT.
ALTER TABLE gateway.outbox ADD COLUMN outcome_unknown boolean NOT NULL DEFAULT false;

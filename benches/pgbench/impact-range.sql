-- pgbench script for the impact probe: an UPDATE and a DELETE that each touch
-- 10-100 rows of pgbench_accounts by a non-key range (abalance is not a key), so
-- a target whose policy has an `impact` rule measures both. The DELETE's rows are
-- put back by the INSERT (a plain INSERT: not probed by a rule on delete/update
-- classes). The bounds are computed by pgbench (`hi`), so that -M prepared sends
-- typed parameters rather than `$2 + $3`, which the server cannot type (and
-- generate_series gets casts for the same reason). Setup:
-- scripts/bench-impact.sh.
\set n random(10, 100)
\set lo random(1, 100000 * :scale - 100)
\set hi :lo + :n - 1
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN :lo AND :hi AND abalance > -1000000000;
DELETE FROM pgbench_accounts WHERE aid BETWEEN :lo AND :hi AND filler = filler;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT g, 1, 0, '' FROM generate_series(:lo::int, :hi::int) g ON CONFLICT DO NOTHING;

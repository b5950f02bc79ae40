-- Appends slowed down as the store grew: on a fresh database, one session calling append_events_batch() with five
-- new streams a call took 2.6 ms a call in its first 5 s and 10.4 ms after 30 s (perf3 in docs/performance.md
-- "Append lookups stay on their indexes"). Every statement of a PL/pgSQL function keeps its plan for the session;
-- after five calls the plan cache may settle on a generic plan, made with the table's size at that moment, and keeps it
-- until the table's statistics change. Made while `streams` was nearly empty, the generic plans of the statements that
-- read and update the batch's streams hashed the whole table (a sequential scan joined to the batch's keys), so every
-- batch read all of `streams`, more of it each time, until autoanalyze came.
-- Every join in these functions looks up a handful of keys from the parameters in a unique index (streams by tenant and
-- stream id, events by tenant and event id): a nested loop over that index is the right plan at any size, and with hash
-- and merge joins off it is the only one a plan can pick, whenever it is made. No statement in either function needs
-- either join. A later CREATE OR REPLACE of either function drops these settings unless it repeats them.
alter function append_events_batch(text[], text[], int[], int[], text[], bigint[], int[], int[], json)
  set enable_hashjoin = off
  set enable_mergejoin = off;
alter function append_events(text, text, text, bigint, json)
  set enable_hashjoin = off
  set enable_mergejoin = off;

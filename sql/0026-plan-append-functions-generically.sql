-- The statements inside append_events() and append_events_batch() were planned again on every call: PL/pgSQL keeps a
-- statement's plan, but the plan cache gives a statement with parameters custom plans, made for each call's values, as
-- long as they do not look costlier than a generic one, and these (index lookups by key from the parameters' arrays and
-- JSON) never do. Planning was a fifth of a batch's backend CPU (perf, a batch of 5 appends called in a loop). The
-- generic plans are the same index lookups: unnest() and json_array_elements() of a parameter are estimated at 10 and
-- 100 rows, and every join to streams and events stays a nested loop over their unique indexes (checked with
-- auto_explain on 1,000,000 events and 100,000 streams). docs/performance.md "Planned once".
-- A later CREATE OR REPLACE of either function drops this setting unless it repeats it.
alter function append_events_batch(text[], text[], int[], int[], text[], bigint[], int[], int[], json)
  set plan_cache_mode = force_generic_plan;
alter function append_events(text, text, text, bigint, json)
  set plan_cache_mode = force_generic_plan;

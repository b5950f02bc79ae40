-- A batch spent a fifth to a third of its backend CPU planning (perf on a backend taking 1–4-append batches: 27% under
-- GetCachedPlan). The statements of append_events_batch() take the batch's arrays as parameters; a custom plan sees
-- them as constants (a one-row unnest, a one-element outcome array) and costs less than the generic plan, so the plan
-- cache never settles and plans every statement anew on every call. One session, 4 appends a call to existing
-- streams: 0.46–0.53 ms a call before, 0.30–0.34 ms after; 1 append 0.35 → 0.19 ms; 32 appends 1.26–1.30 → 1.16–1.23
-- ms (docs/performance.md "Each batch planned once").
-- A generic plan is made once per session, at its first call, perhaps on a young store: the trap sql/0026 describes.
-- So it may not pick a plan that suits only small tables: no statement of the function reads a table except by a key
-- of a unique index (streams by tenant and stream id, events by tenant and event id), so with sequential and bitmap
-- scans off as well as hash and merge joins, every plan it can make is a nested loop over those indexes, whatever the
-- statistics say when it is made. append_events() (one append) is left as it is: its custom plans are cheap.
alter function append_events_batch(text[], text[], int[], int[], text[], bigint[], int[], int[], json)
  set plan_cache_mode = force_generic_plan
  set enable_seqscan = off
  set enable_bitmapscan = off;

-- events indexes that only grow at the right end of the index (or of a tenant's, type's, category's or correlation's run) are filled to 100%.
-- Every index of events serves a read SPEC names, and none can serve another's read (docs/performance.md "Indexes",
-- with bench/index-cost.ts: the cost of each per append and the read that needs it), so the set stays as it is.
-- Events are never updated and their positions only grow: a btree page these indexes split is never written again,
-- so the 10% that the default fillfactor (90) leaves free on it stays empty for good. Only new pages are affected;
-- setting the option rewrites nothing.
alter index events_pkey
  set (fillfactor = 100);

alter index events_tenant_position_idx
  set (fillfactor = 100);

alter index events_type_idx
  set (fillfactor = 100);

alter index events_category_idx
  set (fillfactor = 100);

alter index events_correlation_id_idx
  set (fillfactor = 100);

-- an observation run inside a transaction that already has an xid (a pooled connection left in a caller's transaction) would fence with that old xid and pass open appends: refuse it, and read activity afresh
create or replace function observe_log_head(
  out oldest_running xid8,
  out last_position bigint,
  out fence xid8
)
language plpgsql
as $$
declare
  v_oldest_age int;
begin
  if pg_current_xact_id_if_assigned() is not null then
    raise exception 'observe_log_head() must run in a transaction of its own';
  end if;
  select case when is_called then last_value else 0 end
    into last_position
    from events_global_position_seq;
  -- every transaction holding a position up to last_position got its xid before this one;
  -- nothing durable is written here, so the commit need not wait for a WAL flush
  perform set_config('synchronous_commit', 'off', true);
  fence := pg_current_xact_id();
  -- activity read earlier in this transaction would be stale: read it now
  perform pg_stat_clear_snapshot();
  -- only this database's transactions can hold positions: one in another database must not hold the head.
  -- age() counts back from this call's own xid, so the oldest running xid is fence - age.
  select greatest(coalesce(max(age(a.backend_xid)), 0), 0)
    into v_oldest_age
    from pg_stat_activity a
   where a.datname = current_database()
     and a.pid <> pg_backend_pid()
     and a.backend_xid is not null;
  oldest_running := (fence::text::bigint - v_oldest_age)::text::xid8;
end;
$$;

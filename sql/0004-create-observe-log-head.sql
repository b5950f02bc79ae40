-- the gap-safe head needs an xid newer than every position already handed out; only assigning one gives that (docs/gap-safety.md)
create function observe_log_head(
  out oldest_running xid8,
  out last_position bigint,
  out fence xid8
)
language plpgsql
as $$
declare
  v_oldest_age int;
begin
  select case when is_called then last_value else 0 end
    into last_position
    from events_global_position_seq;
  -- every transaction holding a position up to last_position got its xid before this one;
  -- nothing durable is written here, so the commit need not wait for a WAL flush
  perform set_config('synchronous_commit', 'off', true);
  fence := pg_current_xact_id();
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

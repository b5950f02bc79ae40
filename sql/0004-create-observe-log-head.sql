-- the gap-safe head needs an xid newer than every position already handed out; only assigning one gives that (docs/gap-safety.md)
create function observe_log_head(
  p_known_position bigint,
  out oldest_running xid8,
  out last_position bigint,
  out fence xid8
)
language plpgsql
as $$
begin
  -- taken before this call owns an xid, so this call never waits on itself
  oldest_running := pg_snapshot_xmin(pg_current_snapshot());
  select case when is_called then last_value else 0 end
    into last_position
    from events_global_position_seq;
  if last_position <= p_known_position then
    -- nothing new to fence: spare an xid
    return;
  end if;
  -- every transaction holding a position up to last_position got its xid before this one;
  -- nothing durable is written here, so the commit need not wait for a WAL flush
  perform set_config('synchronous_commit', 'off', true);
  fence := pg_current_xact_id();
end;
$$;

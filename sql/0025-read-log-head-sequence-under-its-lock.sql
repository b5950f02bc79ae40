-- gap safety (docs/gap-safety.md): observe_log_head() read the sequence's last value with a plain SELECT from the
-- sequence relation. That read takes no lock on the sequence's page while it copies the value, and nextval(), each
-- time it writes its WAL record (every 32 values), sets the stored value to the one 32 fetches ahead for the length
-- of that write, under the page's exclusive lock, and then back. A SELECT landing in that window read a position up
-- to 32 ahead of any handed out; the head then settled there, and positions handed out after the fence, below it,
-- were passed over by every reader of the log (seen as 13 to 25 events skipped by live subscribers under load).
-- pg_sequence_last_value() reads under the page's lock, so it sees only values nextval() has finished with.
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
  last_position := coalesce(pg_sequence_last_value('events_global_position_seq'::regclass), 0);
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

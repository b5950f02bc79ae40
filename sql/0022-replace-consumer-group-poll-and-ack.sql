-- consumer groups (docs/consumer-groups.md): a poll is one call and an ack writes each event once. 0020 had a poll
-- cost five round trips (group row, lease, event read, and a fill of four) and an ack mark every event `acked` and
-- then delete it; the guarantees are 0020's, the statements fewer.

-- a poll that found nothing and is about to wait says so here (up to when): an ack, nack or replay that frees work
-- while it is set sends a NOTIFY, so polls waiting on other instances look at once; nobody waiting, no NOTIFY
alter table consumer_groups add column waiting_until timestamptz;

-- Copies the group's matching events in (scanned, p_head] (at most p_limit) into consumer_group_events, each new
-- stream's first one into its stream row, and moves `scanned`: 'filled', 'current' (nothing to copy) or 'busy'
-- (another transaction is filling; it skips the group row's lock rather than wait on it). Every 10 s it also drops
-- the stream rows with nothing pending and no lease, their counts kept on the group row.
-- gap safety: p_head is the caller's gap-safe head (LogHead), nothing above it is copied, so no event can commit
-- below `scanned` later. The stream rows are upserted in stream order, the order acks and nacks lock them in.
create function consumer_group_fill(p_group_id bigint, p_head bigint, p_limit int) returns text
language plpgsql
as $$
declare
  g record;
begin
  select tenant, scanned, types, categories, stream_id_prefix, compacted_at < now() - interval '10 seconds' as compact
    into g
    from consumer_groups
   where id = p_group_id
     for no key update skip locked;
  if not found then
    return 'busy';
  end if;
  if g.compact then
    with gone as (
      delete from consumer_group_streams
       where group_id = p_group_id and next_position is null and leased_until is null
      returning delivered, acked
    )
    update consumer_groups
       set delivered = delivered + coalesce((select sum(delivered) from gone), 0),
           acked = acked + coalesce((select sum(acked) from gone), 0),
           compacted_at = now()
     where id = p_group_id;
  end if;
  if g.scanned >= p_head then
    return 'current';
  end if;
  -- planned for this group's source each time (a fill is one in many polls): the log's type or category index
  -- serves a narrow source, its position index a wide one. Stream ids use only ASCII below '~', so under collate "C"
  -- every id with the prefix sorts before prefix || '~'.
  execute format($fill$
    with taken as (
      select global_position, stream_id, event_id, event_bytes
        from events
       where tenant = $1 and global_position > $2 and global_position <= $3 %s %s %s
       order by global_position
       limit $7
    ), copied as (
      insert into consumer_group_events (group_id, global_position, stream_id, event_id, event_bytes)
      select $8, global_position, stream_id, event_id, event_bytes
        from taken
    ), heads as (
      insert into consumer_group_streams as s (group_id, stream_id, next_position)
      select $8, stream_id, min(global_position)
        from taken
       group by stream_id
       order by stream_id
          on conflict (group_id, stream_id) do update
         set next_position = coalesce(s.next_position, excluded.next_position)
    )
    update consumer_groups
       set scanned = case when (select count(*) from taken) < $7 then $3 else (select max(global_position) from taken) end
     where id = $8$fill$,
    case when g.types is not null then 'and type = any($4)' else '' end,
    case when g.categories is not null then 'and category = any($5)' else '' end,
    case when g.stream_id_prefix is not null then 'and stream_id >= $6 and stream_id < $6 || ''~''' else '' end)
  using g.tenant, g.scanned, p_head, g.types, g.categories, g.stream_id_prefix, p_limit, p_group_id;
  return 'filled';
end;
$$;

-- One poll's lease (SPEC "Consumer groups"), in one call: the group by name, a fill first when p_fill (the caller
-- found the group short of free events and the log past `scanned`), then up to five lease rounds, each:
-- - `read`: the streams that may go out now (no lease or an expired one, past a nack's delay), oldest first, locked
--   with `skip locked` as they are read, and the first pending events of each, in order, at most p_max in all: runs
--   of consecutive events of a stream. The lateral join runs per stream in the streams' order and the limit stops the
--   read (and the locking) once p_max events are found, so a cut only shortens the last stream's run. Pollers take
--   different streams and none waits on another; no row is locked by every poll. A stream is leased whole, which
--   keeps its events in order.
-- - `ready`: streams whose first event read is their first pending one now (a stream locked after a change that
--   committed since the statement's snapshot may have newer events; it is left for the next round).
-- - `granted`: attempts + 1 on the events still pending (the update re-checks a row changed meanwhile), within
--   p_max_bytes (always one); `leased`: each stream's run and deadline, written before any event leaves.
-- - a stream whose first event has had maxDeliveries deliveries is not leased: that event is parked (its stream is
--   still as the round found it: not leased again meanwhile) and the round repeats.
-- A round that read streams but leased none (all taken by other polls meanwhile) repeats too. The lease runs after
-- the fill and takes no lock it must wait for, so it cannot deadlock with acks, which lock stream rows in order.
-- Rows: one `group` row (scanned, the fill's outcome, and when nothing was leased the earliest lease expiry or nack
-- delay), then one `event` row per leased event. No rows: the tenant has no such group.
create function consumer_group_poll(
  p_tenant text,
  p_name text,
  p_max int,
  p_max_bytes bigint,
  p_head bigint,
  p_fill boolean,
  p_fill_limit int,
  p_wait_ms int
) returns table (row_kind text, leased_position bigint, attempt int, deadline timestamptz, scanned bigint,
                 fill_outcome text, next_due timestamptz)
language plpgsql
as $$
declare
  g consumer_groups;
  v_fill text;
  v_positions bigint[];
  v_attempts int[];
  v_deadlines timestamptz[];
  v_exhausted_streams text[];
  v_exhausted_positions bigint[];
  v_read boolean;
  v_parked text[];
  v_next_due timestamptz;
begin
  select * into g from consumer_groups c where c.tenant = p_tenant and c.name = p_name;
  if not found then
    return;
  end if;
  if p_fill and p_head > g.scanned then
    v_fill := consumer_group_fill(g.id, p_head, p_fill_limit);
    select c.scanned into g.scanned from consumer_groups c where c.id = g.id;
  end if;
  for v_round in 1..5 loop
    with read as (
      select c.stream_id, c.global_position, c.event_bytes, s.next_position as head,
             -- deliveries so far: those folded in, and one more inside the stream's last lease (expired: it is free)
             c.attempts + coalesce(c.global_position between s.leased_from and s.leased_to, false)::int as attempts,
             s.leased_from as expired_from, s.leased_to as expired_to
        from (
          select cs.stream_id, cs.next_position, cs.leased_from, cs.leased_to
            from consumer_group_streams cs
           where cs.group_id = g.id
             and cs.next_position is not null
             and (cs.leased_until is null or cs.leased_until <= clock_timestamp())
             and cs.ready_at <= clock_timestamp()
           order by cs.next_position
           limit p_max
             for update skip locked
        ) as s
       cross join lateral (
         select e.stream_id, e.global_position, e.attempts, e.event_bytes
           from consumer_group_events e
          where e.group_id = g.id and e.stream_id = s.stream_id and e.state = 'pending' and e.global_position >= s.next_position
          order by e.global_position
          limit p_max
       ) as c
       limit p_max
    ), ready as (
      select r.stream_id from read r group by r.stream_id, r.head having min(r.global_position) = r.head
    ), exhausted as (
      select r.stream_id, r.global_position
        from read r join ready using (stream_id)
       where r.global_position = r.head and r.attempts >= g.max_deliveries
    ), taken as (
      select r.stream_id, r.global_position, r.attempts, r.expired_from, r.expired_to,
             row_number() over (order by r.head, r.global_position) as n,
             sum(r.event_bytes) over (order by r.head, r.global_position) as bytes
        from read r join ready using (stream_id)
       where r.stream_id not in (select x.stream_id from exhausted x)
    ), granted as (
      select t.stream_id, t.global_position, t.attempts + 1 as attempt, t.expired_from, t.expired_to
        from taken t
       where t.n = 1 or t.bytes <= p_max_bytes
    ), folded as (
      -- a stream leased again after its lease expired: that lease's deliveries are counted now
      update consumer_group_events e
         set attempts = e.attempts + 1
        from (select distinct gr.stream_id, gr.expired_from, gr.expired_to from granted gr where gr.expired_from is not null) as x
       where e.group_id = g.id and e.stream_id = x.stream_id and e.state = 'pending'
         and e.global_position between x.expired_from and x.expired_to
    ), leased as (
      update consumer_group_streams s
         set leased_until = statement_timestamp() + g.ack_timeout_ms * interval '1 millisecond',
             leased_from = r.leased_from,
             leased_to = r.leased_to,
             delivered = s.delivered + r.count
        from (select gr.stream_id, min(gr.global_position) as leased_from, max(gr.global_position) as leased_to, count(*)::int as count
                from granted gr
               group by gr.stream_id) as r
       where s.group_id = g.id and s.stream_id = r.stream_id
      returning s.stream_id, s.leased_until
    )
    select (select array_agg(gr.global_position order by gr.global_position) from granted gr),
           (select array_agg(gr.attempt order by gr.global_position) from granted gr),
           (select array_agg(l.leased_until order by gr.global_position) from granted gr join leased l using (stream_id)),
           (select array_agg(x.stream_id) from exhausted x),
           (select array_agg(x.global_position) from exhausted x),
           exists (select from read)
      into v_positions, v_attempts, v_deadlines, v_exhausted_streams, v_exhausted_positions, v_read;
    if v_exhausted_streams is not null then
      -- SPEC: after maxDeliveries deliveries without an ack an event is parked and stops blocking its stream. The
      -- stream's expired lease is over: its deliveries are counted and it is cleared, in the same statement.
      with streams as (
        select cs.stream_id, cs.leased_from, cs.leased_to
          from consumer_group_streams cs
         where cs.group_id = g.id and cs.stream_id = any(v_exhausted_streams)
           and (cs.leased_until is null or cs.leased_until <= clock_timestamp())
         order by cs.stream_id
           for update skip locked
      ), changed as (
        update consumer_group_events e
           set attempts = e.attempts + coalesce(e.global_position between s.leased_from and s.leased_to, false)::int,
               state = case when e.global_position = any(v_exhausted_positions)
                             and e.attempts + coalesce(e.global_position between s.leased_from and s.leased_to, false)::int >= g.max_deliveries
                            then 'parked' else 'pending' end,
               parked_at = case when e.global_position = any(v_exhausted_positions)
                                 and e.attempts + coalesce(e.global_position between s.leased_from and s.leased_to, false)::int >= g.max_deliveries
                                then now() end,
               last_error = case when e.global_position = any(v_exhausted_positions)
                                  and e.attempts + coalesce(e.global_position between s.leased_from and s.leased_to, false)::int >= g.max_deliveries
                                 then coalesce(e.last_error, 'the lease expired') else e.last_error end
          from streams s
         where e.group_id = g.id and e.stream_id = s.stream_id and e.state = 'pending'
           and (e.global_position between s.leased_from and s.leased_to or e.global_position = any(v_exhausted_positions))
        returning e.stream_id, e.state = 'parked' as parked
      ), cleared as (
        update consumer_group_streams cs
           set leased_until = null, leased_from = null, leased_to = null
          from streams s
         where cs.group_id = g.id and cs.stream_id = s.stream_id
      )
      select array_agg(distinct c.stream_id) filter (where c.parked) into v_parked from changed c;
      if v_parked is not null then
        perform consumer_group_settle(g.id, v_parked, array_fill(0, array[cardinality(v_parked)]),
                                      array_fill(null::bigint, array[cardinality(v_parked)]),
                                      array_fill(null::int, array[cardinality(v_parked)]));
      end if;
    end if;
    exit when v_positions is not null or not v_read;
  end loop;
  if v_positions is null and p_wait_ms > 0 then
    -- the caller waits next: mark the group (at most about twice per wait; skipped while a fill holds the row)
    update consumer_groups c
       set waiting_until = clock_timestamp() + p_wait_ms * interval '1 millisecond'
     where c.id = (select w.id
                     from consumer_groups w
                    where w.id = g.id
                      and (w.waiting_until is null or w.waiting_until < clock_timestamp() + p_wait_ms * interval '0.5 millisecond')
                      for no key update skip locked);
  end if;
  if v_positions is null then
    select min(greatest(coalesce(cs.leased_until, '-infinity'), cs.ready_at)) into v_next_due
      from consumer_group_streams cs
     where cs.group_id = g.id and cs.next_position is not null;
  end if;
  return query
    select 'group', null::bigint, null::int, null::timestamptz, g.scanned, v_fill, v_next_due
    union all
    select 'event', u.position, u.attempt, u.deadline, null, null, null
      from unnest(v_positions, v_attempts, v_deadlines) as u(position, attempt, deadline);
end;
$$;

-- SPEC "Consumer groups": acks the events among p_event_ids that are leased now (pending, inside their stream's
-- unexpired lease) and answers how many, or null when the tenant has no such group; an acked event is never handed
-- out again. The stream rows are locked first, in stream order (the order fills use too, so the two never
-- deadlock); the next statement, reading afresh (events a fill committed meanwhile are seen), writes each acked
-- event once: deleted when it is behind its stream's new first pending event (it can never go out again and the
-- position only looks at first pending events), marked `acked` only when an earlier event of its stream is still
-- pending (an ack out of order); acked rows the new first pending event has passed go too. Each stream's lease ends
-- once no pending event is left in it. A stream freed with events left while a poll waits (waiting_until) is
-- announced on annalist_consumer_groups (payload tenant/name; src/db/channels.ts), sent at commit.
create or replace function consumer_group_ack(
  p_tenant text,
  p_name text,
  p_event_ids uuid[]
) returns int
language plpgsql
as $$
declare
  v_group_id bigint;
  v_waiting boolean;
  v_acked int;
  v_freed boolean;
begin
  select id, waiting_until > clock_timestamp() into v_group_id, v_waiting
    from consumer_groups
   where tenant = p_tenant and name = p_name;
  if v_group_id is null then
    return null;
  end if;
  perform
     from consumer_group_streams
    where group_id = v_group_id
      and stream_id in (select stream_id from consumer_group_events where group_id = v_group_id and event_id = any(p_event_ids))
    order by stream_id
      for update;
  with acked as (
    select e.stream_id, e.global_position
      from consumer_group_events e
      join consumer_group_streams s on s.group_id = e.group_id and s.stream_id = e.stream_id
     where e.group_id = v_group_id
       and e.event_id = any(p_event_ids)
       and e.state = 'pending'
       and s.leased_until > clock_timestamp()
       and e.global_position between s.leased_from and s.leased_to
  ), next as (
    -- each stream's first pending event once these acks count, and whether its lease still holds one
    select a.stream_id,
           count(*)::int as acked,
           (select e.global_position
              from consumer_group_events e
             where e.group_id = v_group_id and e.stream_id = a.stream_id and e.state = 'pending'
               and e.global_position not in (select global_position from acked)
             order by e.global_position
             limit 1) as next_position,
           exists (select
                     from consumer_group_events e
                     join consumer_group_streams s on s.group_id = e.group_id and s.stream_id = e.stream_id
                    where e.group_id = v_group_id and e.stream_id = a.stream_id and e.state = 'pending'
                      and e.global_position between s.leased_from and s.leased_to
                      and e.global_position not in (select global_position from acked)) as still_leased
      from acked a
     group by a.stream_id
  ), deleted as (
    delete from consumer_group_events e
     using next n
     where e.group_id = v_group_id
       and e.stream_id = n.stream_id
       and (n.next_position is null or e.global_position < n.next_position)
       and (e.state = 'acked' or e.global_position in (select global_position from acked))
  ), marked as (
    update consumer_group_events e
       set state = 'acked'
      from acked a
      join next n using (stream_id)
     where e.group_id = v_group_id
       and e.global_position = a.global_position
       and a.global_position > n.next_position
  ), settled as (
    update consumer_group_streams s
       set next_position = n.next_position,
           acked = s.acked + n.acked,
           leased_until = case when n.still_leased then s.leased_until end,
           leased_from = case when n.still_leased then s.leased_from end,
           leased_to = case when n.still_leased then s.leased_to end
      from next n
     where s.group_id = v_group_id
       and s.stream_id = n.stream_id
  )
  select coalesce(sum(n.acked), 0), coalesce(bool_or(n.next_position is not null and not n.still_leased), false)
    into v_acked, v_freed
    from next n;
  if v_freed and v_waiting then
    perform pg_notify('annalist_consumer_groups', p_tenant || '/' || p_name);
  end if;
  return v_acked;
end;
$$;

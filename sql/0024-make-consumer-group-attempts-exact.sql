-- SPEC "Consumer groups": an event is parked after exactly maxDeliveries deliveries; 0022 could count one off
-- (docs/consumer-groups.md "Guarantees"). A parked event replayed inside its stream's recorded lease was counted as
-- delivered by that lease when it ended; a poll that locked a stream row changed since its snapshot (another poll had
-- parked the stream's first event, or leased it again, folding an expired lease into attempts) read the attempts from
-- before that change; and an event behind a replayed one, with more deliveries than it, went out in its run past
-- its maxDeliveries-th delivery.
--
-- An event's deliveries are `attempts`, plus one while it lies inside its stream's recorded lease (leased_from …
-- leased_to), which adds one to the pending events in it when it ends. Replay (src/consumer-groups/parked.ts) sets
-- attempts to -1 instead of 0 for an event inside the record, so the end of that lease, which did not deliver it,
-- brings it to 0. So a pending event with attempts -1 lies inside a lease that is not its own: it is not leased
-- (acks and nacks ignore it, a lease with only such events left ends), and a lease that ends adds one to it as to
-- the others. The functions below are 0020's consumer_group_settle and 0022's consumer_group_ack and
-- consumer_group_poll with that, and in the poll the xmin check in `ready` and runs cut before an exhausted event.

-- After events of these streams changed state (nacked, parked): each stream's first pending event is found again,
-- its lease ends once it holds no pending event it delivered (a nack cuts it short at p_cuts), acked events behind
-- the new first pending one are deleted (compaction: they can never be handed out again, and the position only needs
-- each stream's first pending event). A lease that ends adds one to the replayed events left inside it (attempts -1:
-- not its own, so now 0). The caller holds the stream rows' locks; each statement here reads afresh, so events a
-- fill committed meanwhile are seen.
create or replace function consumer_group_settle(
  p_group_id bigint,
  p_streams text[],
  p_acked int[],
  p_cuts bigint[],
  p_delays int[]
) returns void
language plpgsql
as $$
begin
  with changed as (
    select *
      from unnest(p_streams, p_acked, p_cuts, p_delays) as c(stream_id, acked, cut, delay_ms)
  ), next as (
    select c.*,
           (select min(e.global_position)
              from consumer_group_events e
             where e.group_id = p_group_id and e.stream_id = c.stream_id and e.state = 'pending') as next_position,
           exists (select
                     from consumer_group_events e
                     join consumer_group_streams s on s.group_id = e.group_id and s.stream_id = e.stream_id
                    where e.group_id = p_group_id and e.stream_id = c.stream_id and e.state = 'pending' and e.attempts >= 0
                      and e.global_position between s.leased_from and least(s.leased_to, c.cut)) as still_leased
      from changed c
  ), compacted as (
    delete from consumer_group_events e
     using next n
     where e.group_id = p_group_id
       and e.stream_id = n.stream_id
       and e.state = 'acked'
       and (n.next_position is null or e.global_position < n.next_position)
  ), unleased as (
    update consumer_group_events e
       set attempts = e.attempts + 1
      from next n
      join consumer_group_streams s on s.group_id = p_group_id and s.stream_id = n.stream_id
     where not n.still_leased
       and e.group_id = p_group_id
       and e.stream_id = n.stream_id
       and e.state = 'pending'
       and e.attempts < 0
       and e.global_position between s.leased_from and least(s.leased_to, n.cut)
  )
  update consumer_group_streams s
     set next_position = n.next_position,
         acked = s.acked + n.acked,
         leased_until = case when n.still_leased then s.leased_until end,
         leased_from = case when n.still_leased then s.leased_from end,
         leased_to = case when n.still_leased then least(s.leased_to, n.cut) end,
         ready_at = case when n.delay_ms is null then s.ready_at else clock_timestamp() + n.delay_ms * interval '1 millisecond' end
    from next n
   where s.group_id = p_group_id
     and s.stream_id = n.stream_id;
end;
$$;

-- SPEC "Consumer groups": acks the events among p_event_ids that are leased now (pending, inside their stream's
-- unexpired lease and part of it) and answers how many, or null when the tenant has no such group; an acked event is
-- never handed out again. The stream rows are locked first, in stream order (the order fills use too, so the two
-- never deadlock); the next statement, reading afresh (events a fill committed meanwhile are seen), writes each
-- acked event once: deleted when it is behind its stream's new first pending event (it can never go out again and
-- the position only looks at first pending events), marked `acked` only when an earlier event of its stream is still
-- pending (an ack out of order); acked rows the new first pending event has passed go too. Each stream's lease ends
-- once it holds no pending event it delivered, and then adds one to the replayed events left inside it (attempts
-- -1), which go out at once rather than at its deadline. A stream freed with events left while a poll waits
-- (waiting_until) is announced on annalist_consumer_groups (payload tenant/name; src/db/channels.ts), sent at commit.
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
       and e.attempts >= 0
       and s.leased_until > clock_timestamp()
       and e.global_position between s.leased_from and s.leased_to
  ), next as (
    -- each stream's first pending event once these acks count, and what its lease still holds: events of its own
    -- (it goes on) or only replayed ones (it ends); one pass over the lease's events
    select a.stream_id,
           a.acked,
           (select e.global_position
              from consumer_group_events e
             where e.group_id = v_group_id and e.stream_id = a.stream_id and e.state = 'pending'
               and e.global_position not in (select global_position from acked)
             order by e.global_position
             limit 1) as next_position,
           coalesce(left_in.own, false) as still_leased,
           coalesce(left_in.replayed, false) as replayed_inside
      from (select stream_id, count(*)::int as acked from acked group by stream_id) as a
     cross join lateral (
       select bool_or(e.attempts >= 0) as own, bool_or(e.attempts < 0) as replayed
         from consumer_group_events e
         join consumer_group_streams s on s.group_id = e.group_id and s.stream_id = e.stream_id
        where e.group_id = v_group_id and e.stream_id = a.stream_id and e.state = 'pending'
          and e.global_position between s.leased_from and s.leased_to
          and e.global_position not in (select global_position from acked)
     ) as left_in
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
  ), unleased as (
    update consumer_group_events e
       set attempts = e.attempts + 1
      from next n
      join consumer_group_streams s on s.group_id = v_group_id and s.stream_id = n.stream_id
     where n.replayed_inside
       and not n.still_leased
       and e.group_id = v_group_id
       and e.stream_id = n.stream_id
       and e.state = 'pending'
       and e.attempts < 0
       and e.global_position between s.leased_from and s.leased_to
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

-- One poll's lease (SPEC "Consumer groups"), in one call: the group by name, a fill first when p_fill (the caller
-- found the group short of free events and the log past `scanned`), then up to five lease rounds, each:
-- - `read`: the streams that may go out now (no lease or an expired one, past a nack's delay), oldest first, locked
--   with `skip locked` as they are read, and the first pending events of each, in order, at most p_max in all: runs
--   of consecutive events of a stream. The lateral join runs per stream in the streams' order and the limit stops the
--   read (and the locking) once p_max events are found, so a cut only shortens the last stream's run. Pollers take
--   different streams and none waits on another; no row is locked by every poll. A stream is leased whole, which
--   keeps its events in order.
-- - `ready`: streams whose locked row is the version the statement's snapshot sees, so the row and its events were
--   read as of one moment. Under READ COMMITTED a row changed and committed after the snapshot is locked in its
--   newest version (EvalPlanQual), while the lateral read of its events sees the snapshot: the lease and attempts
--   of one moment with the events of an earlier one, say a fold another poll made missing from the attempts. Every
--   write of a stream's pending events (fill, ack, nack, replay, lease, parking) updates its stream row in the same
--   transaction, and an update gives the row a new xmin, while a row lock (ours, or another's since released)
--   leaves xmin as it is; the function's own earlier changes (a fill, an earlier round) are visible to the snapshot.
--   So equal xmin means unchanged since the snapshot; a changed stream is left for the next round, whose snapshot
--   sees it.
-- - `taken`: each ready stream's run, cut before an event that has had maxDeliveries deliveries (one behind a
--   replayed event can have had more than the head: it is parked once it heads its stream), within p_max_bytes
--   (always one event); `granted`: attempt = deliveries + 1; `folded`: an expired lease's deliveries counted;
--   `leased`: each stream's run and deadline, written before any event leaves.
-- - a stream whose first event has had maxDeliveries deliveries is not leased: that event is parked (its stream is
--   still as the round found it: not leased again meanwhile) and the round repeats.
-- A round that read streams but leased none (all taken by other polls meanwhile) repeats too. The lease runs after
-- the fill and takes no lock it must wait for, so it cannot deadlock with acks, which lock stream rows in order.
-- Rows: one `group` row (scanned, the fill's outcome, and when nothing was leased the earliest lease expiry or nack
-- delay), then one `event` row per leased event. No rows: the tenant has no such group.
create or replace function consumer_group_poll(
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
      select c.stream_id, c.global_position, c.event_bytes, s.next_position as head, s.locked_xmin,
             -- deliveries so far: those folded in, and one more inside the stream's last lease (expired: it is free)
             c.attempts + coalesce(c.global_position between s.leased_from and s.leased_to, false)::int as attempts,
             s.leased_from as expired_from, s.leased_to as expired_to
        from (
          select cs.stream_id, cs.next_position, cs.leased_from, cs.leased_to, cs.xmin as locked_xmin
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
      select r.stream_id
        from read r
       group by r.stream_id, r.head, r.locked_xmin
      having min(r.global_position) = r.head
         and r.locked_xmin = (select v.xmin from consumer_group_streams v where v.group_id = g.id and v.stream_id = r.stream_id)
    ), exhausted as (
      select r.stream_id, r.global_position
        from read r join ready using (stream_id)
       where r.global_position = r.head and r.attempts >= g.max_deliveries
    ), runs as (
      -- by head, which is one per stream, in the order `taken` numbers them in: one sort for both
      select r.*,
             count(*) filter (where r.attempts >= g.max_deliveries) over (partition by r.head order by r.global_position) as exhausted_so_far
        from read r join ready using (stream_id)
       where r.stream_id not in (select x.stream_id from exhausted x)
    ), taken as (
      select r.stream_id, r.global_position, r.attempts, r.expired_from, r.expired_to,
             row_number() over (order by r.head, r.global_position) as n,
             sum(r.event_bytes) over (order by r.head, r.global_position) as bytes
        from runs r
       where r.exhausted_so_far = 0
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

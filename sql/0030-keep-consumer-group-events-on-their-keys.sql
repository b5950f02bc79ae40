-- sql/0028 kept the consumer-group functions' plans off hash joins, merge joins and bitmap scans, but not off sequential
-- scans, and a plan made while `consumer_group_events` held a few pages (a group's first polls) read the whole table
-- wherever it looked up a stream's or an event's rows: the poll's lease read each leased stream's pending events by a
-- sequential scan and a sort, the ack matched its ids and marked, deleted and released rows the same way (auto_explain
-- on bench:consumers, 2026-12-08: 1,693 plans with a sequential scan of the table in 5 s; perf: a third of the
-- backends' CPU in heap_getnextslot). A plan is kept for the session until the table's statistics change. Every
-- statement of these functions reaches a group's event rows through a key of (group_id, global_position),
-- (group_id, event_id) or (group_id, stream_id, global_position), so with sequential scans off too, every plan they
-- can make goes through those indexes, whenever it is made.
-- One statement read the group's rows even so: the poll's `folded` update (the deliveries of an expired lease, counted
-- when its stream is leased again) joined the group's pending rows, read whole through the stream index, to the expired
-- leases, because with both estimated at one row either order looked the same: 2.5 ms a poll with 20,000 parked rows
-- in the group (test/consumer-groups/group-plans.test.ts), and on every poll, though most polls follow no expired
-- lease. It now runs only when a lease expired (a one-time filter); a poll after an expiry may still read the group's
-- rows once. Otherwise the poll is 0024's, with the settings of 0028 repeated (a CREATE OR REPLACE drops them
-- otherwise). docs/performance.md "Consumer groups".
alter function consumer_group_ack(text, text, uuid[])
  set enable_seqscan = off;
alter function consumer_group_settle(bigint, text[], int[], bigint[], int[])
  set enable_seqscan = off;

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
set enable_hashjoin = off
set enable_mergejoin = off
set enable_bitmapscan = off
set enable_seqscan = off
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
      -- a stream leased again after its lease expired: that lease's deliveries are counted now; nothing is read when
      -- no lease expired (a one-time filter: the plan may start from the group's rows, whatever their number)
      update consumer_group_events e
         set attempts = e.attempts + 1
        from (select distinct gr.stream_id, gr.expired_from, gr.expired_to from granted gr where gr.expired_from is not null) as x
       where e.group_id = g.id and e.stream_id = x.stream_id and e.state = 'pending'
         and e.global_position between x.expired_from and x.expired_to
         and exists (select from granted gr where gr.expired_from is not null)
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

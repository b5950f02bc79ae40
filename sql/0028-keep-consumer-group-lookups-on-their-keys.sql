-- An ack of 100 events took 6.5 ms of a backend, 5.5 of them in its first statement, which locks the acked events'
-- streams (bench:consumers, one poller, auto_explain); a poll of 100 read every stream row of the group twice.
-- Every statement of a PL/pgSQL function keeps a plan for the session, and a group's tables start empty: plans made
-- while a group held a handful of rows (estimated three streams to a group) stayed after it held thousands, and
-- PostgreSQL's own statistics only catch up at the next autoanalyze, a minute or more later. Those plans read all of
-- the group's rows and filtered them (the ack: every event row of the group from its stream index to pick out the
-- acked ids, then each of the group's 1,000 streams matched against that list; the poll: every stream row, sorted by
-- next position, to take the first hundred; each lease and settlement: every stream row, hashed).
-- Every statement of these functions looks up a handful of keys of one group (an event by id, a stream by id, the
-- streams in next-position order): a nested loop over the key's index is the right plan at any size, so hash joins,
-- merge joins and bitmap scans are off for them (as sql/0026 did for the appends), and the ack's two statements that
-- started from the group's rows now start from the acked ids, through (group_id, event_id), in subqueries the planner
-- cannot flatten (each takes at most one row: `limit 1`), so no estimate can turn them around. The fill plans its read of the log afresh each time (EXECUTE) and may want a bitmap scan of an
-- index of `events`: it keeps them. Otherwise these are 0024's functions. docs/performance.md "Consumer groups".

create or replace function consumer_group_ack(
  p_tenant text,
  p_name text,
  p_event_ids uuid[]
) returns int
language plpgsql
set enable_hashjoin = off
set enable_mergejoin = off
set enable_bitmapscan = off
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
  -- the acked events' streams, locked in stream order: the outer rows come sorted, and each lateral lock follows
  perform
     from (select distinct e.stream_id
             from unnest(p_event_ids) as a(event_id)
             cross join lateral (
               select ce.stream_id
                 from consumer_group_events ce
                where ce.group_id = v_group_id and ce.event_id = a.event_id
                limit 1
             ) as e
            order by e.stream_id) as x
     cross join lateral (
       select
         from consumer_group_streams s
        where s.group_id = v_group_id and s.stream_id = x.stream_id
        limit 1
          for update
     ) as locked;
  with acked as (
    select e.stream_id, e.global_position
      from (select distinct unnest(p_event_ids)) as a(event_id)
      cross join lateral (
        select ce.stream_id, ce.global_position
          from consumer_group_events ce
         where ce.group_id = v_group_id
           and ce.event_id = a.event_id
           and ce.state = 'pending'
           and ce.attempts >= 0
         limit 1
      ) as e
      cross join lateral (
        select
          from consumer_group_streams s
         where s.group_id = v_group_id
           and s.stream_id = e.stream_id
           and s.leased_until > clock_timestamp()
           and e.global_position between s.leased_from and s.leased_to
         limit 1
      ) as leased
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

alter function consumer_group_poll(text, text, int, bigint, bigint, boolean, int, int)
  set enable_hashjoin = off
  set enable_mergejoin = off
  set enable_bitmapscan = off;
alter function consumer_group_settle(bigint, text[], int[], bigint[], int[])
  set enable_hashjoin = off
  set enable_mergejoin = off
  set enable_bitmapscan = off;
alter function consumer_group_fill(bigint, bigint, int)
  set enable_bitmapscan = on;

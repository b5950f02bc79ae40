-- consumer groups (issue 15, docs/consumer-groups.md): competing consumers whose leases, attempts and position
-- live here, so any instance serves any group and a restart or a crash loses none of them
create table consumer_groups (
  id bigint generated always as identity,
  tenant text collate "C" not null,
  name text collate "C" not null,
  -- {types?, categories?, streamIdPrefix?} and the start as given; both fixed at creation
  source jsonb not null,
  start jsonb not null,
  types text[] collate "C",
  categories text[] collate "C",
  stream_id_prefix text collate "C",
  ack_timeout_ms int not null,
  max_deliveries int not null,
  -- every matching event up to here has a row in consumer_group_events (or had one, acked and compacted)
  scanned bigint not null,
  -- the counts of stream rows compacted away (consumer_group_streams keeps the rest)
  delivered bigint not null default 0,
  acked bigint not null default 0,
  compacted_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  constraint consumer_groups_pkey primary key (id),
  constraint consumer_groups_name_key unique (tenant, name)
);

-- one row per stream with events not yet done: its first pending event and its lease, so a poll leases whole
-- streams (`for update skip locked`) and no row is hot for every poller
create table consumer_group_streams (
  group_id bigint not null,
  stream_id text collate "C" not null,
  -- the stream's first pending event (neither acked nor parked); null when it has none
  next_position bigint,
  -- a nack's retryAfterMs: the stream's next event goes out no earlier
  ready_at timestamptz not null default '-infinity',
  -- the lease: its pending events from leased_from up to leased_to are leased until leased_until
  leased_until timestamptz,
  leased_from bigint,
  leased_to bigint,
  delivered bigint not null default 0,
  acked bigint not null default 0,
  constraint consumer_group_streams_pkey primary key (group_id, stream_id),
  constraint consumer_group_streams_group_fkey foreign key (group_id)
    references consumer_groups (id) on delete cascade
);

create index consumer_group_streams_next_idx
  on consumer_group_streams (group_id, next_position)
  where next_position is not null;

-- one row per matching event from the group's scan until it is acked and behind its stream's next_position
create table consumer_group_events (
  group_id bigint not null,
  global_position bigint not null,
  stream_id text collate "C" not null,
  event_id uuid not null,
  event_bytes int not null,
  state text collate "C" not null default 'pending',
  attempts int not null default 0,
  last_error text,
  parked_at timestamptz,
  constraint consumer_group_events_pkey primary key (group_id, global_position),
  constraint consumer_group_events_state_check check (state in ('pending', 'acked', 'parked')),
  constraint consumer_group_events_group_fkey foreign key (group_id)
    references consumer_groups (id) on delete cascade
);

create index consumer_group_events_event_id_idx
  on consumer_group_events (group_id, event_id);

-- a stream's first pending events (leases), and its acked rows to compact; not partial, so an ack (a change of
-- state) can be a HOT update and the compaction finds acked rows without walking the group
create index consumer_group_events_stream_idx
  on consumer_group_events (group_id, stream_id, global_position);

create index consumer_group_events_parked_idx
  on consumer_group_events (group_id, global_position)
  where state = 'parked';

-- After events of these streams changed state (acked, nacked, parked): each stream's first pending event is found
-- again, its lease ends once no pending event is left in it (a nack cuts it short at p_cuts), and acked events
-- behind the new first pending one are deleted (compaction: they can never be handed out again, and the position
-- only needs each stream's first pending event). The caller holds the stream rows' locks; each statement here
-- reads afresh, so events a fill committed meanwhile are seen.
create function consumer_group_settle(
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
                    where e.group_id = p_group_id and e.stream_id = c.stream_id and e.state = 'pending'
                      and e.global_position between s.leased_from and least(s.leased_to, c.cut)) as still_leased
      from changed c
  ), compacted as (
    delete from consumer_group_events e
     using next n
     where e.group_id = p_group_id
       and e.stream_id = n.stream_id
       and e.state = 'acked'
       and (n.next_position is null or e.global_position < n.next_position)
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
-- unexpired lease) and answers how many, or null when the tenant has no such group; an acked event is never handed
-- out again. One call, one round trip (the ack is every consumer's hot path): the stream rows are locked first, in
-- stream order (the order fills use too, so the two never deadlock), then the events are marked and the streams
-- settled, each statement reading afresh.
create function consumer_group_ack(
  p_tenant text,
  p_name text,
  p_event_ids uuid[]
) returns int
language plpgsql
as $$
declare
  v_group_id bigint;
  v_streams text[];
  v_counts int[];
  v_acked int;
begin
  select id into v_group_id from consumer_groups where tenant = p_tenant and name = p_name;
  if v_group_id is null then
    return null;
  end if;
  perform count(*)
     from (select stream_id
             from consumer_group_streams
            where group_id = v_group_id
              and stream_id in (select stream_id from consumer_group_events where group_id = v_group_id and event_id = any(p_event_ids))
            order by stream_id
              for update) as locked;
  with acked as (
    update consumer_group_events e
       set state = 'acked'
      from consumer_group_streams s
     where e.group_id = v_group_id
       and e.event_id = any(p_event_ids)
       and s.group_id = e.group_id
       and s.stream_id = e.stream_id
       and e.state = 'pending'
       and s.leased_until > clock_timestamp()
       and e.global_position between s.leased_from and s.leased_to
    returning e.stream_id
  )
  select coalesce(array_agg(stream_id), '{}'), coalesce(array_agg(count), '{}'), coalesce(sum(count), 0)
    into v_streams, v_counts, v_acked
    from (select stream_id, count(*)::int as count from acked group by stream_id) as per_stream;
  if v_acked > 0 then
    perform consumer_group_settle(v_group_id, v_streams, v_counts, array_fill(null::bigint, array[cardinality(v_streams)]),
                                  array_fill(null::int, array[cardinality(v_streams)]));
  end if;
  return v_acked;
end;
$$;

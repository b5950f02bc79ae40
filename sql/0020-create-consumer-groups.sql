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

create index consumer_group_events_pending_idx
  on consumer_group_events (group_id, stream_id, global_position)
  where state = 'pending';

create index consumer_group_events_parked_idx
  on consumer_group_events (group_id, global_position)
  where state = 'parked';

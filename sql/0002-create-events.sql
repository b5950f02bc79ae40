-- the log itself; positions come from a cache-1 sequence so last_value is the highest position handed out (docs/gap-safety.md).
-- data and metadata are json, not jsonb: kept as sent, written without re-encoding and read back without
-- conversion (bench/: stream reads and appends); nothing queries inside them but metadata.correlationId
create sequence events_global_position_seq
  as bigint
  cache 1;

create table events (
  global_position bigint not null,
  tenant text collate "C" not null,
  stream_id text collate "C" not null,
  category text collate "C" not null,
  stream_version bigint not null,
  event_id uuid not null,
  type text collate "C" not null,
  data json not null,
  metadata json not null,
  created_at timestamptz not null,
  constraint events_pkey primary key (global_position),
  constraint events_stream_version_key unique (tenant, stream_id, stream_version),
  constraint events_event_id_key unique (tenant, event_id)
);

alter sequence events_global_position_seq
  owned by events.global_position;

create index events_tenant_position_idx
  on events (tenant, global_position);

create index events_type_idx
  on events (tenant, type, global_position);

create index events_category_idx
  on events (tenant, category, global_position);

create index events_correlation_id_idx
  on events (tenant, (metadata ->> 'correlationId'), global_position)
  where (metadata ->> 'correlationId') is not null;

create index events_created_at_idx
  on events using brin (created_at);

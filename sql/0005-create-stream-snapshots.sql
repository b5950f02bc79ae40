-- aggregates restore the newest snapshot at or before a version and replay only the events after it (SPEC "Snapshots")
create table stream_snapshots (
  tenant text collate "C" not null,
  stream_id text collate "C" not null,
  version bigint not null,
  state jsonb not null,
  schema_version int not null,
  created_at timestamptz not null,
  constraint stream_snapshots_pkey primary key (tenant, stream_id, version),
  constraint stream_snapshots_version_check check (version >= 1)
);

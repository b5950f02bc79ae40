-- SPEC "Backfills and rebuilds": a projection snapshot is a copy of the live generation's documents
-- (every tenant, tombstones included) with that generation's checkpoint, so a restore puts both back
-- exactly and the worker carries on from there without applying an event twice.
create table projection_snapshots (
  id uuid not null,
  projection text collate "C" not null,
  -- "newest first" is the order snapshots were taken, even within one clock tick
  seq bigint generated always as identity,
  generation int not null,
  definition jsonb,
  definition_version int not null,
  position bigint not null,
  documents bigint not null default 0,
  reason text collate "C" not null,
  created_at timestamptz not null default now(),
  constraint projection_snapshots_pkey primary key (id),
  constraint projection_snapshots_projection_fkey foreign key (projection) references projections (name) on delete cascade
);

create index projection_snapshots_projection_idx on projection_snapshots (projection, seq);

create table projection_snapshot_documents (
  snapshot uuid not null,
  tenant text collate "C" not null,
  id text collate "C" not null,
  document jsonb,
  version bigint not null,
  updated_at timestamptz not null,
  constraint projection_snapshot_documents_pkey primary key (snapshot, tenant, id),
  constraint projection_snapshot_documents_snapshot_fkey foreign key (snapshot) references projection_snapshots (id) on delete cascade
);

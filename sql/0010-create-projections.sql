-- projection definitions and their status are global (SPEC "Details"); every instance reads them from here
create table projections (
  name text collate "C" not null,
  kind text not null,
  definition jsonb,
  definition_version int not null default 1,
  status text not null default 'running',
  live_generation int not null default 1,
  last_error jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint projections_pkey primary key (name),
  constraint projections_kind_check check (kind in ('declarative', 'code')),
  constraint projections_status_check check (status in ('running', 'stopped', 'failed'))
);

-- a generation is one build of a projection's documents with one definition; the live one serves reads,
-- a newer one may be building beside it (atomic rebuilds), an older one is kept for rollback
create table projection_generations (
  projection text collate "C" not null,
  generation int not null,
  definition jsonb,
  definition_version int not null,
  position bigint not null default 0,
  state text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint projection_generations_pkey primary key (projection, generation),
  constraint projection_generations_projection_fkey foreign key (projection) references projections (name) on delete cascade,
  constraint projection_generations_state_check check (state in ('live', 'building', 'retired'))
);

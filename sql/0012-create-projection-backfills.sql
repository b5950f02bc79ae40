-- A deleted document stays as a tombstone (document null) at the position that deleted it, so a
-- backfill or a resumed worker can tell "deleted at p" from "never seen" and never applies an
-- event at or before p to it again.
alter table projection_documents alter column document drop not null;

-- SPEC "Backfills and rebuilds". `after_position` and `to_position` bound the selected events
-- (after_position exclusive, to_position inclusive; to_position is the live head when the run started
-- for atomic runs, which then follow the head until the swap); `from_time`/`to_time` bound createdAt.
create table projection_backfills (
  id uuid not null,
  projection text collate "C" not null,
  status text not null default 'queued',
  request jsonb not null,
  atomic boolean not null,
  generation int not null,
  after_position bigint not null,
  to_position bigint,
  from_time timestamptz,
  to_time timestamptz,
  partitions int not null default 1,
  total bigint,
  snapshot_id uuid,
  requested_by text,
  correlation_id text,
  error text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint projection_backfills_pkey primary key (id),
  constraint projection_backfills_projection_fkey foreign key (projection) references projections (name) on delete cascade,
  constraint projection_backfills_status_check check (status in ('queued', 'running', 'swapping', 'completed', 'failed', 'cancelled'))
);

-- at most one backfill in progress per projection (SPEC: a queued one counts)
create unique index projection_backfills_active_idx
  on projection_backfills (projection) where status in ('queued', 'running', 'swapping');
create index projection_backfills_projection_idx on projection_backfills (projection, created_at);

-- Each partition (streams hashed into `partitions` buckets) commits its checkpoint with the documents
-- it wrote, so a run interrupted anywhere resumes exactly where each partition was.
create table projection_backfill_partitions (
  backfill uuid not null,
  partition int not null,
  position bigint not null,
  processed bigint not null default 0,
  updated_at timestamptz not null default now(),
  constraint projection_backfill_partitions_pkey primary key (backfill, partition),
  constraint projection_backfill_partitions_backfill_fkey foreign key (backfill) references projection_backfills (id) on delete cascade
);

-- the generation an atomic backfill builds; its own worker starts only once the backfill's selected
-- events are in (status swapping)
alter table projection_generations add column backfill uuid;

-- how far the server has acted on `$projections` requests (ProjectionBackfillRequested)
create table system_cursors (
  name text collate "C" not null,
  position bigint not null default 0,
  constraint system_cursors_pkey primary key (name)
);
insert into system_cursors (name) values ('projection-requests');

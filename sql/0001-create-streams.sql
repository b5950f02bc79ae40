-- one row per stream: its head version is the optimistic-concurrency check and the row lock that keeps versions contiguous
create table streams (
  tenant text collate "C" not null,
  stream_id text collate "C" not null,
  category text collate "C" not null,
  version bigint not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  constraint streams_pkey primary key (tenant, stream_id)
);

create index streams_category_idx
  on streams (tenant, category, stream_id);

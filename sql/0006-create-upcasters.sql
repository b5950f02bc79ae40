-- declarative upcasters are global per event type (SPEC "Details"); every instance reads them from here and reloads on NOTIFY
create table upcasters (
  type text collate "C" not null,
  steps jsonb not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  constraint upcasters_pkey primary key (type)
);

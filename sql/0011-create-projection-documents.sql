-- read-model documents, per projection generation and tenant; version is the global position of the last event applied
create table projection_documents (
  projection text collate "C" not null,
  generation int not null,
  tenant text collate "C" not null,
  id text collate "C" not null,
  document jsonb not null,
  version bigint not null,
  updated_at timestamptz not null default now(),
  constraint projection_documents_pkey primary key (projection, generation, tenant, id)
);

-- POST /projections/{name}/query `filter` is JSON containment
create index projection_documents_document_idx
  on projection_documents using gin (document jsonb_path_ops);

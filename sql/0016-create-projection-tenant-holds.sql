-- one tenant's poison event stops that tenant's documents only (issue 18, docs/projection-failures.md): the
-- worker goes on with every other tenant and holds this one's events until `restart` or `skip`
create table projection_tenant_holds (
  projection text collate "C" not null,
  generation int not null,
  tenant text collate "C" not null,
  -- the tenant's own checkpoint: its events up to here are applied, those after it are not (yet)
  position bigint not null,
  -- {position, eventId, message} of the event it failed on; null while `restart`/`skip` resume it
  failure jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint projection_tenant_holds_pkey primary key (projection, generation, tenant),
  constraint projection_tenant_holds_generation_fkey foreign key (projection, generation)
    references projection_generations (projection, generation) on delete cascade
);

-- a snapshot's documents of a held tenant are as of its hold: a restore brings the holds back with them
alter table projection_snapshots add column holds jsonb not null default '[]';

-- a projection failed before this migration becomes a hold of the tenant whose event it failed on, at the
-- checkpoint it stopped at; the projection runs again for every other tenant
insert into projection_tenant_holds (projection, generation, tenant, position, failure)
select p.name,
       g.generation,
       e.tenant,
       least(g.position, (p.last_error ->> 'position')::bigint - 1),
       jsonb_build_object('position', (p.last_error ->> 'position')::bigint, 'eventId', p.last_error ->> 'eventId', 'message', p.last_error ->> 'message')
  from projections p
  join projection_generations g
    on g.projection = p.name
   and g.generation = coalesce((p.last_error ->> 'generation')::int, p.live_generation)
  join events e
    on e.global_position = (p.last_error ->> 'position')::bigint
 where p.status = 'failed'
   and p.last_error ->> 'position' is not null;

update projections
   set status = 'running',
       last_error = null,
       updated_at = now()
 where status = 'failed'
   and exists (select from projection_tenant_holds h where h.projection = projections.name);

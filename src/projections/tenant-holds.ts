import type { Sql, Tx } from '../db/connect.js'

// Every read and write of projection_tenant_holds (docs/projection-failures.md): a tenant whose event failed
// is held at it, with a checkpoint of its own, while the projection goes on with the other tenants.

export interface TenantFailure {
  position: number
  eventId: string
  message: string
}

export interface TenantHold {
  tenant: string
  generation: number
  // the tenant's own checkpoint: its events up to here are applied, those after it are not (yet)
  position: number
  // null while restart or skip resume it
  failure: TenantFailure | null
}

const holdColumns = (sql: Sql | Tx) => sql`tenant, generation, position, failure`

export const readHolds = (sql: Sql | Tx, projection: string, generation?: number): Promise<TenantHold[]> =>
  sql<TenantHold[]>`
    select ${holdColumns(sql)}
      from projection_tenant_holds
     where projection = ${projection}
       ${generation === undefined ? sql`` : sql`and generation = ${generation}`}
     order by generation, position, tenant`

// In a batch of the projection (its generation locked exclusively): the tenants whose events the batch
// passes over. A resumed tenant whose own checkpoint has caught up with the batch's start rejoins here: its
// hold goes in the batch's transaction, and the batch applies its events from there on.
export const heldTenants = async (tx: Tx, projection: string, generation: number, from: number): Promise<Set<string>> => {
  const rows = await tx<{ tenant: string }[]>`
    with rejoined as (
      delete from projection_tenant_holds h
       where h.projection = ${projection}
         and h.generation = ${generation}
         and h.failure is null
         and h.position = ${from}
         and exists (select from projection_generations g where g.projection = h.projection and g.generation = h.generation and g.position = ${from})
      returning h.tenant
    )
    select tenant
      from projection_tenant_holds
     where projection = ${projection}
       and generation = ${generation}
       and tenant not in (select tenant from rejoined)`
  return new Set(rows.map((row) => row.tenant))
}

// A resumed tenant's catch-up moves its own checkpoint by compare-and-set, in its batch's transaction, never
// past the projection's (`main`, checked in the same statement).
export const advanceHold = async (tx: Tx, projection: string, generation: number, tenant: string, from: number, to: number, main: number): Promise<boolean> => {
  const rows = await tx`
    update projection_tenant_holds h
       set position = ${to}, updated_at = now()
     where h.projection = ${projection}
       and h.generation = ${generation}
       and h.tenant = ${tenant}
       and h.position = ${from}
       and h.failure is null
       and ${to} <= ${main}
       and exists (select from projection_generations g where g.projection = h.projection and g.generation = h.generation and g.position = ${main})
    returning h.tenant`
  return rows.length === 1
}

// Holds `tenant` at the event it failed on, once everything of it before that event is applied: the
// projection's checkpoint stands right before it (a new hold), or the tenant's own does (a catch-up that
// failed again). False when neither does: the checkpoint moved under the worker.
export const holdTenant = async (tx: Tx, projection: string, generation: number, tenant: string, failure: TenantFailure): Promise<boolean> => {
  const before = failure.position - 1
  const rows = await tx`
    insert into projection_tenant_holds as h (projection, generation, tenant, position, failure)
    select ${projection}, ${generation}, ${tenant}, ${before}, ${tx.json(failure as never)}
     where exists (select from projection_generations where projection = ${projection} and generation = ${generation} and position = ${before})
        or exists (select from projection_tenant_holds where projection = ${projection} and generation = ${generation} and tenant = ${tenant} and position = ${before})
    on conflict (projection, generation, tenant) do update
       set failure = excluded.failure, updated_at = now()
     where h.position = excluded.position
    returning h.tenant`
  return rows.length === 1
}

export interface Resumed {
  tenant: string
  generation: number
  failure: TenantFailure
}

// restart (`skip` false) and skip: the failed holds of the live and building generations, of one tenant or
// of all, resume; a skip first moves each past the event it failed on. The worker catches them up.
export const resumeHolds = (tx: Tx, projection: string, tenant: string | undefined, skip: boolean): Promise<Resumed[]> =>
  tx<Resumed[]>`
    with failed as (
      select h.tenant, h.generation, h.failure
        from projection_tenant_holds h
        join projection_generations g on g.projection = h.projection and g.generation = h.generation
       where h.projection = ${projection}
         and g.state <> 'retired'
         and h.failure is not null
         ${tenant === undefined ? tx`` : tx`and h.tenant = ${tenant}`}
         for update of h
    )
    update projection_tenant_holds h
       set position = ${skip ? tx`greatest(h.position, (f.failure ->> 'position')::bigint)` : tx`h.position`},
           failure = null,
           updated_at = now()
      from failed f
     where h.projection = ${projection}
       and h.generation = f.generation
       and h.tenant = f.tenant
    returning f.tenant, f.generation, f.failure`

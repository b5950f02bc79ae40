import type { Sql } from '../../src/db/connect.js'

export interface SeedDocument {
  id: string
  document: Record<string, unknown>
  version?: number
  tenant?: string
}

// A projection row the workers leave alone (status stopped) with one live generation at `position`,
// so tests own its documents and checkpoint outright.
export const seedProjection = async (sql: Sql, name: string, { generation = 1, position = 0 } = {}): Promise<void> => {
  await sql`
    insert into projections (name, kind, definition, status, live_generation)
    values (${name}, 'declarative', ${sql.json({ source: {}, documentId: '$.streamId', handlers: {} } as never)}, 'stopped', ${generation})`
  await sql`
    insert into projection_generations (projection, generation, definition_version, position, state)
    values (${name}, ${generation}, 1, ${position}, 'live')`
}

export const putDocuments = async (sql: Sql, name: string, documents: SeedDocument[], generation = 1): Promise<void> => {
  if (documents.length === 0) return
  const rows = documents.map(({ id, document, version = 1, tenant = 'default' }) => ({ id, document, version, tenant }))
  await sql`
    insert into projection_documents (projection, generation, tenant, id, document, version)
    select ${name}, ${generation}, r.tenant, r.id, r.document, r.version
      from jsonb_to_recordset(${sql.json(rows as never)}) as r(tenant text, id text, document jsonb, version bigint)
    on conflict (projection, generation, tenant, id) do update
      set document = excluded.document, version = excluded.version, updated_at = now()`
}

export const deleteDocuments = async (sql: Sql, name: string, ids: string[], tenant = 'default'): Promise<void> => {
  await sql`delete from projection_documents where projection = ${name} and tenant = ${tenant} and id in ${sql(ids)}`
}

export const setLivePosition = async (sql: Sql, name: string, position: number): Promise<void> => {
  await sql`
    update projection_generations g
       set position = ${position}
      from projections p
     where p.name = ${name} and g.projection = p.name and g.generation = p.live_generation`
}

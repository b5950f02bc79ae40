import { Problem } from '../problems.js'
import type { Sql, Tx } from '../db/connect.js'
import { CHANNEL } from '../db/channels.js'
import { toProblem } from '../db/pg-errors.js'
import { checkSteps } from './upcast-step.js'
import type { Upcaster, UpcasterStep } from './upcaster-types.js'

// Every instance caches the declarative upcasters and reloads them when this channel says they changed.

const columns = (sql: Sql | Tx) => sql`type, steps, created_at as "createdAt", updated_at as "updatedAt"`

// The NOTIFY is sent at commit, so an instance that hears it reads the new definition.
export const putUpcaster = async (sql: Sql, type: string, steps: UpcasterStep[]): Promise<{ upcaster: Upcaster; created: boolean }> => {
  checkSteps(steps)
  try {
    return await sql.begin(async (tx) => {
      const [row] = await tx<(Upcaster & { created: boolean })[]>`
        insert into upcasters as u (type, steps, created_at, updated_at)
        values (${type}, ${JSON.stringify(steps)}::text::jsonb, date_trunc('milliseconds', now()), date_trunc('milliseconds', now()))
        on conflict (type) do update
          set steps = excluded.steps,
              updated_at = excluded.updated_at
        returning ${columns(tx)}, (xmax = 0) as created`
      await tx`select pg_notify(${CHANNEL.upcasters}, ${type})`
      const { created, ...upcaster } = row!
      return { upcaster, created }
    })
  } catch (error) {
    throw toProblem(error) ?? error
  }
}

export const getUpcaster = async (sql: Sql, type: string): Promise<Upcaster> => {
  const [upcaster] = await sql<Upcaster[]>`select ${columns(sql)} from upcasters where type = ${type}`
  if (!upcaster) throw new Problem('not-found', { eventType: type }, `no upcaster is registered for event type ${type}`)
  return upcaster
}

export const deleteUpcaster = async (sql: Sql, type: string): Promise<void> => {
  const deleted = await sql.begin(async (tx) => {
    const rows = await tx`delete from upcasters where type = ${type} returning type`
    if (rows.length > 0) await tx`select pg_notify(${CHANNEL.upcasters}, ${type})`
    return rows.length
  })
  if (deleted === 0) throw new Problem('not-found', { eventType: type }, `no upcaster is registered for event type ${type}`)
}

export const listUpcasters = async (sql: Sql): Promise<Upcaster[]> =>
  sql<Upcaster[]>`select ${columns(sql)} from upcasters order by type`

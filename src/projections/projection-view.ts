import type { Sql, Tx } from '../db/connect.js'
import { documentCount, listGenerations, type ProjectionRow } from './definitions.js'
import type { ProjectionView } from './schemas.js'
import { readHolds } from './tenant-holds.js'
import type { ProjectionStatus } from './types.js'

// A projection this far behind the head reads as catching-up rather than running.
export const CATCHING_UP_LAG = 1000

// Whose failures a caller sees: every tenant's, or one tenant's (docs/projection-failures.md).
export type TenantScope = { tenant: string } | 'every'

// For one tenant, position and lag are that tenant's: its own checkpoint while it is held or catching up.
export const viewOf = async (sql: Sql | Tx, row: ProjectionRow, head: number, scope: TenantScope = 'every'): Promise<ProjectionView> => {
  const generations = await listGenerations(sql, row.name)
  const live = generations.find((generation) => generation.generation === row.liveGeneration)
  const current = new Set(generations.filter((generation) => generation.state !== 'retired').map((generation) => generation.generation))
  const holds = (await readHolds(sql, row.name)).filter((hold) => current.has(hold.generation) && (scope === 'every' || hold.tenant === scope.tenant))
  const failures = holds.flatMap(({ tenant, generation, failure }) => (failure ? [{ tenant, generation, ...failure }] : []))
  failures.sort((a, b) => a.position - b.position)
  const own = scope === 'every' ? undefined : holds.find((hold) => hold.generation === row.liveGeneration)
  const position = Math.min(live?.position ?? 0, own?.position ?? Number.POSITIVE_INFINITY)
  const lag = Math.max(0, head - position)
  const rebuilding = generations.some((generation) => generation.state === 'building')
  const status: ProjectionStatus =
    row.status !== 'running' ? row.status : failures.length > 0 ? 'failed' : rebuilding ? 'rebuilding' : lag >= CATCHING_UP_LAG ? 'catching-up' : 'running'
  return {
    name: row.name,
    kind: row.kind,
    status,
    position,
    head,
    lag,
    documents: await documentCount(sql, row.name, row.liveGeneration),
    lastError: (scope === 'every' ? row.lastError : null) ?? failures[0] ?? null,
    failures,
    definitionVersion: row.definitionVersion,
    updatedAt: row.updatedAt,
    definition: row.definition,
  }
}

// What keys below admin read in place of a failure's message (SPEC "Details": lastError never carries database
// error text to non-admin keys). The message may hold the database's words, or whatever a code handler put in its
// error, from an event of any tenant (projections are global); such keys learn where the projection failed and
// that it did, an admin key (or anyone on a server without keys) reads why.
export const FAILURE_MESSAGE_WITHHELD = 'the handler failed on this event; its message is shown to admin keys only'

export const projectionViewFor = (view: ProjectionView, admin: boolean): ProjectionView =>
  admin
    ? view
    : {
        ...view,
        lastError: view.lastError === null ? null : { ...view.lastError, message: FAILURE_MESSAGE_WITHHELD },
        failures: view.failures.map((failure) => ({ ...failure, message: FAILURE_MESSAGE_WITHHELD })),
      }

import { Type, type Static } from 'typebox'
import { PROJECTION_NAME_PATTERN } from './definition-schema.js'
import type { Sql, Tx } from '../db/connect.js'
import { documentCount, listGenerations, type ProjectionRow } from './definitions.js'
import { readHolds } from './tenant-holds.js'
import type { DeclarativeDefinition, ProjectionKind, ProjectionStatus } from './types.js'

// A projection this far behind the head reads as catching-up rather than running.
export const CATCHING_UP_LAG = 1000

export const ProjectionParams = Type.Object({ name: Type.String({ pattern: PROJECTION_NAME_PATTERN }) })

// The wire shape of a projection's status (SPEC "Management"), the one definition routes and types share.
export const ProjectionViewSchema = Type.Object({
  name: Type.String(),
  kind: Type.Union([Type.Literal('declarative'), Type.Literal('code')]),
  status: Type.Union([
    Type.Literal('running'),
    Type.Literal('stopped'),
    Type.Literal('failed'),
    Type.Literal('rebuilding'),
    Type.Literal('catching-up'),
  ]),
  position: Type.Integer(),
  head: Type.Integer(),
  lag: Type.Integer(),
  documents: Type.Integer(),
  lastError: Type.Union([
    Type.Object({ position: Type.Integer(), eventId: Type.String(), message: Type.String() }, { additionalProperties: true }),
    Type.Null(),
  ]),
  failures: Type.Array(Type.Object({
    tenant: Type.String(),
    generation: Type.Integer(),
    position: Type.Integer(),
    eventId: Type.String(),
    message: Type.String(),
  })),
  definitionVersion: Type.Integer(),
  updatedAt: Type.String(),
  definition: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
})

export type ProjectionView = Static<typeof ProjectionViewSchema>

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

import type { Tx } from '../db/connect.js'
import type { DeclarativeDefinition } from './definition-schema.js'

// Every write to projection_generations, each inside a transaction holding the projection lock
// (projection-lock.ts; the checkpoint's compare-and-set inside a batch's, which holds it shared).

export interface NewGeneration {
  definition: DeclarativeDefinition | null
  definitionVersion: number
  state: 'live' | 'building'
  // the atomic backfill that builds it
  backfill?: string
}

// The first generation (1) of a new projection, or the next number for a rebuild. A number dropped before
// may come again, so nothing written under it before may show in the new generation.
export const createGeneration = async (tx: Tx, projection: string, generation: NewGeneration): Promise<number> => {
  const [row] = await tx<{ generation: number }[]>`
    insert into projection_generations (projection, generation, definition, definition_version, state, backfill)
    select ${projection}, coalesce(max(generation), 0) + 1, ${generation.definition === null ? null : tx.json(generation.definition as never)},
           ${generation.definitionVersion}, ${generation.state}, ${generation.backfill ?? null}
      from projection_generations
     where projection = ${projection}
    returning generation`
  await tx`delete from projection_documents where projection = ${projection} and generation = ${row!.generation}`
  return row!.generation
}

// The generation rows go before their documents: a batch of their worker still in flight holds its
// row (the checkpoint compare-and-set) and commits first, so none of its documents is left behind.
export const dropGenerations = async (tx: Tx, name: string, state: 'live' | 'building' | 'retired'): Promise<void> => {
  const dropped = await tx<{ generation: number }[]>`
    delete from projection_generations
     where projection = ${name} and state = ${state}
    returning generation`
  for (const { generation } of dropped) {
    await tx`delete from projection_documents where projection = ${name} and generation = ${generation}`
  }
}

// One generation that is not live, with its documents (a cancelled or failed atomic rebuild).
export const dropGeneration = async (tx: Tx, projection: string, generation: number): Promise<void> => {
  const dropped = await tx`
    delete from projection_generations
     where projection = ${projection} and generation = ${generation} and state <> 'live'
    returning generation`
  if (dropped.length > 0) await tx`delete from projection_documents where projection = ${projection} and generation = ${generation}`
}

// `to` becomes the live generation and `from` (the live one until now) is kept, retired, for a rollback.
// Readers follow projections.live_generation, so they see the one or the other whole. A rollback brings
// back the definition the generation was built with.
export const swapLive = async (tx: Tx, projection: string, to: number, from: number, withDefinition?: { definition: unknown; definitionVersion: number }): Promise<void> => {
  await tx`
    update projection_generations
       set state = case when generation = ${to} then 'live' else 'retired' end, updated_at = now()
     where projection = ${projection}
       and generation in (${to}, ${from})`
  await tx`
    update projections
       set live_generation = ${to},
           ${withDefinition ? tx`definition = ${withDefinition.definition === null ? null : tx.json(withDefinition.definition as never)}, definition_version = ${withDefinition.definitionVersion},` : tx``}
           updated_at = now()
     where name = ${projection}`
}

// Compare-and-set on the checkpoint, inside the batch's transaction: a worker that lost its
// projection to another instance (or to a reset) cannot commit a batch over the other's work.
export const advanceCheckpoint = async (tx: Tx, name: string, generation: number, from: number, to: number): Promise<boolean> => {
  const updated = await tx`
    update projection_generations
       set position = ${to}, updated_at = now()
     where projection = ${name}
       and generation = ${generation}
       and position = ${from}
    returning generation`
  return updated.length === 1
}

// A checkpoint set by a management call: `reset` to 0, `skip` past the failed event (never back), a restore
// to its snapshot's position, a hand-over to the end of a backfill's selection (while still building).
export const setCheckpoint = async (
  tx: Tx,
  projection: string,
  generation: number,
  position: number,
  rule: 'exactly' | 'forward-only' | 'while-building' = 'exactly',
): Promise<void> => {
  await tx`
    update projection_generations
       set position = ${rule === 'forward-only' ? tx`greatest(position, ${position})` : tx`${position}`}, updated_at = now()
     where projection = ${projection}
       and generation = ${generation}
       ${rule === 'while-building' ? tx`and state = 'building'` : tx``}`
}

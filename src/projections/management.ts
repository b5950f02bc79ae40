import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import type { ProjectionRunner } from './runner.js'
import { dropGenerations } from './generations.js'
import { getProjection, setStatus } from './store.js'

// SPEC "Management": each call answers after it took effect on this instance.

export const stopProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  const { status } = await getProjection(sql, name)
  await setStatus(sql, name, 'stopped')
  await runner.stopLocal(name)
  await runner.changed()
  if (status === 'running') await runner.record(name, 'ProjectionStopped')
}

export const startProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  await getProjection(sql, name)
  await setStatus(sql, name, 'running')
  await runner.changed()
  await runner.record(name, 'ProjectionStarted')
}

// Skips the one event the projection failed on, and records that it did (SPEC "Projections").
export const skipFailedEvent = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  const projection = await getProjection(sql, name)
  const failure = projection.lastError
  if (projection.status !== 'failed' || !failure) {
    throw new Problem('conflict', { projectionStatus: projection.status }, `${name} has not failed: there is no event to skip`)
  }
  await runner.stopLocal(name)
  await sql.begin(async (tx) => {
    await tx`
      update projection_generations
         set position = greatest(position, ${failure.position}), updated_at = now()
       where projection = ${name}
         and generation = ${failure.generation ?? projection.liveGeneration}`
    await tx`update projections set status = 'running', last_error = null, updated_at = now() where name = ${name}`
  })
  await runner.record(name, 'ProjectionSkippedEvent', { position: failure.position, eventId: failure.eventId, error: failure.message })
  await runner.changed()
}

// Clear and replay in place: the live generation's documents go and its checkpoint returns to 0.
export const resetProjection = async (sql: Sql, runner: ProjectionRunner, name: string): Promise<void> => {
  const projection = await getProjection(sql, name)
  await runner.stopLocal(name)
  await sql.begin(async (tx) => {
    await dropGenerations(tx, name, 'building')
    await tx`delete from projection_documents where projection = ${name} and generation = ${projection.liveGeneration}`
    await tx`
      update projection_generations
         set position = 0, updated_at = now()
       where projection = ${name}
         and generation = ${projection.liveGeneration}`
    await tx`update projections set status = 'running', last_error = null, updated_at = now() where name = ${name}`
  })
  await runner.changed()
  await runner.record(name, 'ProjectionStarted', { reset: true })
}

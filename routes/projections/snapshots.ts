import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ProblemRef } from '../../src/http/schemas.js'
import { restoreProjectionSnapshot } from '../../src/projections/snapshots/snapshot-restore.js'
import { createProjectionSnapshot, listProjectionSnapshots } from '../../src/projections/snapshots/projection-snapshots.js'
import { viewOf } from '../../src/projections/projection-view.js'
import { getProjection } from '../../src/projections/definitions.js'
import type { Sql } from '../../src/db/connect.js'
import type { LogHead } from '../../src/events/log-head.js'
import type { ProjectionRunner } from '../../src/projections/runner.js'
import { ProjectionParams, ProjectionSnapshot, ProjectionSnapshotList, ProjectionView } from '../../src/projections/schemas.js'

export interface ProjectionSnapshotRoutesOptions {
  sql: Sql
  runner: ProjectionRunner
  logHead: LogHead
  // wakes local readers of the system event
}

const SnapshotParams = Type.Object({ ...ProjectionParams.properties, id: Type.String({ format: 'uuid' }) })

const problems = { 400: ProblemRef, 404: ProblemRef, 500: ProblemRef }

// SPEC "Backfills and rebuilds": /projections/{name}/snapshots…
export const projectionSnapshotRoutes: FastifyPluginAsyncTypebox<ProjectionSnapshotRoutesOptions> = async (app, { sql, runner, logHead }) => {
  app.post('/:name/snapshots', {
    schema: { params: ProjectionParams, response: { 201: ProjectionSnapshot, 409: ProblemRef, ...problems } },
  }, async (request, reply) => {
    const snapshot = await createProjectionSnapshot(sql, request.params.name, 'manual')
    request.log.info({ projection: request.params.name, snapshotId: snapshot.id, position: snapshot.position }, 'projection snapshot taken')
    return reply.code(201).send(snapshot)
  })

  app.get('/:name/snapshots', {
    schema: { params: ProjectionParams, response: { 200: ProjectionSnapshotList, ...problems } },
  }, async (request) => ({ snapshots: await listProjectionSnapshots(sql, request.params.name) }))

  app.post('/:name/snapshots/:id/restore', {
    schema: { params: SnapshotParams, response: { 200: ProjectionView, 409: ProblemRef, ...problems } },
  }, async (request) => {
    const { name, id } = request.params
    const snapshot = await restoreProjectionSnapshot(sql, runner, name, id)
    request.log.info({ projection: name, snapshotId: id, position: snapshot.position }, 'projection snapshot restored')
    return viewOf(sql, await getProjection(sql, name), await logHead.catchUp())
  })
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../../src/db/connect.js'
import { ProblemRef } from '../../src/http/schemas.js'
import { Problem } from '../../src/problems.js'
import { cancelBackfill, requestBackfill } from '../../src/projections/backfills/backfill-commands.js'
import { getBackfill, listBackfills, viewOfBackfill } from '../../src/projections/backfills/backfill-runs.js'
import type { ProjectionRunner } from '../../src/projections/runner.js'
import { getProjection } from '../../src/projections/definitions.js'
import { acceptsEventStream, drained, endAfterHeaders, openEventStream } from '../../src/http/event-stream.js'
import { backfillProgressFrames } from '../../src/projections/backfills/backfill-progress.js'
import { ProjectionParams } from '../../src/projections/projection-view.js'

export interface BackfillRoutesOptions {
  sql: Sql
  runner: ProjectionRunner
  progressPollMs?: number
  heartbeatMs: number
}

const BackfillParams = Type.Object({
  name: ProjectionParams.properties.name,
  id: Type.String({ format: 'uuid' }),
})

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

export const BackfillView = Type.Object({
  id: Type.String(),
  projection: Type.String(),
  status: Type.Union([
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('swapping'),
    Type.Literal('completed'),
    Type.Literal('failed'),
    Type.Literal('cancelled'),
  ]),
  criteria: Type.String(),
  atomic: Type.Boolean(),
  maxConcurrency: Type.Integer(),
  processed: Type.Integer(),
  total: Nullable(Type.Integer()),
  percent: Type.Number(),
  eventsPerSecond: Type.Number(),
  etaSeconds: Nullable(Type.Number()),
  createdAt: Type.String(),
  startedAt: Nullable(Type.String()),
  finishedAt: Nullable(Type.String()),
  error: Nullable(Type.String()),
  requestedBy: Nullable(Type.String()),
  correlationId: Nullable(Type.String()),
  generation: Type.Integer(),
  snapshotId: Nullable(Type.String()),
  request: Type.Object({}, { additionalProperties: true }),
})

export const backfillRoutes: FastifyPluginAsyncTypebox<BackfillRoutesOptions> = async (app, { sql, runner, progressPollMs = 250, heartbeatMs }) => {
  const open = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const close of open) close()
  })

  app.post('/:name/backfills', {
    schema: { params: ProjectionParams, body: Type.Unknown(), response: { 202: BackfillView, 400: ProblemRef, 404: ProblemRef, 409: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    const view = await requestBackfill(sql, runner, request.params.name, request.body, { correlationId: request.id })
    return reply.code(202).send(view)
  })

  app.get('/:name/backfills', {
    schema: { params: ProjectionParams, response: { 200: Type.Object({ backfills: Type.Array(BackfillView) }), 400: ProblemRef, 404: ProblemRef, 500: ProblemRef } },
  }, async (request) => {
    await getProjection(sql, request.params.name)
    return { backfills: (await listBackfills(sql, request.params.name)).map(viewOfBackfill) }
  })

  app.get('/:name/backfills/:id', {
    schema: { params: BackfillParams, response: { 200: BackfillView, 400: ProblemRef, 404: ProblemRef, 500: ProblemRef } },
  }, async (request) => viewOfBackfill(await getBackfill(sql, request.params.name, request.params.id)))

  app.delete('/:name/backfills/:id', {
    schema: { params: BackfillParams, response: { 200: BackfillView, 400: ProblemRef, 404: ProblemRef, 409: ProblemRef, 500: ProblemRef } },
  }, async (request) => cancelBackfill(sql, runner, request.params.name, request.params.id))

  // The same view as server-sent events, one `progress` event whenever it changes, until the run ends.
  app.get('/:name/backfills/:id/progress', {
    schema: { params: BackfillParams, response: { 200: Type.String(), 400: ProblemRef, 404: ProblemRef, 406: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    if (!acceptsEventStream(request.headers.accept)) throw new Problem('not-acceptable', {}, 'backfill progress is text/event-stream only')
    const { name, id } = request.params
    const first = viewOfBackfill(await getBackfill(sql, name, id))
    if (request.method === 'HEAD') return endAfterHeaders(request, reply)
    openEventStream(request, reply)
    const stream = reply.raw
    const end = (): void => void stream.end()
    open.add(end)
    stream.once('close', () => open.delete(end))
    const closed = (): boolean => stream.writableEnded || stream.destroyed
    for await (const frame of backfillProgressFrames(sql, name, id, first, { pollMs: progressPollMs, heartbeatMs, closed, log: request.log })) {
      // a client that stops reading is sent nothing more until it takes this frame; the next one has the latest view
      if (!stream.write(frame)) await drained(stream)
    }
    open.delete(end)
    end()
  })
}

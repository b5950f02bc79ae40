import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../../src/db/connect.js'
import { ProblemRef } from '../../src/http/schemas.js'
import { Problem } from '../../src/problems.js'
import { cancelBackfill, requestBackfill } from '../../src/projections/backfills/backfill-commands.js'
import { backfillViewFor, getBackfill, listBackfills, viewOfBackfill } from '../../src/projections/backfills/backfill-runs.js'
import type { ProjectionRunner } from '../../src/projections/runner.js'
import { getProjection } from '../../src/projections/definitions.js'
import { acceptsEventStream, drained, endAfterHeaders, openEventStream } from '../../src/http/event-stream.js'
import { callerOf, type CallerLimit } from '../../src/http/caller-limit.js'
import { backfillProgressFrames } from '../../src/projections/backfills/backfill-progress.js'
import { BackfillList, BackfillView, ProjectionName, ProjectionParams } from '../../src/projections/schemas.js'

export interface BackfillRoutesOptions {
  sql: Sql
  runner: ProjectionRunner
  progressPollMs?: number
  heartbeatMs: number
  // open event streams per API key, shared with GET /subscribe (MAX_SUBSCRIPTIONS_PER_KEY)
  limit: CallerLimit
}

const BackfillParams = Type.Object({
  name: ProjectionName,
  id: Type.String({ format: 'uuid' }),
})

// Takes the response over and writes the frames until they end (the run ended) or the client goes; `release` runs
// once either way. `open` holds the streams a shutdown ends.
const streamFrames = async (request: FastifyRequest, reply: FastifyReply, frames: AsyncIterable<string>, open: Set<() => void>, release: () => void): Promise<void> => {
  let released = false
  const releaseOnce = (): void => {
    if (!released) release()
    released = true
  }
  openEventStream(request, reply)
  const stream = reply.raw
  const end = (): void => void stream.end()
  open.add(end)
  stream.once('close', () => {
    open.delete(end)
    releaseOnce()
  })
  try {
    for await (const frame of frames) {
      // a client that stops reading is sent nothing more until it takes this frame; the next one has the latest view
      if (!stream.write(frame)) await drained(stream)
    }
  } finally {
    open.delete(end)
    end()
    releaseOnce()
  }
}

export const backfillRoutes: FastifyPluginAsyncTypebox<BackfillRoutesOptions> = async (app, { sql, runner, progressPollMs = 250, heartbeatMs, limit }) => {
  const open = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const close of open) close()
  })

  app.post('/:name/backfills', {
    schema: { params: ProjectionParams, body: Type.Unknown(), response: { 202: BackfillView, 400: ProblemRef, 404: ProblemRef, 409: ProblemRef, 413: ProblemRef, 415: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    const view = await requestBackfill(sql, runner, request.params.name, request.body, { correlationId: request.id })
    return reply.code(202).send(view)
  })

  app.get('/:name/backfills', {
    schema: { params: ProjectionParams, response: { 200: BackfillList, 400: ProblemRef, 404: ProblemRef, 500: ProblemRef } },
  }, async (request) => {
    await getProjection(sql, request.params.name)
    return { backfills: (await listBackfills(sql, request.params.name)).map((row) => backfillViewFor(viewOfBackfill(row), request.role === 'admin')) }
  })

  app.get('/:name/backfills/:id', {
    schema: { params: BackfillParams, response: { 200: BackfillView, 400: ProblemRef, 404: ProblemRef, 500: ProblemRef } },
  }, async (request) => backfillViewFor(viewOfBackfill(await getBackfill(sql, request.params.name, request.params.id)), request.role === 'admin'))

  app.delete('/:name/backfills/:id', {
    schema: { params: BackfillParams, response: { 200: BackfillView, 400: ProblemRef, 404: ProblemRef, 409: ProblemRef, 500: ProblemRef } },
  }, async (request) => cancelBackfill(sql, runner, request.params.name, request.params.id))

  // The same view as server-sent events, one `progress` event whenever it changes, until the run ends.
  app.get('/:name/backfills/:id/progress', {
    schema: { params: BackfillParams, response: { 200: Type.String(), 400: ProblemRef, 404: ProblemRef, 406: ProblemRef, 429: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    if (!acceptsEventStream(request.headers.accept)) throw new Problem('not-acceptable', {}, 'backfill progress is text/event-stream only')
    const { name, id } = request.params
    const first = viewOfBackfill(await getBackfill(sql, name, id))
    // each stream polls the database: counted per API key with /subscribe's (SPEC "Details"), HEAD included
    const caller = request.apiKey ? callerOf(request) : undefined
    if (!limit.acquire(caller)) throw new Problem('too-many-requests', {}, 'this key has MAX_SUBSCRIPTIONS_PER_KEY event streams open already')
    if (request.method === 'HEAD') {
      limit.release(caller)
      return endAfterHeaders(request, reply)
    }
    const frames = backfillProgressFrames(sql, name, id, first, { pollMs: progressPollMs, heartbeatMs, closed: () => reply.raw.writableEnded || reply.raw.destroyed, admin: request.role === 'admin', log: request.log })
    await streamFrames(request, reply, frames, open, () => limit.release(caller))
  })
}

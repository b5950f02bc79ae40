import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../src/db/connect.js'
import { eventJson } from '../src/events/event-json.js'
import { readChunkBytes } from '../src/events/event-page.js'
import { loadStream } from '../src/events/load.js'
import { latestSnapshot, listSnapshots, putSnapshot } from '../src/events/snapshots.js'
import type { Upcasters } from '../src/events/upcasters.js'
import { sendPage } from '../src/http/page-body.js'
import { ProblemRef } from '../src/http/schemas.js'
import { LoadedStream, LoadQuery, Snapshot, SnapshotInput, SnapshotList, StreamId, StreamParams, Version } from '../src/events/schemas.js'

export interface SnapshotRoutesOptions {
  sql: Sql
  upcasters: Upcasters
  snapshotEvery: number
  snapshotKeep: number
  maxPageBytes: number
}

const problems = { 400: ProblemRef, 500: ProblemRef }

// SPEC "Snapshots": /streams/{streamId}/snapshots… and /streams/{streamId}/load
export const snapshotRoutes: FastifyPluginAsyncTypebox<SnapshotRoutesOptions> = async (app, { sql, upcasters, snapshotEvery, snapshotKeep, maxPageBytes }) => {
  // a load is one page of every event after the snapshot, read and written a chunk at a time (chunked-page.ts)
  const readBytes = readChunkBytes(maxPageBytes)
  app.put('/:streamId/snapshots/:version', {
    schema: {
      params: Type.Object({ streamId: StreamId, version: Version }),
      body: SnapshotInput,
      response: { 200: Snapshot, 201: Snapshot, 409: ProblemRef, 413: ProblemRef, 415: ProblemRef, ...problems },
    },
  }, async (request, reply) => {
    const { streamId, version } = request.params
    const { snapshot, created } = await putSnapshot(sql, request.tenant, streamId, version, request.body, snapshotKeep)
    request.log.info({ streamId, version, created }, 'snapshot stored')
    return reply.code(created ? 201 : 200).send(snapshot)
  })

  app.get('/:streamId/snapshots', {
    schema: { params: StreamParams, response: { 200: SnapshotList, 404: ProblemRef, ...problems } },
  }, async (request) => ({ snapshots: await listSnapshots(sql, request.tenant, request.params.streamId) }))

  app.get('/:streamId/snapshots/latest', {
    schema: {
      params: StreamParams,
      querystring: Type.Object({ atOrBefore: Type.Optional(Version) }),
      response: { 200: Snapshot, 404: ProblemRef, ...problems },
    },
  }, async (request) => latestSnapshot(sql, request.tenant, request.params.streamId, request.query.atOrBefore))

  app.get('/:streamId/load', {
    schema: {
      params: StreamParams,
      querystring: LoadQuery,
      response: { 200: LoadedStream, 404: ProblemRef, ...problems },
    },
  }, async (request, reply) => {
    const { streamId, version, snapshot, events } = await loadStream(sql, request.tenant, request.params.streamId, request.query, readBytes)
    return sendPage(reply, events, {
      open: `{"streamId":${JSON.stringify(streamId)},"version":${version},"snapshot":${JSON.stringify(snapshot)},"events":[`,
      event: (event) => eventJson(event, upcasters),
      close: ({ count }) => `],"snapshotDue":${count >= snapshotEvery}}`,
    })
  })
}

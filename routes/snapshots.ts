import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../src/db/connect.js'
import { eventJson } from '../src/events/event-json.js'
import { loadJson, loadStream } from '../src/events/load.js'
import { latestSnapshot, listSnapshots, putSnapshot } from '../src/events/snapshots.js'
import type { StoredEventText } from '../src/events/read-log-text.js'
import type { Upcasters } from '../src/events/upcasters.js'
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
    const loaded = await loadStream(sql, request.tenant, request.params.streamId, request.query, maxPageBytes)
    const json = loadJson(sql, request.tenant, loaded, { maxBytes: maxPageBytes, snapshotEvery, eventJson: (event: StoredEventText) => eventJson(event, upcasters) })
    // not object mode: the stream holds one page at a time and pipes it to the socket with back-pressure
    return reply.type('application/json; charset=utf-8').send(Readable.from(json, { objectMode: false }))
  })
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Sql } from '../src/db/connect.js'
import type { Upcasters } from '../src/events/upcasters.js'
import type { Keyring } from '../src/events/keyring.js'
import { Problem } from '../src/problems.js'
import { jsonBodyParser } from '../src/http/json-body-parser.js'
import { eventJsonText, parseAppendBody } from '../src/http/json-body.js'
import type { Metrics } from '../src/observability/metrics.js'
import { appendEvents } from '../src/events/append.js'
import { readStreamChunks } from '../src/events/read-stream.js'
import { readChunkBytes } from '../src/events/event-page.js'
import { sendPage } from '../src/http/page-body.js'
import { eventJsonBytes } from '../src/events/event-json.js'
import { getStream, listStreams } from '../src/events/streams.js'
import { ProblemRef } from '../src/http/schemas.js'
import { AppendResult, appendRequest, StreamInfo, StreamList, StreamListQuery, StreamPage, StreamParams, StreamReadQuery } from '../src/events/schemas.js'

export interface StreamRoutesOptions {
  sql: Sql
  upcasters: Upcasters
  keyring: Keyring
  maxEventsPerAppend: number
  maxPageBytes: number
  metrics: Metrics
}

const problems = { 400: ProblemRef, 500: ProblemRef }

const duplicateIds = (ids: (string | undefined)[]): boolean => {
  const present = ids.filter((id) => id !== undefined).map((id) => id.toLowerCase())
  return new Set(present).size !== present.length
}

export const streamRoutes: FastifyPluginAsyncTypebox<StreamRoutesOptions> = async (app, { sql, upcasters, keyring, maxEventsPerAppend, maxPageBytes, metrics }) => {

  // the append body keeps the sent text of every event's data and metadata, which is what gets stored
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(parseAppendBody))

  app.post('/:streamId/events', {
    schema: {
      params: StreamParams,
      body: appendRequest(maxEventsPerAppend),
      response: { 200: AppendResult, 201: AppendResult, 409: ProblemRef, 413: ProblemRef, 415: ProblemRef, ...problems },
    },
  }, async (request, reply) => {
    if (duplicateIds(request.body.events.map((event) => event.eventId))) {
      throw new Problem('validation-failed', {}, 'the same eventId appears twice in this request')
    }
    const events = request.body.events.map((event) => ({ ...event, json: eventJsonText(event) }))
    const result = await appendEvents(sql, request.tenant, request.params.streamId, { ...request.body, events }, keyring)
    metrics.appended(request.body.events.length, result.duplicate === true)
    request.log.info({ streamId: request.params.streamId, count: request.body.events.length, duplicate: result.duplicate === true }, 'events appended')
    return reply.code(result.duplicate ? 200 : 201).send(result)
  })

  app.get('/:streamId/events', {
    schema: {
      params: StreamParams,
      querystring: StreamReadQuery,
      response: { 200: StreamPage, 404: ProblemRef, ...problems },
    },
  }, async (request, reply) => {
    const query = { ...request.query, maxBytes: maxPageBytes }
    const { streamId, version, page } = await readStreamChunks(sql, request.tenant, request.params.streamId, query, readChunkBytes(maxPageBytes), upcasters.types())
    // the events' JSON made by the database from the stored text (event-page-json.ts), passed on as bytes
    return sendPage(reply, page, {
      open: `{"streamId":${JSON.stringify(streamId)},"version":${version},"events":[`,
      event: (event) => eventJsonBytes(event, upcasters),
      close: ({ following }) => `],"next":${following}}`,
    })
  })

  app.get('/:streamId', {
    schema: { params: StreamParams, response: { 200: StreamInfo, 404: ProblemRef, ...problems } },
  }, async (request) => getStream(sql, request.tenant, request.params.streamId))

  app.get('/', {
    schema: { querystring: StreamListQuery, response: { 200: StreamList, ...problems } },
  }, async (request) => listStreams(sql, request.tenant, request.query))
}

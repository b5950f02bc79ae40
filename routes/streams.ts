import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../src/db/connect.js'
import type { Upcasters } from '../src/events/upcasters.js'
import { Problem } from '../src/problems.js'
import { jsonBodyParser } from '../src/http/json-body-parser.js'
import { eventJsonText, parseAppendBody } from '../src/http/json-body.js'
import type { Metrics } from '../src/observability/metrics.js'
import { appendEvents } from '../src/events/append.js'
import { readStreamChunks } from '../src/events/read-stream.js'
import { readChunkBytes } from '../src/events/event-page.js'
import { sendPage } from '../src/http/page-body.js'
import { eventJson } from '../src/events/event-json.js'
import { getStream, listStreams } from '../src/events/streams.js'
import {
  EventType,
  Limit,
  ProblemRef,
  StoredEvent,
  STREAM_ID_PREFIX_PATTERN,
  StreamId,
  StreamParams,
  Timestamp,
} from '../src/http/schemas.js'

export interface StreamRoutesOptions {
  sql: Sql
  upcasters: Upcasters
  maxEventsPerAppend: number
  maxPageBytes: number
  metrics: Metrics
}

const ExpectedVersion = Type.Union([
  Type.Integer({ minimum: 0 }),
  Type.Literal('no_stream'),
  Type.Literal('exists'),
  Type.Literal('any'),
])

const InputEvent = Type.Object(
  {
    eventId: Type.Optional(Type.String({ format: 'uuid' })),
    type: EventType,
    data: Type.Unknown(),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
)

const AppendResult = Type.Object({
  streamId: Type.String(),
  firstVersion: Type.Integer(),
  lastVersion: Type.Integer(),
  firstPosition: Type.Integer(),
  lastPosition: Type.Integer(),
  duplicate: Type.Optional(Type.Boolean()),
})

const StreamPage = Type.Object({
  streamId: Type.String(),
  version: Type.Integer(),
  events: Type.Array(StoredEvent),
  next: Type.Union([Type.Integer(), Type.Null()]),
})

const StreamInfo = Type.Object({
  streamId: Type.String(),
  category: Type.String(),
  version: Type.Integer(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  snapshot: Type.Union([Type.Object({ version: Type.Integer(), schemaVersion: Type.Integer(), createdAt: Type.String() }), Type.Null()]),
})

const StreamList = Type.Object({
  streams: Type.Array(
    Type.Object({ streamId: Type.String(), category: Type.String(), version: Type.Integer(), updatedAt: Type.String() }),
  ),
  next: Type.Union([Type.String(), Type.Null()]),
})

const problems = { 400: ProblemRef, 413: ProblemRef, 415: ProblemRef, 500: ProblemRef }

const duplicateIds = (ids: (string | undefined)[]): boolean => {
  const present = ids.filter((id) => id !== undefined).map((id) => id.toLowerCase())
  return new Set(present).size !== present.length
}

// MAX_EVENTS_PER_APPEND is configuration: the body's schema is made for it
const appendBody = (maxEventsPerAppend: number) =>
  Type.Object(
    {
      expectedVersion: Type.Optional(ExpectedVersion),
      events: Type.Array(InputEvent, { minItems: 1, maxItems: maxEventsPerAppend }),
    },
    { additionalProperties: false },
  )

const StreamReadQuery = Type.Object({
  from: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  direction: Type.Optional(Type.Union([Type.Literal('forward'), Type.Literal('backward')])),
  limit: Type.Optional(Limit),
  until: Type.Optional(Timestamp),
})

const StreamListQuery = Type.Object({
  category: Type.Optional(StreamId),
  prefix: Type.Optional(Type.String({ pattern: STREAM_ID_PREFIX_PATTERN })),
  after: Type.Optional(StreamId),
  limit: Type.Optional(Limit),
})

export const streamRoutes: FastifyPluginAsyncTypebox<StreamRoutesOptions> = async (app, { sql, upcasters, maxEventsPerAppend, maxPageBytes, metrics }) => {

  // the append body keeps the sent text of every event's data and metadata, which is what gets stored
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(parseAppendBody))

  app.post('/:streamId/events', {
    schema: {
      params: StreamParams,
      body: appendBody(maxEventsPerAppend),
      response: { 200: AppendResult, 201: AppendResult, 409: ProblemRef, ...problems },
    },
  }, async (request, reply) => {
    if (duplicateIds(request.body.events.map((event) => event.eventId))) {
      throw new Problem('validation-failed', {}, 'the same eventId appears twice in this request')
    }
    const events = request.body.events.map((event) => ({ ...event, json: eventJsonText(event) }))
    const result = await appendEvents(sql, request.tenant, request.params.streamId, { ...request.body, events })
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
    const { streamId, version, page } = await readStreamChunks(sql, request.tenant, request.params.streamId, { ...request.query, maxBytes: maxPageBytes }, readChunkBytes(maxPageBytes))
    // spliced from the stored JSON text: parsing and re-encoding every event is most of a read's cost
    return sendPage(reply, page, {
      open: `{"streamId":${JSON.stringify(streamId)},"version":${version},"events":[`,
      event: (event) => eventJson(event, upcasters),
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

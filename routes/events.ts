import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../src/db/connect.js'
import type { LogHead } from '../src/events/log-head.js'
import { eventJson } from '../src/events/event-json.js'
import { readChunkBytes } from '../src/events/event-page.js'
import { nextAfter } from '../src/events/read-log.js'
import { readLogChunks } from '../src/events/read-log-text.js'
import type { Upcasters } from '../src/events/upcasters.js'
import { sendPage } from '../src/http/page-body.js'
import { LogQuery, ProblemRef, StoredEvent } from '../src/http/schemas.js'

export interface EventRoutesOptions {
  sql: Sql
  logHead: LogHead
  upcasters: Upcasters
  maxPageBytes: number
}

const LogPage = Type.Object({
  events: Type.Array(StoredEvent),
  next: Type.Union([Type.Integer(), Type.Null()]),
  head: Type.Integer(),
})

export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, { sql, logHead, upcasters, maxPageBytes }) => {
  app.get('/', {
    schema: { querystring: LogQuery, response: { 200: LogPage, 400: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    const { type, ...filters } = request.query
    const head = await logHead.catchUp()
    const page = await readLogChunks(sql, request.tenant, head, { ...filters, types: type, maxBytes: maxPageBytes }, readChunkBytes(maxPageBytes))
    // spliced from the stored text: data and metadata exactly as sent (SPEC "Details")
    return sendPage(reply, page, {
      open: '{"events":[',
      event: (event) => eventJson(event, upcasters),
      close: ({ anchor, following }) => `],"next":${nextAfter(anchor, following)},"head":${head}}`,
    })
  })
}

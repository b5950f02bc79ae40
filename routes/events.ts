import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Sql } from '../src/db/connect.js'
import type { LogHead } from '../src/events/log-head.js'
import { eventJson } from '../src/events/event-json.js'
import { logFilter } from '../src/events/log-filter.js'
import { readChunkBytes } from '../src/events/event-page.js'
import { nextAfter } from '../src/events/read-log.js'
import { readLogChunks } from '../src/events/read-log-text.js'
import type { Upcasters } from '../src/events/upcasters.js'
import { sendPage } from '../src/http/page-body.js'
import { ProblemRef } from '../src/http/schemas.js'
import { LogPage, LogReadQuery } from '../src/events/schemas.js'

export interface EventRoutesOptions {
  sql: Sql
  logHead: LogHead
  upcasters: Upcasters
  maxPageBytes: number
}

export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, { sql, logHead, upcasters, maxPageBytes }) => {
  app.get('/', {
    schema: { querystring: LogReadQuery, response: { 200: LogPage, 400: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    const { after, limit } = request.query
    const filter = logFilter(request.query)
    const head = await logHead.catchUp()
    const page = await readLogChunks(sql, request.tenant, head, { ...filter, after, limit, maxBytes: maxPageBytes }, readChunkBytes(maxPageBytes))
    // spliced from the stored text: data and metadata exactly as sent (SPEC "Details")
    return sendPage(reply, page, {
      open: '{"events":[',
      event: (event) => eventJson(event, upcasters),
      close: ({ anchor, following }) => `],"next":${nextAfter(anchor, following)},"head":${head}}`,
    })
  })
}

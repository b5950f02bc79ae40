import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Sql } from '../src/db/connect.js'
import type { Keyring } from '../src/events/keyring.js'
import { Problem } from '../src/problems.js'
import { jsonBodyParser } from '../src/http/json-body-parser.js'
import { eventJsonText, parseAppendsBody } from '../src/http/json-body.js'
import type { Metrics } from '../src/observability/metrics.js'
import { appendToStreams } from '../src/events/append-to-streams.js'
import { isSystemStream } from '../src/events/types.js'
import { ProblemRef } from '../src/http/schemas.js'
import { AppendsResult, appendsRequest } from '../src/events/schemas.js'

export interface AppendsRoutesOptions {
  sql: Sql
  keyring: Keyring
  maxEventsPerAppend: number
  metrics: Metrics
}

// POST /appends (SPEC "Append to several streams at once")
export const appendsRoutes: FastifyPluginAsyncTypebox<AppendsRoutesOptions> = async (app, { sql, keyring, maxEventsPerAppend, metrics }) => {

  // as for a single append, the sent text of every event's data and metadata is what gets stored
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(parseAppendsBody))

  app.post('/', {
    schema: {
      body: appendsRequest(maxEventsPerAppend),
      response: { 200: AppendsResult, 201: AppendsResult, 400: ProblemRef, 409: ProblemRef, 413: ProblemRef, 415: ProblemRef, 500: ProblemRef },
    },
  }, async (request, reply) => {
    const { appends } = request.body
    // SPEC "Conventions": system streams are written only by admins; here they are named in the body
    if (request.role !== 'admin' && appends.some((entry) => isSystemStream(entry.streamId))) {
      throw new Problem('forbidden', {}, `writing a system stream ($…) needs the admin role; this key has ${request.role}`)
    }
    const count = appends.reduce((sum, entry) => sum + entry.events.length, 0)
    if (count > maxEventsPerAppend) {
      throw new Problem('validation-failed', {}, `at most ${maxEventsPerAppend} events in all per request (got ${count})`)
    }
    const entries = appends.map((entry) => ({ ...entry, events: entry.events.map((event) => ({ ...event, json: eventJsonText(event) })) }))
    const result = await appendToStreams(sql, request.tenant, { appends: entries }, keyring)
    metrics.appended(count, result.duplicate === true)
    request.log.info({ streams: appends.length, count, duplicate: result.duplicate === true }, 'events appended')
    return reply.code(result.duplicate ? 200 : 201).send(result)
  })
}

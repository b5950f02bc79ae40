import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../../src/db/connect.js'
import type { Upcasters } from '../../src/events/upcasters.js'
import type { ConsumerGroups } from '../../src/consumer-groups/consumer-groups.js'
import { getGroup } from '../../src/consumer-groups/groups.js'
import { deleteParked, listParked } from '../../src/consumer-groups/parked.js'
import { GroupParams, ParkedEventParams, ParkedEventPage, ParkedQuery, ReplayRequest, ReplayResult } from '../../src/consumer-groups/schemas.js'
import { ProblemRef } from '../../src/http/schemas.js'

export interface ParkedRoutesOptions {
  sql: Sql
  upcasters: Upcasters
  consumerGroups: ConsumerGroups
}

const problems = { 400: ProblemRef, 404: ProblemRef, 500: ProblemRef }

// SPEC "Consumer groups": events parked after maxDeliveries; listing is read, replay and delete are admin.
export const parkedRoutes: FastifyPluginAsyncTypebox<ParkedRoutesOptions> = async (app, { sql, upcasters, consumerGroups }) => {
  app.get('/:name/parked', { schema: { params: GroupParams, querystring: ParkedQuery, response: { 200: ParkedEventPage, ...problems } } }, async (request, reply) => {
    const group = await getGroup(sql, request.tenant, request.params.name)
    const body = await listParked(sql, upcasters, group, request.query.after ?? 0, request.query.limit ?? 100)
    return reply.type('application/json; charset=utf-8').send(body)
  })

  app.post('/:name/parked/replay', {
    schema: { params: GroupParams, body: ReplayRequest, response: { 200: ReplayResult, 413: ProblemRef, 415: ProblemRef, ...problems } },
    // `{eventIds?}`: no body at all replays every parked event, as `{}` does
    preValidation: async (request) => {
      request.body ??= {}
    },
  }, async (request) => ({ replayed: await consumerGroups.replay(request.tenant, request.params.name, request.body.eventIds) }))

  app.delete('/:name/parked/:eventId', { schema: { params: ParkedEventParams, response: { 204: Type.Null(), ...problems } } }, async (request, reply) => {
    await deleteParked(sql, await getGroup(sql, request.tenant, request.params.name), request.params.eventId)
    return reply.code(204).send(null)
  })
}

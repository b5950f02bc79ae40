import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../../src/db/connect.js'
import type { LogHead } from '../../src/events/log-head.js'
import type { ConsumerGroups } from '../../src/consumer-groups/consumer-groups.js'
import { defineGroup, deleteGroup, getGroup, groupStatus, listGroupStatuses } from '../../src/consumer-groups/groups.js'
import { AckRequest, AckResult, ConsumerGroupDefinition, ConsumerGroupList, GroupParams, ConsumerGroupStatus, NackRequest, NackResult, PollQuery, PollResult } from '../../src/consumer-groups/schemas.js'
import { ProblemRef } from '../../src/http/schemas.js'

export interface ConsumerGroupRoutesOptions {
  sql: Sql
  logHead: LogHead
  consumerGroups: ConsumerGroups
}

const problems = { 400: ProblemRef, 404: ProblemRef, 500: ProblemRef }
const bodyProblems = { ...problems, 413: ProblemRef, 415: ProblemRef }
const { 404: _, ...putProblems } = bodyProblems

// SPEC "Consumer groups": definitions and status (read GETs, admin PUT/DELETE), poll, ack and nack (write).
export const consumerGroupRoutes: FastifyPluginAsyncTypebox<ConsumerGroupRoutesOptions> = async (app, { sql, logHead, consumerGroups }) => {
  // head as /events reports it, so `lag: 0` means every event acknowledged before the request is acked or parked
  const status = async (tenant: string, name: string) => groupStatus(sql, await getGroup(sql, tenant, name), await logHead.catchUp())

  app.get('/', { schema: { response: { 200: ConsumerGroupList, 400: ProblemRef, 500: ProblemRef } } }, async (request) => {
    const head = await logHead.catchUp()
    return { groups: (await listGroupStatuses(sql, request.tenant, head)).map(({ tenant: _, ...status }) => status) }
  })

  app.get('/:name', { schema: { params: GroupParams, response: { 200: ConsumerGroupStatus, ...problems } } }, async (request) =>
    status(request.tenant, request.params.name),
  )

  app.put('/:name', {
    schema: { params: GroupParams, body: ConsumerGroupDefinition, response: { 200: ConsumerGroupStatus, 201: ConsumerGroupStatus, 409: ProblemRef, ...putProblems } },
  }, async (request, reply) => {
    const { created, status } = await defineGroup(sql, request.tenant, request.params.name, request.body, await logHead.catchUp())
    return reply.code(created ? 201 : 200).send(status)
  })

  app.delete('/:name', { schema: { params: GroupParams, response: { 204: Type.Null(), ...problems } } }, async (request, reply) => {
    await deleteGroup(sql, request.tenant, request.params.name)
    return reply.code(204).send(null)
  })

  // the events are spliced from their stored text (SPEC "Details": data and metadata exactly as sent)
  app.post('/:name/poll', { schema: { params: GroupParams, querystring: PollQuery, response: { 200: PollResult, ...problems } } }, async (request, reply) => {
    const { max, waitMs } = request.query
    const body = await consumerGroups.poll(request.tenant, request.params.name, max, waitMs)
    return reply.type('application/json; charset=utf-8').send(body)
  })

  app.post('/:name/ack', { schema: { params: GroupParams, body: AckRequest, response: { 200: AckResult, ...bodyProblems } } }, async (request) =>
    consumerGroups.ack(request.tenant, request.params.name, request.body.eventIds),
  )

  app.post('/:name/nack', { schema: { params: GroupParams, body: NackRequest, response: { 200: NackResult, ...bodyProblems } } }, async (request) =>
    consumerGroups.nack(request.tenant, request.params.name, request.body),
  )
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Sql } from '../src/db/connect.js'
import { deleteUpcaster, getUpcaster, listUpcasters, putUpcaster } from '../src/events/upcaster-store.js'
import type { Upcasters } from '../src/events/upcasters.js'
import { ProblemRef } from '../src/http/schemas.js'
import { EventType } from '../src/events/schemas.js'
import { Upcaster, UpcasterInput, UpcasterList } from '../src/events/upcaster-types.js'

export interface UpcasterRoutesOptions {
  sql: Sql
  upcasters: Upcasters
}

const TypeParams = Type.Object({ type: EventType })
const problems = { 400: ProblemRef, 500: ProblemRef }

// SPEC "Schema evolution": declarative upcasters, global per event type. A change takes effect on this instance
// before the answer, and on the others when they hear the NOTIFY (src/events/upcasters.ts).
export const upcasterRoutes: FastifyPluginAsyncTypebox<UpcasterRoutesOptions> = async (app, { sql, upcasters }) => {
  app.get('/', { schema: { response: { 200: UpcasterList, ...problems } } }, async () => ({
    upcasters: await listUpcasters(sql),
  }))

  app.put('/:type', {
    schema: { params: TypeParams, body: UpcasterInput, response: { 200: Upcaster, 201: Upcaster, 413: ProblemRef, 415: ProblemRef, ...problems } },
  }, async (request, reply) => {
    const { upcaster, created } = await putUpcaster(sql, request.params.type, request.body.steps)
    await upcasters.reload()
    request.log.info({ type: upcaster.type, steps: upcaster.steps.length, created }, 'upcaster stored')
    return reply.code(created ? 201 : 200).send(upcaster)
  })

  app.get('/:type', { schema: { params: TypeParams, response: { 200: Upcaster, 404: ProblemRef, ...problems } } }, async (request) =>
    getUpcaster(sql, request.params.type),
  )

  app.delete('/:type', { schema: { params: TypeParams, response: { 204: Type.Null(), 404: ProblemRef, ...problems } } }, async (request, reply) => {
    await deleteUpcaster(sql, request.params.type)
    await upcasters.reload()
    request.log.info({ type: request.params.type }, 'upcaster deleted')
    return reply.code(204).send(null)
  })
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ProblemRef } from '../src/http/schemas.js'

export interface HealthRoutesOptions {
  isReady: () => Promise<boolean>
}

const Health = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]) })

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { isReady }) => {
  app.get('/live', { schema: { response: { 200: Health, 400: ProblemRef } } }, async () => ({ status: 'ok' as const }))

  app.get('/ready', { schema: { response: { 200: Health, 400: ProblemRef, 503: Health } } }, async (_request, reply) =>
    (await isReady()) ? { status: 'ok' as const } : reply.code(503).send({ status: 'unavailable' as const }),
  )
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ProblemRef } from '../src/http/schemas.js'
import type { Metrics } from '../src/observability/metrics.js'

export interface MetricsRoutesOptions {
  metrics: Metrics
}

// Prometheus text exposition; admin only (src/http/access.ts).
export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (app, { metrics }) => {
  app.get('/metrics', { schema: { response: { 200: Type.String(), 400: ProblemRef, 500: ProblemRef } } }, async (_request, reply) => {
    const { contentType, body } = await metrics.render()
    return reply.type(contentType).send(body)
  })
}

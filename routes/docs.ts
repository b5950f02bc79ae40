import type { FastifyPluginAsync } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

export interface DocsRoutesOptions {
  openapi: Record<string, unknown>
}

// The committed openapi.yaml is the contract; /openapi.json serves it as written, and /docs renders it.
export const docsRoutes: FastifyPluginAsync<DocsRoutesOptions> = async (app, { openapi }) => {
  await app.register(swagger, { mode: 'static', specification: { document: openapi as never } })
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  app.get('/openapi.json', { schema: { hide: true } }, async () => openapi)
}

import Fastify, { LogController, type FastifyInstance, type RouteOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import type { Config } from './config.js'
import type { Sql } from './db/connect.js'
import type { Services } from './services.js'
import { clientErrorHandler, notFoundHandler, problemHandler, sendProblem } from './http/problem-handler.js'
import { Problem, ProblemBody } from './problems.js'
import { isTime } from './events/times.js'
import { requestId } from './http/request-id.js'
import { jsonBodyParser } from './http/json-body-parser.js'
import { parseJsonBody } from './http/json-body.js'
import { hasTrailingSlash, notFound, refuseUnexpectedBody } from './http/request-shape.js'
import rateLimit from '@fastify/rate-limit'
import { resolveCaller } from './http/tenant.js'
import { ApiKeys } from './http/api-keys.js'
import { requiredAccess } from './http/access.js'
import { CallerLimit, callerOf } from './http/caller-limit.js'
import { limitConnections } from './http/connection-limits.js'
import { loggerOptions } from './observability/logger.js'
import { Metrics } from './observability/metrics.js'
import { metricsRoutes } from '../routes/metrics.js'
import { streamRoutes } from '../routes/streams.js'
import { appendsRoutes } from '../routes/appends.js'
import { eventRoutes } from '../routes/events.js'
import { healthRoutes } from '../routes/health.js'
import { docsRoutes } from '../routes/docs.js'
import { dashboardRoutes } from '../routes/dashboard.js'
import { snapshotRoutes } from '../routes/snapshots.js'
import { subscribeRoutes } from '../routes/subscribe.js'
import { upcasterRoutes } from '../routes/upcasters.js'
import { subjectRoutes } from '../routes/subjects.js'
import { projectionRoutes } from '../routes/projections/index.js'
import { documentRoutes } from '../routes/projections/documents.js'
import { backfillRoutes } from '../routes/projections/backfills.js'
import { projectionSnapshotRoutes } from '../routes/projections/snapshots.js'
import { consumerGroupRoutes } from '../routes/consumer-groups/index.js'
import { parkedRoutes } from '../routes/consumer-groups/parked.js'

export interface AppDeps {
  config: Config
  sql: Sql
  services: Omit<Services, 'start' | 'stop'>
  openapi: Record<string, unknown>
  isReady: () => Promise<boolean>
  logger?: boolean
  // the server passes its own, with process metrics; a test app gets a fresh one
  metrics?: Metrics
  // told of every route as it is added: the contract test compares their schemas with openapi.yaml
  onRoute?: (route: RouteOptions) => void
}

const ajvFor = (options: ConstructorParameters<typeof Ajv>[0]): Ajv => {
  const ajv = new Ajv({ allErrors: false, strict: false, ...options })
  addFormats.default(ajv)
  // RFC 3339 with years 1–9999 and no leap second, as PostgreSQL and the in-memory filters both read it (times.ts)
  ajv.addFormat('date-time', isTime)
  ajv.addSchema(ProblemBody)
  return ajv
}

// Fastify with the project's options, validation, error handling and body parsers; no routes yet.
const createFastify = (deps: AppDeps) => {
  const { config } = deps
  const app = Fastify({
    logger: deps.logger === false ? false : loggerOptions(config.LOG_LEVEL, config.LOG_FORMAT),
    logController: new LogController({ disableRequestLogging: true }),
    // a stream id may be 256 characters, percent-encoded up to three times that; past it the schema answers 400
    routerOptions: { maxParamLength: 1024 },
    genReqId: requestId,
    requestIdHeader: false,
    bodyLimit: config.MAX_BODY_BYTES,
    return503OnClosing: true,
    // URLs the router cannot decode never reach the hooks: answer them as problems all the same
    frameworkErrors: (_error, request, reply) =>
      sendProblem(reply.header('x-request-id', request.id), new Problem('validation-failed', {}, 'the URL is not valid')),
    // SPEC "Details": HEAD is answered wherever GET is, by the GET route itself (same status, headers and access)
    exposeHeadRoutes: true,
    forceCloseConnections: 'idle',
    // SPEC "Details": the headers and body of a request must arrive within REQUEST_TIMEOUT_MS (408, then closed).
    // Node looks for late requests every connectionsCheckingInterval, 30 s unless told: a quarter of the timeout here.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    http: {
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      headersTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1000, Math.ceil(config.REQUEST_TIMEOUT_MS / 4)),
    },
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Bodies are validated as sent: no coercion, no stripping, so `{"type": 5}` or an unknown field is a 400.
  // Query strings and params are text, so there numbers are coerced and a repeated key becomes an array.
  const bodyAjv = ajvFor({ removeAdditional: false, coerceTypes: false, useDefaults: true })
  const textAjv = ajvFor({ removeAdditional: false, coerceTypes: 'array', useDefaults: true })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))
  app.addSchema(ProblemBody)

  app.setErrorHandler(problemHandler)
  app.setNotFoundHandler(notFoundHandler)
  // Every body in the contract is JSON; Fastify's built-in text/plain parser would turn a wrong content type into a 400 instead of the SPEC's 415.
  app.removeContentTypeParser('text/plain')
  // Bodies nest at most 512 levels, and `__proto__` or `constructor` keys are data like any other (json-body.ts).
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(parseJsonBody))
  return app
}

type App = ReturnType<typeof createFastify>

// Every request: its id, its caller (key, tenant) and access, no body where none is taken, the rate limit,
// the SIGTERM drain and one log line.
const addRequestHooks = async (app: App, config: AppDeps['config'], metrics: Metrics): Promise<void> => {
  const caller = resolveCaller(new ApiKeys(config.API_KEYS))
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    await caller(request, reply)
    // after the key check, as for any path outside the contract
    if (request.routeOptions.url !== undefined && hasTrailingSlash(request.url)) throw notFound(request)
  })
  app.addHook('preParsing', async (request, _reply, payload) => {
    refuseUnexpectedBody(request)
    return payload
  })
  // per key (SPEC "Security"); its hooks are added to each route after the one above, so the key is known.
  // Public routes (health probes, docs) are not counted.
  if (config.RATE_LIMIT_MAX > 0) {
    await app.register(rateLimit, {
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      keyGenerator: callerOf,
      allowList: (request) => requiredAccess(request.method, request.routeOptions.url) === 'public',
      errorResponseBuilder: (_request, context) =>
        new Problem('too-many-requests', { retryAfterSeconds: Math.ceil(context.ttl / 1000) }, `more than ${context.max} requests in ${context.after}; retry later`),
    })
  }
  // SIGTERM drain (SPEC "Operations"): a response finished during close() also closes its connection, so
  // keep-alive clients cannot hold the server open until SHUTDOWN_TIMEOUT_MS.
  let draining = false
  app.addHook('preClose', async () => {
    draining = true
  })
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close')
  })
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, tenant: request.tenant, key: request.apiKey?.id },
      'request',
    )
    metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
  })

}

export const buildApp = async (deps: AppDeps): Promise<FastifyInstance> => {
  const { config, sql } = deps
  const { logHead, runner, upcasters, liveFeed, keyring, subjectRebuilds } = deps.services
  const app = createFastify(deps)
  const metrics = deps.metrics ?? new Metrics(sql, logHead, { poolSize: config.DATABASE_POOL_SIZE })
  const subscriptions = new CallerLimit(config.MAX_SUBSCRIPTIONS_PER_KEY)
  metrics.subscriptionsGauge(() => subscriptions.total)
  await addRequestHooks(app, config, metrics)
  if (deps.onRoute) app.addHook('onRoute', deps.onRoute)
  const unwatch = limitConnections(app.server, config, app.log, metrics)
  app.addHook('onClose', async () => unwatch())

  await app.register(streamRoutes, { prefix: '/streams', sql, upcasters, keyring, maxEventsPerAppend: config.MAX_EVENTS_PER_APPEND, maxPageBytes: config.MAX_PAGE_BYTES, metrics })
  await app.register(appendsRoutes, { prefix: '/appends', sql, keyring, maxEventsPerAppend: config.MAX_EVENTS_PER_APPEND, metrics })
  await app.register(eventRoutes, { prefix: '/events', sql, logHead, upcasters, maxPageBytes: config.MAX_PAGE_BYTES })
  await app.register(snapshotRoutes, { prefix: '/streams', sql, upcasters, snapshotEvery: config.SNAPSHOT_EVERY, snapshotKeep: config.SNAPSHOT_KEEP, maxPageBytes: config.MAX_PAGE_BYTES })
  await app.register(subscribeRoutes, { prefix: '/subscribe', liveFeed, heartbeatMs: config.SUBSCRIBE_HEARTBEAT_MS, limit: subscriptions })
  await app.register(upcasterRoutes, { prefix: '/upcasters', sql, upcasters })
  await app.register(subjectRoutes, { prefix: '/subjects', sql, runner, keyring, rebuilds: subjectRebuilds })
  await app.register(healthRoutes, { prefix: '/health', isReady: deps.isReady })
  await app.register(projectionRoutes, { prefix: '/projections', sql, runner, logHead })
  await app.register(documentRoutes, { prefix: '/projections', sql, progress: deps.services.progress, maxPageBytes: config.MAX_PAGE_BYTES })
  await app.register(backfillRoutes, { prefix: '/projections', sql, runner, heartbeatMs: config.SUBSCRIBE_HEARTBEAT_MS, limit: subscriptions })
  await app.register(projectionSnapshotRoutes, { prefix: '/projections', sql, runner, logHead })
  await app.register(consumerGroupRoutes, { prefix: '/consumer-groups', sql, logHead, consumerGroups: deps.services.consumerGroups })
  await app.register(parkedRoutes, { prefix: '/consumer-groups', sql, upcasters, consumerGroups: deps.services.consumerGroups })
  await app.register(metricsRoutes, { metrics })
  await app.register(docsRoutes, { openapi: deps.openapi })
  await app.register(dashboardRoutes)
  return app
}

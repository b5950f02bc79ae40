import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Problem } from '../src/problems.js'
import { ProblemRef } from '../src/http/schemas.js'
import type { LiveFeed } from '../src/subscriptions/live-feed.js'
import type { Subscription } from '../src/subscriptions/subscription.js'
import { callerOf, type CallerLimit } from '../src/http/caller-limit.js'
import { LogQuery } from './events.js'

export interface SubscribeRoutesOptions {
  liveFeed: LiveFeed
  heartbeatMs: number
  // open streams per API key (MAX_SUBSCRIPTIONS_PER_KEY)
  limit: CallerLimit
}

// the /events filters; a subscription has no page size
const SubscribeQuery = Type.Omit(LogQuery, ['limit'])

const SubscribeHeaders = Type.Object({
  accept: Type.Optional(Type.String()),
  'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
})

// SPEC "Details": no Accept, `*/*` or `text/event-stream` streams (so do `text/*` and lists holding one of
// them with a q above 0); any other Accept is 406.
export const acceptsEventStream = (accept: string | undefined): boolean =>
  accept === undefined ||
  accept.trim() === '' ||
  accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((part) => part.trim().toLowerCase())
    const q = params.find((param) => param.startsWith('q='))
    return ['text/event-stream', 'text/*', '*/*'].includes(type ?? '') && (q === undefined || Number(q.slice(2)) > 0)
  })

// `connection: close`: a stream ends only when the server ends it (shutdown), and then its socket must go too,
// or close() would wait for an idle keep-alive connection
export const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'close', 'x-accel-buffering': 'no' }

// Takes the response over from Fastify: headers now, then the subscription writes until one side closes.
const streamTo = (request: FastifyRequest, reply: FastifyReply, subscription: Subscription, release: () => void): void => {
  reply.hijack()
  reply.raw.once('close', release)
  // a client gone while the replay was primed has closed already, and 'close' will not come again
  if (reply.raw.closed || reply.raw.destroyed) release()
  reply.raw.writeHead(200, { ...STREAM_HEADERS, 'x-request-id': request.id }).flushHeaders()
  // hijacked replies skip onResponse: log the request line when the stream ends
  reply.raw.once('close', () => {
    const { delivered } = subscription.stats()
    request.log.info({ method: request.method, url: request.url, statusCode: 200, ms: Math.round(reply.elapsedTime), tenant: request.tenant, delivered }, 'request')
  })
  subscription.start(reply.raw)
}

export const endAfterHeaders = (request: FastifyRequest, reply: FastifyReply, release = (): void => {}): void => {
  release()
  reply.hijack()
  reply.raw.writeHead(200, { ...STREAM_HEADERS, 'x-request-id': request.id }).end()
}

export const subscribeRoutes: FastifyPluginAsyncTypebox<SubscribeRoutesOptions> = async (app, { liveFeed, heartbeatMs, limit }) => {
  // open streams would hold close() (and a SIGTERM drain) for ever: end them first; clients resume with Last-Event-ID
  app.addHook('preClose', async () => liveFeed.closeAll())

  app.get('/', {
    schema: { querystring: SubscribeQuery, headers: SubscribeHeaders, response: { 200: Type.String(), 400: ProblemRef, 406: ProblemRef, 429: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    if (!acceptsEventStream(request.headers.accept)) throw new Problem('not-acceptable', {}, 'GET /subscribe answers text/event-stream only')
    const { type, after, ...filters } = request.query
    const lastEventId = request.headers['last-event-id']
    const from = lastEventId !== undefined ? Number(lastEventId) : (after ?? 0)
    const onError = (error: unknown): void => request.log.warn({ err: error }, 'subscription ended: a read failed')
    // per API key: an open server (no keys) has no caller to count, and a proxy in front would make one address of many clients
    const caller = request.apiKey ? callerOf(request) : undefined
    if (!limit.acquire(caller)) throw new Problem('too-many-requests', {}, 'this key has MAX_SUBSCRIPTIONS_PER_KEY subscriptions open already')
    // HEAD: GET's status and headers, and no stream to follow them
    if (request.method === 'HEAD') return endAfterHeaders(request, reply, () => limit.release(caller))
    let released = false
    const release = (): void => {
      if (!released) limit.release(caller)
      released = true
    }
    const subscription = liveFeed.open(request.tenant, { ...filters, types: type }, from, { heartbeatMs, onError })
    await subscription.prime().catch((error: unknown) => {
      subscription.close()
      release()
      throw error
    })
    streamTo(request, reply, subscription, release)
  })
}

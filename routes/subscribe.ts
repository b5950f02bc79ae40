import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Problem } from '../src/problems.js'
import { ProblemRef } from '../src/http/schemas.js'
import type { LiveFeed } from '../src/subscriptions/live-feed.js'
import type { Subscription } from '../src/subscriptions/subscription.js'
import { callerOf, type CallerLimit } from '../src/http/caller-limit.js'
import { acceptsEventStream, endAfterHeaders, openEventStream } from '../src/http/event-stream.js'
import { LogReadQuery } from '../src/events/schemas.js'
import { logFilter } from '../src/events/log-filter.js'

export interface SubscribeRoutesOptions {
  liveFeed: LiveFeed
  heartbeatMs: number
  // open streams per API key (MAX_SUBSCRIPTIONS_PER_KEY)
  limit: CallerLimit
}

// the /events filters; a subscription has no page size
const SubscribeQuery = Type.Omit(LogReadQuery, ['limit'])

const SubscribeHeaders = Type.Object({
  accept: Type.Optional(Type.String()),
  'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
})

// Takes the response over from Fastify: headers now, then the subscription writes until one side closes.
const streamTo = (request: FastifyRequest, reply: FastifyReply, subscription: Subscription, release: () => void): void => {
  openEventStream(request, reply, () => ({ delivered: subscription.stats().delivered }))
  reply.raw.once('close', release)
  // a client gone while the replay was primed has closed already, and 'close' will not come again
  if (reply.raw.closed || reply.raw.destroyed) release()
  subscription.start(reply.raw)
}

export const subscribeRoutes: FastifyPluginAsyncTypebox<SubscribeRoutesOptions> = async (app, { liveFeed, heartbeatMs, limit }) => {
  // open streams would hold close() (and a SIGTERM drain) for ever: end them first; clients resume with Last-Event-ID
  app.addHook('preClose', async () => liveFeed.closeAll())

  app.get('/', {
    schema: { querystring: SubscribeQuery, headers: SubscribeHeaders, response: { 200: Type.String(), 400: ProblemRef, 406: ProblemRef, 429: ProblemRef, 500: ProblemRef } },
  }, async (request, reply) => {
    if (!acceptsEventStream(request.headers.accept)) throw new Problem('not-acceptable', {}, 'GET /subscribe answers text/event-stream only')
    const filter = logFilter(request.query)
    const { after } = request.query
    const lastEventId = request.headers['last-event-id']
    const from = lastEventId !== undefined ? Number(lastEventId) : (after ?? 0)
    const onError = (error: unknown): void => request.log.warn({ err: error }, 'subscription ended: a read failed')
    // per API key: an open server (no keys) has no caller to count, and a proxy in front would make one address of many clients
    const caller = request.apiKey ? callerOf(request) : undefined
    if (!limit.acquire(caller)) throw new Problem('too-many-requests', {}, 'this key has MAX_SUBSCRIPTIONS_PER_KEY subscriptions open already')
    // HEAD: GET's status and headers, and no stream to follow them
    if (request.method === 'HEAD') {
      limit.release(caller)
      return endAfterHeaders(request, reply)
    }
    let released = false
    const release = (): void => {
      if (!released) limit.release(caller)
      released = true
    }
    const subscription = liveFeed.open(request.tenant, filter, from, { heartbeatMs, onError })
    await subscription.prime().catch((error: unknown) => {
      subscription.close()
      release()
      throw error
    })
    streamTo(request, reply, subscription, release)
  })
}

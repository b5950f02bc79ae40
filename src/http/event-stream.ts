import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'

// Server-sent event streams (GET /subscribe, GET …/backfills/{id}/progress): what both send and how.

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
const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'close', 'x-accel-buffering': 'no' }

export const HEARTBEAT = ': heartbeat\n\n'

// Takes the response over from Fastify and sends the headers now; the caller writes frames to reply.raw until
// one side closes. Hijacked replies skip onResponse, so the request line is logged when the stream ends.
export const openEventStream = (request: FastifyRequest, reply: FastifyReply, summary: () => Record<string, unknown> = () => ({})): void => {
  reply.hijack()
  reply.raw.writeHead(200, { ...STREAM_HEADERS, 'x-request-id': request.id }).flushHeaders()
  reply.raw.once('close', () => {
    request.log.info({ method: request.method, url: request.url, statusCode: 200, ms: Math.round(reply.elapsedTime), tenant: request.tenant, ...summary() }, 'request')
  })
}

// HEAD: GET's status and headers, and no stream to follow them.
export const endAfterHeaders = (request: FastifyRequest, reply: FastifyReply): void => {
  reply.hijack()
  reply.raw.writeHead(200, { ...STREAM_HEADERS, 'x-request-id': request.id }).end()
}

// Resolves once the stream has taken what it was given ('drain') or is gone: a writer that waits for it after a
// write that returned false holds nothing more than the socket does (SPEC "Details": slow clients).
export const drained = (stream: ServerResponse): Promise<void> =>
  new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve()
    const done = (): void => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
  })

import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../problems.js'
import { toProblem } from '../db/pg-errors.js'
import { notFound } from './request-shape.js'

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

// Fastify's own errors (body parser, validation, limits) are client errors with fixed codes.
const fromFastify = (error: FastifyError): Problem | undefined => {
  if (error.validation) return new Problem('validation-failed', {}, `${error.validationContext ?? 'request'} ${error.validation[0]?.instancePath ?? ''} ${error.validation[0]?.message ?? 'is invalid'}`.replace(/\s+/g, ' ').trim())
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem('payload-too-large', {}, 'the request body is larger than MAX_BODY_BYTES')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Problem('unsupported-media-type', {}, 'send the body as application/json')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new Problem('validation-failed', {}, 'the body is not valid JSON')
  }
  if (error instanceof SyntaxError) return new Problem('validation-failed', {}, 'the body is not valid JSON')
  if (error.statusCode === 413) return new Problem('payload-too-large')
  if (error.statusCode === 415) return new Problem('unsupported-media-type')
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new Problem('validation-failed', {}, error.message)
  }
  return undefined
}

export const sendProblem = (reply: FastifyReply, problem: Problem): FastifyReply =>
  reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem))

export const problemHandler = (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
  const problem = error instanceof Problem ? error : (toProblem(error) ?? fromFastify(error))
  if (problem) return sendProblem(reply, problem)
  // the body stays generic: no SQL, stack or connection string ever reaches a client
  request.log.error({ err: error }, 'request failed')
  return sendProblem(reply, new Problem('internal', {}, 'an unexpected error occurred; the request id in x-request-id finds it in the log'))
}

export const notFoundHandler = (request: FastifyRequest, reply: FastifyReply): FastifyReply => sendProblem(reply, notFound(request))

// What Node's HTTP server reports before a request reaches a route, as a problem.
const clientProblem = (error: NodeJS.ErrnoException): Problem => {
  // SPEC "Details": headers and body must arrive within REQUEST_TIMEOUT_MS (Node's requestTimeout)
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new Problem('request-timeout', {}, 'the request did not arrive whole within REQUEST_TIMEOUT_MS')
  const detail = error.code === 'HPE_HEADER_OVERFLOW' ? 'the request line and headers are larger than 16 KiB' : 'the request is not valid HTTP'
  return new Problem('validation-failed', {}, detail)
}

// Requests Node's HTTP parser refuses (headers or URL over 16 KiB, malformed request lines) and requests that do not
// arrive in time never reach a route (or never finish reaching it); they too get a problem rather than Fastify's plain
// JSON, and then the connection closes, as Node's own handler does. A response already begun on the connection
// cannot be followed by another, so then it only closes.
export const clientErrorHandler = (error: NodeJS.ErrnoException, socket: Socket): void => {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const problem = clientProblem(error)
  const body = JSON.stringify(problem)
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage
  if (socket.writable && !answering?.headersSent) {
    socket.write(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy(error)
}

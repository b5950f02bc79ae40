import type { FastifyRequest } from 'fastify'
import { Problem } from '../problems.js'

// SPEC "Details": a path outside the contract is 404, a trailing slash included. Fastify serves a prefixed
// plugin's '/' route at both `/projections` and `/projections/`; only the first is in the contract.
export const hasTrailingSlash = (url: string): boolean => {
  const path = url.split('?', 1)[0]!
  return path.length > 1 && path.endsWith('/')
}

export const notFound = (request: FastifyRequest): Problem =>
  new Problem('not-found', {}, `no route ${request.method} ${request.url.split('?')[0]}`)

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

const sendsBody = (request: FastifyRequest): boolean => {
  const length = request.headers['content-length']
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

// An operation with no requestBody in openapi.yaml takes none: no body at all, or an empty one whatever its
// content type (some clients send `Content-Type: application/json` with every request). Anything else, `{}`
// included, is `400 validation-failed` before the body is read, so its content type and size never matter.
export const refuseUnexpectedBody = (request: FastifyRequest): void => {
  if (!BODY_METHODS.has(request.method) || request.routeOptions.url === undefined || request.routeOptions.schema?.body !== undefined) return
  if (sendsBody(request)) {
    throw new Problem('validation-failed', {}, `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]} takes no request body`)
  }
  // nothing to parse: without this, an empty body labelled JSON would fail as malformed JSON
  delete request.headers['content-type']
}

import type { FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../problems.js'
import { TENANT_PATTERN } from './schemas.js'
import { namesSystemStream, requiredAccess } from './access.js'
import { ROLE_RANK, type ApiKey, type ApiKeys, type Role } from './api-keys.js'

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string
    role: Role
    // the key the request presented; undefined on an open server and on public routes
    apiKey: ApiKey | undefined
  }
}

export const DEFAULT_TENANT = 'default'
const TENANT = new RegExp(TENANT_PATTERN)
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i

const tenantHeader = (request: FastifyRequest): string | undefined => {
  const header = request.headers['x-tenant-id']
  if (header === undefined) return undefined
  if (typeof header !== 'string' || !TENANT.test(header)) {
    throw new Problem('validation-failed', {}, `X-Tenant-Id must match ${TENANT_PATTERN}`)
  }
  return header
}

const unauthorized = (reply: FastifyReply, detail: string): Problem => {
  reply.header('www-authenticate', 'Bearer realm="annalist"')
  return new Problem('unauthorized', {}, detail)
}

const keyOf = (request: FastifyRequest, reply: FastifyReply, keys: ApiKeys): ApiKey => {
  const header = request.headers.authorization
  if (header === undefined) throw unauthorized(reply, 'send an API key as Authorization: Bearer <key>')
  const presented = BEARER.exec(header)?.[1]
  const key = presented === undefined ? undefined : keys.find(presented)
  if (!key) throw unauthorized(reply, 'the API key is not valid')
  return key
}

// Every request acts for exactly one tenant with one role (SPEC "Conventions", "Security"): the key's,
// or on an open server (no keys) the X-Tenant-Id header's (else `default`) as admin.
export const resolveCaller = (keys: ApiKeys) => async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
  const access = requiredAccess(request.method, request.routeOptions.url)
  request.apiKey = undefined
  if (keys.open || access === 'public') {
    request.role = 'admin'
    request.tenant = tenantHeader(request) ?? DEFAULT_TENANT
    return
  }
  const key = keyOf(request, reply, keys)
  request.apiKey = key
  request.role = key.role
  const header = tenantHeader(request)
  const own = key.tenant === '*' ? DEFAULT_TENANT : key.tenant
  if (header !== undefined && header !== own && key.role !== 'admin') {
    throw new Problem('forbidden', {}, `this key acts for tenant ${own} only; X-Tenant-Id names another`)
  }
  request.tenant = header ?? own
  const needed: Role = namesSystemStream(request.params, request.query) ? 'admin' : access
  if (ROLE_RANK[key.role] < ROLE_RANK[needed]) {
    throw new Problem('forbidden', {}, `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]} needs the ${needed} role; this key has ${key.role}`)
  }
}

// Projections are global and their documents per tenant: a caller acting for no tenant in particular (an admin
// key of tenant `*`, or anyone on an open server, without X-Tenant-Id) sees and manages every tenant's
// failures; any other caller its own tenant's (docs/projection-failures.md). Undefined: every tenant.
export const tenantScope = (request: FastifyRequest): string | undefined => {
  const unscoped = request.role === 'admin' && request.headers['x-tenant-id'] === undefined && (request.apiKey === undefined || request.apiKey.tenant === '*')
  return unscoped ? undefined : request.tenant
}

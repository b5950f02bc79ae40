import type { FastifyRequest } from 'fastify'
import { Problem } from '../problems.js'
import { TENANT_PATTERN } from './schemas.js'

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string
  }
}

export const DEFAULT_TENANT = 'default'
const TENANT = new RegExp(TENANT_PATTERN)

// Every request acts for exactly one tenant (SPEC "Conventions"); API keys narrow this in a later issue.
export const resolveTenant = async (request: FastifyRequest): Promise<void> => {
  const header = request.headers['x-tenant-id']
  if (header === undefined) {
    request.tenant = DEFAULT_TENANT
    return
  }
  if (typeof header !== 'string' || !TENANT.test(header)) {
    throw new Problem('validation-failed', {}, `X-Tenant-Id must match ${TENANT_PATTERN}`)
  }
  request.tenant = header
}

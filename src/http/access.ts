import type { Role } from './api-keys.js'

export type Access = 'public' | Role

// SPEC "Details": readable without a key once keys are configured (the dashboard page, its script, style sheet
// and modules ask for the key themselves).
const PUBLIC = [/^\/health\//, /^\/openapi\.json$/, /^\/docs(\/|$)/, /^\/$/, /^\/dashboard(\.(js|css)|\/:module)$/]

// The exceptions to the rule below, by method and route pattern as Fastify registered it.
const RULES: Record<string, Role> = {
  'POST /projections/:name/query': 'read',
  'POST /streams/:streamId/events': 'write',
  // its body may name system streams too: routes/appends.ts asks for admin then
  'POST /appends': 'write',
  'PUT /streams/:streamId/snapshots/:version': 'write',
  'GET /metrics': 'admin',
  // SPEC "Consumer groups": write keys poll, ack and nack; creating, deleting and replaying stay admin
  'POST /consumer-groups/:name/poll': 'write',
  'POST /consumer-groups/:name/ack': 'write',
  'POST /consumer-groups/:name/nack': 'write',
}

// The one place that says which role a route needs (SPEC "Security"): every GET and the listed reads are
// `read`, the listed writes `write`, and everything else, including any route added later, `admin`.
// A request no route matches still needs a valid key before it learns there is no such route.
export const requiredAccess = (requestMethod: string, route: string | undefined): Access => {
  if (route === undefined) return 'read'
  // SPEC "Details": HEAD has GET's access rule
  const method = requestMethod === 'HEAD' ? 'GET' : requestMethod
  const url = route.length > 1 ? route.replace(/\/$/, '') : route
  if (PUBLIC.some((pattern) => pattern.test(url))) return 'public'
  return RULES[`${method} ${url}`] ?? (method === 'GET' ? 'read' : 'admin')
}

// Where a request names a stream, prefix or category, these are the names it goes by.
const STREAM_NAMES = ['streamId', 'category', 'prefix']

const values = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value])

// System streams (`$…`) are read and written only by admins (SPEC "Conventions"), whatever the route.
export const namesSystemStream = (params: unknown, query: unknown): boolean =>
  [params, query].some((part) =>
    part !== null && typeof part === 'object' &&
    STREAM_NAMES.some((name) => values((part as Record<string, unknown>)[name]).some((value) => typeof value === 'string' && value.startsWith('$'))),
  )

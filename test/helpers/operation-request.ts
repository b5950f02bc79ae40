import { randomUUID } from 'node:crypto'

// A concrete URL for an openapi.yaml path: each {param} filled with a valid value of its kind.
const PARAM_VALUES: Record<string, () => string> = {
  streamId: () => `order-${randomUUID().slice(0, 8)}`,
  name: () => 'orders',
  id: () => randomUUID(),
  eventId: () => randomUUID(),
  subject: () => 'customer-7',
  version: () => '1',
  type: () => 'OrderPlaced',
  file: () => 'index.css',
  module: () => 'format.js',
}

export const fillPath = (path: string, values: Record<string, string> = {}): string =>
  path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? PARAM_VALUES[name]?.() ?? 'x'))

export const PUBLIC_PATH = /^\/(health\/|openapi\.json$|docs(\/|$)|dashboard(\.(js|css)|\/\{module\})$|$)/

// The role SPEC "Security" and "Details" give each operation, written out here apart from src/http/access.ts
// so that a wrong rule there fails the tests: read = every GET and POST …/query; write = + appends and
// stream snapshots, and a consumer group's poll, ack and nack; admin = the rest, /metrics included.
export const roleOf = (method: string, path: string): 'public' | 'read' | 'write' | 'admin' => {
  const verb = method.toUpperCase()
  if (PUBLIC_PATH.test(path)) return 'public'
  if (verb === 'GET' && path !== '/metrics') return 'read'
  if (verb === 'POST' && path === '/projections/{name}/query') return 'read'
  if (verb === 'POST' && path === '/streams/{streamId}/events') return 'write'
  if (verb === 'POST' && path === '/appends') return 'write'
  if (verb === 'POST' && /^\/consumer-groups\/\{name\}\/(poll|ack|nack)$/.test(path)) return 'write'
  if (verb === 'PUT' && path === '/streams/{streamId}/snapshots/{version}') return 'write'
  return 'admin'
}

import t from 'tap'
import type { RouteOptions } from 'fastify'
import { Type } from 'typebox'
import { parse } from 'yaml'
import { isCrossCutting, OpenapiContract, operations, pointer } from '../helpers/openapi-contract.js'
import { compare, type Resolve } from '../helpers/schema-agreement.js'
import { buildTestApp } from '../helpers/test-app.js'
import { withOperationParameters } from '../../routes/docs.js'
import { DeclarativeDefinitionSchema } from '../../src/projections/definition-schema.js'
import { BackfillRequestSchema } from '../../src/projections/backfills/backfill-request-schema.js'
import { BackfillView } from '../../src/projections/schemas.js'
import { SnapshotSummary, StreamInfo } from '../../src/events/schemas.js'

// Keeps the route table and openapi.yaml the same set, each route's schemas and the document's the same shapes,
// and the document itself consistent.
const contract = await OpenapiContract.load()
const { doc } = contract
const routes: RouteOptions[] = []
const { app } = await buildTestApp(t, {}, { onRoute: (route) => void routes.push(route) })

// OpenAPI cannot template a multi-segment wildcard; these documented paths are fastify wildcards.
const WILDCARDS: Record<string, string> = { '/docs/static/{file}': '/docs/static/*' }
const toFastify = (path: string): string => WILDCARDS[path] ?? path.replace(/\{(\w+)\}/g, ':$1')
// A prefixed plugin's '/' route is served with and without the trailing slash; both are one operation.
const normalise = (url: string): string => (url.length > 1 ? url.replace(/\/$/, '') : url)

// printRoutes() draws the router's radix tree one node a line (default commonPrefix), so a route's URL
// is the labels along its branch joined: "/" → "streams" → "/" → ":streamId" → "/events". HEAD routes
// are fastify's automatic twins of GET routes and are left out.
const servedRoutes = (tree: string): Set<string> => {
  const branch: string[] = []
  const routes = new Set<string>()
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!match) continue
    branch.length = match[1]!.length / 4
    branch.push(match[2]!)
    for (const method of match[3]?.split(', ') ?? []) {
      if (method !== 'HEAD') routes.add(`${method} ${normalise(branch.join(''))}`)
    }
  }
  return routes
}

t.test('every route fastify serves is an operation of openapi.yaml, and every operation is served', async (t) => {
  const served = servedRoutes(app.printRoutes())
  t.ok(served.has('POST /streams/:streamId/events'), 'the route table was read', { tree: app.printRoutes() })
  const documented = new Set(operations(doc).map(({ path, method }) => `${method.toUpperCase()} ${toFastify(path)}`))
  t.same([...served].filter((route) => !documented.has(route)), [], 'no served route is missing from openapi.yaml')
  t.same([...documented].filter((route) => !served.has(route)), [], 'no documented operation is missing from the server')
  for (const { path, method } of operations(doc)) {
    t.ok(app.hasRoute({ method: method.toUpperCase() as 'GET', url: toFastify(path) }), `${method.toUpperCase()} ${path} is registered`)
  }
})

type Json = Record<string, any>

// Bodies a route takes as any JSON because the core checks them itself, so that its message names the bad part.
const CORE_BODIES: Record<string, Json> = {
  'PUT /projections/{name}': DeclarativeDefinitionSchema,
  'POST /projections/{name}/backfills': BackfillRequestSchema,
}
const JSON_MEDIA = ['application/json', 'application/problem+json']
// openapi.yaml itself and its reference page (routes/docs.ts, @fastify/swagger-ui): no route schemas to compare
const DOCS_PAGES = /^\/(openapi\.json|docs)(\/|$)/

const resolveDoc: Resolve = (ref) =>
  ref.startsWith('#/') ? ref.slice(2).split('/').reduce<Json | undefined>((node, token) => node?.[decodeURIComponent(token)], doc) : undefined
const resolveRoute: Resolve = (ref) => app.getSchemas()[ref] as Json | undefined

const jsonSchemaOf = (content: Json | undefined): Json | undefined => {
  const media = JSON_MEDIA.find((type) => content?.[type])
  return media ? (content![media].schema as Json) : undefined
}

const queryNames = (path: string, operation: Json): string[] =>
  [...(doc.paths[path].parameters ?? []), ...(operation.parameters ?? [])]
    .map((parameter: Json) => (parameter.$ref ? resolveDoc(parameter.$ref)! : parameter))
    .filter((parameter) => parameter.in === 'query')
    .map((parameter) => parameter.name as string)

// Every way one operation's route schemas and openapi.yaml differ: query parameters, request body, and the body of
// each status either declares.
const disagreements = (path: string, method: string, operation: Json, schema: Json): string[] => {
  const label = `${method.toUpperCase()} ${path}`
  const out: string[] = []
  const routeQuery = Object.keys(schema.querystring?.properties ?? {}).sort()
  const docQuery = queryNames(path, operation).sort()
  if (routeQuery.join() !== docQuery.join()) out.push(`${label} query: the route takes ${routeQuery.join(', ') || 'none'}, openapi.yaml ${docQuery.join(', ') || 'none'}`)
  const body = CORE_BODIES[label] ?? schema.body
  const documentedBody = jsonSchemaOf(operation.requestBody?.content)
  if (Boolean(body) !== Boolean(documentedBody)) out.push(`${label} body: ${body ? 'the route takes one, openapi.yaml none' : 'openapi.yaml takes one, the route none'}`)
  else if (body) compare({ schema: body, resolve: resolveRoute }, { schema: documentedBody!, resolve: resolveDoc }, `${label} body`, out)
  const statuses = new Set([...Object.keys(schema.response ?? {}), ...Object.keys(operation.responses).filter((status) => !isCrossCutting(operation, status))])
  for (const status of statuses) {
    const routeBody = schema.response?.[status] as Json | undefined
    const documented = contract.response(path, method, Number(status))?.response
    if (!routeBody || !documented) {
      out.push(`${label} ${status}: ${routeBody ? 'the route declares it, openapi.yaml does not' : 'openapi.yaml documents it, the route does not declare it'}`)
      continue
    }
    const documentedSchema = jsonSchemaOf(documented.content)
    if (documentedSchema) compare({ schema: routeBody, resolve: resolveRoute }, { schema: documentedSchema, resolve: resolveDoc }, `${label} ${status}`, out)
  }
  return out
}

// The route's own schemas, not openapi.yaml, decide what a request may hold and which fields a response carries
// (the serializer drops the others), so the two must describe the same fields, types and values.
t.test('every route’s query, body and response schemas agree with openapi.yaml', async (t) => {
  const byOperation = new Map(routes.filter((route) => route.method !== 'HEAD').flatMap((route) =>
    [route.method].flat().map((method) => [`${method} ${normalise(route.url)}`, route.schema as Json | undefined] as const)))
  const schemaOf = (path: string, method: string): Json | undefined => byOperation.get(`${method.toUpperCase()} ${toFastify(path)}`)
  const compared = operations(doc).filter(({ path }) => !DOCS_PAGES.test(path))
  const undeclared = compared.filter(({ path, method }) => !schemaOf(path, method)?.response).map(({ path, method }) => `${method.toUpperCase()} ${path}`)
  t.same(undeclared, [], 'every operation but the docs pages declares its responses')
  const found = compared.flatMap(({ path, method, operation }) => disagreements(path, method, operation, schemaOf(path, method)!))
  t.same(found, [], 'no disagreement')
})

t.test('the comparison finds a field on either side alone, a changed type and a changed value set', async (t) => {
  const documented = { schema: { $ref: '#/components/schemas/StreamInfo' }, resolve: resolveDoc }
  const route = (schema: Json) => ({ schema, resolve: resolveRoute })
  t.same(compare(route(StreamInfo), documented, 'info'), [], 'StreamInfo agrees as it is')
  const extra = Type.Object({ ...StreamInfo.properties, archived: Type.Boolean() })
  t.same(compare(route(extra), documented, 'info'), ["info.archived: the route's schema has it, openapi.yaml does not"])
  const { category: _, ...rest } = StreamInfo.properties
  t.same(compare(route(Type.Object(rest)), documented, 'info'), ["info.category: openapi.yaml has it, the route's schema does not"])
  const nested = Type.Object({ ...StreamInfo.properties, snapshot: Type.Union([Type.Object({ ...SnapshotSummary.properties, version: Type.String() }), Type.Null()]) })
  t.same(compare(route(nested), documented, 'info'), ["info.snapshot.version: the route's schema allows string, openapi.yaml integer"])
  const status = { schema: { $ref: '#/components/schemas/Backfill' }, resolve: resolveDoc }
  const paused = Type.Object({ ...BackfillView.properties, status: Type.Union([BackfillView.properties.status, Type.Literal('paused')]) })
  t.match(compare(route(paused), status, 'run'), [/^run\.status: the route's schema allows .*"paused"/])
})

t.test('GET /openapi.json serves openapi.yaml exactly, and /docs renders the same document', async (t) => {
  t.same((await app.inject({ url: '/openapi.json' })).json(), doc)
  // the reference page gets path items' parameters on their operations (routes/docs.ts says why): the same contract
  const rendered = withOperationParameters(doc)
  t.same((await app.inject({ url: '/docs/json' })).json(), rendered)
  t.same(parse((await app.inject({ url: '/docs/yaml' })).body), rendered)
  for (const { path, method, operation } of operations(rendered)) {
    const names = (list: Record<string, string>[] = []) => list.map((p) => p.$ref ?? `${p.in} ${p.name}`).sort()
    const original = doc.paths[path]
    const expected = [...(original.parameters ?? []), ...(original[method].parameters ?? [])]
    t.same(names(operation.parameters), names(expected), `${method.toUpperCase()} ${path} keeps its parameters`)
  }
})

t.test('every operation is named, summarised and takes the tenant and request id headers', async (t) => {
  t.equal(doc.openapi, '3.1.0')
  const ids = operations(doc).map(({ operation }) => operation.operationId as string)
  t.same(ids.filter((id, index) => !id || ids.indexOf(id) !== index), [], 'operationIds are present and unique')
  for (const { path, method, operation } of operations(doc)) {
    const label = `${method.toUpperCase()} ${path}`
    t.ok(operation.summary, `${label} has a summary`)
    const parameters = [...(doc.paths[path].parameters ?? []), ...(operation.parameters ?? [])] as Record<string, string>[]
    const refs = parameters.map((parameter) => parameter.$ref)
    t.ok(refs.includes('#/components/parameters/TenantId'), `${label} takes X-Tenant-Id`)
    t.ok(refs.includes('#/components/parameters/RequestId'), `${label} takes X-Request-Id`)
    const inPath = parameters.map((parameter) => (parameter.$ref ? doc.components.parameters[parameter.$ref.split('/').pop()!] : parameter))
      .filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name).sort()
    t.same(inPath, [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort(), `${label} declares its path parameters`)
    for (const status of Object.keys(operation.responses)) {
      const { response } = contract.response(path, method, Number(status))!
      t.ok(response.headers?.['x-request-id'], `${label} ${status} documents x-request-id`)
      if (Number(status) >= 400 && !(path === '/health/ready' && status === '503')) {
        t.same(Object.keys(response.content ?? {}), ['application/problem+json'], `${label} ${status} is a problem`)
      }
    }
  }
})

t.test('every schema compiles and every example matches its schema', async (t) => {
  for (const name of Object.keys(doc.components.schemas)) {
    t.ok(contract.ajv.getSchema('openapi.yaml' + pointer('components', 'schemas', name)), `${name} compiles`)
  }
  let examples = 0
  const check = (at: string[], value: unknown, where: string): void => {
    examples += 1
    const error = contract.validate(pointer(...at), value)
    t.notOk(error, `the example at ${where} matches its schema`, { error })
  }
  const walk = (node: unknown, at: string[]): void => {
    if (node === null || typeof node !== 'object') return
    const item = node as Record<string, any>
    const where = at.join(' › ')
    if (item.schema && item.examples && !Array.isArray(item.examples)) {
      for (const [name, example] of Object.entries(item.examples as Record<string, { value?: unknown; $ref?: string }>)) {
        const value = example.$ref ? doc.components.examples[example.$ref.replace('#/components/examples/', '')]?.value : example.value
        t.not(value, undefined, `the example at ${where} › ${name} has a value`)
        check([...at, 'schema'], value, `${where} › ${name}`)
      }
    }
    // a server-sent event stream's schema is the JSON of each message's `data`
    if (item.schema && 'example' in item && at.at(-1) === 'text/event-stream') {
      const messages = String(item.example).split('\n').filter((line) => line.startsWith('data: '))
      t.ok(messages.length > 0, `the example at ${where} has messages`)
      for (const line of messages) check([...at, 'schema'], JSON.parse(line.slice('data: '.length)), where)
    } else if (item.schema && 'example' in item) check([...at, 'schema'], item.example, where)
    if (Array.isArray(item.examples)) for (const example of item.examples) check(at, example, where)
    for (const [key, child] of Object.entries(item)) walk(child, [...at, key])
  }
  walk(doc.paths, ['paths'])
  walk(doc.components, ['components'])
  t.ok(examples > 20, `${examples} examples checked`)
})

t.test('responses are checked with every object closed, so a field no schema names fails', async (t) => {
  const status = { name: 'orders', kind: 'declarative', status: 'failed', position: 1, head: 2, lag: 1, documents: 0, failures: [], definitionVersion: 1, updatedAt: '2025-03-01T11:02:07.480Z', definition: null }
  const at = pointer('components', 'schemas', 'ProjectionStatus')
  const lastError = { position: 2, eventId: '7d444840-9dc0-11d1-b245-5ffdce74fad2', message: 'boom', generation: 1 }
  t.notOk(contract.validate(at, { ...status, lastError }), 'named fields pass, lastError.generation included')
  t.match(contract.validate(at, { ...status, lastError, extra: 1 }), /must NOT have unevaluated properties/, 'an unnamed field fails')
  t.match(contract.validate(at, { ...status, lastError: { ...lastError, hint: 'x' } }), /unevaluated/, 'in a nested object too')
  const problem = { type: 'https://annalist.dev/problems/conflict', title: 'Conflict', status: 409, detail: 'd', code: 'conflict', projectionStatus: 'running' }
  t.notOk(contract.validate(pointer('components', 'schemas', 'NothingToSkipProblem'), problem))
  t.ok(contract.validate(pointer('components', 'schemas', 'NothingToSkipProblem'), { ...problem, backfillStatus: 'completed' }), 'a problem carries only its own fields')
  const event = { globalPosition: 1, streamId: 'a', streamVersion: 1, eventId: lastError.eventId, type: 'A', data: { any: 1 }, metadata: { free: 'form' }, createdAt: status.updatedAt }
  t.notOk(contract.validate(pointer('components', 'schemas', 'StoredEvent'), event), 'data and metadata stay open, as documented')
})

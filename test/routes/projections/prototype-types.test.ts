import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { loadCodeUpcasters } from '../../../src/events/code-upcasters.js'
import { buildTestApp } from '../../helpers/test-app.js'
import { streamId } from '../../helpers/fixtures.js'
import { waitFor } from '../../helpers/wait-for.js'

// Issue 18 point 3, SPEC "Details": event types are matched to handlers (declarative, code, upcasters) by their
// own names only; a type no handler names is ignored, whatever it is called.
const PROTOTYPE_NAMES = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']

const append = async (app: FastifyInstance, id: string, types: string[]) => {
  const events = types.map((type) => ({ type, data: { orderId: 'o-1' } }))
  const res = await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events } })
  if (res.statusCode !== 201) throw new Error(`append: ${res.statusCode} ${res.body}`)
  return res.json().lastPosition as number
}

const caughtUp = (app: FastifyInstance, name: string, position: number) =>
  waitFor(`${name} at ${position}`, async () => {
    const view = (await app.inject({ url: `/projections/${name}` })).json()
    if (view.status === 'failed') return view
    return view.position >= position && view
  })

const documents = async (app: FastifyInstance, name: string) =>
  (await app.inject({ method: 'POST', url: `/projections/${name}/query`, payload: { limit: 1000 } })).json().documents as { id: string; document: unknown }[]

t.test('a declarative projection: prototype-named events create no document and do not bring a deleted one back', async (t) => {
  const { app } = await buildTestApp(t)
  const definition = {
    source: { categories: ['proto'] },
    documentId: '$.streamId',
    handlers: { Opened: { set: { open: true } }, Closed: { delete: true } },
  }
  t.equal((await app.inject({ method: 'PUT', url: '/projections/proto', payload: definition })).statusCode, 201)
  const untouched = streamId('proto')
  const deleted = streamId('proto')
  await append(app, deleted, ['Opened', 'Closed'])
  await append(app, untouched, PROTOTYPE_NAMES)
  const last = await append(app, deleted, PROTOTYPE_NAMES)
  const view = await caughtUp(app, 'proto', last)
  t.equal(view.status, 'running')
  t.equal(view.lastError, null)
  t.same(await documents(app, 'proto'), [], 'no document was created or brought back')
  t.equal(view.documents, 0)
  t.equal((await app.inject({ url: `/projections/proto/documents/${deleted}` })).statusCode, 404)
})

t.test('a handler named after a prototype member is a handler like any other; the other such names stay ignored', async (t) => {
  const { app } = await buildTestApp(t)
  const definition = { source: { categories: ['named'] }, documentId: '$.streamId', handlers: { toString: { inc: { n: 1 } } } }
  t.equal((await app.inject({ method: 'PUT', url: '/projections/named', payload: definition })).statusCode, 201)
  const id = streamId('named')
  const last = await append(app, id, PROTOTYPE_NAMES)
  await caughtUp(app, 'named', last)
  t.same((await documents(app, 'named')).map((row) => row.document), [{ n: 1 }])
})

t.test('a code projection without source.types ignores prototype-named events and keeps running', async (t) => {
  const dir = t.testdir({
    'counter.ts': `
      export default {
        name: 'counter',
        source: {},
        handlers: {
          Counted: async (event, ctx) => {
            const doc = (await ctx.load(event.streamId)) ?? { n: 0 }
            await ctx.store(event.streamId, { n: doc.n + 1 })
          },
        },
      }`,
  })
  const { app } = await buildTestApp(t, { PROJECTIONS_DIR: dir })
  const id = streamId('code')
  await append(app, id, PROTOTYPE_NAMES)
  const last = await append(app, id, ['Counted'])
  const view = await caughtUp(app, 'counter', last)
  t.equal(view.status, 'running')
  t.equal(view.lastError, null)
  t.same((await documents(app, 'counter')).map((row) => [row.id, row.document]), [[id, { n: 1 }]])
})

t.test('code upcasters for prototype-named types are loaded as their own types, and pollute nothing', async (t) => {
  const dir = t.testdir({
    'steps.ts': `
      export const upcasters = {
        toString: { 1: (data) => ({ ...data, upcast: 'toString' }) },
        valueOf: { 1: (data) => ({ ...data, upcast: 'valueOf' }) },
      }`,
  })
  const loaded = await loadCodeUpcasters(dir)
  t.same(Object.keys(loaded).sort(), ['toString', 'valueOf'])
  t.equal(typeof loaded.toString?.[1], 'function')
  t.equal((Object.prototype.toString as unknown as Record<number, unknown>)[1], undefined, 'nothing was hung on Object.prototype.toString')
  t.equal((loaded as Record<string, unknown>).constructor, undefined, 'no type is found through the prototype')

  const { app } = await buildTestApp(t, { PROJECTIONS_DIR: dir })
  const id = streamId('up')
  await append(app, id, ['toString', 'constructor', 'hasOwnProperty'])
  const events = (await app.inject({ url: `/streams/${id}/events` })).json().events as { type: string; data: Record<string, unknown> }[]
  t.same(events.map((event) => [event.type, event.data.upcast ?? null]), [['toString', 'toString'], ['constructor', null], ['hasOwnProperty', null]])
})

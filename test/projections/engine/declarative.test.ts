import t from 'tap'
import { applyDeclarative, documentIdOf } from '../../../src/projections/engine/declarative.js'
import { HandlerError } from '../../../src/projections/engine/handler-error.js'
import { checkDefinition } from '../../../src/projections/definition-schema.js'
import type { DeclarativeDefinition } from '../../../src/projections/definition-schema.js'
import type { ProjectionEvent } from '../../../src/projections/types.js'

const stored = (data: unknown, extra: Partial<ProjectionEvent> = {}): ProjectionEvent => ({
  tenant: 'default',
  globalPosition: 7,
  streamId: 'order-42',
  streamVersion: 3,
  eventId: '0b6c7a5e-3f1d-4c2a-8e9b-1a2b3c4d5e6f',
  type: 'OrderPlaced',
  data,
  metadata: { userId: 'u-1' },
  createdAt: '2026-11-23T10:00:00.000Z',
  ...extra,
})

const failsWithHandlerError = (run: () => unknown): boolean => {
  try {
    run()
    return false
  } catch (error) {
    return error instanceof HandlerError
  }
}

t.test('set takes $. paths into the stored event and literals as they are', async (t) => {
  const document = applyDeclarative(
    { set: { status: 'placed', total: '$.data.total', by: '$.metadata.userId', at: '$.createdAt', stream: '$.streamId', nested: { keep: '$.data.total' } } },
    stored({ total: 12.5 }),
    {},
  )
  t.same(document, { status: 'placed', total: 12.5, by: 'u-1', at: '2026-11-23T10:00:00.000Z', stream: 'order-42', nested: { keep: '$.data.total' } })
})

t.test('a path missing from the event skips that field only', async (t) => {
  const document = applyDeclarative({ set: { total: '$.data.total', status: 'x' }, inc: { n: '$.data.count' } }, stored({}), { total: 1 })
  t.same(document, { total: 1, status: 'x' })
})

t.test('dotted fields create parents; unset leaves them', async (t) => {
  const document = applyDeclarative({ set: { 'address.city': 'London', 'address.zip': 'NW1' } }, stored({}), {})
  t.same(document, { address: { city: 'London', zip: 'NW1' } })
  t.same(applyDeclarative({ unset: ['address.city', 'nope.deeper'] }, stored({}), document!), { address: { zip: 'NW1' } })
  t.same(applyDeclarative({ unset: ['address.zip'] }, stored({}), { address: { zip: 'x' } }), { address: {} })
})

t.test('inc adds a number or a $. path to a number', async (t) => {
  t.same(applyDeclarative({ inc: { items: 1, total: '$.data.price' } }, stored({ price: 2.5 }), { items: 2 }), { items: 3, total: 2.5 })
  t.same(applyDeclarative({ inc: { 'stats.n': 1 } }, stored({}), {}), { stats: { n: 1 } })
  t.ok(failsWithHandlerError(() => applyDeclarative({ inc: { total: '$.data.price' } }, stored({ price: 'x' }), {})))
  t.ok(failsWithHandlerError(() => applyDeclarative({ inc: { total: 1 } }, stored({}), { total: 'many' })))
})

t.test('push creates the array, appends, and fails on a non-array', async (t) => {
  const once = applyDeclarative({ push: { skus: '$.data.sku' } }, stored({ sku: 'a' }), {})
  t.same(applyDeclarative({ push: { skus: '$.data.sku' } }, stored({ sku: 'b' }), once!), { skus: ['a', 'b'] })
  t.ok(failsWithHandlerError(() => applyDeclarative({ push: { skus: 'c' } }, stored({}), { skus: 'not an array' })))
})

t.test('merge shallow-merges an object from the event or a literal', async (t) => {
  t.same(applyDeclarative({ merge: '$.data' }, stored({ a: 1, b: { c: 2 } }), { a: 0, z: 9 }), { a: 1, b: { c: 2 }, z: 9 })
  t.same(applyDeclarative({ merge: { flag: true } }, stored({}), {}), { flag: true })
  t.ok(failsWithHandlerError(() => applyDeclarative({ merge: '$.data.n' }, stored({ n: 1 }), {})))
})

t.test('delete removes the document', async (t) => {
  t.equal(applyDeclarative({ delete: true }, stored({}), { a: 1 }), null)
})

// ops change the document in place (no copy per event), so a failing one must take back those before it
t.test('a handler whose op fails leaves the document exactly as it was', async (t) => {
  const before = () => ({ a: 0, keep: { deep: [1, 2] }, z: 'gone?', arr: ['x'], n: 'many' })
  const document = before()
  const handler = { set: { a: 1, 'b.c': 2, 'keep.deep': [] }, unset: ['z', 'keep'], push: { arr: 'y', fresh: 'y' }, inc: { n: 1 } }
  t.ok(failsWithHandlerError(() => applyDeclarative(handler, stored({}), document)), 'inc on a non-number fails')
  t.same(document, before(), 'set, unset and the parents they made are taken back')
  const pushed = { arr: ['x'] }
  t.ok(failsWithHandlerError(() => applyDeclarative({ push: { arr: 'y', more: 'z' }, merge: '$.data.n' }, stored({ n: 1 }), pushed)))
  t.same(pushed, { arr: ['x'] }, 'pushes are taken back')
  t.same(Object.keys(pushed), ['arr'])
})

t.test('a value from the event is copied: two fields never share one object', async (t) => {
  const event = stored({ address: { city: 'Oslo' } })
  const document = applyDeclarative({ set: { home: '$.data.address', work: '$.data.address' } }, event, {})!
  applyDeclarative({ set: { 'home.city': 'Bergen' } }, event, document)
  t.same(document, { home: { city: 'Bergen' }, work: { city: 'Oslo' } })
  t.same(event.data, { address: { city: 'Oslo' } }, 'and the event stays as stored')
})

t.test('documentId comes from the event; missing or empty ids address nothing, other values that cannot be ids fail', async (t) => {
  const definition = { documentId: '$.data.orderId' } as DeclarativeDefinition
  t.equal(documentIdOf(definition, stored({ orderId: 'o-1' })), 'o-1')
  t.equal(documentIdOf(definition, stored({ orderId: 42 })), '42')
  t.equal(documentIdOf(definition, stored({})), undefined)
  t.equal(documentIdOf(definition, stored({ orderId: '' })), undefined)
  t.equal(documentIdOf({ documentId: '$.streamId' } as DeclarativeDefinition, stored({})), 'order-42')
  t.equal(documentIdOf(definition, stored({ orderId: 'é'.repeat(512) })), 'é'.repeat(512), '1,024 bytes is the most')
  for (const orderId of [null, false, {}, [], 'é'.repeat(512) + 'x']) {
    t.ok(failsWithHandlerError(() => documentIdOf(definition, stored({ orderId }))), JSON.stringify(orderId).slice(0, 20))
  }
})

t.test('an invalid definition is a 400 naming the bad part', async (t) => {
  const valid = { source: { categories: ['order'] }, documentId: '$.streamId', handlers: { OrderPlaced: { set: { a: 1 } } } }
  t.ok(checkDefinition(valid))
  const cases: [unknown, RegExp][] = [
    [{ ...valid, documentId: 'streamId' }, /documentId/],
    [{ ...valid, handlers: {} }, /handlers/],
    [{ ...valid, handlers: { OrderPlaced: { explode: true } } }, /handlers\.OrderPlaced.*explode/],
    [{ ...valid, handlers: { OrderPlaced: { inc: { n: 'x' } } } }, /handlers\.OrderPlaced\.inc\.n/],
    [{ ...valid, handlers: { OrderPlaced: { unset: ['a..b'] } } }, /handlers\.OrderPlaced\.unset/],
    [{ ...valid, handlers: { 'bad type': { set: { a: 1 } } } }, /handlers/],
    [{ ...valid, source: { types: ['Other'] } }, /handlers\.OrderPlaced/],
    [{ ...valid, extra: 1 }, /extra/],
    [{ ...valid, source: { categories: [] } }, /source\.categories/],
  ]
  for (const [definition, message] of cases) {
    t.throws(() => checkDefinition(definition), { code: 'validation-failed', message }, String(message))
  }
})

import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadCodeUpcasters } from '../../src/events/code-upcasters.js'
import { putUpcaster } from '../../src/events/upcaster-store.js'
import { Upcasters } from '../../src/events/upcasters.js'
import type { StoredEvent } from '../../src/events/schemas.js'
import { testDatabase } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'

const db = await testDatabase(t)

let position = 0
const stored = (type: string, data: unknown, metadata: Record<string, unknown> = {}): StoredEvent => ({
  globalPosition: ++position,
  streamId: 'order-1',
  streamVersion: position,
  eventId: '7d444840-9dc0-11d1-b245-5ffdce74fad2',
  type,
  data,
  metadata,
  createdAt: '2025-03-01T10:15:30.123Z',
})

const started = async (upcasters: Upcasters): Promise<Upcasters> => {
  await upcasters.start()
  t.teardown(() => upcasters.stop())
  return upcasters
}

// the seeds' example: V1 `amount` → V2 `total_amount` → V3 adds `currency: "USD"`
await putUpcaster(db.sql, 'OrderPlaced', [
  { from: 1, to: 2, rename: { amount: 'total_amount' } },
  { from: 2, to: 3, defaults: { currency: 'USD' } },
])

t.test('the seeds’ example: a V1 event reads as V3, a V2 one too, a V3 one as stored', async (t) => {
  const upcasters = await started(new Upcasters(db.sql))
  const v1 = stored('OrderPlaced', { amount: 42, sku: 'A' }, { correlationId: 'c-1' })
  const before = structuredClone(v1)
  const upcast = upcasters.apply(v1)
  t.same(upcast.data, { total_amount: 42, sku: 'A', currency: 'USD' })
  t.same(upcast.metadata, { correlationId: 'c-1', schemaVersion: 3 }, 'metadata keeps its fields and names the version reached')
  t.same(v1, before, 'the event read from the store is left as it was')
  t.same({ ...upcast, data: v1.data, metadata: v1.metadata }, v1, 'nothing but data and metadata changes')

  const v2 = upcasters.apply(stored('OrderPlaced', { total_amount: 5, currency: 'EUR' }, { schemaVersion: 2 }))
  t.same(v2.data, { total_amount: 5, currency: 'EUR' }, 'defaults fill only missing fields')
  t.equal(v2.metadata.schemaVersion, 3)
  const v3 = stored('OrderPlaced', { total_amount: 5 }, { schemaVersion: 3 })
  t.equal(upcasters.apply(v3), v3, 'an event at the newest version is returned as it is')
  const other = stored('OrderShipped', { amount: 1 })
  t.equal(upcasters.apply(other), other, 'types without upcasters are untouched, and get no schemaVersion')
})

t.test('an unusable schemaVersion or data that is not an object', async (t) => {
  const upcasters = await started(new Upcasters(db.sql))
  for (const schemaVersion of ['1', 0, 1.5, null]) {
    const event = stored('OrderPlaced', { amount: 1 }, { schemaVersion })
    t.equal(upcasters.apply(event), event, `schemaVersion ${JSON.stringify(schemaVersion)} names no version: read as stored`)
  }
  const scalar = upcasters.apply(stored('OrderPlaced', 7))
  t.equal(scalar.data, 7, 'data without fields passes through')
  t.equal(scalar.metadata.schemaVersion, 3)
})

t.test('rename, remove and defaults reach into nested fields by dotted path', async (t) => {
  await putUpcaster(db.sql, 'AddressChanged', [
    { from: 1, to: 2, rename: { 'address.zip': 'address.postcode', street: 'address.street' }, remove: ['legacy', 'address.fax'], defaults: { 'address.country': 'GB', tags: [] } },
  ])
  const upcasters = await started(new Upcasters(db.sql))
  const upcast = upcasters.apply(stored('AddressChanged', { street: 'High St', legacy: true, address: { zip: 'N1', fax: '1' } }))
  t.same(upcast.data, { address: { postcode: 'N1', street: 'High St', country: 'GB' }, tags: [] })
  const second = upcasters.apply(stored('AddressChanged', {}))
  ;(second.data as { tags: string[] }).tags.push('x')
  t.same((upcasters.apply(stored('AddressChanged', {})).data as { tags: string[] }).tags, [], 'a default value is copied, never shared between events')
})

t.test('code upcasters continue a declarative chain, and win where both start at one version', async (t) => {
  const upcasters = await started(
    new Upcasters(db.sql, {
      OrderPlaced: {
        2: (data) => ({ ...(data as object), currency: 'GBP', from: 'code' }),
        3: (data, event) => ({ ...(data as object), seenAt: event.metadata.schemaVersion, stream: event.streamId }),
      },
    }),
  )
  const upcast = upcasters.apply(stored('OrderPlaced', { amount: 3 }))
  t.same(upcast.data, { total_amount: 3, currency: 'GBP', from: 'code', seenAt: 3, stream: 'order-1' }, 'declarative 1→2, code 2→3 (over the declarative one), code 3→4')
  t.equal(upcast.metadata.schemaVersion, 4)
})

t.test('modules in PROJECTIONS_DIR supply code upcasters (the shipped example)', async (t) => {
  const dir = fileURLToPath(new URL('../../examples/upcasters/', import.meta.url))
  const upcasters = await started(new Upcasters(db.sql, await loadCodeUpcasters(dir)))
  const upcast = upcasters.apply(stored('CustomerRegistered', { customerId: 'c-7', name: 'Ada King Lovelace' }))
  t.same(upcast.data, { customerId: 'c-7', firstName: 'Ada', lastName: 'King Lovelace' })
  t.equal(upcast.metadata.schemaVersion, 2)
  t.same(await loadCodeUpcasters(undefined), {}, 'no PROJECTIONS_DIR, no code upcasters')
})

t.test('a change made elsewhere reaches a running instance through NOTIFY, and through the refresh without one', async (t) => {
  const listening = await started(new Upcasters(db.sql, {}, { refreshMs: 60_000 }))
  const polling = new Upcasters(db.sql, {}, { refreshMs: 50 })
  await polling.start()
  t.teardown(() => polling.stop())
  const event = stored('InvoiceIssued', { net: 1 })
  t.equal(listening.apply(event), event)
  await putUpcaster(db.sql, 'InvoiceIssued', [{ from: 1, to: 2, rename: { net: 'netAmount' } }])
  await waitFor('the NOTIFY to reload the upcasters', () => listening.apply(event) !== event)
  t.same(listening.apply(event).data, { netAmount: 1 })
  // a change that sent no NOTIFY (a lost notification) is still picked up by the periodic refresh
  await db.sql`update upcasters set steps = ${JSON.stringify([{ from: 1, to: 2, rename: { net: 'amount' } }])}::text::jsonb where type = 'InvoiceIssued'`
  await waitFor('the refresh to reload the upcasters', () => (polling.apply(event).data as Record<string, unknown>).amount === 1)
  t.pass('reloaded without a notification')
})

t.test('invalid step lists are refused, naming the bad part', async (t) => {
  const cases: [string, unknown[], RegExp][] = [
    ['to is not from + 1', [{ from: 1, to: 3 }], /steps\[0\]\.to must be 2/],
    ['a gap between steps', [{ from: 1, to: 2 }, { from: 3, to: 4 }], /steps\[1\]\.from must be 2/],
    ['steps out of order', [{ from: 2, to: 3 }, { from: 1, to: 2 }], /steps\[1\]\.from must be 3/],
    ['an empty field name', [{ from: 1, to: 2, remove: ['a..b'] }], /steps\[0\]\.remove: "a\.\.b"/],
    ['a prototype key', [{ from: 1, to: 2, defaults: { __proto__x: 1, 'a.__proto__': 1 } }], /steps\[0\]\.defaults: "a\.__proto__"/],
    ['a bad rename target', [{ from: 1, to: 2, rename: { a: 'b c' } }], /steps\[0\]\.rename\.a: "b c"/],
  ]
  for (const [name, steps, detail] of cases) {
    await t.rejects(putUpcaster(db.sql, 'Refused', steps as never), { code: 'validation-failed', message: detail }, name)
  }
  t.same(await db.sql`select type from upcasters where type = 'Refused'`, [], 'nothing was stored')
})

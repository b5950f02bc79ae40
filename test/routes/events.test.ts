import { randomUUID } from 'node:crypto'
import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { EMBEDDED } from '../helpers/test-database.js'
import { event, events } from '../helpers/fixtures.js'

interface Page {
  events: { globalPosition: number; streamId: string; type: string; metadata: Record<string, unknown> }[]
  next: number | null
  head: number
}

t.test('GET /events', async (t) => {
  const { app } = await buildTestApp(t)
  const append = (id: string, body: object, tenant?: string) =>
    app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: body, headers: tenant ? { 'x-tenant-id': tenant } : {} })
  const log = async (query = '', tenant?: string): Promise<Page> =>
    (await app.inject({ url: `/events${query}`, headers: tenant ? { 'x-tenant-id': tenant } : {} })).json()

  const correlationId = randomUUID()
  await append('order-1', { events: [event('OrderPlaced'), event('ItemAdded', {}, { metadata: { correlationId } })] })
  await append('order-2', { events: [event('OrderPlaced')] })
  await append('customer-1', { events: [event('CustomerRegistered', {}, { metadata: { correlationId } })] })
  await append('order-10', { events: [event('OrderShipped')] })

  t.test('everything in position order, with head', async (t) => {
    const page = await log()
    t.equal(page.events.length, 5)
    const positions = page.events.map((e) => e.globalPosition)
    t.same(positions, [...positions].sort((a, b) => a - b))
    t.equal(page.head, positions.at(-1))
    t.equal(page.next, null, 'the page reached the head')
  })

  t.test('paging with next and after visits each event once', async (t) => {
    const seen: number[] = []
    let after = 0
    for (let pages = 0; pages < 10; pages++) {
      const page = await log(`?after=${after}&limit=2`)
      seen.push(...page.events.map((e) => e.globalPosition))
      if (page.next === null) break
      after = page.next
    }
    t.same(seen, (await log()).events.map((e) => e.globalPosition))
  })

  t.test('filters: type (repeatable), category, streamId prefix, correlationId, since/until', async (t) => {
    t.same((await log('?type=OrderPlaced')).events.map((e) => e.streamId), ['order-1', 'order-2'])
    t.same((await log('?type=OrderPlaced&type=OrderShipped')).events.map((e) => e.type), ['OrderPlaced', 'OrderPlaced', 'OrderShipped'])
    t.same((await log('?category=customer')).events.map((e) => e.streamId), ['customer-1'])
    t.same((await log('?streamId=order-1')).events.map((e) => e.streamId), ['order-1', 'order-1', 'order-10'])
    t.same((await log(`?correlationId=${correlationId}`)).events.map((e) => e.type), ['ItemAdded', 'CustomerRegistered'])
    t.equal((await log('?since=2999-01-01T00:00:00Z')).events.length, 0)
    t.equal((await log('?until=2000-01-01T00:00:00Z')).events.length, 0)
    t.equal((await log('?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z')).events.length, 5)
  })

  t.test('a filtered page ends at the head with next null, so readers resume from head', async (t) => {
    const page = await log('?type=OrderShipped&limit=1')
    t.equal(page.events.length, 1)
    t.equal(page.next, null)
  })

  t.test('another tenant sees none of it', async (t) => {
    const other = await log('', 'globex')
    t.same(other.events, [])
    await append('order-1', { events: events(1) }, 'globex')
    const own = await log('', 'globex')
    t.equal(own.events.length, 1)
    t.equal((await log()).events.length, 5, 'and the default tenant still sees only its own')
    const headers = { 'x-tenant-id': 'globex' }
    t.equal((await app.inject({ url: '/streams/order-2', headers })).statusCode, 404)
    t.equal((await app.inject({ url: '/streams/order-2/events', headers })).statusCode, 404)
    t.equal((await app.inject({ url: '/streams/order-1', headers })).json().version, 1)
    t.same((await app.inject({ url: '/streams', headers })).json().streams.map((s: { streamId: string }) => s.streamId), ['order-1'])
  })

  t.test('a malformed tenant header is a 400', async (t) => {
    for (const tenant of ['Upper', '-dash', 'a'.repeat(64), 'sp ace']) {
      const res = await app.inject({ url: '/events', headers: { 'x-tenant-id': tenant } })
      t.equal(res.statusCode, 400, tenant)
      t.equal(res.json().code, 'validation-failed')
    }
  })

  t.test('system streams are global and read through a $ filter', async (t) => {
    await append('$projection-x', { events: [event('ProjectionStarted', { projection: 'x' })] }, 'acme')
    for (const tenant of ['acme', 'globex', undefined]) {
      t.equal((await log('?streamId=$projection-', tenant)).events.length, 1)
      const res = await app.inject({ url: '/streams/$projection-x/events', headers: tenant ? { 'x-tenant-id': tenant } : {} })
      t.equal(res.json().version, 1)
    }
    t.notOk((await log('', 'acme')).events.some((e) => e.streamId.startsWith('$')), 'not mixed into a tenant’s log')
  })

  t.test('bad query values are 400', async (t) => {
    for (const query of ['?after=-1', '?limit=0', '?limit=1001', '?type=bad%20type', '?since=nope', '?after=abc']) {
      t.equal((await app.inject({ url: `/events${query}` })).statusCode, 400, query)
    }
    t.equal((await app.inject({ url: '/events?unknown=1' })).statusCode, 200, 'unknown query parameters are ignored')
  })
})

// embedded: transactions never overlap there (test/events/log-head.test.ts has the embedded case)
t.test('GET /events never skips a late commit', { skip: EMBEDDED && 'the embedded database never runs two transactions at once' }, async (t) => {
  const { app, db } = await buildTestApp(t)
  const side = await db.sql.reserve()
  t.teardown(() => side.release())
  await app.inject({ method: 'POST', url: '/streams/a-1/events', payload: { events: events(1) } })
  // the server has looked at the log since a-1 (a reader asked, or its idle watch ran)
  t.equal((await app.inject({ url: '/events' })).json().events.length, 1)
  await side`begin`
  const [held] = await side<{ position: number }[]>`
    select first_position as position from append_events('default', 'slow-1', 'any', null, ${JSON.stringify(events(1))}::text::json)`
  const late = (await app.inject({ method: 'POST', url: '/streams/fast-1/events', payload: { events: events(1) } })).json()
  t.ok(late.firstPosition > held!.position)

  const before: Page = (await app.inject({ url: '/events' })).json()
  t.same(before.events.map((e) => e.streamId), ['a-1'], 'the later commit is not served while an earlier position is open')
  t.ok(before.head < held!.position)
  await side`commit`
  // other transactions on the cluster may hold the head a moment longer: read on until fast-1 shows
  const resumed: string[] = []
  let cursor = before.next ?? before.head
  for (const deadline = Date.now() + 10_000; !resumed.includes('fast-1') && Date.now() < deadline; ) {
    const page: Page = (await app.inject({ url: `/events?after=${cursor}` })).json()
    resumed.push(...page.events.map((e) => e.streamId))
    cursor = page.next ?? page.head
  }
  t.same(resumed, ['slow-1', 'fast-1'], 'resuming from head yields the late event, then the rest')
})

import { randomUUID } from 'node:crypto'
import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { groupApi } from '../helpers/group-api.js'

const ADMIN = 'admin-key-0123456789'
const WRITE = 'write-key-0123456789'
const READ = 'read-key-01234567890'

t.test('definitions: PUT creates (201) and changes (200), source and start are fixed, DELETE, list, 404', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-1', 2)

  const created = await api.put('billing', { source: { categories: ['order'] }, ackTimeoutMs: 5000 })
  t.equal(created.statusCode, 201)
  t.match(created.json(), { name: 'billing', source: { categories: ['order'] }, start: 'beginning', ackTimeoutMs: 5000, maxDeliveries: 5, position: 0, lag: 2, inFlight: 0, parked: 0, delivered: 0, acked: 0 })
  t.ok(Date.parse(created.json().createdAt))

  const changed = await api.put('billing', { maxDeliveries: 3 })
  t.equal(changed.statusCode, 200)
  t.match(changed.json(), { ackTimeoutMs: 5000, maxDeliveries: 3, source: { categories: ['order'] } }, 'fields left out keep their values')
  t.equal((await api.put('billing', { source: { categories: ['order'] }, start: 'beginning' })).statusCode, 200, 'the same source and start are no change')

  for (const body of [{ source: { categories: ['invoice'] } }, { source: {} }, { start: 'end' }, { start: 0 }]) {
    const response = await api.put('billing', body)
    t.equal(response.statusCode, 409, JSON.stringify(body))
    t.equal(response.json().code, 'conflict')
  }
  t.match(await api.status('billing'), { maxDeliveries: 3, source: { categories: ['order'] }, start: 'beginning' }, 'a 409 changed nothing')

  const list = (await api.call('GET', '/consumer-groups')).json()
  t.same(list.groups.map((group: { name: string }) => group.name), ['billing'])
  t.same((await app.inject({ url: '/consumer-groups', headers: { 'x-tenant-id': 'other' } })).json(), { groups: [] }, 'groups belong to their tenant')
  t.equal((await app.inject({ url: '/consumer-groups/billing', headers: { 'x-tenant-id': 'other' } })).statusCode, 404)

  t.equal((await api.call('DELETE', '/consumer-groups/billing')).statusCode, 204)
  const gone = await api.call('GET', '/consumer-groups/billing')
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().code, 'consumer-group-not-found')
  t.equal((await api.call('DELETE', '/consumer-groups/billing')).statusCode, 404)
})

t.test('start: "end" and a position skip what came before', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  const first = (await api.append('order-1', 3)).json()
  t.equal((await api.put('late', { start: 'end' })).json().position, first.lastPosition)
  t.equal((await api.put('middle', { start: first.firstPosition })).json().position, first.firstPosition)
  const second = (await api.append('order-1', 1)).json()
  t.same((await api.poll('late', '?max=10')).map((event) => event.globalPosition), [second.firstPosition])
  t.same((await api.poll('middle', '?max=10')).map((event) => event.streamVersion), [2, 3, 4])
})

t.test('every route answers 404 consumer-group-not-found for an unknown group', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  const id = randomUUID()
  const calls: [('GET' | 'POST' | 'DELETE'), string, object?][] = [
    ['GET', '/consumer-groups/nope'],
    ['DELETE', '/consumer-groups/nope'],
    ['POST', '/consumer-groups/nope/poll'],
    ['POST', '/consumer-groups/nope/ack', { eventIds: [id] }],
    ['POST', '/consumer-groups/nope/nack', { eventIds: [id] }],
    ['GET', '/consumer-groups/nope/parked'],
    ['POST', '/consumer-groups/nope/parked/replay', {}],
    ['DELETE', `/consumer-groups/nope/parked/${id}`],
  ]
  for (const [method, url, body] of calls) {
    const response = await api.call(method, url, body)
    t.equal(response.statusCode, 404, `${method} ${url}`)
    t.equal(response.json().code, 'consumer-group-not-found', `${method} ${url}`)
    t.match(response.headers['content-type'], /application\/problem\+json/)
  }
})

t.test('bad input is a 400 problem that changes nothing', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-1', 2)
  t.equal((await api.put('g', { ackTimeoutMs: 2000, maxDeliveries: 2 })).statusCode, 201)
  const [leased] = await api.poll('g', '?max=1')
  const bad: [('PUT' | 'POST'), string, unknown][] = [
    ['PUT', '/consumer-groups/Bad-Name', {}],
    ['PUT', '/consumer-groups/g', { ackTimeoutMs: 999 }],
    ['PUT', '/consumer-groups/g', { maxDeliveries: 101 }],
    ['PUT', '/consumer-groups/g', { start: 'yesterday' }],
    ['PUT', '/consumer-groups/g', { start: -1 }],
    ['PUT', '/consumer-groups/g', { source: { types: [] } }],
    ['PUT', '/consumer-groups/g', { source: { categories: ['$system'] } }],
    ['PUT', '/consumer-groups/g', { source: { kinds: ['x'] } }],
    ['PUT', '/consumer-groups/g', { maxDeliveries: 3, extra: true }],
    ['POST', '/consumer-groups/g/poll?max=0', undefined],
    ['POST', '/consumer-groups/g/poll?max=1001', undefined],
    ['POST', '/consumer-groups/g/poll?waitMs=30001', undefined],
    ['POST', '/consumer-groups/g/poll?max=abc', undefined],
    ['POST', '/consumer-groups/g/ack', { eventIds: ['not-a-uuid'] }],
    ['POST', '/consumer-groups/g/ack', { eventIds: [] }],
    ['POST', '/consumer-groups/g/ack', { eventIds: [leased!.eventId], extra: 1 }],
    ['POST', '/consumer-groups/g/nack', { eventIds: [leased!.eventId], retryAfterMs: -1 }],
    ['POST', '/consumer-groups/g/nack', { eventIds: [leased!.eventId], retryAfterMs: 3600001 }],
    ['POST', '/consumer-groups/g/nack', { eventIds: [leased!.eventId], error: 5 }],
    ['POST', '/consumer-groups/g/parked/replay', { eventIds: 'all' }],
  ]
  for (const [method, url, body] of bad) {
    const response = await api.call(method, url, body)
    t.equal(response.statusCode, 400, `${method} ${url} ${JSON.stringify(body)}`)
    t.equal(response.json().code, 'validation-failed')
  }
  const malformed = await app.inject({ method: 'POST', url: '/consumer-groups/g/ack', headers: { 'content-type': 'application/json' }, payload: '{"eventIds": [' })
  t.equal(malformed.statusCode, 400)
  const wrongType = await app.inject({ method: 'POST', url: '/consumer-groups/g/ack', headers: { 'content-type': 'text/plain' }, payload: 'x' })
  t.equal(wrongType.statusCode, 415)
  t.match(await api.status('g'), { ackTimeoutMs: 2000, maxDeliveries: 2, inFlight: 1, acked: 0, delivered: 1, parked: 0 }, 'nothing changed')
  t.equal((await api.call('GET', '/consumer-groups/Bad-Name')).statusCode, 400)
})

t.test('roles: read may GET, write may poll, ack and nack, admin creates, deletes and replays', async (t) => {
  const { app } = await buildTestApp(t, { API_KEYS: `${ADMIN}:*:admin,${WRITE}:default:write,${READ}:default:read` })
  const as = (key: string) => groupApi(app, { authorization: `Bearer ${key}` })
  const [admin, write, read] = [as(ADMIN), as(WRITE), as(READ)]
  t.equal((await write.append('order-1', 1)).statusCode, 201)
  t.equal((await read.put('g')).statusCode, 403)
  t.equal((await write.put('g')).statusCode, 403)
  t.equal((await admin.put('g')).statusCode, 201)
  t.equal((await read.call('GET', '/consumer-groups/g')).statusCode, 200)
  t.equal((await read.call('GET', '/consumer-groups')).statusCode, 200)
  t.equal((await read.call('GET', '/consumer-groups/g/parked')).statusCode, 200)
  t.equal((await read.call('POST', '/consumer-groups/g/poll')).statusCode, 403)
  const [event] = await write.poll('g')
  t.equal((await read.call('POST', '/consumer-groups/g/ack', { eventIds: [event!.eventId] })).statusCode, 403)
  t.equal((await read.call('POST', '/consumer-groups/g/nack', { eventIds: [event!.eventId] })).statusCode, 403)
  t.same(await write.nack('g', { eventIds: [event!.eventId] }), { nacked: 1, ignored: 0 })
  t.equal((await write.call('POST', '/consumer-groups/g/parked/replay', {})).statusCode, 403)
  t.equal((await write.call('DELETE', `/consumer-groups/g/parked/${event!.eventId}`)).statusCode, 403)
  t.equal((await write.call('DELETE', '/consumer-groups/g')).statusCode, 403)
  t.equal((await admin.call('POST', '/consumer-groups/g/parked/replay', {})).statusCode, 200)
  t.equal((await app.inject({ url: '/consumer-groups' })).statusCode, 401)
  t.equal((await read.call('GET', '/metrics')).statusCode, 403)
  t.equal((await admin.call('DELETE', '/consumer-groups/g')).statusCode, 204)
})

t.test('/metrics carries each group\'s lag, in-flight and parked counts', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  await api.append('order-1', 3)
  await api.put('g')
  await api.poll('g', '?max=2')
  const text = (await api.call('GET', '/metrics')).body
  t.match(text, /annalist_consumer_group_lag\{tenant="default",group="g"\} 3/)
  t.match(text, /annalist_consumer_group_in_flight\{tenant="default",group="g"\} 2/)
  t.match(text, /annalist_consumer_group_parked\{tenant="default",group="g"\} 0/)
})

t.test('PUTs and DELETEs of one group racing from many clients settle like an upsert: never a 404 or a 5xx from a PUT, a list or /metrics', async (t) => {
  const { app } = await buildTestApp(t)
  const api = groupApi(app)
  const statuses = new Map<string, number>()
  const count = (key: string): void => void statuses.set(key, (statuses.get(key) ?? 0) + 1)
  const client = async (index: number): Promise<void> => {
    for (let round = 0; round < 15; round++) {
      if ((index + round) % 3 === 0) {
        const response = await app.inject({ method: 'DELETE', url: '/consumer-groups/racing' })
        count(`DELETE ${response.statusCode}`)
        t.ok([204, 404].includes(response.statusCode), `DELETE ${response.statusCode}`)
      } else {
        const response = await api.put('racing', { source: { categories: ['order'] }, maxDeliveries: 1 + (round % 5) })
        count(`PUT ${response.statusCode}`)
        if (![200, 201].includes(response.statusCode)) t.fail(`PUT ${response.statusCode} ${response.body}`)
        else t.equal(response.json().name, 'racing')
      }
    }
  }
  // lists and /metrics read every group's status while groups come and go: a vanished group is left out, never a 404
  let racing = true
  const lister = async (): Promise<void> => {
    while (racing) {
      for (const url of ['/consumer-groups', '/metrics']) {
        const response = await app.inject({ url })
        count(`GET ${url} ${response.statusCode}`)
        if (response.statusCode !== 200) t.fail(`GET ${url} ${response.statusCode} ${response.body}`)
      }
    }
  }
  const listers = [lister(), lister()]
  await Promise.all(Array.from({ length: 12 }, (_, index) => client(index)))
  racing = false
  await Promise.all(listers)
  t.ok((statuses.get('PUT 201') ?? 0) > 1, `the group was created again after deletes: ${JSON.stringify(Object.fromEntries(statuses))}`)
})

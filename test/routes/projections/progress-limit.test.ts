import t from 'tap'
import { buildTestApp } from '../../helpers/test-app.js'
import { waitFor } from '../../helpers/wait-for.js'

// Issue 18 point 8, SPEC "Details": backfill progress streams count against the per-key stream limit
// (MAX_SUBSCRIPTIONS_PER_KEY), together with GET /subscribe's.
const KEYS = { admin: 'admin-key-streams-5d0c1e27', read: 'read-key-streams-9a4b3f80', other: 'read-key-streams-1e7d2c55' }
const { app, db, services } = await buildTestApp(t, {
  API_KEYS: `${KEYS.admin}:*:admin,${KEYS.read}:default:read,${KEYS.other}:default:read`,
  MAX_SUBSCRIPTIONS_PER_KEY: '2',
})
const as = (key: string) => ({ authorization: `Bearer ${key}`, accept: 'text/event-stream' })

const definition = { source: { categories: ['tick'] }, documentId: '$.streamId', handlers: { Tick: { inc: { n: 1 } } } }
const defined = await app.inject({ method: 'PUT', url: '/projections/ticks', headers: as(KEYS.admin), payload: definition })
if (defined.statusCode !== 201) throw new Error(`PUT: ${defined.statusCode} ${defined.body}`)
// a run that stays queued (its generation is none this instance runs), so its progress streams stay open
const [run] = await db.sql<{ id: string }[]>`
  insert into projection_backfills (id, projection, request, atomic, generation, after_position, partitions)
  values (gen_random_uuid(), 'ticks', ${db.sql.json({ criteria: 'full-rebuild', atomic: false })}, false, 999, 0, 1)
  returning id`
const PROGRESS = `/projections/ticks/backfills/${run!.id}/progress`

const open = async (url: string, key: string, method: 'GET' | 'HEAD' = 'GET') => {
  const res = await app.inject({ method, url, headers: as(key), payloadAsStream: true })
  if (res.statusCode !== 200) {
    let body = ''
    for await (const chunk of res.stream()) body += String(chunk)
    return { statusCode: res.statusCode, body, close: () => undefined }
  }
  // the server side of the connection going away, as when a client disconnects
  return { statusCode: res.statusCode, body: '', close: () => res.raw.res.destroy() }
}

t.test('progress streams and subscriptions share MAX_SUBSCRIPTIONS_PER_KEY; one more of either is 429', async (t) => {
  const first = await open(PROGRESS, KEYS.read)
  t.equal(first.statusCode, 200)
  const second = await open('/subscribe', KEYS.read)
  t.equal(second.statusCode, 200)
  for (const [url, method] of [[PROGRESS, 'GET'], [PROGRESS, 'HEAD'], ['/subscribe', 'GET']] as const) {
    const refused = await open(url, KEYS.read, method)
    t.equal(refused.statusCode, 429, `${method} ${url}`)
    if (method === 'GET') t.match(JSON.parse(refused.body), { code: 'too-many-requests' })
  }
  t.equal((await open(PROGRESS, KEYS.other)).statusCode, 200, 'another key has its own count')
  // a progress stream whose client went gives its place back
  first.close()
  const again = await waitFor('a place freed', async () => {
    const attempt = await open(PROGRESS, KEYS.read)
    return attempt.statusCode === 200 && attempt
  })
  t.equal(again.statusCode, 200)
  t.equal((await open(PROGRESS, KEYS.read)).statusCode, 429)
  again.close()
  second.close()
  services.liveFeed.closeAll()
})

t.test('a progress stream that ends with its run gives its place back', async (t) => {
  await waitFor('no stream of the key open', async () => {
    const attempt = await open('/subscribe', KEYS.read)
    attempt.close()
    return attempt.statusCode === 200
  })
  const streams = [await open(PROGRESS, KEYS.read), await open(PROGRESS, KEYS.read)]
  t.same(streams.map((stream) => stream.statusCode), [200, 200])
  t.equal((await open(PROGRESS, KEYS.read)).statusCode, 429)
  t.equal((await app.inject({ method: 'DELETE', url: `/projections/ticks/backfills/${run!.id}`, headers: as(KEYS.admin) })).statusCode, 200)
  const after = await waitFor('the ended run freed both places', async () => {
    const attempt = await open('/subscribe', KEYS.read)
    return attempt.statusCode === 200 && attempt
  })
  t.equal(after.statusCode, 200)
  services.liveFeed.closeAll()
})

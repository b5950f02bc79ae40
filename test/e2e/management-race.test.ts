import t from 'tap'
import { Pool } from 'undici'
import { OpenapiContract } from '../helpers/openapi-contract.js'
import { buildTestApp } from '../helpers/test-app.js'
import { waitFor } from '../helpers/wait-for.js'

// Issue 17: every management call racing on one projection from 16 clients, while events arrive. No 5xx, every
// error a problem the contract documents for that operation; then, settled, every document counts its events
// exactly once. RACE_SEED reproduces the mix of calls.
type Json = Record<string, any>
const CLIENTS = 16
const CALLS_PER_CLIENT = 25
const STREAMS = 20
const SEED = Number(process.env.RACE_SEED ?? Date.now() % 2 ** 31)
const NAME = 'race'

const contract = await OpenapiContract.load()
const { app } = await buildTestApp(t)
const origin = await app.listen({ host: '127.0.0.1', port: 0 })
const pool = new Pool(origin, { connections: CLIENTS + 2 })
t.teardown(() => pool.destroy())

const counting = { source: { categories: ['race'] }, documentId: '$.streamId', handlers: { Hit: { inc: { n: 1 } } } }
// a changed definition that counts the same way, so whichever generation ends up live must count exactly
const changed = { ...counting, handlers: { Hit: { inc: { n: 1 }, set: { last: '$.data.i' } } } }

interface Answer {
  status: number
  body: Json | null
  contentType: string
}

const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
  const response = await pool.request({
    method: method as 'GET',
    path,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.body.text()
  return { status: response.statusCode, body: text ? (JSON.parse(text) as Json) : null, contentType: String(response.headers['content-type'] ?? '') }
}

// xorshift32: the same seed gives the same mix of calls
const random = (seed: number) => {
  let state = seed || 1
  return (n: number): number => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) % n
  }
}

const base = `/projections/${NAME}`
const CALLS: [string, (pick: (n: number) => number) => Promise<[string, string, Answer]>][] = [
  ['stop', async () => ['post', `${base}/stop`, await call('POST', `${base}/stop`)]],
  ['start', async () => ['post', `${base}/start`, await call('POST', `${base}/start`)]],
  ['restart', async () => ['post', `${base}/restart`, await call('POST', `${base}/restart`)]],
  ['skip', async () => ['post', `${base}/skip`, await call('POST', `${base}/skip`)]],
  ['reset', async () => ['post', `${base}/reset`, await call('POST', `${base}/reset`)]],
  ['rollback', async () => ['post', `${base}/rollback`, await call('POST', `${base}/rollback`)]],
  ['snapshot', async () => ['post', `${base}/snapshots`, await call('POST', `${base}/snapshots`)]],
  ['rebuild', async (pick) => ['post', `${base}/backfills`, await call('POST', `${base}/backfills`, { criteria: 'full-rebuild', atomic: pick(2) === 0 })]],
  ['cancel', async () => {
    const list = await call('GET', `${base}/backfills`)
    const id = list.body?.backfills?.find((backfill: Json) => ['queued', 'running', 'swapping'].includes(backfill.status))?.id ?? list.body?.backfills?.[0]?.id
    if (!id) return ['get', `${base}/backfills`, list]
    return ['delete', `${base}/backfills/{id}`, await call('DELETE', `${base}/backfills/${id}`)]
  }],
  ['put', async (pick) => ['put', base, await call('PUT', base, pick(2) === 0 ? counting : changed)]],
  ['delete', async () => ['delete', base, await call('DELETE', base)]],
  ['get', async () => ['get', base, await call('GET', base)]],
  ['query', async () => ['post', `${base}/query`, await call('POST', `${base}/query`, { limit: 5 })]],
  ['restore', async () => {
    const list = await call('GET', `${base}/snapshots`)
    const id = list.body?.snapshots?.[0]?.id
    if (!id) return ['get', `${base}/snapshots`, list]
    return ['post', `${base}/snapshots/{id}/restore`, await call('POST', `${base}/snapshots/${id}/restore`)]
  }],
]

const templated = (path: string): string =>
  path.replace(`/projections/${NAME}`, '/projections/{name}')

const problemsOf = (label: string, method: string, path: string, answer: Answer): string[] => {
  const found: string[] = []
  if (answer.status >= 500) found.push(`${label}: ${answer.status} ${JSON.stringify(answer.body)}`)
  if (!contract.response(templated(path), method, answer.status)) found.push(`${label}: status ${answer.status} is not documented for ${method} ${templated(path)}`)
  if (answer.status >= 400 && !(answer.contentType.startsWith('application/problem+json') && typeof answer.body?.code === 'string')) {
    found.push(`${label}: a ${answer.status} that is not a problem: ${JSON.stringify(answer.body)}`)
  }
  return found
}

const streams = Array.from({ length: STREAMS }, (_, i) => `race-${i}`)
const appended = new Map(streams.map((id) => [id, 0]))

t.test(`${CLIENTS} clients × ${CALLS_PER_CLIENT} racing management calls on one projection: no 5xx, only documented problems`, async (t) => {
  t.comment(`RACE_SEED=${SEED}`)
  t.equal((await call('PUT', base, counting)).status, 201)
  let appending = true
  const appender = (async () => {
    for (let round = 0; appending || round < 5; round++) {
      const id = streams[round % STREAMS]!
      const res = await call('POST', `/streams/${id}/events`, { events: [{ type: 'Hit', data: { i: round } }, { type: 'Hit', data: { i: round } }] })
      if (res.status !== 201) throw new Error(`append failed: ${res.status} ${JSON.stringify(res.body)}`)
      appended.set(id, appended.get(id)! + 2)
    }
  })()
  const failures: string[] = []
  const seen = new Map<string, Set<number>>()
  await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
    const pick = random(SEED + client * 7919)
    for (let i = 0; i < CALLS_PER_CLIENT; i++) {
      const [label, act] = CALLS[pick(CALLS.length)]!
      const [method, path, answer] = await act(pick)
      failures.push(...problemsOf(label, method, path, answer))
      seen.set(label, (seen.get(label) ?? new Set()).add(answer.status))
    }
  }))
  appending = false
  await appender
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...seen].map(([label, statuses]) => [label, [...statuses].sort()])))}`)
  t.same(failures.slice(0, 20), [], `${failures.length} failing calls of ${CLIENTS * CALLS_PER_CLIENT} (RACE_SEED=${SEED})`)
})

t.test('two PUTs creating one name at once: one 201, the other 200; differing definitions: one wins, the other rebuilds', async (t) => {
  for (const [second, label] of [[counting, 'the same definition'], [changed, 'a changed definition']] as const) {
    const name = `created-${label.length}`
    const answers = await Promise.all([call('PUT', `/projections/${name}`, counting), call('PUT', `/projections/${name}`, second)])
    t.same(answers.map((answer) => answer.status).sort(), [200, 201], `${label}: ${JSON.stringify(answers.map((a) => a.body?.detail ?? a.status))}`)
  }
})

t.test('settled (the same definition, started, a full rebuild), every document counts its events exactly once', async (t) => {
  // whatever the race left: no run in progress, the counting definition, running, then a full rebuild
  await waitFor('no backfill in progress', async () => {
    const list = await call('GET', `${base}/backfills`)
    if (list.status === 404) return true
    const active = list.body!.backfills.filter((backfill: Json) => ['queued', 'running', 'swapping'].includes(backfill.status))
    for (const backfill of active) await call('DELETE', `${base}/backfills/${backfill.id}`)
    return active.length === 0
  }, { timeoutMs: 30_000, intervalMs: 50 })
  const put = await call('PUT', base, counting)
  t.ok([200, 201].includes(put.status), `PUT answers ${put.status}`)
  t.equal((await call('POST', `${base}/start`)).status, 200)
  const rebuild = await waitFor('a full rebuild accepted', async () => {
    const res = await call('POST', `${base}/backfills`, { criteria: 'full-rebuild' })
    return res.status === 202 ? res.body! : undefined
  }, { timeoutMs: 60_000, intervalMs: 100 })
  await waitFor('the rebuild completed', async () => (await call('GET', `${base}/backfills/${rebuild.id}`)).body?.status === 'completed', { timeoutMs: 60_000, intervalMs: 50 })
  const total = [...appended.values()].reduce((sum, n) => sum + n, 0)
  await waitFor('the projection caught up', async () => {
    const view = (await call('GET', base)).body!
    return view.status === 'running' && view.lag === 0 && view.documents === STREAMS
  }, { timeoutMs: 60_000, intervalMs: 50 })
  const query = await call('POST', `${base}/query`, { limit: 1000 })
  const counts = Object.fromEntries(query.body!.documents.map((document: Json) => [document.id, document.document.n]))
  t.same(counts, Object.fromEntries(appended), `${total} events over ${STREAMS} streams, each counted once`)
})

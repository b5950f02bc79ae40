import { readFileSync, writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { testDatabase } from '../helpers/test-database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'

// Issue 16, point 5: 600 appends of one 1 MB event each, then `GET /events?limit=1000` answered 500 after 5.7 s
// (RangeError: Invalid string length, the page built as one ~600 MB string) and the server's RSS went from
// 211 MB to 1.27 GB. Here with smaller sizes, to keep the file within a minute or so on two cores, and the same
// shape: events near MAX_BODY_BYTES, and a page's count × size (1000 × 510 KiB, capped by the 100 events there
// are: 50 MiB) 25 times MAX_PAGE_BYTES. Every read path runs with its largest page, and each must deliver every
// event exactly once, in order, while the server's peak RSS stays bounded.
const MAX_BODY_BYTES = 512 * 1024
const MAX_PAGE_BYTES = 2 * 1024 * 1024
const EVENTS = 100
const PAD = MAX_BODY_BYTES - 2048
const STREAM = 'big-1'
// The server runs with a 128 MiB V8 old space, as an operator bounding its memory would: without a limit V8 lets
// garbage grow the heap as far as it likes before collecting, so RSS would measure the collector, not the server.
// Within it, the server holds a few pages at a time (the rows being read, the JSON built from them, and the page
// the socket is still writing, as load and SSE read the next page meanwhile), each at most MAX_PAGE_BYTES or one
// event: measured +19 to +38 MiB per path. Before the byte budget this test's first /events read killed the server
// (heap out of memory); with no heap limit its RSS grew by 290 to 720 MiB per path.
const HEAP_MIB = 128
const RSS_BOUND_MIB = 96

interface Event {
  globalPosition: number
  streamVersion: number
  data: { n: number; pad: string }
}

const range = (count: number): number[] => Array.from({ length: count }, (_, index) => index + 1)

const statusOf = (pid: number): string => readFileSync(`/proc/${pid}/status`, 'utf8')
const kib = (status: string, field: 'VmRSS' | 'VmHWM'): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1])
// clear_refs 5 resets the peak (VmHWM) to the current RSS, so each path's peak is its own
const resetPeak = (pid: number): void => writeFileSync(`/proc/${pid}/clear_refs`, '5')

const getJson = async <T>(server: ServerProcess, path: string): Promise<T> => {
  const response = await server.request('GET', path)
  if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status}: ${response.text.slice(0, 300)}`)
  return response.body as T
}

// Follows `next` from the first page to the last; every page holds at least one event and no more than the budget.
const readPages = async (t: Test, server: ServerProcess, first: string, nextPath: (next: number) => string): Promise<Event[]> => {
  const seen: Event[] = []
  let path = first
  for (;;) {
    const page = await getJson<{ events: Event[]; next: number | null }>(server, path)
    const bytes = page.events.reduce((sum, event) => sum + Buffer.byteLength(JSON.stringify(event.data)), 0)
    if (page.events.length === 0 || (page.events.length > 1 && bytes > MAX_PAGE_BYTES)) t.fail(`${path}: ${page.events.length} events, ${bytes} bytes`)
    seen.push(...page.events.map(({ globalPosition, streamVersion, data }) => ({ globalPosition, streamVersion, data: { n: data.n, pad: '' } })))
    if (page.next === null) return seen
    path = nextPath(page.next)
  }
}

// Reads `GET /subscribe` until `count` events arrived; returns their ids and data.n in arrival order.
const subscribe = async (server: ServerProcess, count: number): Promise<{ id: number; n: number }[]> => {
  const response = await server.pool.request({ method: 'GET', path: '/subscribe?after=0', headers: { accept: 'text/event-stream' } })
  if (response.statusCode !== 200) throw new Error(`subscribe answered ${response.statusCode}`)
  const received: { id: number; n: number }[] = []
  let rest = ''
  for await (const chunk of response.body) {
    rest += (chunk as Buffer).toString('utf8')
    let end: number
    while ((end = rest.indexOf('\n\n')) >= 0) {
      const frame = rest.slice(0, end)
      rest = rest.slice(end + 2)
      const id = /^id: (\d+)$/m.exec(frame)
      const data = /^data: (.*)$/m.exec(frame)
      if (id && data) received.push({ id: Number(id[1]), n: (JSON.parse(data[1]!) as Event).data.n })
    }
    if (received.length >= count) break
  }
  response.body.destroy()
  return received
}

t.setTimeout(300_000)

t.test('events near MAX_BODY_BYTES: every read path with its largest page delivers each event once, in order, within bounded memory', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, {
    DATABASE_URL: db.url!,
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    MAX_PAGE_BYTES: String(MAX_PAGE_BYTES),
    NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB}`,
  })
  const started = Date.now()
  const pad = 'x'.repeat(PAD)
  for (const n of range(EVENTS)) {
    const response = await server.request('POST', `/streams/${STREAM}/events`, { body: { events: [{ type: 'Big', data: { n, pad } }] } })
    if (response.status !== 201) throw new Error(`append ${n}: ${response.status} ${response.text}`)
  }
  let positions: number[] = []
  t.comment(`appends took ${Date.now() - started} ms`)
  const baseline = kib(statusOf(server.pid), 'VmRSS')
  t.comment(`server RSS after ${EVENTS} appends of ${Math.round(PAD / 1024)} KiB: ${Math.round(baseline / 1024)} MiB`)

  // Runs one path, then checks the peak RSS it caused against the bound.
  const path = async (name: string, read: () => Promise<void>): Promise<void> => {
    resetPeak(server.pid)
    await read()
    const peak = kib(statusOf(server.pid), 'VmHWM')
    const grew = Math.round((peak - baseline) / 1024)
    t.comment(`${name}: peak RSS ${Math.round(peak / 1024)} MiB (${grew >= 0 ? '+' : ''}${grew} MiB)`)
    t.ok(peak - baseline <= RSS_BOUND_MIB * 1024, `${name}: the server's peak RSS stays within ${RSS_BOUND_MIB} MiB of its baseline (+${grew} MiB)`)
  }

  await path('GET /events?limit=1000', async () => {
    const seen = await readPages(t, server, '/events?limit=1000', (next) => `/events?limit=1000&after=${next}`)
    t.same(seen.map((event) => event.data.n), range(EVENTS), '/events: every event once, in order')
    positions = seen.map((event) => event.globalPosition)
    t.ok(seen.length === EVENTS, 'and no page was a 500')
  })
  await path('stream forward', async () => {
    const seen = await readPages(t, server, `/streams/${STREAM}/events?limit=1000`, (next) => `/streams/${STREAM}/events?limit=1000&from=${next}`)
    t.same(seen.map((event) => event.streamVersion), range(EVENTS), 'forward: every version once, in order')
  })
  await path('stream backward', async () => {
    const base = `/streams/${STREAM}/events?limit=1000&direction=backward`
    const seen = await readPages(t, server, base, (next) => `${base}&from=${next}`)
    t.same(seen.map((event) => event.streamVersion), range(EVENTS).reverse(), 'backward: every version once, in order')
  })
  await path('load', async () => {
    const loaded = await getJson<{ version: number; events: Event[] }>(server, `/streams/${STREAM}/load`)
    t.equal(loaded.version, EVENTS)
    t.same(loaded.events.map((event) => event.data.n), range(EVENTS), 'load: every event once, in order')
    t.ok(loaded.events.every((event) => event.data.pad.length === PAD), 'load: every event whole')
  })
  await path('subscribe replay', async () => {
    const received = await subscribe(server, EVENTS)
    t.same(received.map((event) => event.id), positions, 'subscribe: every position once, in order')
    t.same(received.map((event) => event.n), range(EVENTS))
  })

  const projection = { source: { categories: ['big'] }, documentId: '$.streamId', handlers: { Big: { push: { seen: '$.data.n' } } } }
  await path('projection catch-up', async () => {
    const created = await server.request('PUT', '/projections/bigs', { body: projection })
    t.equal(created.status, 201)
    const document = await getJson<{ document: { seen: number[] } }>(server, `/projections/bigs/documents/${STREAM}?waitFor=${positions.at(-1)}&timeoutMs=30000`)
    t.same(document.document.seen, range(EVENTS), 'the projection applied every event once, in order')
  })
  await path('atomic backfill', async () => {
    const requested = await server.request('POST', '/projections/bigs/backfills', { body: { criteria: 'full-rebuild', atomic: true } })
    t.equal(requested.status, 202)
    const id = (requested.body as { id: string }).id
    const done = await waitFor('the rebuild to complete', async () => {
      const view = await getJson<{ status: string; processed: number }>(server, `/projections/bigs/backfills/${id}`)
      return ['completed', 'failed', 'cancelled'].includes(view.status) && view
    }, { timeoutMs: 60_000, intervalMs: 50 })
    t.match(done, { status: 'completed', processed: EVENTS })
    const document = await getJson<{ document: { seen: number[] } }>(server, `/projections/bigs/documents/${STREAM}`)
    t.same(document.document.seen, range(EVENTS), 'the rebuilt generation holds every event once, in order')
  })
  t.equal((await server.request('GET', '/health/live')).status, 200)
})

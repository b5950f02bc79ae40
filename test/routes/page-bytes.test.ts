import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { streamId } from '../helpers/fixtures.js'
import { putDocuments, seedProjection } from '../helpers/document-seeds.js'

// SPEC "Details": a page also stops early once it holds MAX_PAGE_BYTES of events (always at least one event;
// `next` continues from there). An event's bytes are its data and metadata text, stream id and type.
const MAX_PAGE_BYTES = 2048
const { app, db } = await buildTestApp(t, { MAX_PAGE_BYTES: String(MAX_PAGE_BYTES), SNAPSHOT_EVERY: '10' })

interface Event {
  globalPosition: number
  streamId: string
  streamVersion: number
  type: string
  data: { n: number; pad: string }
  metadata: Record<string, unknown>
}
interface Page {
  events: Event[]
  next: number | null
}

const TYPE = 'Padded'
const bytesOf = (e: Event): number =>
  Buffer.byteLength(JSON.stringify(e.data)) + Buffer.byteLength(JSON.stringify(e.metadata)) + Buffer.byteLength(e.streamId) + Buffer.byteLength(e.type)
// each event about 600 bytes: three fit in a page, the fourth does not
const padded = (n: number, size = 560) => ({ type: TYPE, data: { n, pad: 'x'.repeat(size) } })

const append = async (id: string, list: object[]) => {
  const res = await app.inject({ method: 'POST', url: `/streams/${id}/events`, payload: { events: list } })
  if (res.statusCode !== 201) throw new Error(`append answered ${res.statusCode}: ${res.body}`)
}
const get = async <T>(url: string): Promise<T> => {
  const res = await app.inject({ url })
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body}`)
  return res.json() as T
}

const checkBudget = (t: Test, page: Page): void => {
  const bytes = page.events.reduce((sum, e) => sum + bytesOf(e), 0)
  t.ok(page.events.length >= 1, 'at least one event')
  t.ok(page.events.length === 1 || bytes <= MAX_PAGE_BYTES, `a page of ${page.events.length} holds ${bytes} bytes`)
}

const id = streamId('padded')
// 40 events of ~600 bytes, with one larger than the whole budget in the middle
await append(id, Array.from({ length: 20 }, (_, n) => padded(n + 1)))
await append(id, [padded(21, 5000)])
await append(id, Array.from({ length: 19 }, (_, n) => padded(n + 22)))

t.test('a stream read forward stops at the byte budget and next continues exactly from there', async (t) => {
  const versions: number[] = []
  let from = 1
  let pages = 0
  for (;;) {
    const page = await get<Page>(`/streams/${id}/events?from=${from}&limit=1000`)
    checkBudget(t, page)
    pages += 1
    t.equal(page.events[0]!.streamVersion, from, 'the page starts where next said')
    versions.push(...page.events.map((e) => e.streamVersion))
    if (page.next === null) break
    t.equal(page.next, page.events.at(-1)!.streamVersion + 1)
    from = page.next
  }
  t.same(versions, Array.from({ length: 40 }, (_, i) => i + 1), 'every version once, in order')
  t.ok(pages >= 14, `${pages} pages: three events each, the large one alone`)
  const large = await get<Page>(`/streams/${id}/events?from=21&limit=1000`)
  t.same(large.events.map((e) => e.streamVersion), [21], 'an event larger than the budget is a page on its own')
  t.equal(large.next, 22)
})

t.test('a stream read backward stops at the byte budget too', async (t) => {
  const versions: number[] = []
  let query = '?direction=backward&limit=1000'
  for (;;) {
    const page = await get<Page>(`/streams/${id}/events${query}`)
    checkBudget(t, page)
    versions.push(...page.events.map((e) => e.streamVersion))
    if (page.next === null) break
    t.equal(page.next, page.events.at(-1)!.streamVersion - 1)
    query = `?direction=backward&limit=1000&from=${page.next}`
  }
  t.same(versions, Array.from({ length: 40 }, (_, i) => 40 - i))
})

t.test('GET /events stops at the byte budget, filtered or not, and after=next visits each event once', async (t) => {
  for (const filter of ['', `&type=${TYPE}`, `&streamId=${id}`]) {
    const seen: number[] = []
    let after = 0
    for (;;) {
      const page = await get<Page & { head: number }>(`/events?after=${after}&limit=1000${filter}`)
      checkBudget(t, page)
      seen.push(...page.events.map((e) => e.data.n))
      if (page.next === null) break
      t.equal(page.next, page.events.at(-1)!.globalPosition)
      after = page.next
    }
    t.same(seen, Array.from({ length: 40 }, (_, i) => i + 1), `every event once, in order (${filter || 'no filter'})`)
  }
})

t.test('a page that is full by count at the head has next null', async (t) => {
  const other = streamId('counted')
  await append(other, [padded(1, 10), padded(2, 10)])
  const page = await get<Page>(`/streams/${other}/events?limit=2`)
  t.equal(page.events.length, 2)
  t.equal(page.next, null)
})

t.test('load returns every event after the snapshot whatever the budget, written a page at a time', async (t) => {
  const loaded = await get<{ streamId: string; version: number; snapshot: unknown; events: Event[]; snapshotDue: boolean }>(`/streams/${id}/load`)
  t.same(Object.keys(loaded), ['streamId', 'version', 'snapshot', 'events', 'snapshotDue'], 'the SPEC shape, in order')
  t.match(loaded, { streamId: id, version: 40, snapshot: null, snapshotDue: true })
  t.same(loaded.events.map((e) => e.streamVersion), Array.from({ length: 40 }, (_, i) => i + 1))
  t.equal(loaded.events[20]!.data.pad.length, 5000, 'events come back whole')

  const put = await app.inject({ method: 'PUT', url: `/streams/${id}/snapshots/35`, payload: { state: { at: 35 } } })
  t.equal(put.statusCode, 201)
  const tail = await get<{ snapshot: { version: number }; events: Event[]; snapshotDue: boolean }>(`/streams/${id}/load`)
  t.match(tail, { snapshot: { version: 35, state: { at: 35 } }, snapshotDue: false })
  t.same(tail.events.map((e) => e.streamVersion), [36, 37, 38, 39, 40])

  const upTo = await get<{ version: number; events: Event[] }>(`/streams/${id}/load?untilVersion=20`)
  t.equal(upTo.version, 20)
  t.same(upTo.events.map((e) => e.streamVersion), Array.from({ length: 20 }, (_, i) => i + 1))

  const missing = await app.inject({ url: `/streams/${streamId('none')}/load` })
  t.equal(missing.statusCode, 404, 'a missing stream is still a problem response')
  t.equal(missing.headers['content-type'], 'application/problem+json; charset=utf-8')
})

t.test('a page of documents stops at the byte budget too, on GET …/documents and POST …/query, and next visits each once', async (t) => {
  await seedProjection(db.sql, 'padded')
  // 30 documents of ~600 bytes, one of them larger than the whole budget
  const documents = Array.from({ length: 30 }, (_, n) => ({ id: `d${String(n).padStart(2, '0')}`, document: { n, pad: 'y'.repeat(n === 12 ? 5000 : 560) } }))
  await putDocuments(db.sql, 'padded', documents)
  interface DocumentPage {
    documents: { id: string; document: { n: number; pad: string } }[]
    next: string | null
  }
  const read = async (page: (cursor: string | undefined) => Promise<DocumentPage>): Promise<string[]> => {
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const result = await page(cursor)
      const bytes = result.documents.reduce((sum, d) => sum + Buffer.byteLength(JSON.stringify(d.document)), 0)
      t.ok(result.documents.length === 1 || bytes <= MAX_PAGE_BYTES, `a page of ${result.documents.length} documents holds ${bytes} bytes`)
      seen.push(...result.documents.map((d) => d.id))
      cursor = result.next ?? undefined
      pages += 1
    } while (cursor !== undefined && pages < 100)
    t.ok(pages >= 10, `${pages} pages: the budget, not the limit, ended them`)
    return seen
  }
  const ids = documents.map((d) => d.id)
  const got = await read((cursor) => get(`/projections/padded/documents?limit=1000${cursor ? `&cursor=${cursor}` : ''}`))
  t.same(got, ids, 'GET: every document once, in id order')
  const byN = await read(async (cursor) => {
    const res = await app.inject({ method: 'POST', url: '/projections/padded/query', payload: { limit: 1000, orderBy: [{ path: 'n', direction: 'desc' }], ...(cursor ? { cursor } : {}) } })
    return res.json() as DocumentPage
  })
  t.same(byN, [...ids].reverse(), 'POST …/query ordered by n descending: every document once, in order')
  const whole = await get<DocumentPage>('/projections/padded/documents?limit=1000&filter={"n":12}')
  t.equal(whole.documents[0]!.document.pad.length, 5000, 'a document larger than the budget comes whole, alone')
})

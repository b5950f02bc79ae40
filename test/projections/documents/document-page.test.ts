import t from 'tap'
import { queryDocuments } from '../../../src/projections/documents/documents.js'
import { pageQuery } from '../../../src/projections/documents/document-page.js'
import { decodeCursor, encodeCursor, sortKeys, type DocumentQueryInput } from '../../../src/projections/documents/document-query.js'
import { putDocuments, seedProjection } from '../../helpers/document-seeds.js'
import { testDatabase } from '../../helpers/test-database.js'

// A page of documents read as chunks (document-page.ts) must be exactly the page one read makes: the same
// documents, the same next, for every order, limit, byte budget and cursor.
const CHUNK_BYTES = 1000
const { sql } = await testDatabase(t)
await seedProjection(sql, 'sized')
const SIZES = [10, 400, 900, 1500, 3000, 50, 700, 980, 20, 2200, 600, 600, 600, 5, 4000, 300, 300, 300, 300, 1200]
await putDocuments(sql, 'sized', Array.from({ length: 40 }, (_, n) => ({ id: `d${String(n).padStart(2, '0')}`, document: { n, group: n % 3, pad: 'x'.repeat(SIZES[n % SIZES.length]!) } })))

// The page as one read of the page query: the ids and the next cursor.
const oneRead = async (query: DocumentQueryInput, maxBytes: number): Promise<{ ids: string[]; next: string | null }> => {
  const keys = sortKeys(query.orderBy)
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, keys)
  const rows = await sql<{ id: string; sortKeys: string; following: string | null }[]>`${pageQuery(sql, 'default', 'sized', query, query.limit ?? 100, maxBytes, after)}`
  const last = rows.at(-1)
  return { ids: rows.map((row) => row.id), next: last?.following ? encodeCursor(keys, last.sortKeys, last.id) : null }
}

t.test('a page of documents read as chunks is the page read at once, page after page', async (t) => {
  const orders: DocumentQueryInput[] = [{}, { orderBy: [{ path: 'group' }, { path: 'n', direction: 'desc' }] }, { where: [{ path: 'group', op: 'ne', value: 1 }] }]
  let pages = 0
  for (const order of orders) {
    for (const limit of [1, 3, 7, 1000]) {
      for (const maxBytes of [500, 2500, 6000, 100_000]) {
        let cursor: string | undefined
        do {
          const query = { ...order, limit, cursor }
          const once = await oneRead(query, maxBytes)
          const chunked = await queryDocuments(sql, 'default', 'sized', query, maxBytes, CHUNK_BYTES)
          const ids = chunked.documents.map((d) => d.id)
          if (JSON.stringify(ids) !== JSON.stringify(once.ids) || chunked.next !== once.next) t.fail(`chunks differ from one read: ${JSON.stringify({ ...query, maxBytes })}`, { once: once.ids, chunks: ids })
          cursor = once.next ?? undefined
          pages += 1
        } while (cursor !== undefined)
      }
    }
  }
  t.pass(`${pages} pages alike`)
})

t.test('with count the page is one read in the count’s snapshot, whatever the chunk size', async (t) => {
  const page = await queryDocuments(sql, 'default', 'sized', { limit: 1000, count: true }, 100_000, CHUNK_BYTES)
  t.equal(page.count, 40)
  t.equal(page.documents.length, 40)
  t.equal(page.next, null)
})

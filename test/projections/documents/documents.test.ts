import t, { type Test } from 'tap'
import { pageQuery } from '../../../src/projections/documents/document-page.js'
import { getDocument, queryDocuments } from '../../../src/projections/documents/documents.js'
import type { DocumentQuery, OrderKey, StoredDocument, WhereClause } from '../../../src/projections/schemas.js'
import { Problem } from '../../../src/problems.js'
import type { Sql } from '../../../src/db/connect.js'
import { deleteDocuments, putDocuments, seedProjection } from '../../helpers/document-seeds.js'
import { testDatabase } from '../../helpers/test-database.js'

const { sql } = await testDatabase(t)

const ids = async (name: string, query: DocumentQuery, tenant = 'default'): Promise<string[]> =>
  (await queryDocuments(sql, tenant, name, query)).documents.map((document) => document.id)

// every page, following next, as one list; `between` runs after each page
const allPages = async (name: string, query: DocumentQuery, between: (page: number) => Promise<void> = async () => {}): Promise<StoredDocument[]> => {
  const seen: StoredDocument[] = []
  let cursor: string | undefined
  for (let page = 0; page < 1000; page += 1) {
    const result = await queryDocuments(sql, 'default', name, { ...query, cursor })
    seen.push(...result.documents)
    if (result.next === null) return seen
    cursor = result.next
    await between(page)
  }
  throw new Error('paging did not end')
}

const pagedIds = async (name: string, query: DocumentQuery): Promise<string[]> => (await allPages(name, query)).map((document) => document.id)

const problemCode = async (promise: Promise<unknown>): Promise<string | undefined> =>
  promise.then(() => undefined, (error: unknown) => (error instanceof Problem ? error.code : `not a problem: ${String(error)}`))

await seedProjection(sql, 'orders')
await putDocuments(sql, 'orders', [
  { id: 'o1', document: { status: 'placed', total: 10, address: { city: 'berlin' }, tags: ['a'], name: 'alice' } },
  { id: 'o2', document: { status: 'shipped', total: 25.5, address: { city: 'paris' }, name: 'bob' } },
  { id: 'o3', document: { status: 'placed', total: 7, address: { city: 'bern' } } },
  { id: 'o4', document: { status: 'placed', total: '10' } },
  { id: 'o5', document: { status: null, total: 10, address: { city: 'bern' }, name: 'alfred' } },
  { id: 'o6', document: {} },
  { id: 'o1', document: { status: 'placed', total: 999 }, tenant: 'acme' },
])

t.test('every where operator matches as documented, missing fields reading as null', async (t) => {
  const cases: [WhereClause, string[]][] = [
    [{ path: 'total', op: 'eq', value: 10 }, ['o1', 'o5']],
    [{ path: 'total', op: 'eq', value: '10' }, ['o4']],
    [{ path: 'status', op: 'eq', value: null }, ['o5', 'o6']],
    [{ path: 'address', op: 'eq', value: { city: 'paris' } }, ['o2']],
    [{ path: 'tags', op: 'eq', value: ['a'] }, ['o1']],
    [{ path: 'tags.0', op: 'eq', value: 'a' }, ['o1']],
    [{ path: 'address.city', op: 'eq', value: 'bern' }, ['o3', 'o5']],
    [{ path: 'status', op: 'ne', value: 'placed' }, ['o2', 'o5', 'o6']],
    [{ path: 'total', op: 'gt', value: 10 }, ['o2']],
    [{ path: 'total', op: 'gte', value: 10 }, ['o1', 'o2', 'o5']],
    [{ path: 'total', op: 'lt', value: 10 }, ['o3']],
    [{ path: 'total', op: 'lte', value: 10 }, ['o1', 'o3', 'o5']],
    [{ path: 'total', op: 'gt', value: '1' }, ['o4']],
    [{ path: 'total', op: 'lt', value: 26 }, ['o1', 'o2', 'o3', 'o5']],
    [{ path: 'status', op: 'in', value: ['shipped', null] }, ['o2', 'o5', 'o6']],
    [{ path: 'total', op: 'in', value: [7, '10'] }, ['o3', 'o4']],
    [{ path: 'total', op: 'in', value: [] }, []],
    [{ path: 'name', op: 'exists', value: true }, ['o1', 'o2', 'o5']],
    [{ path: 'name', op: 'exists', value: false }, ['o3', 'o4', 'o6']],
    [{ path: 'status', op: 'exists', value: false }, ['o6']],
    [{ path: 'address.city', op: 'exists', value: true }, ['o1', 'o2', 'o3', 'o5']],
    [{ path: 'name', op: 'prefix', value: 'al' }, ['o1', 'o5']],
    [{ path: 'address.city', op: 'prefix', value: 'ber' }, ['o1', 'o3', 'o5']],
    [{ path: 'total', op: 'prefix', value: '1' }, ['o4']],
  ]
  for (const [clause, expected] of cases) {
    t.same(await ids('orders', { where: [clause] }), expected, `${clause.path} ${clause.op} ${JSON.stringify(clause.value)}`)
  }
  t.same(await ids('orders', { where: [{ path: 'status', op: 'eq', value: 'placed' }, { path: 'total', op: 'gte', value: 10 }] }), ['o1'], 'clauses combine with AND')
})

t.test('filter is JSON containment, and combines with where', async (t) => {
  t.same(await ids('orders', { filter: { status: 'placed' } }), ['o1', 'o3', 'o4'])
  t.same(await ids('orders', { filter: { address: { city: 'bern' } } }), ['o3', 'o5'])
  t.same(await ids('orders', { filter: { tags: ['a'] } }), ['o1'])
  t.same(await ids('orders', { filter: {} }), ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'])
  t.same(await ids('orders', { filter: { status: 'placed' }, where: [{ path: 'total', op: 'lt', value: 10 }] }), ['o3'])
})

t.test('reads are scoped to the tenant', async (t) => {
  t.same(await ids('orders', {}, 'acme'), ['o1'])
  t.same(await ids('orders', { where: [{ path: 'total', op: 'eq', value: 999 }] }), [], 'default sees nothing of acme')
  t.same(await ids('orders', {}, 'nobody'), [])
  t.equal((await getDocument(sql, 'acme', 'orders', 'o1')).document.document.total, 999)
  t.equal((await getDocument(sql, 'default', 'orders', 'o1')).document.document.total, 10)
  t.equal(await problemCode(getDocument(sql, 'acme', 'orders', 'o2')), 'document-not-found')
})

t.test('a missing projection or document is a problem', async (t) => {
  t.equal(await problemCode(getDocument(sql, 'default', 'nope', 'o1')), 'projection-not-found')
  t.equal(await problemCode(queryDocuments(sql, 'default', 'nope', {})), 'projection-not-found')
  t.equal(await problemCode(queryDocuments(sql, 'default', 'nope', { count: true })), 'projection-not-found')
  t.equal(await problemCode(getDocument(sql, 'default', 'orders', 'o9')), 'document-not-found')
})

t.test('only the live generation is read, and a swap moves every read at once', async (t) => {
  await seedProjection(sql, 'swapped')
  await putDocuments(sql, 'swapped', [{ id: 'x', document: { gen: 1 }, version: 3 }])
  await sql`insert into projection_generations (projection, generation, definition_version, state) values ('swapped', 2, 2, 'building')`
  await putDocuments(sql, 'swapped', [{ id: 'x', document: { gen: 2 }, version: 3 }, { id: 'y', document: { gen: 2 } }], 2)
  t.same(await ids('swapped', {}), ['x'], 'a building generation is invisible')
  t.match(await getDocument(sql, 'default', 'swapped', 'x'), { generation: 1, document: { document: { gen: 1 }, version: 3 } })
  await sql`update projections set live_generation = 2 where name = 'swapped'`
  t.same(await ids('swapped', {}), ['x', 'y'])
  t.match(await getDocument(sql, 'default', 'swapped', 'x'), { generation: 2, document: { document: { gen: 2 }, version: 3 } })
})

t.test('multi-key orderBy with mixed directions puts missing fields first ascending, last descending', async (t) => {
  await seedProjection(sql, 'cities')
  await putDocuments(sql, 'cities', [
    { id: 'a', document: { city: 'oslo', total: 3 } },
    { id: 'b', document: { city: 'lyon', total: 5 } },
    { id: 'c', document: { total: 4 } },
    { id: 'd', document: { city: 'lyon', total: 9 } },
    { id: 'e', document: { city: 'oslo' } },
    { id: 'f', document: { city: 'lyon', total: 5 } },
  ])
  const cityAscTotalDesc = [{ path: 'city' }, { path: 'total', direction: 'desc' as const }]
  const cityDescTotalAsc = [{ path: 'city', direction: 'desc' as const }, { path: 'total', direction: 'asc' as const }]
  t.same(await ids('cities', { orderBy: cityAscTotalDesc }), ['c', 'd', 'b', 'f', 'a', 'e'])
  t.same(await ids('cities', { orderBy: cityDescTotalAsc }), ['e', 'a', 'b', 'f', 'd', 'c'])
  for (const limit of [1, 2, 4]) {
    t.same(await pagedIds('cities', { orderBy: cityAscTotalDesc, limit }), ['c', 'd', 'b', 'f', 'a', 'e'], `pages of ${limit}, asc/desc`)
    t.same(await pagedIds('cities', { orderBy: cityDescTotalAsc, limit }), ['e', 'a', 'b', 'f', 'd', 'c'], `pages of ${limit}, desc/asc`)
  }
  t.same(await ids('cities', { orderBy: [{ path: 'total', direction: 'desc' }], where: [{ path: 'total', op: 'exists', value: true }] }), ['d', 'b', 'f', 'c', 'a'])
})

t.test('limit bounds the page; next is null exactly when nothing follows', async (t) => {
  const first = await queryDocuments(sql, 'default', 'orders', { limit: 3 })
  t.same(first.documents.map((document) => document.id), ['o1', 'o2', 'o3'])
  t.type(first.next, 'string')
  const rest = await queryDocuments(sql, 'default', 'orders', { limit: 3, cursor: first.next! })
  t.same(rest.documents.map((document) => document.id), ['o4', 'o5', 'o6'])
  t.equal(rest.next, null, 'a full last page has no next')
  t.equal((await queryDocuments(sql, 'default', 'orders', { limit: 6 })).next, null)
  t.match((await queryDocuments(sql, 'default', 'orders', {})).documents[0], { id: 'o1', document: { name: 'alice' }, version: 1, updatedAt: String })
})

t.test('count is the number matching, whatever limit and cursor', async (t) => {
  const query = { filter: { status: 'placed' }, limit: 1, count: true }
  const first = await queryDocuments(sql, 'default', 'orders', query)
  t.equal(first.count, 3)
  t.equal(first.documents.length, 1)
  const second = await queryDocuments(sql, 'default', 'orders', { ...query, cursor: first.next! })
  t.equal(second.count, 3)
  t.same(second.documents.map((document) => document.id), ['o3'])
  t.equal((await queryDocuments(sql, 'default', 'orders', { count: true })).count, 6)
  t.equal((await queryDocuments(sql, 'acme', 'orders', { count: true })).count, 1)
  t.notOk('count' in (await queryDocuments(sql, 'default', 'orders', {})), 'absent unless asked for')
})

// deterministic pseudo-random numbers, so a failure replays
const random = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)

// jsonb order for the values these tests sort by: missing/null < strings < numbers
const rankOfValue = (value: unknown): number => (value === undefined || value === null ? 0 : typeof value === 'string' ? 1 : 2)
const compareValues = (a: unknown, b: unknown): number =>
  rankOfValue(a) - rankOfValue(b) || (a === b || rankOfValue(a) === 0 ? 0 : (a as number | string) < (b as number | string) ? -1 : 1)
const compareRows = (orderBy: OrderKey[], a: StoredDocument, b: StoredDocument): number => {
  for (const key of orderBy) {
    const order = compareValues(a.document[key.path], b.document[key.path])
    if (order !== 0) return key.direction === 'desc' ? -order : order
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

const churnPaging = async (t: Test, name: string, query: DocumentQuery, keysOf: (next: () => number) => Record<string, unknown>) => {
  const next = random(name.length * 7919)
  await seedProjection(sql, name)
  const stable = Array.from({ length: 60 }, (_, index) => ({ id: `s${String(index).padStart(3, '0')}`, document: keysOf(next) }))
  const churn = Array.from({ length: 40 }, (_, index) => ({ id: `c${String(index).padStart(3, '0')}`, document: keysOf(next) }))
  await putDocuments(sql, name, [...stable, ...churn])
  let added = 0
  const seen = await allPages(name, query, async (page) => {
    // between pages: new documents anywhere in the order, churn documents moved or deleted, stable ones
    // rewritten with the same sort keys (a new version)
    await putDocuments(sql, name, Array.from({ length: 3 }, () => ({ id: `n${String(added++).padStart(3, '0')}`, document: keysOf(next) })))
    await putDocuments(sql, name, churn.slice(page * 2, page * 2 + 2).map((doc) => ({ ...doc, document: keysOf(next) })))
    await deleteDocuments(sql, name, churn.slice(20 + page, 21 + page).map((doc) => doc.id))
    const touched = stable[Math.floor(next() * stable.length)]!
    await putDocuments(sql, name, [{ ...touched, document: { ...touched.document, note: page }, version: page + 2 }])
  })
  const ids = seen.map((document) => document.id)
  const kept = ids.filter((id) => !id.startsWith('c'))
  t.equal(new Set(kept).size, kept.length, 'no document whose sort keys stayed appears twice')
  t.same(stable.map((doc) => doc.id).filter((id) => !ids.includes(id)), [], 'every stable document appears')
  const backwards = seen.slice(1).findIndex((document, index) => compareRows(query.orderBy ?? [], seen[index]!, document) >= 0)
  t.equal(backwards, -1, 'each row comes strictly after the one before, in the requested order', { at: seen.slice(backwards, backwards + 2) })
  t.ok(added > 10, `${added} documents were added while paging`)
}

t.test('keyset paging has no duplicates or gaps while documents change between pages', async (t) => {
  await churnPaging(t, 'churn-one-key', { orderBy: [{ path: 'rank', direction: 'desc' }], limit: 7 }, (next) =>
    next() < 0.15 ? {} : { rank: Math.floor(next() * 10) },
  )
  await churnPaging(t, 'churn-mixed-keys', { orderBy: [{ path: 'group' }, { path: 'score', direction: 'desc' }], limit: 5 }, (next) => ({
    ...(next() < 0.2 ? {} : { group: ['x', 'y', 'z'][Math.floor(next() * 3)] }),
    ...(next() < 0.2 ? {} : { score: Math.floor(next() * 4) }),
  }))
  await churnPaging(t, 'churn-by-id', { limit: 9 }, (next) => ({ rank: next() }))
})

t.test('hostile paths and values stay data: no SQL error, nothing harmed', async (t) => {
  const hostile = [`a'); drop table projection_documents; --`, 'a"b', 'a\\b', '{a,b}', 'NULL', '} or 1=1 --', '$x', 'ä😀', ' ']
  for (const path of hostile) {
    t.same(await ids('orders', { where: [{ path, op: 'eq', value: `x' or '1'='1` }] }), [], `where path ${path}`)
    t.same(await ids('orders', { orderBy: [{ path, direction: 'desc' }] }), ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'], `orderBy path ${path}`)
    t.same(await ids('orders', { filter: { [path]: `'); select 1; --` } }), [], `filter key ${path}`)
  }
  t.same(await ids('orders', { where: [{ path: 'name', op: 'prefix', value: `%'_\\` }] }), [], 'prefix is not a LIKE pattern')
  await putDocuments(sql, 'orders', [{ id: `it's "quoted"`, document: { [`we'ird.key`]: 1 } }])
  t.match(await getDocument(sql, 'default', 'orders', `it's "quoted"`), { document: { id: `it's "quoted"` } })
  await deleteDocuments(sql, 'orders', [`it's "quoted"`])
  t.equal((await sql`select count(*) as count from projection_documents`)[0]!.count > 0, true, 'the table is still there')
})

t.test('bad paths, op values and cursors are validation problems', async (t) => {
  const bad: DocumentQuery[] = [
    { where: [{ path: '$.total', op: 'eq', value: 1 }] },
    { orderBy: [{ path: '$.total' }] },
    { where: [{ path: 'a..b', op: 'eq', value: 1 }] },
    { where: [{ path: 'total', op: 'in', value: 1 }] },
    { where: [{ path: 'total', op: 'exists', value: 'yes' }] },
    { where: [{ path: 'total', op: 'prefix', value: 1 }] },
    { cursor: 'not a cursor' },
    { cursor: Buffer.from('{"o":[],"k":"[1]","i":"x"}').toString('base64url') },
    { cursor: Buffer.from('[1,2]').toString('base64url') },
    { cursor: (await queryDocuments(sql, 'default', 'orders', { limit: 1, orderBy: [{ path: 'total' }] })).next!, orderBy: [{ path: 'name' }] },
    { cursor: (await queryDocuments(sql, 'default', 'orders', { limit: 1, orderBy: [{ path: 'total' }] })).next! },
  ]
  for (const query of bad) t.equal(await problemCode(queryDocuments(sql, 'default', 'orders', query)), 'validation-failed', JSON.stringify(query))
})

const planOf = async (tx: Sql, query: DocumentQuery): Promise<string> =>
  JSON.stringify(await tx`explain (format json) ${pageQuery(tx, 'default', 'big', query, 100, 16 * 1024 * 1024)}`)

t.test('filter containment is served by the GIN index on a table large enough to want it', async (t) => {
  await seedProjection(sql, 'big')
  const documents = Array.from({ length: 20000 }, (_, index) => ({ id: `d${index}`, document: { kind: index % 2000 === 0 ? 'rare' : `common-${index % 7}`, index } }))
  for (let start = 0; start < documents.length; start += 5000) await putDocuments(sql, 'big', documents.slice(start, start + 5000))
  await sql`analyze projection_documents`
  const plan = await planOf(sql, { filter: { kind: 'rare' } })
  t.match(plan, /projection_documents_document_idx/, 'the planner picks the GIN index', { plan })
  t.same(await ids('big', { filter: { kind: 'rare' } }), ['d0', 'd10000', 'd12000', 'd14000', 'd16000', 'd18000', 'd2000', 'd4000', 'd6000', 'd8000'])
})

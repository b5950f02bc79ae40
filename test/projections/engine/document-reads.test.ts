import t from 'tap'
import type { Tx } from '../../../src/db/connect.js'
import { DocumentSession } from '../../../src/projections/engine/document-session.js'
import { seedProjection } from '../../helpers/document-seeds.js'
import { EMBEDDED, testDatabase } from '../../helpers/test-database.js'

// A batch loads the documents its events name. As a plain join against the keys, the planner could hash the
// generation's every document (the keys' function is estimated at 100 rows whatever the batch holds): a live batch of
// a few events read 100,000 documents (bench:projections, 25.5 million index entries read for 116,505 lookups).
t.test('a batch reads the documents it names by key, not the generation', { skip: EMBEDDED && 'tuple counters are PostgreSQL statistics' }, async (t) => {
  const { sql } = await testDatabase(t)
  await seedProjection(sql, 'orders')
  await sql`
    insert into projection_documents (projection, generation, tenant, id, document, version, updated_at)
    select 'orders', 1, 'default', 'order-' || n, jsonb_build_object('n', n), n, now() from generate_series(1, 5000) as n`
  await sql`analyze projection_documents`
  const read = await sql.begin(async (tx) => {
    const session = new DocumentSession(tx as unknown as Tx, 'orders', 1)
    await session.preload([{ tenant: 'default', id: 'order-7' }, { tenant: 'default', id: 'order-4000' }, { tenant: 'default', id: 'order-none' }])
    t.same(session.loaded('default', 'order-7'), { tenant: 'default', id: 'order-7', document: { n: 7 }, version: 7, dirty: false })
    t.match(session.loaded('default', 'order-none'), { document: null, version: 0 }, 'a document not there yet is loaded as none')
    const [{ tuples }] = await tx<{ tuples: number }[]>`
      select (pg_stat_get_xact_tuples_returned('projection_documents'::regclass)
              + (select sum(pg_stat_get_xact_tuples_fetched(indexrelid)) from pg_index where indrelid = 'projection_documents'::regclass))::int as tuples`
    return tuples
  })
  t.ok(read < 50, `the preload read ${read} rows of projection_documents (5,000 in the generation)`)
})

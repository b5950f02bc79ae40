import { connect, withDatabase } from '../src/db/connect.js'
import { migrate } from '../src/db/migrate.js'
import type { ProjectionRunner } from '../src/projections/runner.js'
import { restoreProjectionSnapshot } from '../src/projections/snapshots/snapshot-restore.js'
import { copyLiveGeneration } from '../src/projections/snapshots/projection-snapshots.js'

// `npx tsx bench/projection-snapshots.ts`: how long taking and restoring a projection snapshot of
// BENCH_SNAPSHOT_DOCUMENTS (1,000,000) documents takes, straight against Postgres (no HTTP, no worker):
// the documents are seeded in SQL (about 120 bytes of JSON each, 2 tenants), then
// 1. a snapshot (the REPEATABLE READ INSERT … SELECT copy), BENCH_ROUNDS times;
// 2. a restore after 1% of the documents changed (only those are written back);
// 3. a restore after every document changed.
const DOCUMENTS = Number(process.env.BENCH_SNAPSHOT_DOCUMENTS ?? 1_000_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SERVER = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const DATABASE = 'annalist_bench_psnap'

// the restore's runner calls, with no workers to stop
const runner = { stopLocal: async () => {}, changed: async () => {}, record: async () => {} } as unknown as ProjectionRunner

const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now()
  const value = await fn()
  return [value, performance.now() - started]
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const admin = connect(SERVER, { max: 1 })
await admin`drop database if exists ${admin(DATABASE)} with (force)`
await admin`create database ${admin(DATABASE)}`
const sql = connect(withDatabase(SERVER, DATABASE), { max: 4, applicationName: 'annalist-bench' })
try {
  await migrate(sql)
  await sql`insert into projections (name, kind, definition) values ('big', 'declarative', '{"source": {}, "documentId": "$.streamId", "handlers": {}}')`
  await sql`insert into projection_generations (projection, generation, definition, definition_version, position, state)
            select name, 1, definition, 1, ${DOCUMENTS}, 'live' from projections`
  const [, seedMs] = await timed(() => sql`
    insert into projection_documents (projection, generation, tenant, id, document, version)
    select 'big', 1, case when i % 2 = 0 then 'default' else 'acme' end, 'order-' || i,
           jsonb_build_object('status', 'placed', 'total', i % 1000, 'customerId', 'customer-' || (i % 5000), 'items', i % 7, 'skus', jsonb_build_array('sku-' || (i % 97))),
           i
      from generate_series(1, ${DOCUMENTS}::int) as i`)
  await sql`vacuum analyze projection_documents`
  console.log(`seeded ${DOCUMENTS.toLocaleString('en')} documents in ${(seedMs / 1000).toFixed(1)} s`)

  const copies: number[] = []
  let snapshotId = ''
  for (let round = 0; round < ROUNDS; round++) {
    const [snapshot, copyMs] = await timed(() => copyLiveGeneration(sql, 'big', 'manual'))
    copies.push(copyMs)
    snapshotId = snapshot!.id
  }
  console.log(`snapshot: median ${(median(copies) / 1000).toFixed(2)} s of ${ROUNDS} (${copies.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s)`)

  await sql`update projection_documents set document = document || '{"status": "shipped"}', version = version + ${DOCUMENTS} where id like '%00'`
  const [, fewMs] = await timed(() => restoreProjectionSnapshot(sql, runner, 'big', snapshotId))
  console.log(`restore after 1% changed: ${(fewMs / 1000).toFixed(2)} s`)

  await sql`update projection_documents set document = document || '{"status": "shipped"}', version = version + ${DOCUMENTS}`
  const [, allMs] = await timed(() => restoreProjectionSnapshot(sql, runner, 'big', snapshotId))
  console.log(`restore after every document changed: ${(allMs / 1000).toFixed(2)} s`)
} finally {
  await sql.end({ timeout: 5 })
  await admin`drop database if exists ${admin(DATABASE)} with (force)`
  await admin.end({ timeout: 5 })
}

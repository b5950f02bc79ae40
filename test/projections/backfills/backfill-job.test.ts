import t from 'tap'
import { appendEvents } from '../../../src/events/append.js'
import { LogHead } from '../../../src/events/log-head.js'
import { DEFAULT_MAX_PAGE_BYTES } from '../../../src/events/event-page.js'
import { BackfillJob, type BackfillJobDeps } from '../../../src/projections/backfills/backfill-job.js'
import { checkBackfillRequest } from '../../../src/projections/backfills/backfill-request-schema.js'
import { createBackfill, getBackfill } from '../../../src/projections/backfills/backfill-runs.js'
import { putDeclarative } from '../../../src/projections/definitions.js'
import type { Projector } from '../../../src/projections/engine/apply-event.js'
import { changeProjection } from '../../../src/projections/projection-lock.js'
import { createProjectionSnapshot } from '../../../src/projections/snapshots/projection-snapshots.js'
import type { DeclarativeDefinition } from '../../../src/projections/definition-schema.js'
import { testDatabase } from '../../helpers/test-database.js'
import { waitFor } from '../../helpers/wait-for.js'

// The backfill job on its own, without HTTP or a runner: it selects, applies by partition with each
// partition's checkpoint, and ends the run (completed, or handed over when atomic).
const { sql } = await testDatabase(t)
const STREAMS = 30
const PER_STREAM = 10

const definition = { source: { categories: ['c'] }, documentId: '$.streamId', handlers: { Hit: { inc: { n: 1 } } } } as unknown as DeclarativeDefinition
const projector: Projector = { kind: 'declarative', definition }
for (let round = 0; round < PER_STREAM; round++) {
  for (let stream = 0; stream < STREAMS; stream++) await appendEvents(sql, 'default', `c-${stream}`, { events: [{ type: 'Hit', data: { round } }] })
}
const head = await new LogHead(sql).catchUp(5000)

const recorded: string[] = []
const deps: BackfillJobDeps = {
  sql,
  upcast: (event) => event,
  head: async () => head,
  snapshot: async (name) => (await createProjectionSnapshot(sql, name, 'backfill')).id,
  record: async (_, type) => {
    recorded.push(type)
  },
  settled: () => {},
  log: { warn: () => {}, info: () => {} },
}

const queue = async (name: string, body: object, partitions: number): Promise<string> => {
  await putDeclarative(sql, name, definition, async () => undefined)
  return changeProjection(sql, name, (tx) => createBackfill(tx, { projection: name, request: checkBackfillRequest(body), partitions }))
}

const run = async (job: BackfillJob): Promise<void> => {
  job.start()
  await waitFor(`job ${job.id} finished`, () => job.finished, { timeoutMs: 60_000 })
}

const counts = async (name: string, generation: number) =>
  Object.fromEntries(
    (await sql<{ id: string; n: number }[]>`
      select id, (document ->> 'n')::int as n from projection_documents where projection = ${name} and generation = ${generation}`).map((row) => [row.id, row.n]),
  )

const everyStream = (n: number) => Object.fromEntries(Array.from({ length: STREAMS }, (_, i) => [`c-${i}`, n]))

t.test('a non-atomic run over 4 partitions applies each selected event once and completes', async (t) => {
  const id = await queue('direct', { criteria: 'full-rebuild', atomic: false, maxConcurrency: 4 }, 4)
  await run(new BackfillJob(deps, id, 'direct', projector, 20, DEFAULT_MAX_PAGE_BYTES))
  const row = await getBackfill(sql, 'direct', id)
  t.equal(row.status, 'completed')
  t.equal(row.processed, STREAMS * PER_STREAM)
  t.equal(row.total, STREAMS * PER_STREAM)
  t.ok(row.snapshotId, 'a snapshot was taken before the live documents changed')
  t.same(await counts('direct', row.generation), everyStream(PER_STREAM))
  t.ok(recorded.includes('ProjectionBackfillStarted') && recorded.includes('ProjectionBackfillCompleted'))
})

t.test('a job stopped part-way and started again resumes from its partitions: nothing twice, nothing left out', async (t) => {
  const id = await queue('resumed', { criteria: 'full-rebuild', atomic: false, maxConcurrency: 2 }, 2)
  const first = new BackfillJob(deps, id, 'resumed', projector, 10, DEFAULT_MAX_PAGE_BYTES)
  first.start()
  await waitFor('some events applied', async () => (await getBackfill(sql, 'resumed', id)).processed > 0, { timeoutMs: 30_000, intervalMs: 1 })
  await first.stop()
  const part = (await getBackfill(sql, 'resumed', id)).processed
  t.ok(part < STREAMS * PER_STREAM, `stopped with ${part} of ${STREAMS * PER_STREAM} applied`)
  await run(new BackfillJob(deps, id, 'resumed', projector, 10, DEFAULT_MAX_PAGE_BYTES))
  const row = await getBackfill(sql, 'resumed', id)
  t.equal(row.status, 'completed')
  t.equal(row.processed, STREAMS * PER_STREAM)
  t.same(await counts('resumed', row.generation), everyStream(PER_STREAM))
})

t.test('an atomic run builds its own generation and hands it over at the end of its selection', async (t) => {
  const id = await queue('atomic', { criteria: 'full-rebuild' }, 1)
  await run(new BackfillJob(deps, id, 'atomic', projector, 50, DEFAULT_MAX_PAGE_BYTES))
  const row = await getBackfill(sql, 'atomic', id)
  t.equal(row.status, 'swapping', 'the generation waits for its worker to catch up and be swapped in')
  t.not(row.generation, 1)
  const [generation] = await sql<{ state: string; position: number }[]>`
    select state, position from projection_generations where projection = 'atomic' and generation = ${row.generation}`
  t.same(generation, { state: 'building', position: row.toPosition })
  t.same(await counts('atomic', row.generation), everyStream(PER_STREAM))
  t.same(await counts('atomic', 1), {}, 'the live generation was never touched')
})

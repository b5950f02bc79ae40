import t from 'tap'
import { appendEvents } from '../../src/events/append.js'
import { LogHead } from '../../src/events/log-head.js'
import { putDeclarative } from '../../src/projections/definitions.js'
import { ProjectionProgress } from '../../src/projections/progress.js'
import { ProjectionRunner } from '../../src/projections/runner.js'
import type { DeclarativeDefinition } from '../../src/projections/definition-schema.js'
import { LogWatcher } from '../../src/subscriptions/log-watcher.js'
import { testDatabase } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'

// The runner on its own: two of them on one database stand for two instances. Each projection runs in
// exactly one; when that one stops, the other takes it over and goes on from the checkpoint.
const { sql } = await testDatabase(t)
const NAME = 'hits'
const definition = { source: { categories: ['h'] }, documentId: '$.streamId', handlers: { Hit: { inc: { n: 1 } } } } as unknown as DeclarativeDefinition
const quiet = { info: () => {}, warn: () => {} }

// batches the workers of every instance told their log watcher they ended
let endedBatches = 0

const instance = async () => {
  const logHead = new LogHead(sql)
  const logWatcher = new LogWatcher(sql, logHead)
  const ended = logWatcher.ended.bind(logWatcher)
  logWatcher.ended = () => {
    endedBatches++
    ended()
  }
  await logWatcher.start()
  const runner = new ProjectionRunner({
    sql,
    logWatcher,
    progress: new ProjectionProgress(sql),
    codeProjections: [],
    head: () => logHead.catchUp(),
    snapshot: async () => {
      throw new Error('no backfills here')
    },
    log: quiet,
    reconcileMs: 100,
  })
  await runner.start()
  const stop = async () => {
    await runner.stop()
    await logWatcher.stop()
  }
  t.teardown(stop)
  return { runner, stop }
}

const append = async (count: number) => {
  for (let i = 0; i < count; i++) await appendEvents(sql, 'default', `h-${i % 5}`, { events: [{ type: 'Hit', data: {} }] })
}

const total = async () => {
  const [row] = await sql<{ n: number }[]>`
    select coalesce(sum((d.document ->> 'n')::int), 0)::int as n
      from projection_documents d join projections p on p.name = d.projection and p.live_generation = d.generation
     where d.projection = ${NAME}`
  return row!.n
}

t.test('one runner of two runs the projection; the other takes over when it stops, and nothing is applied twice', async (t) => {
  await putDeclarative(sql, NAME, definition, async () => undefined)
  const a = await instance()
  const b = await instance()
  await append(50)
  await waitFor('the first 50 events applied', async () => (await total()) === 50, { timeoutMs: 30_000 })
  const owners = [a, b].filter(({ runner }) => runner.worker(NAME, 1) !== undefined)
  t.equal(owners.length, 1, 'exactly one instance runs its worker')
  const [owner] = owners
  const other = owner === a ? b : a
  await owner!.stop()
  await append(30)
  await waitFor('the other instance takes over', () => other.runner.worker(NAME, 1) !== undefined, { timeoutMs: 10_000 })
  await waitFor('all 80 events applied', async () => (await total()) === 80, { timeoutMs: 30_000 })
  t.equal(await total(), 80, 'each event counted once')
})

t.test('a worker tells its log watcher when a batch ends, so positions its transaction held back are observed at once', async (t) => {
  await instance()
  await waitFor('a runner to hold the projection', async () => (await total()) === 80, { timeoutMs: 30_000 })
  const before = endedBatches
  await append(5)
  await waitFor('the 5 events applied', async () => (await total()) === 85, { timeoutMs: 30_000 })
  t.ok(endedBatches > before, `${endedBatches - before} batches ended and told the watcher`)
})

t.test('events appended by racing clients while batches commit are each applied once', async (t) => {
  // the worker reads its next batch while the one before commits and while it reads the holds
  const before = await total()
  const appenders = 8
  const each = 40
  await Promise.all(
    Array.from({ length: appenders }, async (_, client) => {
      for (let i = 0; i < each; i++) await appendEvents(sql, 'default', `h-race-${client}-${i % 3}`, { events: [{ type: 'Hit', data: {} }] })
    }),
  )
  await waitFor('every raced event applied', async () => (await total()) >= before + appenders * each, { timeoutMs: 30_000 })
  t.equal(await total(), before + appenders * each, 'each event counted once')
})

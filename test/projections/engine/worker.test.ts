import { EventEmitter } from 'node:events'
import t from 'tap'
import type { Sql } from '../../../src/db/connect.js'
import { appendEvents } from '../../../src/events/append.js'
import { putDeclarative } from '../../../src/projections/definitions.js'
import type { DeclarativeDefinition } from '../../../src/projections/definition-schema.js'
import { ProjectionWorker, type WorkerDeps } from '../../../src/projections/engine/worker.js'
import type { LogWatcher } from '../../../src/subscriptions/log-watcher.js'
import type { LiveProgress } from '../../../src/projections/progress.js'
import { testDatabase } from '../../helpers/test-database.js'
import { waitFor } from '../../helpers/wait-for.js'

// The worker's loop on its own, with a log watcher the test drives: wake-ups are never lost.
const { sql } = await testDatabase(t)
const definition = { source: { categories: ['w'] }, documentId: '$.streamId', handlers: { Hit: { inc: { n: 1 } } } } as unknown as DeclarativeDefinition
const quiet = { info: () => {}, warn: () => {} }

class DrivenWatcher extends EventEmitter<{ advance: [head: number] }> {
  head = 0
  ended(): void {}
}

// The pool, with a hook called as each read of the holds resolves, before the worker goes on; `issued` gets the
// reads of holds and of events as they go out.
const withHoldsHook = (hook: () => void, issued: (kind: 'holds' | 'events') => void = () => {}): Sql =>
  new Proxy(sql, {
    apply(target, self, args: unknown[]) {
      const query = Reflect.apply(target, self, args) as Promise<unknown> & { then: Promise<unknown>['then'] }
      const strings = args[0] as TemplateStringsArray | undefined
      const text = Array.isArray(strings) ? strings.join('') : ''
      if (text.includes('sum(event_bytes) over page')) issued('events')
      if (!text.includes('from projection_tenant_holds')) return query
      issued('holds')
      const then = query.then.bind(query)
      query.then = ((resolve, reject) => then((rows) => {
        hook()
        return (resolve ? resolve(rows) : rows) as never
      }, reject)) as typeof query.then
      return query
    },
  })

const depsWith = (pool: Sql, watcher: DrivenWatcher): WorkerDeps => ({
  sql: pool,
  logWatcher: watcher as unknown as LogWatcher,
  upcast: (event) => event,
  batchSize: 100,
  maxBatchBytes: 1024 * 1024,
  retryDelaysMs: [],
  // far beyond any wait below: only an advance can wake the worker in time
  pollMs: 60_000,
  committed: () => {},
  caughtUp: () => {},
  held: async () => {},
  log: quiet,
})

t.test('an advance that comes between the look at the head and the sleep is not slept through', async (t) => {
  await putDeclarative(sql, 'wake', definition, async () => undefined)
  let last = 0
  for (let i = 0; i < 3; i++) last = (await appendEvents(sql, 'default', 'w-1', { events: [{ type: 'Hit', data: {} }] })).lastPosition
  const watcher = new DrivenWatcher()
  let fired = false
  // the first time the worker has read the holds and looks at the head (still 0), the head moves right after its look
  const pool = withHoldsHook(() => {
    if (fired) return
    fired = true
    const head = Object.getOwnPropertyDescriptor(watcher, 'head')!
    Object.defineProperty(watcher, 'head', {
      configurable: true,
      get: () => {
        Object.defineProperty(watcher, 'head', head)
        queueMicrotask(() => {
          watcher.head = last
          watcher.emit('advance', last)
        })
        return 0
      },
    })
  })
  const deps = depsWith(pool, watcher)
  const worker = new ProjectionWorker(deps, 'wake', 1, { kind: 'declarative', definition }, 0)
  worker.start()
  t.teardown(() => worker.stop())
  await waitFor('the worker to apply the events the advance announced', () => worker.position >= last, { timeoutMs: 5_000 })
  t.ok(fired, 'the advance came right after the worker looked at the head')
  t.equal(worker.position, last)
})

t.test("a batch's events are read beside the holds, not after them", async (t) => {
  await putDeclarative(sql, 'beside', definition, async () => undefined)
  let last = 0
  for (let i = 0; i < 3; i++) last = (await appendEvents(sql, 'default', 'w-2', { events: [{ type: 'Hit', data: {} }] })).lastPosition
  const watcher = new DrivenWatcher()
  watcher.head = last
  const order: string[] = []
  const pool = withHoldsHook(() => order.push('holds read'), (kind) => order.push(`${kind} issued`))
  const worker = new ProjectionWorker(depsWith(pool, watcher), 'beside', 1, { kind: 'declarative', definition }, 0)
  worker.start()
  t.teardown(() => worker.stop())
  await waitFor('the worker to apply the events', () => worker.position >= last, { timeoutMs: 5_000 })
  t.same(order.slice(0, 3), ['events issued', 'holds issued', 'holds read'], 'the events read went out before the holds came back')
})

// progress.ts: a batch of the live generation brings what it committed (its checkpoint, the generation's holds), so
// waiters are released without a read of their own; a generation that is not live brings nothing (they read).
t.test('a committed batch brings the live progress it committed, and only for the live generation', async (t) => {
  await putDeclarative(sql, 'brings', definition, async () => undefined)
  await sql`insert into projection_tenant_holds (projection, generation, tenant, position, failure)
            values ('brings', 1, 'stuck', 0, ${sql.json({ position: 1, eventId: '00000000-0000-0000-0000-000000000000', message: 'held for the test' })})`
  let last = 0
  for (let i = 0; i < 3; i++) last = (await appendEvents(sql, 'default', 'w-3', { events: [{ type: 'Hit', data: {} }] })).lastPosition
  const watcher = new DrivenWatcher()
  watcher.head = last
  const reports: (LiveProgress | undefined)[] = []
  const worker = new ProjectionWorker({ ...depsWith(sql, watcher), committed: (_worker, progress) => reports.push(progress) }, 'brings', 1, { kind: 'declarative', definition }, 0)
  worker.start()
  t.teardown(() => worker.stop())
  await waitFor('the worker to apply the events', () => worker.position >= last, { timeoutMs: 5_000 })
  await worker.stop()
  t.ok(reports.length > 0, 'the worker reported its commits')
  t.same(reports.at(-1), { position: last, held: { stuck: 0 } }, 'the checkpoint it committed, and the held tenant at its own')
  const [read] = await sql<{ position: number }[]>`select position::int from projection_generations where projection = 'brings' and generation = 1`
  t.equal(read!.position, last, 'what a read after the commit finds')

  const [{ generation }] = await sql.begin((tx) => tx<{ generation: number }[]>`
    insert into projection_generations (projection, generation, definition, definition_version, state)
    select projection, generation + 1, definition, definition_version, 'building' from projection_generations
     where projection = 'brings' and generation = 1
    returning generation`) as { generation: number }[]
  const building: (LiveProgress | undefined)[] = []
  const builder = new ProjectionWorker({ ...depsWith(sql, watcher), committed: (_worker, progress) => building.push(progress) }, 'brings', generation, { kind: 'declarative', definition }, 0)
  builder.start()
  t.teardown(() => builder.stop())
  await waitFor('the building generation to apply the events', () => builder.position >= last, { timeoutMs: 5_000 })
  await builder.stop()
  t.ok(building.length > 0 && building.every((progress) => progress === undefined), 'a generation that is not live brings no progress')
})

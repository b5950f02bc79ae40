import t from 'tap'
import { LOCK_CLASS, lockKey } from '../../../src/db/advisory-locks.js'
import { generationLock } from '../../../src/projections/generation-lock.js'
import { applyBatch, BatchFailure, LostCheckpoint, type BatchTarget } from '../../../src/projections/engine/apply-batch.js'
import type { Projector } from '../../../src/projections/engine/apply-event.js'
import type { ProjectionEvent } from '../../../src/projections/types.js'
import { testDatabase } from '../../helpers/test-database.js'

// The projection engine on its own: one transaction per batch, documents and checkpoint together.
const { sql } = await testDatabase(t)

const counting: Projector = {
  kind: 'declarative',
  definition: { source: {}, documentId: '$.streamId', handlers: { Hit: { inc: { n: 1 } } } } as never,
}
// a code projection whose handler throws on one event type
const failing: Projector = {
  kind: 'code',
  module: {
    name: 'failing',
    source: {},
    handlers: {
      Hit: async (event, ctx) => ctx.store(event.streamId, { n: (((await ctx.load(event.streamId)) ?? { n: 0 }).n as number) + 1 }),
      Poison: () => {
        throw new Error('poison')
      },
    },
  },
}

const event = (position: number, streamId: string, type = 'Hit'): ProjectionEvent => ({
  tenant: 'default',
  globalPosition: position,
  streamId,
  streamVersion: position,
  eventId: `00000000-0000-4000-8000-${String(position).padStart(12, '0')}`,
  type,
  data: {},
  metadata: {},
  createdAt: new Date(0).toISOString(),
})

const documents = async (projection: string) =>
  Object.fromEntries(
    (await sql<{ id: string; n: number; version: number }[]>`
      select id, (document ->> 'n')::int as n, version from projection_documents where projection = ${projection} order by id`).map((row) => [row.id, [row.n, row.version]]),
  )

// a checkpoint kept in memory, moved by the batch's compare-and-set
const target = (projection: string, projector: Projector, overrides: Partial<BatchTarget> = {}) => {
  const checkpoint = { position: 0, advances: [] as [number, number, number][] }
  const batchTarget: BatchTarget = {
    projection,
    generation: 1,
    projector,
    upcast: (event) => event,
    documents: 'exclusive',
    onFailure: 'commit-before',
    advance: async (_, from, to, applied) => {
      if (checkpoint.position !== from) return false
      checkpoint.position = to
      checkpoint.advances.push([from, to, applied])
      return true
    },
    ...overrides,
  }
  return { checkpoint, batchTarget }
}

t.test('a batch writes its documents and moves its checkpoint to the position it read through', async (t) => {
  const { checkpoint, batchTarget } = target('counts', counting)
  const outcome = await applyBatch(sql, batchTarget, { events: [event(1, 'a-1'), event(2, 'a-2'), event(4, 'a-1')], from: 0, readTo: 6 })
  t.same(outcome, { kind: 'applied', position: 6 })
  t.same(checkpoint.advances, [[0, 6, 3]])
  t.same(await documents('counts'), { 'a-1': [2, 4], 'a-2': [1, 2] })
  // the same events again from an older checkpoint: a document carries the last position applied to it
  checkpoint.position = 0
  await applyBatch(sql, batchTarget, { events: [event(1, 'a-1'), event(2, 'a-2'), event(4, 'a-1'), event(7, 'a-2')], from: 0, readTo: 7 })
  t.same(await documents('counts'), { 'a-1': [2, 4], 'a-2': [2, 7] }, 'nothing applied twice')
})

t.test('commit-before: a failing event commits the events before it and stops the checkpoint right before it', async (t) => {
  const { checkpoint, batchTarget } = target('until-poison', failing)
  const outcome = await applyBatch(sql, batchTarget, { events: [event(1, 'b-1'), event(2, 'b-1', 'Poison'), event(3, 'b-1')], from: 0, readTo: 3 })
  t.equal(outcome.kind, 'failed')
  t.equal(outcome.position, 1)
  t.match(outcome, { failure: { position: 2, message: 'poison' } })
  t.equal(checkpoint.position, 1)
  t.same(await documents('until-poison'), { 'b-1': [1, 1] }, 'the event before the poison one, and nothing after')
})

t.test('abort: a failing event gives the whole batch up, nothing commits', async (t) => {
  const { checkpoint, batchTarget } = target('aborted', failing, { onFailure: 'abort', documents: 'own' })
  const batch = { events: [event(1, 'c-1'), event(2, 'c-1', 'Poison')], from: 0, readTo: 2 }
  const error = await applyBatch(sql, batchTarget, batch).catch((error: unknown) => error)
  t.ok(error instanceof BatchFailure, `a BatchFailure: ${String(error)}`)
  t.equal(checkpoint.position, 0)
  t.same(await documents('aborted'), {})
})

t.test('a checkpoint moved elsewhere: LostCheckpoint, and nothing of the batch commits', async (t) => {
  const { checkpoint, batchTarget } = target('lost', counting)
  checkpoint.position = 5
  const error = await applyBatch(sql, batchTarget, { events: [event(1, 'd-1')], from: 0, readTo: 1 }).catch((error: unknown) => error)
  t.ok(error instanceof LostCheckpoint, `a LostCheckpoint: ${String(error)}`)
  t.same(await documents('lost'), {})
})

t.test('a check that throws after the locks gives the batch up before anything is applied', async (t) => {
  const { batchTarget } = target('checked', counting, {
    check: async () => {
      throw new Error('the run ended')
    },
  })
  await t.rejects(applyBatch(sql, batchTarget, { events: [event(1, 'e-1')], from: 0, readTo: 1 }), /the run ended/)
  t.same(await documents('checked'), {})
})

// issue 18: a batch on one document once loaded that document as often as the batch had events, and
// every event copied it whole, so a growing document made a catch-up quadratic
t.test('a batch costs the same on a document of 20,000 items as on a new one', async (t) => {
  const pushing: Projector = {
    kind: 'declarative',
    definition: { source: {}, documentId: '$.streamId', handlers: { ItemAdded: { push: { skus: '$.data.sku' } } } } as never,
  }
  const items = Array.from({ length: 20_000 }, (_, i) => `sku-${i}`)
  await sql`
    insert into projection_documents (projection, generation, tenant, id, document, version)
    values ('grown', 1, 'default', 'big', ${sql.json({ skus: items })}, 1)`
  const { checkpoint, batchTarget } = target('grown', pushing)
  checkpoint.position = 1
  const adding = (from: number, streamId: string): ProjectionEvent[] =>
    Array.from({ length: 1000 }, (_, i) => ({ ...event(from + i + 1, streamId, 'ItemAdded'), data: { sku: `sku-${from + i}` } }))
  // alternated, so a machine that gets busier meanwhile slows both alike; the fastest of each is compared
  const took = { big: [] as number[], small: [] as number[] }
  for (let round = 0; round < 3; round++) {
    for (const streamId of ['small', 'big'] as const) {
      const from = checkpoint.position
      const started = performance.now()
      await applyBatch(sql, batchTarget, { events: adding(from, streamId), from, readTo: from + 1000 })
      took[streamId].push(performance.now() - started)
    }
  }
  const [big] = await sql<{ n: number }[]>`select jsonb_array_length(document -> 'skus') as n from projection_documents where projection = 'grown' and id = 'big'`
  t.equal(big!.n, 23_000, 'every event pushed once')
  const fastest = (times: number[]) => Math.min(...times)
  // the big one is loaded and written once per batch, never once per event
  t.ok(fastest(took.big) < 4 * fastest(took.small) + 250,
    `1,000 events on the big document took ${fastest(took.big).toFixed(0)} ms, on the new one ${fastest(took.small).toFixed(0)} ms (each the fastest of 3: ${took.big.map(Math.round)} / ${took.small.map(Math.round)})`)
})

// The batch's documents are read in the locks' round trip, named by the events as read: an upcaster that moves an
// event to another document has that one loaded before the event is applied, so nothing is counted from scratch.
t.test('an upcaster that gives an event another document: that document is loaded and applied to as stored', async (t) => {
  await sql`
    insert into projection_documents (projection, generation, tenant, id, document, version)
    values ('moved', 1, 'default', 'f-new', ${sql.json({ n: 5 })}, 1)`
  const { checkpoint, batchTarget } = target('moved', counting, {
    upcast: (event) => (event.streamId === 'f-old' ? { ...event, streamId: 'f-new' } : event),
  })
  checkpoint.position = 1
  await applyBatch(sql, batchTarget, { events: [event(2, 'f-old'), event(3, 'f-other')], from: 1, readTo: 3 })
  t.same(await documents('moved'), { 'f-new': [6, 2], 'f-other': [1, 3] })
})

// The documents are read after the locks are granted (statements run in order on the transaction's connection), so
// a batch that waited for another holder of the generation's lock reads what that one committed.
t.test('a batch that waits for the generation lock reads the documents the holder committed', async (t) => {
  const { checkpoint, batchTarget } = target('waited', counting)
  let release: () => void = () => undefined
  const held = new Promise<void>((resolve) => (release = resolve))
  let locked: () => void = () => undefined
  const isLocked = new Promise<void>((resolve) => (locked = resolve))
  const holder = sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock_shared(${LOCK_CLASS.projection}, ${lockKey('waited')}), pg_advisory_xact_lock(${generationLock.classId}, ${generationLock.key('waited', 1)})`
    await tx`
      insert into projection_documents (projection, generation, tenant, id, document, version)
      values ('waited', 1, 'default', 'g-1', ${tx.json({ n: 10 })}, 1)`
    locked()
    await held
  })
  await isLocked
  checkpoint.position = 1
  const batch = applyBatch(sql, batchTarget, { events: [event(2, 'g-1')], from: 1, readTo: 2 })
  // the batch waits for the lock, its document read queued behind it
  for (;;) {
    const [waiting] = await sql`select from pg_locks where locktype = 'advisory' and classid = ${generationLock.classId} and not granted`
    if (waiting) break
  }
  release()
  await holder
  await batch
  t.same(await documents('waited'), { 'g-1': [11, 2] }, 'applied to the committed document, not to a missing one')
})

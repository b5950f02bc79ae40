import t from 'tap'
import { buildTestApp } from '../../helpers/test-app.js'
import { caughtUp, systemEvents } from '../../helpers/projection-api.js'
import { expectedCounts, liveCounts, ticks, TICKS } from '../../helpers/snapshot-counter.js'
import { waitFor } from '../../helpers/wait-for.js'

const { app, db } = await buildTestApp(t)
const { sql } = db

const EVERY = 5
const KEEP = 3
const list = async (name: string) => (await app.inject({ url: `/projections/${name}/snapshots` })).json().snapshots as any[]
const automaticCreated = async (name: string) =>
  (await systemEvents(app, name, 'ProjectionSnapshotCreated')).filter((event) => event.data.reason === 'automatic')

t.test('snapshots: {every, keep} takes one every `every` positions and keeps exactly the newest `keep` automatic ones', async (t) => {
  const put = await app.inject({ method: 'PUT', url: '/projections/auto', payload: { ...TICKS, snapshots: { every: EVERY, keep: KEEP } } })
  t.equal(put.statusCode, 201)
  let manual: any
  const rounds = 6
  for (let round = 1; round <= rounds; round++) {
    // `every` events after the last snapshot (and its system event): one more snapshot is due, at a
    // position among them (the worker may see the append in two batches)
    const last = await ticks(app, 'a', EVERY)
    await waitFor(`automatic snapshot ${round}`, async () => {
      const created = await automaticCreated('auto')
      return created.length === round && created[round - 1].data.position > last - EVERY
    }, { timeoutMs: 30_000 })
    if (round === 2) {
      const res = await app.inject({ method: 'POST', url: '/projections/auto/snapshots' })
      t.equal(res.statusCode, 201)
      manual = res.json()
    }
  }
  const created = (await automaticCreated('auto')).map((event) => event.data)
  t.equal(created.length, rounds, 'one automatic snapshot per round')
  created.slice(1).forEach((snapshot, index) => t.ok(snapshot.position - created[index].position >= EVERY, `snapshot ${index + 2} is ${EVERY} or more positions after the one before`))

  const listed = await list('auto')
  const automatic = listed.filter((snapshot) => snapshot.reason === 'automatic')
  t.same(automatic.map((snapshot) => snapshot.id), created.slice(-KEEP).map((snapshot) => snapshot.snapshotId).reverse(), `exactly the newest ${KEEP} automatic snapshots are kept, newest first`)
  t.same(listed.filter((snapshot) => snapshot.reason === 'manual').map((snapshot) => snapshot.id), [manual.id], 'a manual snapshot does not count and stays')
  const [stored] = await sql<{ snapshots: number }[]>`select count(distinct snapshot) as snapshots from projection_snapshot_documents`
  t.equal(stored!.snapshots, KEEP + 1, 'pruned snapshots take their documents with them')

  // an automatic snapshot restores like any other, and counting goes on from it
  const oldest = automatic.at(-1)
  const restored = await app.inject({ method: 'POST', url: `/projections/auto/snapshots/${oldest.id}/restore` })
  t.equal(restored.statusCode, 200)
  await caughtUp(app, 'auto')
  t.same(await liveCounts(sql, 'auto'), await expectedCounts(sql))
  t.same(await liveCounts(sql, 'auto'), { 'default/a': rounds * EVERY })
})

t.test('a projection without `snapshots` gets none automatically', async (t) => {
  t.equal((await app.inject({ method: 'PUT', url: '/projections/plain', payload: TICKS })).statusCode, 201)
  const last = await ticks(app, 'b', 3 * EVERY)
  await waitFor('plain caught up', async () => (await app.inject({ url: '/projections/plain' })).json().position >= last, { timeoutMs: 30_000 })
  t.same(await list('plain'), [])
  t.same(await automaticCreated('plain'), [])
})

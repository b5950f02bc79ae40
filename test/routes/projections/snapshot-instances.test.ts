import t from 'tap'
import { buildApp } from '../../../src/app.js'
import { loadOpenapi } from '../../../src/http/openapi-document.js'
import { createServices } from '../../../src/services.js'
import { caughtUp } from '../../helpers/projection-api.js'
import { expectedCounts, liveCounts, ticks, TICKS } from '../../helpers/snapshot-counter.js'
import { buildTestApp } from '../../helpers/test-app.js'
import { waitFor } from '../../helpers/wait-for.js'

// Two instances on one database: the projection's worker runs in one of them, the restore is asked of the other.
const a = await buildTestApp(t)
const { sql } = a.db
const servicesB = await createServices(sql, a.config, { info: () => {}, warn: () => {} })
await servicesB.start()
t.teardown(() => servicesB.stop())
const appB = await buildApp({ config: a.config, sql, services: servicesB, openapi: await loadOpenapi(), isReady: async () => true, logger: false })
t.teardown(() => appB.close())
await appB.ready()

t.test('a restore asked of the instance not running the worker: the idle worker elsewhere yields and it catches up exactly', async (t) => {
  t.equal((await a.app.inject({ method: 'PUT', url: '/projections/counter', payload: TICKS })).statusCode, 201)
  await ticks(a.app, 'a', 3)
  await ticks(a.app, 'b', 2, 'acme')
  await caughtUp(a.app, 'counter')
  const owner = await waitFor('a worker of counter', () =>
    a.services.runner.worker('counter', 1) ? 'a' : servicesB.runner.worker('counter', 1) ? 'b' : undefined)
  const [running, other] = owner === 'a' ? [a.services.runner, appB] : [servicesB.runner, a.app]
  const before = running.worker('counter', 1)!

  const taken = (await other.inject({ method: 'POST', url: '/projections/counter/snapshots' })).json()
  t.equal(taken.documents, 2)
  await ticks(a.app, 'a', 4)
  await ticks(a.app, 'c', 1, 'acme')
  const idle = await caughtUp(a.app, 'counter')
  t.ok(idle.position > taken.position)

  const restored = await other.inject({ method: 'POST', url: `/projections/counter/snapshots/${taken.id}/restore` })
  t.equal(restored.statusCode, 200)
  t.ok(restored.json().position < idle.position, 'the restore took effect')
  // no event is appended after the restore but its own system event
  await waitFor('the worker elsewhere to yield and a new one to catch up', async () => {
    const view = (await other.inject({ url: '/projections/counter' })).json()
    return view.position >= idle.position && view.lag === 0
  }, { timeoutMs: 20_000 })
  t.not(running.worker('counter', 1), before, 'the worker that was idle at the old checkpoint gave way')
  t.same(await liveCounts(sql, 'counter'), await expectedCounts(sql), 'each event after the snapshot applied once more, exactly once')
  t.same(await liveCounts(sql, 'counter'), { 'default/a': 7, 'acme/b': 2, 'acme/c': 1 })
})

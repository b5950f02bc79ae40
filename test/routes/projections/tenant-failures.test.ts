import t from 'tap'
import type { InjectOptions } from 'fastify'
import { buildTestApp } from '../../helpers/test-app.js'
import { checkLedger, deposits, LEDGER, ledgerDir } from '../../helpers/ledger-projection.js'
import { waitFor } from '../../helpers/wait-for.js'

// One tenant's poison event holds that tenant only (issue 18; docs/projection-failures.md): the other
// tenant's documents keep moving, each key sees its own tenant's failure, restart and skip resume the held
// tenant's events in order, exactly once.
const { dir, fix } = ledgerDir(t)
const KEYS = { ops: 'ops-key-1', acmeAdmin: 'acme-admin-key-2', acme: 'acme-write-key-3', beta: 'beta-write-key-4' }
const { app, db } = await buildTestApp(t, {
  PROJECTIONS_DIR: dir,
  API_KEYS: `${KEYS.ops}:*:admin,${KEYS.acmeAdmin}:acme:admin,${KEYS.acme}:acme:write,${KEYS.beta}:beta:write`,
})
const as = (key: string, options: InjectOptions) => app.inject({ ...options, headers: { authorization: `Bearer ${key}`, ...options.headers } })
const deposit = async (key: string, stream: string, events: ReturnType<typeof deposits>): Promise<number> => {
  const res = await as(key, { method: 'POST', url: `/streams/${stream}/events`, payload: { events } })
  t.equal(res.statusCode, 201)
  return res.json().lastPosition
}
const view = async (key: string) => (await as(key, { url: `/projections/${LEDGER}` })).json()
const act = (key: string, action: 'restart' | 'skip', headers: Record<string, string> = {}) =>
  as(key, { method: 'POST', url: `/projections/${LEDGER}/${action}`, headers })
// the view every tenant's way: the projection applied everything up to the head, none held or catching up
const settled = () => waitFor('the ledger to settle', async () => {
  const every = await view(KEYS.ops)
  return every.lag === 0 && every.failures.length === 0 && every.status === 'running' && every
}, { timeoutMs: 30_000 })
const heldAt = (tenant: string, position: number) => waitFor(`${tenant} held at ${position}`, async () => {
  const every = await view(KEYS.ops)
  return every.failures.some((failure: { tenant: string; position: number }) => failure.tenant === tenant && failure.position === position) && every
}, { timeoutMs: 30_000 })

let poison = 0
let snapshotId = ''

t.test('acme’s poison event holds acme only: beta’s documents keep moving, each key sees its own tenant', async (t) => {
  await deposit(KEYS.acme, 'account-1', deposits([10]))
  poison = await deposit(KEYS.acme, 'account-1', deposits([100], 'until-fixed'))
  const acmeLast = await deposit(KEYS.acme, 'account-1', deposits([5, 6]))
  await deposit(KEYS.beta, 'account-1', deposits([7]))
  const every = await heldAt('acme', poison)
  t.equal(every.status, 'failed', 'an operator sees the projection failed')
  t.match(every.lastError, { tenant: 'acme', position: poison, message: `cannot book event ${poison}` })
  t.equal(every.failures.length, 1)

  const betaLast = await deposit(KEYS.beta, 'account-1', deposits([8, 9]))
  const betaRead = await as(KEYS.beta, { url: `/projections/${LEDGER}/documents/account-1?waitFor=${betaLast}&timeoutMs=20000` })
  t.equal(betaRead.statusCode, 200, 'beta reads its own writes while acme is held')
  t.same(betaRead.json().document.total, 24)
  const beta = await view(KEYS.beta)
  t.match(beta, { status: 'running', failures: [], lastError: null }, 'beta sees nothing of acme’s failure')
  t.ok(beta.position >= betaLast, 'beta’s position is the projection’s, past acme’s held events')

  const acme = await view(KEYS.acme)
  t.match(acme, { status: 'failed', position: poison - 1, failures: [{ tenant: 'acme', position: poison }] }, 'acme sees its own failure, stopped right before it')
  const acmeRead = await as(KEYS.acme, { url: `/projections/${LEDGER}/documents/account-1?waitFor=${acmeLast}&timeoutMs=200` })
  t.equal(acmeRead.statusCode, 504, 'acme’s read of a held position times out rather than answer without it')
  t.equal(acmeRead.json().position, poison - 1)
  t.same((await as(KEYS.acme, { url: `/projections/${LEDGER}/documents/account-1` })).json().document, { total: 10, seen: [poison - 1] })

  const snapshot = await as(KEYS.ops, { method: 'POST', url: `/projections/${LEDGER}/snapshots` })
  t.equal(snapshot.statusCode, 201, 'a snapshot taken while acme is held')
  snapshotId = snapshot.json().id

  const metrics = (await as(KEYS.ops, { url: '/metrics' })).body
  t.match(metrics, /^annalist_projection_failed_tenants\{projection="ledger"\} 1$/m)
  t.match(metrics, /^annalist_projection_status\{projection="ledger",status="failed"\} 1$/m)
})

t.test('restart as acme’s admin retries the event; once fixed, acme catches up in order, exactly once', async (t) => {
  t.equal((await act(KEYS.acme, 'restart')).statusCode, 403, 'a write key may not')
  const again = await act(KEYS.acmeAdmin, 'restart')
  t.equal(again.statusCode, 200)
  await waitFor('the retry to fail again', async () => {
    const system = (await as(KEYS.ops, { url: `/streams/$projection-${LEDGER}/events` })).json().events
    return system.filter((event: { type: string }) => event.type === 'ProjectionFailed').length >= 2
  }, { timeoutMs: 30_000 })
  await heldAt('acme', poison)
  fix()
  t.equal((await act(KEYS.acmeAdmin, 'restart')).statusCode, 200)
  await settled()
  await checkLedger(t, db.sql, 'acme', 'account-1')
  await checkLedger(t, db.sql, 'beta', 'account-1')
  const acme = await view(KEYS.acme)
  t.match(acme, { status: 'running', failures: [], lastError: null, lag: 0 })
})

t.test('skip moves the held tenants in scope past their events; the others stay held', async (t) => {
  const acmePoison = await deposit(KEYS.acme, 'account-2', deposits([1000], 'always'))
  await deposit(KEYS.acme, 'account-2', deposits([1, 2]))
  const betaPoison = await deposit(KEYS.beta, 'account-2', deposits([2000], 'always'))
  await deposit(KEYS.beta, 'account-2', deposits([3]))
  await heldAt('acme', acmePoison)
  await heldAt('beta', betaPoison)

  t.equal((await act(KEYS.acmeAdmin, 'skip')).statusCode, 200, 'acme’s admin skips acme’s event')
  await waitFor('acme to catch up', async () => (await view(KEYS.acme)).lag === 0 && (await view(KEYS.acme)).failures.length === 0, { timeoutMs: 30_000 })
  const every = await view(KEYS.ops)
  t.match(every.failures, [{ tenant: 'beta', position: betaPoison }], 'beta is still held')
  t.equal((await act(KEYS.acmeAdmin, 'skip')).statusCode, 409, 'nothing left to skip for acme')
  t.equal((await act(KEYS.ops, 'skip', { 'x-tenant-id': 'acme' })).statusCode, 409, 'X-Tenant-Id scopes an operator too')

  t.equal((await act(KEYS.ops, 'skip')).statusCode, 200, 'an operator skips every held tenant')
  await settled()
  await checkLedger(t, db.sql, 'acme', 'account-2', [acmePoison])
  await checkLedger(t, db.sql, 'beta', 'account-2', [betaPoison])
  await checkLedger(t, db.sql, 'acme', 'account-1')
  const system = (await as(KEYS.ops, { url: `/streams/$projection-${LEDGER}/events?limit=1000` })).json().events
  const skips = system.filter((event: { type: string }) => event.type === 'ProjectionSkippedEvent').map((event: { data: unknown }) => event.data)
  t.match(skips, [{ tenant: 'acme', position: acmePoison }, { tenant: 'beta', position: betaPoison }])
  t.equal((await act(KEYS.ops, 'skip')).statusCode, 409, 'nothing left to skip')
})

t.test('a restored snapshot brings its holds back; the replay holds again where events fail, and resumes exactly', async (t) => {
  const restored = await as(KEYS.ops, { method: 'POST', url: `/projections/${LEDGER}/snapshots/${snapshotId}/restore` })
  t.equal(restored.statusCode, 200)
  t.same((await as(KEYS.acme, { url: `/projections/${LEDGER}/documents/account-1` })).json().document, { total: 10, seen: [poison - 1] }, 'acme’s documents as of its hold')
  const every = await waitFor('the replay to reach the head', async () => {
    const now = await view(KEYS.ops)
    return now.lag === 0 && now.failures.length === 2 && now
  }, { timeoutMs: 30_000 })
  t.match(every.failures, [{ tenant: 'acme', position: poison }, { tenant: 'beta' }], 'acme held by the snapshot, beta again by its poison event')
  t.equal((await act(KEYS.ops, 'skip', { 'x-tenant-id': 'beta' })).statusCode, 200)
  t.equal((await act(KEYS.ops, 'restart', { 'x-tenant-id': 'acme' })).statusCode, 200)
  // acme's catch-up passes its fixed event, then meets its `always` one on account-2 and is held there
  const again = await waitFor('acme held on account-2', async () => {
    const now = await view(KEYS.acme)
    return now.failures.length === 1 && now.failures[0].position > poison && now.failures[0]
  }, { timeoutMs: 30_000 })
  t.equal((await act(KEYS.ops, 'skip', { 'x-tenant-id': 'acme' })).statusCode, 200)
  await settled()
  await checkLedger(t, db.sql, 'acme', 'account-1')
  await checkLedger(t, db.sql, 'acme', 'account-2', [again.position])
  const betaSkipped = (await db.sql<{ position: number }[]>`select global_position as position from events where tenant = 'beta' and data ->> 'poison' = 'always'`).map((row) => row.position)
  await checkLedger(t, db.sql, 'beta', 'account-1')
  await checkLedger(t, db.sql, 'beta', 'account-2', betaSkipped)
})

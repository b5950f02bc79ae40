import { setTimeout as delay } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { LogHead } from '../../src/events/log-head.js'
import { CHANNEL } from '../../src/db/channels.js'
import { LogWatcher } from '../../src/subscriptions/log-watcher.js'
import { testDatabase } from '../helpers/test-database.js'
import { waitFor } from '../helpers/wait-for.js'

// The watcher's follow-up rounds: soon while observations keep settling, backed off while one keeps waiting.
const { sql } = await testDatabase(t)

// A head whose rounds follow a script: each round reports the head it reached and the fence that still waits.
class ScriptedHead {
  rounds = 0
  settled = true
  waitingFence: bigint | undefined
  constructor(private readonly script: (round: number) => { head: number; waitingFence?: bigint }) {}
  async catchUp(): Promise<number> {
    return 0
  }
  async refresh(): Promise<number> {
    const { head, waitingFence } = this.script(++this.rounds)
    this.waitingFence = waitingFence
    this.settled = waitingFence === undefined
    return head
  }
}

const watch = async (t: Test, head: ScriptedHead): Promise<{ watcher: LogWatcher; heads: number[] }> => {
  const watcher = new LogWatcher(sql, head as unknown as LogHead, { pollMs: 10_000 })
  await watcher.start()
  t.teardown(() => watcher.stop())
  const heads: number[] = []
  watcher.on('advance', (value) => heads.push(value))
  return { watcher, heads }
}

t.test('while observations keep settling, each follow-up round comes at once: the tail of a busy spell is not held back', async (t) => {
  // rounds 1–12 each find other appends in flight, so each leaves a newer observation waiting; round 13 settles
  const head = new ScriptedHead((round) => (round <= 12 ? { head: round, waitingFence: BigInt(round) } : { head: 100 }))
  const { watcher, heads } = await watch(t, head)
  const started = Date.now()
  await watcher.tick()
  await waitFor('the rounds to settle', () => heads.includes(100), { timeoutMs: 5_000, intervalMs: 1 })
  t.ok(Date.now() - started < 1000, `13 rounds took ${Date.now() - started} ms`)
})

t.test('an observation that keeps waiting on the same open transaction is looked at less and less often', async (t) => {
  const head = new ScriptedHead(() => ({ head: 1, waitingFence: 7n }))
  const { watcher } = await watch(t, head)
  await watcher.tick()
  await delay(300)
  t.ok(head.rounds < 15, `${head.rounds} rounds in 300 ms`)
})

t.test('a projection batch that ends is observed at once, however far a long wait backed the follow-ups off', async (t) => {
  // a batch's transaction owns an xid, so observations made while it runs wait for it like for an open append
  let open = true
  const head = new ScriptedHead(() => (open ? { head: 1, waitingFence: 7n } : { head: 2 }))
  const { watcher, heads } = await watch(t, head)
  await watcher.tick()
  // by now the follow-ups come about a second apart
  await delay(1100)
  open = false
  const ended = Date.now()
  watcher.ended()
  await waitFor('the head to move past the ended transaction', () => heads.includes(2), { timeoutMs: 5_000, intervalMs: 1 })
  t.ok(Date.now() - ended < 400, `the head moved ${Date.now() - ended} ms after the batch ended`)
})

t.test('an ended batch costs no round while nothing waits', async (t) => {
  const head = new ScriptedHead(() => ({ head: 1 }))
  const { watcher } = await watch(t, head)
  await watcher.tick()
  const rounds = head.rounds
  watcher.ended()
  watcher.ended()
  await watcher.tick()
  t.equal(head.rounds, rounds + 1, 'only the explicit round ran')
})

const startWatcher = async (t: Test, head: ScriptedHead): Promise<LogWatcher> => {
  const watcher = new LogWatcher(sql, head as unknown as LogHead, { pollMs: 10_000 })
  await watcher.start()
  t.teardown(() => watcher.stop())
  return watcher
}

t.test('appends wake no round for passive followers alone; the first eager listener after them gets one at once', async (t) => {
  const head = new ScriptedHead((round) => ({ head: round }))
  const watcher = await startWatcher(t, head)
  const passiveHeads: number[] = []
  watcher.followPassively((value) => passiveHeads.push(value))
  watcher.appended()
  watcher.appended()
  await delay(50)
  t.equal(head.rounds, 0, 'no round for a passive follower')
  const eagerHeads: number[] = []
  watcher.on('advance', (value) => eagerHeads.push(value))
  await waitFor('a round for the new eager listener', () => eagerHeads.length > 0, { timeoutMs: 2_000, intervalMs: 1 })
  t.same(passiveHeads, eagerHeads, 'the passive follower hears the same advances')
  const rounds = head.rounds
  watcher.appended()
  await waitFor('a round for the append', () => head.rounds > rounds, { timeoutMs: 2_000, intervalMs: 1 })
})

t.test("this process's own NOTIFY starts no second round; another instance's does", async (t) => {
  const head = new ScriptedHead((round) => ({ head: round }))
  const watcher = await startWatcher(t, head)
  watcher.on('advance', () => undefined)
  const payloads: string[] = []
  const listening = await sql.listen(CHANNEL.log, (payload) => payloads.push(payload))
  t.teardown(() => listening.unlisten())
  watcher.appended()
  await waitFor('our NOTIFY to be delivered', () => payloads.length > 0, { timeoutMs: 5_000, intervalMs: 1 })
  t.equal(head.rounds, 1, 'the append woke one round')
  // delivered on the watcher's connection in commit order, so after our own
  await sql`select pg_notify(${CHANNEL.log}, 'another-instance')`
  await waitFor("the other instance's round", () => head.rounds > 1, { timeoutMs: 5_000, intervalMs: 1 })
  await delay(50)
  t.equal(head.rounds, 2, 'one round for the append, one for the other instance, none for our own NOTIFY')
})

import { setTimeout as delay } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { LogHead } from '../../src/events/log-head.js'
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

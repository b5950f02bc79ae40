import t from 'tap'
import type { Sql } from '../../src/db/connect.js'
import { ProjectionProgress } from '../../src/projections/progress.js'

// Read-your-writes wake-ups: a committed batch is read at once, never behind a read a waiter began earlier.
// A stand-in database whose reads of the live checkpoint hang until the test answers them, in any order.
const gatedDatabase = () => {
  const reads: { answer: (position: number | undefined) => void; fail: (error: Error) => void }[] = []
  const sql = ((strings: TemplateStringsArray) => {
    if (!strings.join('').includes('live_generation')) return Promise.resolve([])
    return new Promise((resolve, reject) =>
      reads.push({ answer: (position) => resolve(position === undefined ? [] : [{ position, held: {} }]), fail: reject }))
  }) as unknown as Sql
  return { sql, reads }
}

t.test("a commit's read starts at once, even while a read a waiter began is still out", async (t) => {
  const { sql, reads } = gatedDatabase()
  const progress = new ProjectionProgress(sql)
  const reached = progress.waitFor('p', 'default', 5, 5_000)
  t.equal(reads.length, 1, "the waiter's own read is out")
  progress.committed('p')
  t.equal(reads.length, 2, "the commit's read went out beside it")
  reads[1]!.answer(5)
  t.equal(await reached, true, "the commit's read released the waiter while the earlier read still hangs")
  reads[0]!.answer(4)
})

t.test('a waiter is released only by a read at or past its position', async (t) => {
  const { sql, reads } = gatedDatabase()
  const progress = new ProjectionProgress(sql)
  const reached = progress.waitFor('p', 'default', 5, 300)
  reads[0]!.answer(4)
  t.equal(await reached, false, 'a read below the position leaves it waiting until its timeout')
})

t.test('a missing projection is a 404, but only from a read begun after the wait began', async (t) => {
  const { sql, reads } = gatedDatabase()
  const progress = new ProjectionProgress(sql)
  const first = progress.waitFor('p', 'default', 5, 5_000)
  // a second waiter arrives while the first one's read is out: that read may predate the projection it asks for
  const second = progress.waitFor('p', 'default', 5, 5_000)
  reads[0]!.answer(undefined)
  await t.rejects(first, { status: 404 }, 'the first waiter: its own read found no projection')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(reads.length, 2, "the second waiter's own read went out after the first ended")
  reads[1]!.answer(5)
  t.equal(await second, true, 'the second waiter is answered by its own read')
})

t.test("a wait whose first read fails fails at once; a later failed read leaves it waiting", async (t) => {
  const { sql, reads } = gatedDatabase()
  const progress = new ProjectionProgress(sql)
  const failing = progress.waitFor('p', 'default', 5, 5_000)
  reads[0]!.fail(new Error('connection lost'))
  await t.rejects(failing, { message: 'connection lost' }, 'the first read failed: so does the wait')
  const waiting = progress.waitFor('p', 'default', 5, 5_000)
  reads[1]!.answer(4)
  await new Promise((resolve) => setImmediate(resolve))
  progress.committed('p')
  reads[2]!.fail(new Error('connection lost'))
  progress.committed('p')
  await new Promise((resolve) => setImmediate(resolve))
  reads.at(-1)!.answer(5)
  t.equal(await waiting, true, 'checked by its first read, the wait outlived a failed one and was answered by the next')
})

t.test('a commit that brings its progress releases waiters at once, with no read of its own', async (t) => {
  const { sql, reads } = gatedDatabase()
  const progress = new ProjectionProgress(sql)
  const reached = progress.waitFor('p', 'default', 5, 5_000)
  t.equal(reads.length, 1, "the waiter's own read is out")
  progress.committed('p', { position: 5, held: {} })
  t.equal(reads.length, 1, 'no read went out for the commit')
  t.equal(await reached, true, "the commit's progress released the waiter while its own read still hangs")
  reads[0]!.answer(4)
})

t.test("a tenant held below a waiter's position is not released by a commit's progress", async (t) => {
  const { sql, reads } = gatedDatabase()
  const progress = new ProjectionProgress(sql)
  const held = progress.waitFor('p', 'stuck', 5, 300)
  const free = progress.waitFor('p', 'default', 5, 5_000)
  progress.committed('p', { position: 7, held: { stuck: 3 } })
  t.equal(await free, true, 'another tenant is released')
  t.equal(await held, false, 'the held tenant waits, until its timeout here')
  for (const read of reads) read.answer(7)
})

import t from 'tap'
import { SingleFlight } from '../src/single-flight.js'

const deferred = () => {
  let resolve!: () => void
  const promise = new Promise<void>((done) => (resolve = done))
  return { promise, resolve }
}

t.test('calls during a run share one run after it, with the latest arguments', async (t) => {
  const started: string[] = []
  const gates = [deferred(), deferred()]
  const flight = new SingleFlight(async (label: string) => {
    started.push(label)
    await gates[started.length - 1]!.promise
    return label
  })
  const first = flight.run('a')
  const second = flight.run('b')
  const third = flight.run('c')
  t.same(started, ['a'], 'one run at a time')
  gates[0]!.resolve()
  t.equal(await first, 'a')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, ['a', 'c'], 'the calls made meanwhile share one run, with the latest arguments')
  gates[1]!.resolve()
  t.equal(await second, 'c')
  t.equal(await third, 'c')
})

t.test('a failed run neither blocks the next nor fails the calls queued behind it', async (t) => {
  let runs = 0
  const gate = deferred()
  const flight = new SingleFlight(async () => {
    runs++
    if (runs === 1) {
      await gate.promise
      throw new Error('first run fails')
    }
    return runs
  })
  const first = flight.run()
  const second = flight.run()
  gate.resolve()
  await t.rejects(first, /first run fails/)
  t.equal(await second, 2)
  t.equal(await flight.run(), 3, 'idle again: a new call runs at once')
})

t.test('settled waits for the runs in flight and queued at the call', async (t) => {
  const gate = deferred()
  let finished = 0
  const flight = new SingleFlight(async () => {
    await gate.promise
    finished++
  })
  void flight.run()
  void flight.run()
  const settled = flight.settled()
  gate.resolve()
  await settled
  t.equal(finished, 2)
  await flight.settled()
  t.pass('settled with nothing in flight resolves at once')
})

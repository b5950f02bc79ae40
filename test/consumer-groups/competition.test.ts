import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { groupApi, type Delivered } from '../helpers/group-api.js'

const STREAMS = 200
const EVENTS_PER_STREAM = 100
const EVENTS_PER_APPEND = 10
const APPENDERS = 8
const POLLERS = 8
const ACK_TIMEOUT_MS = 3000

type Behaviour = 'ack' | 'nack' | 'expire'
// two pollers nack now and then, two let a lease expire now and then, the rest only ack
const behaviourOf = (poller: number): Behaviour => (poller < 2 ? 'nack' : poller < 4 ? 'expire' : 'ack')

interface Record {
  clock: number
  // what each stream's acks were, in the order their answers came
  ackedVersions: Map<string, number[]>
  // eventId → clock value when its ack answer came
  ackedAt: Map<string, number>
  // deliveries whose poll began after the event's ack had been answered
  lateDeliveries: string[]
  partialAcks: string[]
  drops: number
  nacks: number
}

const runsOf = (events: Delivered[]): Delivered[][] => {
  const runs = new Map<string, Delivered[]>()
  for (const event of events) runs.set(event.streamId, [...(runs.get(event.streamId) ?? []), event])
  return [...runs.values()]
}

t.test('8 pollers (some nacking, some letting leases expire) over 20,000 events on 200 streams appended while they poll', async (t) => {
  const { app } = await buildTestApp(t, {}, { max: 40 })
  const api = groupApi(app)
  t.equal((await api.put('workers', { ackTimeoutMs: ACK_TIMEOUT_MS, maxDeliveries: 100 })).statusCode, 201)
  const total = STREAMS * EVENTS_PER_STREAM
  const record: Record = { clock: 0, ackedVersions: new Map(), ackedAt: new Map(), lateDeliveries: [], partialAcks: [], drops: 0, nacks: 0 }

  const appendAll = async () => {
    const appends = Array.from({ length: total / EVENTS_PER_APPEND }, (_, index) => `order-${index % STREAMS}`)
    await Promise.all(Array.from({ length: APPENDERS }, async (_, appender) => {
      for (let index = appender; index < appends.length; index += APPENDERS) {
        const response = await api.append(appends[index]!, EVENTS_PER_APPEND)
        if (response.statusCode !== 201) throw new Error(`append ${response.statusCode}`)
      }
    }))
  }

  const ackRun = async (run: Delivered[]) => {
    const result = await api.ack('workers', run.map((event) => event.eventId))
    const clock = ++record.clock
    if (result.acked === run.length) {
      const versions = record.ackedVersions.get(run[0]!.streamId) ?? []
      versions.push(...run.map((event) => event.streamVersion))
      record.ackedVersions.set(run[0]!.streamId, versions)
      for (const event of run) record.ackedAt.set(event.eventId, clock)
    } else if (result.acked !== 0) {
      record.partialAcks.push(`${run[0]!.streamId}: ${result.acked} of ${run.length}`)
    }
  }

  const poller = async (index: number) => {
    const behaviour = behaviourOf(index)
    let round = 0
    while (record.ackedAt.size < total) {
      const began = record.clock
      const events = await api.poll('workers', '?max=100&waitMs=500')
      for (const event of events) {
        const ackedAt = record.ackedAt.get(event.eventId)
        if (ackedAt !== undefined && ackedAt <= began) record.lateDeliveries.push(`${event.streamId}@${event.streamVersion} attempt ${event.delivery.attempt}`)
      }
      round++
      if (events.length === 0) continue
      if (behaviour === 'expire' && round % 15 === 0 && record.drops < 4) {
        record.drops++
        continue
      }
      const runs = runsOf(events)
      if (behaviour === 'nack' && round % 5 === 0) {
        const [first, ...rest] = runs
        record.nacks++
        await api.nack('workers', { eventIds: first!.map((event) => event.eventId), retryAfterMs: round % 2 === 0 ? 0 : 50, error: 'try later' })
        await Promise.all(rest.map(ackRun))
        continue
      }
      await Promise.all(runs.map(ackRun))
    }
  }

  await Promise.all([appendAll(), ...Array.from({ length: POLLERS }, (_, index) => poller(index))])

  t.equal(record.ackedAt.size, total, `all ${total} events acked`)
  t.same(record.partialAcks, [], 'each run of a stream was acked whole or not at all')
  t.same(record.lateDeliveries, [], 'no event was delivered by a poll that began after its ack was answered')
  const disorder = [...record.ackedVersions].filter(([, versions]) => versions.some((version, index) => version !== index + 1))
  t.same(disorder.map(([streamId, versions]) => `${streamId}: ${versions.slice(0, 20).join(',')}`), [], 'each stream was acked in stream order, each version once')
  t.equal(record.ackedVersions.size, STREAMS)
  t.ok(record.nacks > 0 && record.drops > 0, `nacks (${record.nacks}) and expired leases (${record.drops}) happened`)
  t.match(await api.status('workers'), { acked: total, inFlight: 0, parked: 0, lag: 0 })
  t.same(await api.poll('workers', '?max=1000'), [], 'nothing is handed out again')
})

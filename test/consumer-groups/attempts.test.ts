import t from 'tap'
import { buildTestApp } from '../helpers/test-app.js'
import { groupApi, type Delivered } from '../helpers/group-api.js'

const STREAMS = 60
const EVENTS_PER_STREAM = 5
// the second and the fourth event of every other stream are never acked
const POISON_INDEXES = [1, 3]
const POLLERS = 8
const MAX_DELIVERIES = 3
// SPEC's minimum: the leases of many streams expire together, and every waiting poll wakes for them at once
const ACK_TIMEOUT_MS = 1000

const isPoison = (event: Delivered) => Number(event.streamId.slice('order-'.length)) % 2 === 0 && POISON_INDEXES.includes(event.streamVersion - 1)

const runsOf = (events: Delivered[]): Delivered[][] => {
  const runs = new Map<string, Delivered[]>()
  for (const event of events) runs.set(event.streamId, [...(runs.get(event.streamId) ?? []), event])
  return [...runs.values()]
}

// Racing pollers: a poll parking an event whose lease expired, or leasing a stream again, while other polls read
// the same streams. Each event's deliveries, as the clients saw them, must be numbered 1, 2, … and end at
// maxDeliveries (SPEC "Consumer groups": after maxDeliveries deliveries an event is parked).
t.test(`${POLLERS} pollers over streams with poison events: every delivery's attempt is its number, none past maxDeliveries`, async (t) => {
  const { app } = await buildTestApp(t, {}, { max: 30 })
  const api = groupApi(app)
  for (let stream = 0; stream < STREAMS; stream++) await api.append(`order-${stream}`, EVENTS_PER_STREAM)
  await api.put('g', { ackTimeoutMs: ACK_TIMEOUT_MS, maxDeliveries: MAX_DELIVERIES })
  const total = STREAMS * EVENTS_PER_STREAM
  // eventId → the attempt of each delivery, in the order the answers came
  const attempts = new Map<string, number[]>()
  const acked = new Set<string>()
  let done = false
  let nacks = 0

  // a consumer that handles a run in order: acks the events before its first poison event, then either nacks that
  // one (pollers 0 and 1, now and then) or stops, so the rest of the run stays leased until the lease expires
  const poller = async (index: number) => {
    for (let round = 0; !done; round++) {
      const events = await api.poll('g', '?max=4&waitMs=300')
      for (const event of events) attempts.set(event.eventId, [...(attempts.get(event.eventId) ?? []), event.delivery.attempt])
      for (const run of runsOf(events)) {
        const poison = run.findIndex(isPoison)
        const handled = poison === -1 ? run : run.slice(0, poison)
        if (handled.length > 0) {
          const result = await api.ack('g', handled.map((event) => event.eventId))
          if (result.acked === handled.length) for (const event of handled) acked.add(event.eventId)
        }
        if (poison !== -1 && index < 2 && round % 3 === 0) {
          nacks++
          await api.nack('g', { eventIds: [run[poison]!.eventId], error: 'poison' })
        }
      }
      if (events.length === 0 && (await api.status('g')).lag === 0) done = true
    }
  }
  await Promise.all(Array.from({ length: POLLERS }, (_, index) => poller(index)))

  const parked: { eventId: string; attempts: number }[] = (await api.call('GET', '/consumer-groups/g/parked?limit=1000')).json().events
  t.equal(acked.size + parked.length, total, 'every event acked or parked')
  t.ok(parked.length >= (STREAMS / 2) * POISON_INDEXES.length, `the poison events parked (${parked.length} events parked, ${nacks} nacks)`)
  const misnumbered = [...attempts].filter(([, seen]) => [...seen].sort((a, b) => a - b).some((attempt, index) => attempt !== index + 1))
  t.same(misnumbered.map(([eventId, seen]) => `${eventId}: ${seen.join(',')}`), [], 'each event\'s deliveries are numbered 1, 2, …')
  const tooMany = [...attempts].filter(([, seen]) => seen.length > MAX_DELIVERIES)
  t.same(tooMany.map(([eventId, seen]) => `${eventId}: ${seen.join(',')}`), [], `no event delivered more than ${MAX_DELIVERIES} times`)
  const parkedEarly = parked.filter((event) => event.attempts !== MAX_DELIVERIES || attempts.get(event.eventId)?.length !== MAX_DELIVERIES)
  t.same(parkedEarly.map((event) => `${event.eventId}: ${event.attempts} (${attempts.get(event.eventId)?.join(',')})`), [], `each parked event was delivered ${MAX_DELIVERIES} times`)
  t.match(await api.status('g'), { lag: 0, inFlight: 0, parked: parked.length, acked: acked.size })
})

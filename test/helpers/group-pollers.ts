import type { ServerProcess } from './server-process.js'

export interface Delivered {
  globalPosition: number
  streamId: string
  streamVersion: number
  eventId: string
  delivery: { attempt: number; deadline: string }
}

// What pollers of one group saw through real servers: every delivery, and each ack by what its answer said.
export interface PollerLog {
  stop: boolean
  // set before the test kills the server: requests failing from then on are expected
  killed: boolean
  deliveries: { eventId: string; poller: number; at: number }[]
  // acks answered with every id acked
  confirmed: Set<string>
  // ids of acks sent and never answered (the server died)
  unanswered: Set<string>
  partial: string[]
  failures: string[]
}

export const pollerLog = (): PollerLog => ({ stop: false, killed: false, deliveries: [], confirmed: new Set(), unanswered: new Set(), partial: [], failures: [] })

const runsOf = (events: Delivered[]): Delivered[][] => {
  const runs = new Map<string, Delivered[]>()
  for (const event of events) runs.set(event.streamId, [...(runs.get(event.streamId) ?? []), event])
  return [...runs.values()]
}

// One poller: long polls, then acks each stream's run in one request; ends when told, or at the first request
// the server does not answer.
export const runPoller = async (server: ServerProcess, group: string, poller: number, log: PollerLog, max = 50): Promise<void> => {
  while (!log.stop) {
    let events: Delivered[]
    try {
      const response = await server.request('POST', `/consumer-groups/${group}/poll?max=${max}&waitMs=500`)
      if (response.status !== 200) throw new Error(`poll answered ${response.status} ${response.text}`)
      events = response.body.events
    } catch (error) {
      if (!log.stop && !log.killed) log.failures.push(`poller ${poller}: ${String(error)}`)
      return
    }
    const at = Date.now()
    for (const event of events) log.deliveries.push({ eventId: event.eventId, poller, at })
    const acks = runsOf(events).map(async (run) => {
      const eventIds = run.map((event) => event.eventId)
      try {
        const response = await server.request('POST', `/consumer-groups/${group}/ack`, { body: { eventIds } })
        if (response.body?.acked === eventIds.length) for (const id of eventIds) log.confirmed.add(id)
        else if (response.body?.acked !== 0) log.partial.push(`${run[0]!.streamId}: ${response.text}`)
      } catch {
        for (const id of eventIds) log.unanswered.add(id)
      }
    })
    await Promise.all(acks)
    if (log.killed) return
  }
}

import type { Sql, Tx } from '../db/connect.js'
import type { GroupRow } from './groups.js'
import { settleStreams } from './settle.js'

export interface Delivery {
  globalPosition: number
  attempt: number
  deadline: string
}

interface Candidate {
  streamId: string
  globalPosition: number
  attempts: number
  eventBytes: number
}

// The first pending events of the streams that may go out now (not leased or the lease expired, past a nack's
// delay), oldest stream first and each stream's in order: a poll takes runs of consecutive events of a stream. Read
// without locks; the streams are locked afterwards, only those a poll takes. Streams come in next_position order
// from the index, so the sort stops as soon as `max` events are found (an incremental sort over per-stream runs).
const candidates = (tx: Tx, groupId: number, max: number) => tx<Candidate[]>`
  select c.stream_id as "streamId", c.global_position as "globalPosition", c.attempts, c.event_bytes as "eventBytes"
    from (
      select stream_id, next_position
        from consumer_group_streams
       where group_id = ${groupId}
         and next_position is not null
         and (leased_until is null or leased_until <= clock_timestamp())
         and ready_at <= clock_timestamp()
       order by next_position
       limit ${max}
    ) as s
   cross join lateral (
     select stream_id, global_position, attempts, event_bytes
       from consumer_group_events e
      where e.group_id = ${groupId} and e.stream_id = s.stream_id and e.state = 'pending'
      order by global_position
      limit ${max}
   ) as c
   order by s.next_position, c.global_position
   limit ${max}`

// The streams of the candidates, locked with `skip locked` and only if still as read: free, and with the same first
// pending event (so no event of theirs was acked or handed out meanwhile). Pollers thus take different streams and
// none waits on another: a stream is leased as a whole, which is what keeps its events in order (SPEC "Consumer
// groups": order), and no row is locked by every poll.
const lockStreams = async (tx: Tx, groupId: number, rows: Candidate[]): Promise<Set<string>> => {
  const heads = new Map<string, number>()
  for (const row of rows) if (!heads.has(row.streamId)) heads.set(row.streamId, row.globalPosition)
  const locked = await tx<{ streamId: string }[]>`
    select s.stream_id as "streamId"
      from unnest(${[...heads.keys()]}::text[], ${[...heads.values()]}::bigint[]) as h(stream_id, next_position)
      join consumer_group_streams s on s.group_id = ${groupId} and s.stream_id = h.stream_id
     where s.next_position = h.next_position
       and (s.leased_until is null or s.leased_until <= clock_timestamp())
       and s.ready_at <= clock_timestamp()
       for update of s skip locked`
  return new Set(locked.map((row) => row.streamId))
}

// At most `maxBytes` of events (MAX_PAGE_BYTES), always one.
const withinBytes = (rows: Candidate[], maxBytes: number): Candidate[] => {
  let bytes = 0
  return rows.filter((row, index) => (bytes += row.eventBytes) <= maxBytes || index === 0)
}

// SPEC: after maxDeliveries deliveries without an ack an event is parked and stops blocking its stream. A nack parks
// it at once; an event whose last lease expired is parked here, when its stream would hand it out again.
const parkExhausted = async (tx: Tx, group: GroupRow, rows: Candidate[]): Promise<boolean> => {
  const heads = new Map<string, Candidate>()
  for (const row of rows) if (!heads.has(row.streamId)) heads.set(row.streamId, row)
  const exhausted = [...heads.values()].filter((row) => row.attempts >= group.maxDeliveries)
  if (exhausted.length === 0) return false
  await tx`
    update consumer_group_events
       set state = 'parked', parked_at = now(), last_error = coalesce(last_error, 'the lease expired')
     where group_id = ${group.id}
       and global_position = any(${exhausted.map((row) => row.globalPosition)}::bigint[])`
  await settleStreams(tx, group.id, exhausted.map((row) => ({ streamId: row.streamId, acked: 0 })))
  return true
}

// Only events still pending are handed out: the candidates were read before their streams were locked, and an
// event acked out of order in a lease that then expired is no longer pending although its stream's first one is.
const grant = async (tx: Tx, group: GroupRow, taken: Candidate[]): Promise<Delivery[]> => {
  const granted = await tx<{ streamId: string; globalPosition: number; attempts: number }[]>`
    update consumer_group_events
       set attempts = attempts + 1
     where group_id = ${group.id}
       and global_position = any(${taken.map((row) => row.globalPosition)}::bigint[])
       and state = 'pending'
    returning stream_id as "streamId", global_position as "globalPosition", attempts`
  granted.sort((a, b) => a.globalPosition - b.globalPosition)
  const runs = new Map<string, { from: number; to: number; count: number }>()
  for (const row of granted) {
    const run = runs.get(row.streamId)
    if (run) Object.assign(run, { to: row.globalPosition, count: run.count + 1 })
    else runs.set(row.streamId, { from: row.globalPosition, to: row.globalPosition, count: 1 })
  }
  const [lease] = await tx<{ deadline: string }[]>`
    with leased as (
      update consumer_group_streams s
         set leased_until = statement_timestamp() + ${group.ackTimeoutMs} * interval '1 millisecond',
             leased_from = l.leased_from,
             leased_to = l.leased_to,
             delivered = s.delivered + l.count
        from unnest(${[...runs.keys()]}::text[], ${[...runs.values()].map((run) => run.from)}::bigint[],
                    ${[...runs.values()].map((run) => run.to)}::bigint[], ${[...runs.values()].map((run) => run.count)}::int[])
          as l(stream_id, leased_from, leased_to, count)
       where s.group_id = ${group.id} and s.stream_id = l.stream_id
      returning s.leased_until
    )
    select min(leased_until) as deadline from leased`
  return granted.map((row) => ({ globalPosition: row.globalPosition, attempt: row.attempts, deadline: lease!.deadline }))
}

// Leases up to `max` events (at most `maxBytes` of them) to one poll, in one transaction: attempts and the lease
// are in the database before any event leaves, so a crash can only hand them out again, never lose them.
export const leaseEvents = async (sql: Sql, group: GroupRow, max: number, maxBytes: number): Promise<Delivery[]> => {
  // a round finds nothing to lock when other polls took every stream it read: read again, a few times
  for (let round = 0; round < 5; round++) {
    const leased = await sql.begin(async (tx) => {
      const read = await candidates(tx, group.id, max)
      if (read.length === 0) return []
      const locked = await lockStreams(tx, group.id, read)
      const rows = read.filter((row) => locked.has(row.streamId))
      if (rows.length === 0) return undefined
      if (await parkExhausted(tx, group, rows)) return undefined
      return grant(tx, group, withinBytes(rows, maxBytes))
    })
    if (leased !== undefined) return leased
  }
  return []
}

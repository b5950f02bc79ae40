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

// Streams whose first pending event may go out now: not leased (or the lease expired), past a nack's delay. Locked
// with `skip locked`, so pollers take different streams and none waits on another: a stream is leased as a whole,
// which is what keeps each stream's events in order (SPEC "Consumer groups": order).
const freeStreams = (tx: Tx, groupId: number, max: number) => tx<{ streamId: string }[]>`
  select stream_id as "streamId"
    from consumer_group_streams
   where group_id = ${groupId}
     and next_position is not null
     and (leased_until is null or leased_until <= clock_timestamp())
     and ready_at <= clock_timestamp()
   order by next_position
   limit ${max}
     for update skip locked`

// The first pending events of those streams, oldest stream first, each stream's in order: a poll takes runs of
// consecutive events of a stream.
const candidates = (tx: Tx, groupId: number, streamIds: string[], max: number) => tx<Candidate[]>`
  select c.stream_id as "streamId", c.global_position as "globalPosition", c.attempts, c.event_bytes as "eventBytes"
    from unnest(${streamIds}::text[]) with ordinality as s(stream_id, rank)
   cross join lateral (
     select stream_id, global_position, attempts, event_bytes
       from consumer_group_events e
      where e.group_id = ${groupId} and e.stream_id = s.stream_id and e.state = 'pending'
      order by global_position
      limit ${max}
   ) as c
   order by s.rank, c.global_position
   limit ${max}`

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

const grant = async (tx: Tx, group: GroupRow, taken: Candidate[]): Promise<Delivery[]> => {
  const firstOf = new Map<string, number>()
  const lastOf = new Map<string, number>()
  const counts = new Map<string, number>()
  for (const row of taken) {
    if (!firstOf.has(row.streamId)) firstOf.set(row.streamId, row.globalPosition)
    lastOf.set(row.streamId, row.globalPosition)
    counts.set(row.streamId, (counts.get(row.streamId) ?? 0) + 1)
  }
  const attempts = await tx<{ globalPosition: number; attempts: number }[]>`
    update consumer_group_events
       set attempts = attempts + 1
     where group_id = ${group.id}
       and global_position = any(${taken.map((row) => row.globalPosition)}::bigint[])
    returning global_position as "globalPosition", attempts`
  const [lease] = await tx<{ deadline: string }[]>`
    with leased as (
      update consumer_group_streams s
         set leased_until = statement_timestamp() + ${group.ackTimeoutMs} * interval '1 millisecond',
             leased_from = l.leased_from,
             leased_to = l.leased_to,
             delivered = s.delivered + l.count
        from unnest(${[...lastOf.keys()]}::text[], ${[...firstOf.values()]}::bigint[], ${[...lastOf.values()]}::bigint[], ${[...counts.values()]}::int[])
          as l(stream_id, leased_from, leased_to, count)
       where s.group_id = ${group.id} and s.stream_id = l.stream_id
      returning s.leased_until
    )
    select min(leased_until) as deadline from leased`
  const attemptOf = new Map(attempts.map((row) => [row.globalPosition, row.attempts]))
  return taken.map((row) => ({ globalPosition: row.globalPosition, attempt: attemptOf.get(row.globalPosition)!, deadline: lease!.deadline }))
}

// Leases up to `max` events (at most `maxBytes` of them) to one poll, in one transaction: attempts and the lease
// are in the database before any event leaves, so a crash can only hand them out again, never lose them.
export const leaseEvents = async (sql: Sql, group: GroupRow, max: number, maxBytes: number): Promise<Delivery[]> => {
  for (;;) {
    const leased = await sql.begin(async (tx) => {
      const streams = await freeStreams(tx, group.id, max)
      if (streams.length === 0) return []
      const rows = await candidates(tx, group.id, streams.map((row) => row.streamId), max)
      if (await parkExhausted(tx, group, rows)) return undefined
      return rows.length === 0 ? [] : grant(tx, group, withinBytes(rows, maxBytes))
    })
    if (leased !== undefined) return leased
  }
}

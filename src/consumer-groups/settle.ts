import { CHANNEL } from '../db/channels.js'
import type { Sql, Tx } from '../db/connect.js'
import { groupNotFound, type GroupRow } from './groups.js'
import type { AckResult, NackRequest, NackResult } from './schemas.js'

// What an ack, a nack or a parking did to one stream of a group.
export interface StreamChange {
  streamId: string
  acked: number
  // a nack: the lease keeps only the events below the first one nacked
  cut?: number
  // a nack: the stream's next event goes out no earlier than this many ms from now
  delayMs?: number
}

// After events of these streams changed state (sql/0024 consumer_group_settle): each stream's first pending event is
// found again, its lease ends once it holds no pending event it delivered, acked events behind it are compacted
// away.
export const settleStreams = async (tx: Tx, groupId: number, changes: StreamChange[]): Promise<void> => {
  if (changes.length === 0) return
  await tx`
    select consumer_group_settle(
      ${groupId}::bigint,
      ${changes.map((c) => c.streamId)}::text[],
      ${changes.map((c) => c.acked)}::int[],
      ${changes.map((c) => c.cut ?? null)}::bigint[],
      ${changes.map((c) => c.delayMs ?? null)}::int[])`
}

// Work was freed (events nacked, parked events replayed): while a poll waits for this group on any instance, say
// so (sent at commit), as consumer_group_ack does (sql/0024). The payload is the group's key in consumer-groups.ts.
export const announceFreed = (tx: Tx, group: GroupRow) => tx`
  select pg_notify(${CHANNEL.consumerGroups}, ${`${group.tenant}/${group.name}`})
    from consumer_groups
   where id = ${group.id} and waiting_until > clock_timestamp()`

// The streams of these events, locked in stream order: every writer of stream rows takes them in this order
// (the fill upserts them sorted too), so acks, nacks and fills never deadlock.
const lockStreams = (tx: Tx, groupId: number, eventIds: string[]) => tx`
  select stream_id
    from consumer_group_streams
   where group_id = ${groupId}
     and stream_id in (select stream_id from consumer_group_events where group_id = ${groupId} and event_id = any(${eventIds}::uuid[]))
   order by stream_id
     for update`

// The events among `eventIds` that are leased now: pending, in their stream's lease, which has not expired, and part
// of it (attempts -1: replayed inside a lease that is not its own, sql/0024).
const leased = (tx: Tx) => tx`
      s.group_id = e.group_id
  and s.stream_id = e.stream_id
  and e.state = 'pending'
  and e.attempts >= 0
  and s.leased_until > clock_timestamp()
  and e.global_position between s.leased_from and s.leased_to`

const countBy = <T>(rows: readonly T[], key: (row: T) => string): Map<string, T[]> => {
  const groups = new Map<string, T[]>()
  for (const row of rows) groups.set(key(row), [...(groups.get(key(row)) ?? []), row])
  return groups
}

// SPEC: an acked event is never handed out again; ids not currently leased are ignored (counted). One call
// (sql/0024 consumer_group_ack), the group found by name in it: the ack is every consumer's hot path.
export const ackEvents = async (sql: Sql, tenant: string, name: string, eventIds: string[]): Promise<AckResult> => {
  const ids = [...new Set(eventIds)]
  const [row] = await sql<{ acked: number | null }[]>`select consumer_group_ack(${tenant}, ${name}, ${ids}::uuid[]) as acked`
  if (row?.acked === null || row?.acked === undefined) throw groupNotFound(name)
  return { acked: row.acked, ignored: ids.length - row.acked }
}

// SPEC: nacked events go out again after retryAfterMs, or are parked once delivered maxDeliveries times. The
// stream's lease keeps only the events before the first one nacked: the later ones go out again after it, in order.
export const nackEvents = (sql: Sql, group: GroupRow, body: NackRequest): Promise<NackResult> =>
  sql.begin(async (tx) => {
    const ids = [...new Set(body.eventIds)]
    await lockStreams(tx, group.id, ids)
    // the nacked events and every later one of their leases were delivered once more: counted here (a lease counts
    // its deliveries when it ends, sql/0024), the nacked ones parked on their maxDeliveries-th delivery
    const released = await tx<{ streamId: string; globalPosition: number; nacked: boolean; parked: boolean }[]>`
      with nacked as (
        select e.stream_id, e.global_position
          from consumer_group_events e
          join consumer_group_streams s on ${leased(tx)}
         where e.group_id = ${group.id}
           and e.event_id = any(${ids}::uuid[])
      ), cut as (
        select stream_id, min(global_position) as first from nacked group by stream_id
      ), released as (
        select e.global_position, e.global_position in (select global_position from nacked) as nacked,
               e.attempts + 1 >= ${group.maxDeliveries} as exhausted
          from consumer_group_events e
          join cut c on c.stream_id = e.stream_id
          join consumer_group_streams s on s.group_id = e.group_id and s.stream_id = e.stream_id
         where e.group_id = ${group.id} and e.state = 'pending' and e.global_position between c.first and s.leased_to
      )
      update consumer_group_events e
         set attempts = e.attempts + 1,
             last_error = case when r.nacked then ${body.error ?? null} else e.last_error end,
             state = case when r.nacked and r.exhausted then 'parked' else 'pending' end,
             parked_at = case when r.nacked and r.exhausted then now() end
        from released r
       where e.group_id = ${group.id} and e.global_position = r.global_position
      returning e.stream_id as "streamId", e.global_position as "globalPosition", r.nacked, e.state = 'parked' as parked`
    const nacked = released.filter((row) => row.nacked)
    const changes = [...countBy(nacked, (row) => row.streamId)].map(([streamId, rows]) => ({
      streamId,
      acked: 0,
      cut: Math.min(...rows.map((row) => row.globalPosition)) - 1,
      delayMs: rows.some((row) => !row.parked) ? body.retryAfterMs ?? 0 : undefined,
    }))
    await settleStreams(tx, group.id, changes)
    if (nacked.length > 0) await announceFreed(tx, group)
    return { nacked: nacked.length, ignored: ids.length - nacked.length }
  })

import type { Sql, Tx } from '../db/connect.js'
import type { GroupRow } from './groups.js'
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

// After events of these streams changed state: each stream's first pending event is found again, its lease ends
// once no pending event is left in it (a nack cuts it short), and acked events behind the new first pending one are deleted (compaction:
// they can never be handed out again, and position only needs the first pending event of each stream).
export const settleStreams = async (tx: Tx, groupId: number, changes: StreamChange[]): Promise<void> => {
  if (changes.length === 0) return
  await tx`
    with changed as (
      select *
        from unnest(${changes.map((c) => c.streamId)}::text[], ${changes.map((c) => c.acked)}::int[],
                    ${changes.map((c) => c.cut ?? null)}::bigint[], ${changes.map((c) => c.delayMs ?? null)}::int[])
          as c(stream_id, acked, cut, delay_ms)
    ), next as (
      select c.*,
             (select min(e.global_position)
                from consumer_group_events e
               where e.group_id = ${groupId} and e.stream_id = c.stream_id and e.state = 'pending') as next_position,
             exists (select
                       from consumer_group_events e
                       join consumer_group_streams s on s.group_id = e.group_id and s.stream_id = e.stream_id
                      where e.group_id = ${groupId} and e.stream_id = c.stream_id and e.state = 'pending'
                        and e.global_position between s.leased_from and least(s.leased_to, c.cut)) as still_leased
        from changed c
    ), compacted as (
      delete from consumer_group_events e
       using next n
       where e.group_id = ${groupId}
         and e.stream_id = n.stream_id
         and e.state = 'acked'
         and (n.next_position is null or e.global_position < n.next_position)
    )
    update consumer_group_streams s
       set next_position = n.next_position,
           acked = s.acked + n.acked,
           leased_until = case when n.still_leased then s.leased_until end,
           leased_from = case when n.still_leased then s.leased_from end,
           leased_to = case when n.still_leased then least(s.leased_to, n.cut) end,
           ready_at = case when n.delay_ms is null then s.ready_at else clock_timestamp() + n.delay_ms * interval '1 millisecond' end
      from next n
     where s.group_id = ${groupId}
       and s.stream_id = n.stream_id`
}

// The streams of these events, locked in stream order: every writer of stream rows takes them in this order
// (the fill upserts them sorted too), so acks, nacks and fills never deadlock.
const lockStreams = (tx: Tx, groupId: number, eventIds: string[]) => tx`
  select stream_id
    from consumer_group_streams
   where group_id = ${groupId}
     and stream_id in (select stream_id from consumer_group_events where group_id = ${groupId} and event_id = any(${eventIds}::uuid[]))
   order by stream_id
     for update`

// The events among `eventIds` that are leased now: pending, in their stream's lease, which has not expired.
const leased = (tx: Tx) => tx`
      s.group_id = e.group_id
  and s.stream_id = e.stream_id
  and e.state = 'pending'
  and s.leased_until > clock_timestamp()
  and e.global_position between s.leased_from and s.leased_to`

const countBy = <T>(rows: readonly T[], key: (row: T) => string): Map<string, T[]> => {
  const groups = new Map<string, T[]>()
  for (const row of rows) groups.set(key(row), [...(groups.get(key(row)) ?? []), row])
  return groups
}

// SPEC: an acked event is never handed out again; ids not currently leased are ignored (counted).
export const ackEvents = (sql: Sql, group: GroupRow, eventIds: string[]): Promise<AckResult> =>
  sql.begin(async (tx) => {
    const ids = [...new Set(eventIds)]
    await lockStreams(tx, group.id, ids)
    const acked = await tx<{ streamId: string }[]>`
      update consumer_group_events e
         set state = 'acked'
        from consumer_group_streams s
       where e.group_id = ${group.id}
         and e.event_id = any(${ids}::uuid[])
         and ${leased(tx)}
      returning e.stream_id as "streamId"`
    const changes = [...countBy(acked, (row) => row.streamId)].map(([streamId, rows]) => ({ streamId, acked: rows.length }))
    await settleStreams(tx, group.id, changes)
    return { acked: acked.length, ignored: ids.length - acked.length }
  })

// SPEC: nacked events go out again after retryAfterMs, or are parked once delivered maxDeliveries times. The
// stream's lease keeps only the events before the first one nacked: the later ones go out again after it, in order.
export const nackEvents = (sql: Sql, group: GroupRow, body: NackRequest): Promise<NackResult> =>
  sql.begin(async (tx) => {
    const ids = [...new Set(body.eventIds)]
    await lockStreams(tx, group.id, ids)
    const nacked = await tx<{ streamId: string; globalPosition: number; parked: boolean }[]>`
      update consumer_group_events e
         set last_error = ${body.error ?? null},
             state = case when e.attempts >= ${group.maxDeliveries} then 'parked' else 'pending' end,
             parked_at = case when e.attempts >= ${group.maxDeliveries} then now() end
        from consumer_group_streams s
       where e.group_id = ${group.id}
         and e.event_id = any(${ids}::uuid[])
         and ${leased(tx)}
      returning e.stream_id as "streamId", e.global_position as "globalPosition", e.state = 'parked' as parked`
    const changes = [...countBy(nacked, (row) => row.streamId)].map(([streamId, rows]) => ({
      streamId,
      acked: 0,
      cut: Math.min(...rows.map((row) => row.globalPosition)) - 1,
      delayMs: rows.some((row) => !row.parked) ? body.retryAfterMs ?? 0 : undefined,
    }))
    await settleStreams(tx, group.id, changes)
    return { nacked: nacked.length, ignored: ids.length - nacked.length }
  })

import type { Sql, Tx } from '../db/connect.js'
import type { GroupRow } from './groups.js'
import { settleStreams } from './settle.js'

export interface Delivery {
  globalPosition: number
  attempt: number
  deadline: string
}

interface LeaseRow {
  kind: 'granted' | 'exhausted' | 'read'
  globalPosition: number
  streamId: string
  attempt: number
  deadline: string
}

// One statement, one round trip, no transaction held open between polls:
// - `read`: the streams that may go out now (not leased or the lease expired, past a nack's delay), oldest first,
//   locked with `skip locked` as they are read, and the first pending events of each, in order, at most `max` in
//   all: a poll takes runs of consecutive events of a stream. A lateral join runs its subquery once per stream, in
//   the streams' order, so each stream's rows come together and in order, and the limit stops the read (and the
//   locking) as soon as `max` events are found: a cut can only shorten the last stream's run, never leave a hole.
//   Pollers take different streams and none waits on another; no row is locked by every poll. A stream is leased as
//   a whole, which is what keeps its events in order (SPEC "Consumer groups": order).
// - `ready`: streams whose first event read is their first pending one now (a stream locked after a change that
//   committed since this statement's snapshot may have newer events; it is left for the next poll).
// - `granted`: attempts + 1 on the events still pending (an update re-checks a row another transaction changed),
//   within MAX_PAGE_BYTES (always one); `leased`: each stream's run and deadline.
// A stream whose first event has had maxDeliveries deliveries is left out and reported `exhausted`, to be parked.
// The first half of the lease statement below, `read` … `taken`: what a poll may take.
const chosen = (sql: Sql, group: GroupRow, max: number) => sql`
  read as (
    select c.stream_id, c.global_position, c.attempts, c.event_bytes, s.next_position as head
      from (
        select stream_id, next_position
          from consumer_group_streams
         where group_id = ${group.id}
           and next_position is not null
           and (leased_until is null or leased_until <= clock_timestamp())
           and ready_at <= clock_timestamp()
         order by next_position
         limit ${max}
           for update skip locked
      ) as s
     cross join lateral (
       select stream_id, global_position, attempts, event_bytes
         from consumer_group_events e
        where e.group_id = ${group.id} and e.stream_id = s.stream_id and e.state = 'pending' and e.global_position >= s.next_position
        order by global_position
        limit ${max}
     ) as c
     limit ${max}
  ), ready as (
    select stream_id
      from read
     group by stream_id, head
    having min(global_position) = head
  ), exhausted as (
    select r.stream_id, r.global_position, r.attempts
      from read r
      join ready using (stream_id)
     where r.global_position = r.head
       and r.attempts >= ${group.maxDeliveries}
  ), taken as (
    select r.global_position,
           row_number() over (order by r.head, r.global_position) as n,
           sum(r.event_bytes) over (order by r.head, r.global_position) as bytes
      from read r
      join ready using (stream_id)
     where r.stream_id not in (select stream_id from exhausted))`

const leaseStatement = (sql: Sql, group: GroupRow, max: number, maxBytes: number) => sql<LeaseRow[]>`
  with ${chosen(sql, group, max)},
  granted as (
    update consumer_group_events e
       set attempts = e.attempts + 1
      from taken t
     where e.group_id = ${group.id}
       and e.global_position = t.global_position
       and e.state = 'pending'
       and (t.n = 1 or t.bytes <= ${maxBytes})
    returning e.stream_id, e.global_position, e.attempts
  ), leased as (
    update consumer_group_streams s
       set leased_until = statement_timestamp() + ${group.ackTimeoutMs} * interval '1 millisecond',
           leased_from = r.leased_from,
           leased_to = r.leased_to,
           delivered = s.delivered + r.count
      from (select stream_id, min(global_position) as leased_from, max(global_position) as leased_to, count(*)::int as count
              from granted
             group by stream_id) as r
     where s.group_id = ${group.id}
       and s.stream_id = r.stream_id
    returning s.stream_id, s.leased_until
  )
  select 'granted' as kind, g.global_position as "globalPosition", g.stream_id as "streamId", g.attempts as attempt, l.leased_until as deadline
    from granted g
    join leased l using (stream_id)
   union all
  select 'exhausted', global_position, stream_id, attempts, null
    from exhausted
   union all
  select 'read', null, null, null, null
   where exists (select from read)`

// SPEC: after maxDeliveries deliveries without an ack an event is parked and stops blocking its stream. A nack parks
// it at once; an event whose last lease expired is parked here, once the lease statement found it at the head of its
// stream, if its stream is still as it was then.
const parkExhausted = (sql: Sql, group: GroupRow, rows: LeaseRow[]): Promise<void> =>
  sql.begin(async (tx: Tx) => {
    const parked = await tx<{ streamId: string }[]>`
      update consumer_group_events e
         set state = 'parked', parked_at = now(), last_error = coalesce(e.last_error, 'the lease expired')
        from (select stream_id
                from consumer_group_streams
               where group_id = ${group.id}
                 and stream_id = any(${rows.map((row) => row.streamId)}::text[])
                 and (leased_until is null or leased_until <= clock_timestamp())
               order by stream_id
                 for update skip locked) as s
       where e.group_id = ${group.id}
         and e.stream_id = s.stream_id
         and e.global_position = any(${rows.map((row) => row.globalPosition)}::bigint[])
         and e.state = 'pending'
         and e.attempts >= ${group.maxDeliveries}
      returning e.stream_id as "streamId"`
    await settleStreams(tx, group.id, parked.map((row) => ({ streamId: row.streamId, acked: 0 })))
  })

// Leases up to `max` events (at most `maxBytes` of them) to one poll: attempts and the lease are in the database
// before any event leaves, so a crash can only hand them out again, never lose them.
export const leaseEvents = async (sql: Sql, group: GroupRow, max: number, maxBytes: number): Promise<Delivery[]> => {
  // a round may find every stream it read taken by other polls, or first events to park: look again, a few times
  for (let round = 0; round < 5; round++) {
    const rows = await leaseStatement(sql, group, max, maxBytes)
    const granted = rows.filter((row) => row.kind === 'granted').sort((a, b) => a.globalPosition - b.globalPosition)
    const exhausted = rows.filter((row) => row.kind === 'exhausted')
    if (exhausted.length > 0) await parkExhausted(sql, group, exhausted)
    if (granted.length > 0 || !rows.some((row) => row.kind === 'read')) return granted.map(({ globalPosition, attempt, deadline }) => ({ globalPosition, attempt, deadline }))
  }
  return []
}

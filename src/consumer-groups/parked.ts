import type { Sql, Tx } from '../db/connect.js'
import { eventJson } from '../events/event-json.js'
import { readEventsAt } from '../events/read-events-at.js'
import type { Upcasters } from '../events/upcasters.js'
import { Problem } from '../problems.js'
import type { GroupRow } from './groups.js'
import { announceFreed } from './settle.js'

interface ParkedRow {
  globalPosition: number
  attempts: number
  lastError: string | null
  parkedAt: string
}

// `{"events":[…],"next":…}`: each parked event as every read returns it plus {attempts, lastError, parkedAt}.
export const listParked = async (sql: Sql, upcasters: Upcasters, group: GroupRow, after: number, limit: number): Promise<string> => {
  const rows = await sql<ParkedRow[]>`
    select global_position as "globalPosition", attempts, last_error as "lastError", parked_at as "parkedAt"
      from consumer_group_events
     where group_id = ${group.id} and state = 'parked' and global_position > ${after}
     order by global_position
     limit ${limit + 1}`
  const page = rows.slice(0, limit)
  const byPosition = new Map(page.map((row) => [row.globalPosition, row]))
  const events = await readEventsAt(sql, group.tenant, page.map((row) => row.globalPosition))
  const parts = events.map((event) => {
    const { attempts, lastError, parkedAt } = byPosition.get(event.globalPosition)!
    return `${eventJson(event, upcasters).slice(0, -1)},"attempts":${attempts},"lastError":${JSON.stringify(lastError)},"parkedAt":"${parkedAt}"}`
  })
  const next = rows.length > limit ? page.at(-1)!.globalPosition : null
  return `{"events":[${parts.join(',')}],"next":${next}}`
}

const parkedOf = (tx: Tx, eventIds: string[] | undefined) => (eventIds ? tx`and event_id = any(${eventIds}::uuid[])` : tx``)

// SPEC: replay hands parked events out again with attempts reset. A replayed event goes back before the later events
// of its stream that are not leased yet; the group row's lock keeps the filler from compacting its stream row meanwhile.
export const replayParked = (sql: Sql, group: GroupRow, eventIds: string[] | undefined): Promise<number> =>
  sql.begin(async (tx) => {
    await tx`select from consumer_groups where id = ${group.id} for no key update`
    // the stream rows, in stream order as acks and nacks lock them: the lease read below is the one that ends next
    await tx`
      select
        from consumer_group_streams
       where group_id = ${group.id}
         and stream_id in (select stream_id from consumer_group_events where group_id = ${group.id} and state = 'parked' ${parkedOf(tx, eventIds)})
       order by stream_id
         for update`
    // no deliveries yet: an event inside its stream's recorded lease (a run leased around it while it was parked)
    // starts at -1, since the end of that lease adds one to every pending event inside it (sql/0024)
    const replayed = await tx<{ streamId: string; globalPosition: number }[]>`
      update consumer_group_events e
         set state = 'pending',
             attempts = -coalesce((select (e.global_position between s.leased_from and s.leased_to)::int
                                     from consumer_group_streams s
                                    where s.group_id = e.group_id and s.stream_id = e.stream_id), 0),
             last_error = null,
             parked_at = null
       where e.group_id = ${group.id}
         and e.state = 'parked'
         ${parkedOf(tx, eventIds)}
      returning e.stream_id as "streamId", e.global_position as "globalPosition"`
    if (replayed.length === 0) return 0
    await tx`
      insert into consumer_group_streams as s (group_id, stream_id, next_position)
      select ${group.id}, stream_id, min(global_position)
        from unnest(${replayed.map((row) => row.streamId)}::text[], ${replayed.map((row) => row.globalPosition)}::bigint[]) as r(stream_id, global_position)
       group by stream_id
       order by stream_id
          on conflict (group_id, stream_id) do update
         set next_position = least(s.next_position, excluded.next_position),
             ready_at = '-infinity'`
    await announceFreed(tx, group)
    return replayed.length
  })

// SPEC: DELETE …/parked/{eventId} → 204, or 404 not-found when that event is not parked. It counts as done.
export const deleteParked = async (sql: Sql, group: GroupRow, eventId: string): Promise<void> => {
  const deleted = await sql`
    delete from consumer_group_events
     where group_id = ${group.id} and event_id = ${eventId} and state = 'parked'
    returning global_position`
  if (deleted.length === 0) throw new Problem('not-found', { eventId }, `event ${eventId} is not parked in consumer group ${group.name}`)
}

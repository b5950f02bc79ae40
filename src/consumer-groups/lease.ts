import type { Sql } from '../db/connect.js'
import { eventTextColumns } from '../events/event-columns.js'
import type { StoredEventText } from '../events/read-log-text.js'
import { groupNotFound } from './groups.js'

// How many events one fill copies from the log; a poll fills again when it is still short of events.
export const FILL_LIMIT = 2000

// A leased event as every read returns it (stored text) and its delivery.
export interface Delivery {
  event: StoredEventText
  attempt: number
  deadline: string
}

export type FillOutcome = 'filled' | 'current' | 'busy'

// What one look at a group found: the events it leased, how far the group has copied the log, what a fill did
// (when one was asked for), and when nothing was leased, the earliest lease expiry or nack delay (epoch ms).
export interface Look {
  deliveries: Delivery[]
  scanned: number
  fill: FillOutcome | null
  nextDue: number | null
}

export interface LookOptions {
  max: number
  maxBytes: number
  // LogHead's gap-safe head
  head: number
  // fill before leasing
  fill: boolean
  // when nothing is free, the caller waits this long: the group is marked, so acks elsewhere announce freed work
  waitMs: number
}

type LookRow = StoredEventText & {
  rowKind: 'group' | 'event'
  attempt: number
  deadline: string
  scanned: number
  fillOutcome: FillOutcome | null
  nextDue: number | null
}

// One look, one round trip (sql/0024 consumer_group_poll): the group by name, a fill first when `fill`, the lease
// rounds, and the leased events' stored text joined in the same statement, each by its key: a plain join let the
// planner, guessing the function's rows and a young log's size, merge against a scan of every event of the tenant.
// Attempts and the lease are written in the function's transaction, which commits before any event leaves: a crash
// can only hand them out again.
// gap safety: `head` is LogHead's gap-safe head; the function copies nothing above it.
export const lookAtGroup = async (sql: Sql, tenant: string, name: string, options: LookOptions): Promise<Look> => {
  const rows = await sql<LookRow[]>`
    select p.row_kind as "rowKind", p.attempt, p.deadline, p.scanned, p.fill_outcome as "fillOutcome",
           (extract(epoch from p.next_due) * 1000)::float8 as "nextDue",
           e.*
      from consumer_group_poll(${tenant}, ${name}, ${options.max}, ${options.maxBytes}, ${options.head}, ${options.fill}, ${FILL_LIMIT}, ${options.waitMs}) as p
      left join lateral (
        select ${eventTextColumns(sql)}
          from events
         where events.tenant = ${tenant} and events.global_position = p.leased_position
         limit 1
      ) as e on true
     order by p.leased_position nulls first`
  const [group, ...events] = rows
  if (group?.rowKind !== 'group') throw groupNotFound(name)
  // an event no longer in the log is left out, as readEventsAt leaves it out
  const deliveries = events
    .filter((row) => row.globalPosition !== null)
    .map(({ rowKind: _, attempt, deadline, scanned: __, fillOutcome: ___, nextDue: ____, ...event }) => ({ event, attempt, deadline }))
  return { deliveries, scanned: group.scanned, fill: group.fillOutcome, nextDue: group.nextDue }
}

import type { Sql } from '../db/connect.js'
import { eventTextColumns } from './event-columns.js'
import type { StoredEventText } from './read-log-text.js'

// The tenant's events at these global positions, in position order, as stored text: for readers that already know
// which events they hand out (consumer groups) and pass them on through eventJson, the shared read path of /events.
export const readEventsAt = (sql: Sql, tenant: string, positions: readonly number[]): Promise<StoredEventText[]> =>
  positions.length === 0
    ? Promise.resolve([])
    : sql<StoredEventText[]>`
        select ${eventTextColumns(sql)}
          from events
         where tenant = ${tenant}
           and global_position = any(${positions as number[]}::bigint[])
         order by global_position`

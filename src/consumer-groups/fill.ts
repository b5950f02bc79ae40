import type { Sql, Tx } from '../db/connect.js'
import type { GroupRow } from './groups.js'

// How many events one fill copies from the log; a poll fills again when it is still short of events.
export const FILL_LIMIT = 2000

// Stream ids use only ASCII below '~', so under collate "C" every id with this prefix sorts before prefix + '~'.
const PREFIX_END = '~'

// The group's source as conditions on `events` (SPEC "Consumer groups": types, categories, streamIdPrefix).
const sourceConditions = (tx: Tx, group: GroupRow) => {
  const { types, categories, streamIdPrefix } = group.source
  return tx`
    ${types ? tx`and type = any(${types}::text[])` : tx``}
    ${categories ? tx`and category = any(${categories}::text[])` : tx``}
    ${streamIdPrefix !== undefined ? tx`and stream_id >= ${streamIdPrefix} and stream_id < ${streamIdPrefix + PREFIX_END}` : tx``}`
}

export type FillOutcome = 'filled' | 'current' | 'busy'

// Copies the group's matching events in (scanned, head] into consumer_group_events, each stream's first one into
// its stream row, and moves `scanned`. One filler per group at a time: the others skip the group row's lock and
// lease what is there ('busy'), so no poll waits on it.
// gap safety: `head` comes from LogHead, nothing above it is copied, so no event can appear below `scanned` later.
export const fillGroup = (sql: Sql, group: GroupRow, head: number): Promise<FillOutcome> =>
  sql.begin(async (tx) => {
    const [locked] = await tx<{ scanned: number; compact: boolean }[]>`
      select scanned, compacted_at < now() - interval '10 seconds' as compact
        from consumer_groups
       where id = ${group.id}
         for no key update skip locked`
    if (!locked) return 'busy'
    if (locked.compact) await compactStreams(tx, group.id)
    if (locked.scanned >= head) return 'current'
    await tx`
      with taken as (
        select global_position, stream_id, event_id, event_bytes
          from events
         where tenant = ${group.tenant}
           and global_position > ${locked.scanned}
           and global_position <= ${head}
           ${sourceConditions(tx, group)}
         order by global_position
         limit ${FILL_LIMIT}
      ), copied as (
        insert into consumer_group_events (group_id, global_position, stream_id, event_id, event_bytes)
        select ${group.id}, global_position, stream_id, event_id, event_bytes
          from taken
      ), heads as (
        insert into consumer_group_streams as s (group_id, stream_id, next_position)
        select ${group.id}, stream_id, min(global_position)
          from taken
         group by stream_id
         order by stream_id
            on conflict (group_id, stream_id) do update
           set next_position = coalesce(s.next_position, excluded.next_position)
      )
      update consumer_groups
         set scanned = case when (select count(*) from taken) < ${FILL_LIMIT} then ${head} else (select max(global_position) from taken) end
       where id = ${group.id}`
    return 'filled'
  })

// Stream rows with nothing pending and no lease go, their counts kept on the group: the table holds the streams
// that have work, not every stream the group ever saw. At most every 10 s, by the filler, who holds the group row.
const compactStreams = (tx: Tx, groupId: number) => tx`
  with gone as (
    delete from consumer_group_streams
     where group_id = ${groupId}
       and next_position is null
       and leased_until is null
    returning delivered, acked
  )
  update consumer_groups
     set delivered = delivered + coalesce((select sum(delivered) from gone), 0),
         acked = acked + coalesce((select sum(acked) from gone), 0),
         compacted_at = now()
   where id = ${groupId}`

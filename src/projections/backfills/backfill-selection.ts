import type { Sql, Tx } from '../../db/connect.js'
import { sourceOf, type Projector } from '../engine/apply-event.js'
import { sourceConditions } from '../engine/source-events.js'
import type { BackfillRequest } from './backfill-request-schema.js'
import type { BackfillRow } from './backfill-runs.js'

// Which events a run applies (SPEC "Backfills and rebuilds"): fixed when it starts, against the gap-safe
// head of that moment, by its criteria and filter.
export interface Selection {
  afterPosition: number
  toPosition: number
  fromTime: string | null
  toTime: string | null
}

export const selectEvents = async (sql: Sql, row: BackfillRow, projector: Projector, observeHead: () => Promise<number>): Promise<Selection> => {
  const request = row.request
  const head = await observeHead()
  const [now] = await sql<{ now: string; daysAgo: string | null }[]>`
    select now(), now() - ${request.days ?? 0} * interval '1 day' as "daysAgo"`
  const selection: Selection = { afterPosition: 0, toPosition: head, fromTime: null, toTime: null }
  switch (request.criteria) {
    case 'from-date':
      selection.fromTime = request.from!
      break
    case 'date-range':
      selection.fromTime = request.from!
      selection.toTime = row.atomic ? null : request.to!
      break
    case 'last-n-days':
      selection.fromTime = now!.daysAgo
      break
    case 'event-number-range':
      selection.afterPosition = Math.min(request.fromPosition! - 1, head)
      if (!row.atomic) selection.toPosition = Math.min(request.toPosition!, head)
      break
    case 'from-event-number':
      selection.afterPosition = Math.min(request.fromPosition! - 1, head)
      break
    case 'last-n-events': {
      const [nth] = await sql<{ position: number }[]>`
        select global_position as position
          from events where ${selectionConditions(projector, sql, request, selection, 0, head)}
         order by global_position desc
         offset ${request.count! - 1}
         limit 1`
      selection.afterPosition = nth ? nth.position - 1 : 0
      break
    }
    case 'incremental': {
      const [live] = await sql<{ position: number }[]>`
        select position from projection_generations where projection = ${row.projection} and generation = ${row.generation}`
      selection.afterPosition = Math.min(live?.position ?? 0, head)
      break
    }
  }
  return selection
}

// the projection's source, the request's filter, the time bounds and the position range
export const selectionConditions = (projector: Projector, sql: Sql | Tx, request: BackfillRequest, selection: Omit<Selection, 'afterPosition' | 'toPosition'>, after: number, to: number) => {
  const filter = request.filter ?? {}
  return sql`
          global_position > ${after}
      and global_position <= ${to}
      ${sourceConditions(sql, sourceOf(projector))}
      ${filter.types?.length ? sql`and type = any(${filter.types}::text[])` : sql``}
      ${filter.categories?.length ? sql`and category = any(${filter.categories}::text[])` : sql``}
      ${filter.metadata ? sql`and metadata::jsonb @> ${sql.json(filter.metadata as never)}::jsonb` : sql``}
      ${selection.fromTime ? sql`and created_at >= ${selection.fromTime}::timestamptz` : sql``}
      ${selection.toTime ? sql`and created_at <= ${selection.toTime}::timestamptz` : sql``}`
}


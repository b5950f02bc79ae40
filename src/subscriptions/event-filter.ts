import type { LogQuery } from '../events/read-log.js'
import { parseTime } from '../events/times.js'
import type { StoredEvent } from '../events/schemas.js'
import { readTenant } from '../events/types.js'

export type LogFilter = Omit<LogQuery, 'after' | 'limit'>

// What the filters look at: `correlationId` is `metadata ->> 'correlationId'`, as readLog's SQL compares it.
export type MatchableEvent = Pick<StoredEvent, 'type' | 'streamId' | 'createdAt'> & { correlationId: string | null }

export type EventMatcher = (tenant: string, event: MatchableEvent) => boolean

// A time filter that cannot be applied is never skipped (logFilter answers 400 before one gets here).
const instantOf = (text: string | undefined, round: 'floor' | 'ceil'): number | undefined => {
  if (text === undefined) return undefined
  const instant = parseTime(text)
  if (!instant) throw new Error(`not an RFC 3339 time: ${text}`)
  return instant[round]
}

// The /events filters in memory, for events a fan-out read once for everyone: the same tenant rule
// (readTenant) and the same comparisons as readLog's SQL, so a live subscriber sees what a replay would.
export const eventMatcher = (tenant: string, filter: LogFilter): EventMatcher => {
  const owner = readTenant(tenant, filter.streamId ?? filter.category)
  const types = filter.types?.length ? new Set(filter.types) : undefined
  const { streamId, correlationId } = filter
  // categoryOf(id) === category without splitting every id: the category is the part before the first '-'
  const category = filter.category
  const categoryPrefix = category !== undefined ? category + '-' : ''
  const inCategory = (id: string): boolean => !category!.includes('-') && (id === category || id.startsWith(categoryPrefix))
  const since = instantOf(filter.since, 'ceil')
  const until = instantOf(filter.until, 'floor')
  return (eventTenant, event) => {
    if (eventTenant !== owner) return false
    if (types && !types.has(event.type)) return false
    if (category !== undefined && !inCategory(event.streamId)) return false
    if (streamId !== undefined && !event.streamId.startsWith(streamId)) return false
    if (since !== undefined || until !== undefined) {
      const at = Date.parse(event.createdAt)
      if ((since !== undefined && at < since) || (until !== undefined && at > until)) return false
    }
    return correlationId === undefined || event.correlationId === correlationId
  }
}

import { Problem } from '../problems.js'
import type { LogQuery } from './read-log.js'
import { parseTime } from './times.js'

export type LogFilter = Omit<LogQuery, 'after' | 'limit' | 'maxBytes'>

// The filters as GET /events and GET /subscribe take them in their query string (`type` repeatable).
export interface LogFilterQuery {
  type?: string[]
  category?: string
  streamId?: string
  since?: string
  until?: string
  correlationId?: string
}

const timeOf = (text: string | undefined, name: 'since' | 'until'): string | undefined => {
  if (text === undefined) return undefined
  const instant = parseTime(text)
  if (!instant) throw new Problem('validation-failed', { invalid: `/${name}` }, `${name} must be an RFC 3339 time with a year from 1 to 9999 (no leap second)`)
  // createdAt has millisecond precision: `since` .0005 selects from .001 on, `until` .0005 up to .000
  return new Date(name === 'since' ? instant.ceil : instant.floor).toISOString()
}

// SPEC "Subscribe": the same filters as /events, parsed by this one function for both, so the SQL of a page or a
// replay and the in-memory filter of a live subscriber get the very same values. Times come out as millisecond
// ISO strings every reader compares alike; one that does not parse is a 400, never a filter skipped.
export const logFilter = (query: LogFilterQuery): LogFilter => ({
  types: query.type?.length ? query.type : undefined,
  category: query.category,
  streamId: query.streamId,
  since: timeOf(query.since, 'since'),
  until: timeOf(query.until, 'until'),
  correlationId: query.correlationId,
})

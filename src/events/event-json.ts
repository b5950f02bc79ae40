import type { EventJson } from './event-page-json.js'
import type { StoredEventText } from './read-log-text.js'
import type { StoredEvent } from './schemas.js'
import type { Upcasters } from './upcasters.js'
import { parseExact, stringifyExact } from './exact-json.js'

const LINE_BREAK = /[\r\n]/

// `parse` is parseExact (exact-json.ts) for readers that must keep every number, JSON.parse otherwise.
export const parseStoredText = <T extends StoredEventText>(
  event: T,
  parse: (text: string) => unknown = JSON.parse,
): Omit<T, 'data' | 'metadata'> & Pick<StoredEvent, 'data' | 'metadata'> => ({
  ...event,
  data: parse(event.data),
  metadata: parse(event.metadata) as Record<string, unknown>,
})

// A stored event as JSON, spliced from the stored text instead of parsed and re-encoded (the read hot
// paths). Stream ids, types and event ids hold no character JSON escapes. Stored text with a line break
// (only JSON written to the database by hand could have one) is re-encoded, so the result is one line.
export const eventJsonFromText = (event: StoredEventText): string => {
  if (LINE_BREAK.test(event.data) || LINE_BREAK.test(event.metadata)) return JSON.stringify(parseStoredText(event))
  const { globalPosition, streamId, streamVersion, eventId, type, data, metadata, createdAt } = event
  return `{"globalPosition":${globalPosition},"streamId":"${streamId}","streamVersion":${streamVersion},"eventId":"${eventId}","type":"${type}","data":${data},"metadata":${metadata},"createdAt":"${createdAt}"}`
}

// One stored event as JSON for a read: spliced from its stored text (exactly as sent), or, when an upcaster
// brings it to a newer schema version, the upcast event (its metadata exact, its data as the steps left it).
export const eventJson = (event: StoredEventText, upcasters: Upcasters): string => {
  if (!upcasters.covers(event.type)) return eventJsonFromText(event)
  const parsed = parseStoredText(event, parseExact)
  const upcast = upcasters.apply(parsed)
  return upcast === parsed ? eventJsonFromText(event) : stringifyExact(upcast)
}

// An event as JSON for a read, from the JSON the database made of it (event-page-json.ts): those bytes as they are,
// or, for a special event, what eventJson gives. The spliced text parses to the stored event exactly as its columns
// would (parseExact keeps every number), so the upcasters see the same event.
export const eventJsonBytes = (event: EventJson, upcasters: Upcasters): Buffer | string => {
  if (!event.special) return event.json
  const text = event.json.toString('utf8')
  const parsed = parseExact(text) as StoredEvent
  const upcast = upcasters.covers(parsed.type) ? upcasters.apply(parsed) : parsed
  if (upcast !== parsed) return stringifyExact(upcast)
  return LINE_BREAK.test(text) ? JSON.stringify(JSON.parse(text)) : text
}

import type { StoredEventText } from './read-log-text.js'
import type { StoredEvent } from './types.js'
import type { Upcasters } from './upcasters.js'

const LINE_BREAK = /[\r\n]/

export const parseStoredText = (event: StoredEventText): StoredEvent => ({
  ...event,
  data: JSON.parse(event.data) as unknown,
  metadata: JSON.parse(event.metadata) as Record<string, unknown>,
})

// A stored event as JSON, spliced from the stored text instead of parsed and re-encoded (the read hot
// paths). Stream ids, types and event ids hold no character JSON escapes. Stored text with a line break
// (only JSON written to the database by hand could have one) is re-encoded, so the result is one line.
export const eventJsonFromText = (event: StoredEventText): string => {
  if (LINE_BREAK.test(event.data) || LINE_BREAK.test(event.metadata)) return JSON.stringify(parseStoredText(event))
  const { globalPosition, streamId, streamVersion, eventId, type, data, metadata, createdAt } = event
  return `{"globalPosition":${globalPosition},"streamId":"${streamId}","streamVersion":${streamVersion},"eventId":"${eventId}","type":"${type}","data":${data},"metadata":${metadata},"createdAt":"${createdAt}"}`
}

// The event's JSON as every read returns it: spliced from the stored text, or upcast when an upcaster covers its type.
export const upcastEventJson = (upcasters: Upcasters, event: StoredEventText): string =>
  upcasters.covers(event.type) ? JSON.stringify(upcasters.apply(parseStoredText(event))) : eventJsonFromText(event)

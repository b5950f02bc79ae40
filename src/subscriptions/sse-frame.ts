import type { StoredEventText } from '../events/read-log-text.js'
import type { StoredEvent } from '../events/schemas.js'
import { eventJsonFromText } from '../events/event-json.js'

// One server-sent event per stored event (SPEC "Subscribe"): `id` is the global position, so a client's
// Last-Event-ID resumes right after it. JSON text holds no raw line breaks, so `data` is always one line.
export const sseFrame = (event: StoredEvent): string =>
  `id: ${event.globalPosition}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`

// The frame of an event already written as JSON text.
export const sseFrameOf = (event: Pick<StoredEvent, 'globalPosition' | 'type'>, json: string): string =>
  `id: ${event.globalPosition}\nevent: ${event.type}\ndata: ${json}\n\n`

// The same frame from the stored JSON text, without parsing and re-encoding it (the replay's hot path).
export const sseFrameFromText = (event: StoredEventText): string => sseFrameOf(event, eventJsonFromText(event))

export const SSE_HEARTBEAT = ': heartbeat\n\n'

export { parseStoredText } from '../events/event-json.js'

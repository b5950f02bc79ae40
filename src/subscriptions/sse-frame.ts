import type { StoredEventText } from '../events/read-log-text.js'
import type { StoredEvent } from '../events/types.js'

// One server-sent event per stored event (SPEC "Subscribe"): `id` is the global position, so a client's
// Last-Event-ID resumes right after it. JSON text holds no raw line breaks, so `data` is always one line.
export const sseFrame = (event: StoredEvent): string =>
  `id: ${event.globalPosition}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`

const LINE_BREAK = /[\r\n]/

// The same frame from the stored JSON text, without parsing and re-encoding it (the replay's hot path). Stream
// ids, types and event ids hold no character JSON escapes; stored text with a line break in it (only JSON written
// to the database by hand could have one) is re-encoded onto one line.
export const sseFrameFromText = (event: StoredEventText): string => {
  if (LINE_BREAK.test(event.data) || LINE_BREAK.test(event.metadata)) return sseFrame(parseStoredText(event))
  const { globalPosition, streamId, streamVersion, eventId, type, data, metadata, createdAt } = event
  return `id: ${globalPosition}\nevent: ${type}\ndata: {"globalPosition":${globalPosition},"streamId":"${streamId}","streamVersion":${streamVersion},"eventId":"${eventId}","type":"${type}","data":${data},"metadata":${metadata},"createdAt":"${createdAt}"}\n\n`
}

export const parseStoredText = (event: StoredEventText): StoredEvent => ({
  ...event,
  data: JSON.parse(event.data) as unknown,
  metadata: JSON.parse(event.metadata) as Record<string, unknown>,
})

export const SSE_HEARTBEAT = ': heartbeat\n\n'

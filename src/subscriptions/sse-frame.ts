import type { StoredEvent } from '../events/types.js'

// One server-sent event per stored event (SPEC "Subscribe"): `id` is the global position, so a client's
// Last-Event-ID resumes right after it. JSON text holds no raw line breaks, so `data` is always one line.
export const sseFrame = (event: StoredEvent): string =>
  `id: ${event.globalPosition}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`

export const SSE_HEARTBEAT = ': heartbeat\n\n'

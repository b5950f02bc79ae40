import type { FastifyReply } from 'fastify'
import type { ChunkedPage } from '../events/chunked-page.js'
import { pacedStream } from './paced-stream.js'

export interface PageJson<E, K, A> {
  // the JSON before the events, e.g. `{"events":[`
  open: string
  // an event (or a run of them) as JSON: text, or bytes to write as they are
  event: (event: E) => string | Buffer
  // the JSON after them, from the page once read (its anchor, following and count)
  close: (page: ChunkedPage<E, K, A>) => string
}

const COMMA = Buffer.from(',')

// The parts between `open` and `close`, comma-separated: one string when all are text, else one buffer, so bytes
// the database made (event-runs.ts) are copied once and never decoded.
const joined = (open: string, parts: (string | Buffer)[], close: string): string | Buffer => {
  if (parts.every((part) => typeof part === 'string')) return open + parts.join(',') + close
  const buffers: Buffer[] = [Buffer.from(open)]
  parts.forEach((part, index) => buffers.push(...(index > 0 ? [COMMA] : []), typeof part === 'string' ? Buffer.from(part) : part))
  buffers.push(Buffer.from(close))
  return Buffer.concat(buffers)
}

// A page of events or documents as JSON: one string when the first read held the whole page, else written a chunk at
// a time, each read only once the socket took the last (SPEC "Details": slow clients cost bounded memory). A read that
// fails after the first ends the body unfinished (invalid JSON), as a dropped connection would.
export const sendPage = async <E, K, A>(reply: FastifyReply, page: ChunkedPage<E, K, A>, json: PageJson<E, K, A>): Promise<FastifyReply> => {
  reply.type('application/json; charset=utf-8')
  if (page.whole) {
    const events = (await page.next()) ?? []
    return reply.send(joined(json.open, events.map(json.event), json.close(page)))
  }
  let state: 'open' | 'events' | 'closed' = 'open'
  let written = false
  return reply.send(
    pacedStream(async () => {
      if (state === 'closed') return null
      if (state === 'open') {
        state = 'events'
        return json.open
      }
      for (;;) {
        const events = await page.next()
        if (events === null) {
          state = 'closed'
          return json.close(page)
        }
        if (events.length === 0) continue
        const text = joined(written ? ',' : '', events.map(json.event), '')
        written = true
        return text
      }
    }),
  )
}

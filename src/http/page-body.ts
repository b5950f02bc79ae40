import type { FastifyReply } from 'fastify'
import type { ChunkedPage } from '../events/chunked-page.js'
import { Readable } from 'node:stream'
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

// The parts between `open` and `close`, comma-separated, as buffers to write in turn: bytes the database made
// (event-page-json.ts) are written as they are, never decoded or copied.
const buffers = (open: string, parts: (string | Buffer)[], close: string): Buffer[] => {
  const list: Buffer[] = [Buffer.from(open)]
  parts.forEach((part, index) => list.push(...(index > 0 ? [COMMA] : []), typeof part === 'string' ? Buffer.from(part) : part))
  list.push(Buffer.from(close))
  return list
}

// The same as one string when all are text, else as one buffer (a chunk of a page written in pieces).
const joined = (open: string, parts: (string | Buffer)[], close: string): string | Buffer =>
  parts.every((part) => typeof part === 'string') ? open + parts.join(',') + close : Buffer.concat(buffers(open, parts, close))

// A whole page: a string as it is; the database's one row of the page (event-page-json.ts) as the three buffers
// open, row and close, with their total length, so the body is not copied into one buffer first. The copy cost more
// than its memcpy: every page allocated its size again outside the heap, and V8 starts a full collection of the heap
// after so many bytes of such allocations (docs/performance.md "Stream reads"). A page read per row (events that
// went through Node) is joined into one buffer, since a write per event would cost more than the copy.
const sendWhole = (reply: FastifyReply, open: string, parts: (string | Buffer)[], close: string): FastifyReply => {
  if (parts.length !== 1 || typeof parts[0] === 'string') return reply.send(joined(open, parts, close))
  const list = buffers(open, parts, close)
  reply.header('content-length', list.reduce((sum, buffer) => sum + buffer.length, 0))
  return reply.send(Readable.from(list, { objectMode: false }))
}

// A page of events or documents as JSON: one string when the first read held the whole page, else written a chunk at
// a time, each read only once the socket took the last (SPEC "Details": slow clients cost bounded memory). A read that
// fails after the first ends the body unfinished (invalid JSON), as a dropped connection would.
export const sendPage = async <E, K, A>(reply: FastifyReply, page: ChunkedPage<E, K, A>, json: PageJson<E, K, A>): Promise<FastifyReply> => {
  reply.type('application/json; charset=utf-8')
  if (page.whole) {
    const events = (await page.next()) ?? []
    return sendWhole(reply, json.open, events.map(json.event), json.close(page))
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

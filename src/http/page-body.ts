import type { FastifyReply } from 'fastify'
import type { ChunkedPage } from '../events/chunked-page.js'
import { pacedStream } from './paced-stream.js'

export interface PageJson<E, K, A> {
  // the JSON before the events, e.g. `{"events":[`
  open: string
  event: (event: E) => string
  // the JSON after them, from the page once read (its anchor, following and count)
  close: (page: ChunkedPage<E, K, A>) => string
}

// A page of events or documents as JSON: one string when the first read held the whole page, else written a chunk at
// a time, each read only once the socket took the last (SPEC "Details": slow clients cost bounded memory). A read that
// fails after the first ends the body unfinished (invalid JSON), as a dropped connection would.
export const sendPage = async <E, K, A>(reply: FastifyReply, page: ChunkedPage<E, K, A>, json: PageJson<E, K, A>): Promise<FastifyReply> => {
  reply.type('application/json; charset=utf-8')
  if (page.whole) {
    const events = (await page.next()) ?? []
    return reply.send(json.open + events.map(json.event).join(',') + json.close(page))
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
        const text = (written ? ',' : '') + events.map(json.event).join(',')
        written = true
        return text
      }
    }),
  )
}

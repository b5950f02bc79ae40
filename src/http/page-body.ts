import type { FastifyReply } from 'fastify'
import type { ChunkedPage } from '../events/chunked-page.js'
import { pacedStream } from './paced-stream.js'

export interface PageJson<E, K = number> {
  // the JSON before the events, e.g. `{"events":[`
  open: string
  event: (event: E) => string
  // the JSON after them, from the page's last event and the key of the first event past the page (null: none)
  close: (last: E | undefined, following: K | null) => string
}

// A page of events or documents as JSON: one string when the first read held the whole page, else written a chunk at a time, each
// read only once the socket took the last (SPEC "Details": slow clients cost bounded memory). A read that fails after
// the first ends the body unfinished (invalid JSON), as a dropped connection would.
export const sendPage = <E, K = number>(reply: FastifyReply, page: ChunkedPage<E, K>, json: PageJson<E, K>): FastifyReply => {
  reply.type('application/json; charset=utf-8')
  if (page.whole) {
    const { events, following } = page.first
    return reply.send(json.open + events.map(json.event).join(',') + json.close(events.at(-1), following))
  }
  return reply.send(pacedStream(pageText(page, json)))
}

async function* pageText<E, K>(page: ChunkedPage<E, K>, json: PageJson<E, K>): AsyncGenerator<string> {
  yield json.open
  let last: E | undefined
  for await (const events of page.chunks()) {
    if (events.length === 0) continue
    yield (last === undefined ? '' : ',') + events.map(json.event).join(',')
    last = events.at(-1)
  }
  yield json.close(last, page.following)
}

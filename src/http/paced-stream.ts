import { Readable } from 'node:stream'

// A response body made of `chunks` (JSON text written a page at a time) that asks for the next chunk only once the
// socket has taken the last one: a client that stops reading holds one chunk, not the next one too (Readable.from
// reads one ahead, whatever its highWaterMark). A chunk that fails ends the body unfinished.
export const pacedStream = (chunks: AsyncIterable<string>): Readable => {
  const iterator = chunks[Symbol.asyncIterator]()
  return new Readable({
    highWaterMark: 0,
    read() {
      iterator.next().then(
        ({ value, done }) => this.push(done ? null : value),
        (error: Error) => this.destroy(error),
      )
    },
    destroy(error, callback) {
      Promise.resolve(iterator.return?.()).then(() => callback(error), callback)
    },
  })
}

import { Readable } from 'node:stream'

// A response body whose pieces `next` makes one at a time (null: the end), each asked for only once the socket has
// taken the last: a client that stops reading holds one piece, and the process holds nothing between pieces but
// what `next` keeps (Readable.from reads one piece ahead, whatever its highWaterMark, and an async generator keeps
// its locals while suspended). A piece that fails ends the body unfinished.
export const pacedStream = (next: () => Promise<string | Buffer | null>): Readable =>
  new Readable({
    highWaterMark: 0,
    read() {
      next().then(
        (piece) => this.push(piece),
        (error: Error) => this.destroy(error),
      )
    },
  })

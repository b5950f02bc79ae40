import type { TakenPage } from './event-page.js'

export interface ChunkedPageBounds {
  // the page's bounds (SPEC "Details": `limit` events, MAX_PAGE_BYTES of them, always at least one)
  limit: number
  maxBytes: number
  // the most bytes of events one read takes (always at least one event)
  chunkBytes: number
}

// Reads the events after `last` (from the page's start when undefined): at most `limit`, and `maxBytes` of them
// (always one).
export type ReadChunk<E, K = number> = (last: E | undefined, limit: number, maxBytes: number) => Promise<TakenPage<E, K>>

// One page of events (or of documents: their key is K), read as chunks of at most `chunkBytes` (always one event) instead of in one read, so that a
// response writes each chunk before it reads the next: a reader holds one chunk in memory, not MAX_PAGE_BYTES, and a
// reader that stops taking data stops the reads (SPEC "Details": slow clients cost bounded memory). The chunks make
// exactly the page one read would: each stops at its own budget or at what is left of the page's, and the next one
// starts only when the event after it fits what is left (only a page's first event may be larger). Every read must
// see the same rows (callers bound them: the log by a head, a stream by its version), so chunks join without a gap
// or an overlap.
export class ChunkedPage<E, K = number> {
  #following: K | null

  private constructor(
    // read before anything is sent, so a failure is still a problem response
    readonly first: TakenPage<E, K>,
    private readonly readChunk: ReadChunk<E, K>,
    private readonly bounds: ChunkedPageBounds,
  ) {
    this.#following = first.following
  }

  static async open<E, K = number>(readChunk: ReadChunk<E, K>, bounds: ChunkedPageBounds): Promise<ChunkedPage<E, K>> {
    const first = await readChunk(undefined, bounds.limit, Math.min(bounds.chunkBytes, bounds.maxBytes))
    return new ChunkedPage(first, readChunk, bounds)
  }

  // the first read holds the whole page
  get whole(): boolean {
    return this.#ends(this.first, this.first.events.length, this.first.bytes)
  }

  // The key of the first matching event after the page (null: none), once chunks() has run to its end.
  get following(): K | null {
    return this.#following
  }

  // The events of each read in turn, the first one's included.
  async *chunks(): AsyncGenerator<E[]> {
    let chunk = this.first
    let count = 0
    let bytes = 0
    for (;;) {
      yield chunk.events
      count += chunk.events.length
      bytes += chunk.bytes
      this.#following = chunk.following
      if (this.#ends(chunk, count, bytes)) return
      const left = this.bounds.maxBytes - bytes
      chunk = await this.readChunk(chunk.events.at(-1), this.bounds.limit - count, Math.min(this.bounds.chunkBytes, left))
    }
  }

  // Nothing follows, the page has its count, or the event that follows does not fit what is left of its bytes.
  #ends(chunk: TakenPage<E, K>, count: number, bytes: number): boolean {
    return chunk.following === null || count >= this.bounds.limit || bytes + (chunk.followingBytes ?? 0) > this.bounds.maxBytes
  }
}

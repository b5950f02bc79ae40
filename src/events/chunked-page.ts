import type { TakenPage } from './event-page.js'

export interface ChunkedPageBounds {
  // the page's bounds (SPEC "Details": `limit` events, MAX_PAGE_BYTES of them, always at least one)
  limit: number
  maxBytes: number
  // the most bytes of events one read takes (always at least one event)
  chunkBytes: number
}

// Reads the events after `anchor` (from the page's start when undefined): at most `limit`, and `maxBytes` of them
// (always one). What follows them is keyed by K.
export type ReadChunk<E, K, A> = (anchor: A | undefined, limit: number, maxBytes: number) => Promise<TakenPage<E, K>>

// One page of events (or of documents), read as chunks of at most `chunkBytes` (always one event) instead of in one
// read, so that a response writes each chunk before it reads the next: a reader holds one chunk in memory, not
// MAX_PAGE_BYTES, and a reader that stops taking data stops the reads (SPEC "Details": slow clients cost bounded
// memory). Between reads the page keeps counts and the anchor of its last event (`anchorOf`: what the next read
// starts after), never the events. The chunks make exactly the page one read would: each stops at its own budget
// or at what is left of the page's, and the next one starts only when the event after it fits what is left (only a
// page's first event may be larger). Every read must see the same rows (callers bound them: the log by a head, a
// stream by its version), so chunks join without a gap or an overlap.
export class ChunkedPage<E, K = number, A = number> {
  #first: TakenPage<E, K> | undefined
  #count = 0
  #bytes = 0
  #following: K | null = null
  #anchor: A | undefined
  #done = false
  // the first read holds the whole page
  readonly whole: boolean
  // the page holds no event
  readonly empty: boolean

  private constructor(
    first: TakenPage<E, K>,
    private readonly readChunk: ReadChunk<E, K, A>,
    private readonly anchorOf: (event: E) => A,
    private readonly bounds: ChunkedPageBounds,
  ) {
    this.#first = first
    this.whole = this.#ends(first, first.count, first.bytes)
    this.empty = first.count === 0
  }

  // The first read is made here, before anything is sent, so a failure is still a problem response.
  static async open<E, K, A>(readChunk: ReadChunk<E, K, A>, anchorOf: (event: E) => A, bounds: ChunkedPageBounds): Promise<ChunkedPage<E, K, A>> {
    const first = await readChunk(undefined, bounds.limit, Math.min(bounds.chunkBytes, bounds.maxBytes))
    return new ChunkedPage(first, readChunk, anchorOf, bounds)
  }

  // The events of the next read (the first read's first), or null once the page is complete.
  async next(): Promise<E[] | null> {
    if (this.#done) return null
    const { limit, maxBytes, chunkBytes } = this.bounds
    const chunk = this.#first ?? (await this.readChunk(this.#anchor, limit - this.#count, Math.min(chunkBytes, maxBytes - this.#bytes)))
    this.#first = undefined
    this.#count += chunk.count
    this.#bytes += chunk.bytes
    this.#following = chunk.following
    const last = chunk.events.at(-1)
    if (last !== undefined) this.#anchor = this.anchorOf(last)
    this.#done = this.#ends(chunk, this.#count, this.#bytes)
    return chunk.events
  }

  // The events read so far: the page's count once next() has returned null.
  get count(): number {
    return this.#count
  }

  // The anchor of the page's last event (undefined: none), once next() has returned null.
  get anchor(): A | undefined {
    return this.#anchor
  }

  // The key of the first matching event after the page (null: none), once next() has returned null.
  get following(): K | null {
    return this.#following
  }

  // Nothing follows, the page has its count, or the event that follows does not fit what is left of its bytes.
  #ends(chunk: TakenPage<E, K>, count: number, bytes: number): boolean {
    return chunk.following === null || count >= this.bounds.limit || bytes + (chunk.followingBytes ?? 0) > this.bounds.maxBytes
  }
}

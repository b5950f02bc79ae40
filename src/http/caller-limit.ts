import type { FastifyRequest } from 'fastify'

// Who a per-caller limit counts: the API key, or the client address on an open server.
export const callerOf = (request: FastifyRequest): string => (request.apiKey ? `key:${request.apiKey.id}` : `ip:${request.ip}`)

// At most `max` of something open at once per caller (SPEC "Security": SSE connections per key). An undefined
// caller (an open server has no keys) is counted in the total but not limited.
export class CallerLimit {
  readonly #open = new Map<string, number>()
  #total = 0

  constructor(private readonly max: number) {}

  get total(): number {
    return this.#total
  }

  // true and counted, or false when the caller is at the limit; a true must be matched by one release
  acquire(caller: string | undefined): boolean {
    if (caller === undefined) {
      this.#total += 1
      return true
    }
    const count = this.#open.get(caller) ?? 0
    if (count >= this.max) return false
    this.#open.set(caller, count + 1)
    this.#total += 1
    return true
  }

  release(caller: string | undefined): void {
    if (caller === undefined) {
      this.#total -= 1
      return
    }
    const count = this.#open.get(caller) ?? 0
    if (count <= 1) this.#open.delete(caller)
    else this.#open.set(caller, count - 1)
    if (count > 0) this.#total -= 1
  }
}

// Projection work shares the process with every request: after this much work in a row it lets them in
// (setImmediate runs after pending I/O), so a catch-up or a backfill never holds the event loop for long
// (issue 18: under 20 ms at p99), whatever its events cost.
export const YIELD_AFTER_MS = 5

// A clock of work done since requests last had their turn.
export class Turns {
  #since = performance.now()

  // Their turn once this one is used up (then await it), undefined before: a loop over thousands of events
  // awaits nothing, not even a resolved promise, while its turn lasts.
  due(): Promise<void> | undefined {
    if (performance.now() - this.#since < YIELD_AFTER_MS) return undefined
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.#since = performance.now()
    })
  }
}

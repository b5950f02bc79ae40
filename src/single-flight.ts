// Runs `work` one at a time. A call while a run is in flight gets the one run queued after it, shared by
// every call made meanwhile (with the arguments of the latest), so whatever a caller gets comes from a run
// that started after its call. Readers of a changing thing (the log head, upcasters, projection status)
// need exactly that: no change made before the call is missed, and a burst of calls costs two runs.
export class SingleFlight<A extends unknown[], T> {
  #running: Promise<T> | undefined
  #queued: Promise<T> | undefined
  #args: A | undefined

  constructor(private readonly work: (...args: A) => Promise<T>) {}

  run(...args: A): Promise<T> {
    if (!this.#running) {
      this.#running = this.work(...args).finally(() => (this.#running = undefined))
      return this.#running
    }
    this.#args = args
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined
        const latest = this.#args!
        this.#args = undefined
        return this.run(...latest)
      })
    return this.#queued
  }

  // Resolves once the runs in flight or queued at the call have ended, whatever they answered.
  async settled(): Promise<void> {
    await (this.#queued ?? this.#running)?.catch(() => undefined)
  }
}

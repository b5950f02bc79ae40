import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import type { Usage } from './cpu-meter.js'

// One request of a worker: null when it succeeded, else a short label for the error tally ("409", "ECONNRESET").
export type Step = () => Promise<string | null>

export interface LoadOptions {
  origin: string
  connections: number
  warmupMs: number
  durationMs: number
  worker: (index: number, pool: Pool) => Step
  windowMs?: number
  onWindow?: (window: WindowStats) => void
  // starts metering CPU and database work when the measured span begins; the returned function reads it when the span ends
  meter?: () => Promise<() => Promise<Usage>>
}

export interface WindowStats {
  index: number
  fromSeconds: number
  toSeconds: number
  requests: number
  perSecond: number
  p50Ms: number
  p99Ms: number
  errors: number
}

export interface LoadResult {
  connections: number
  seconds: number
  requests: number
  perSecond: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  errors: Record<string, number>
  errorCount: number
  warmupErrors: number
  usage: Usage | undefined
  samples: Samples
}

// Completed requests of the measured span, in completion order: when each ended (ms after the span began) and its latency.
export class Samples {
  count = 0
  at: Float64Array<ArrayBuffer> = new Float64Array(1 << 16)
  latency: Float64Array<ArrayBuffer> = new Float64Array(1 << 16)
  failed = new Uint8Array(1 << 16)

  push(at: number, latency: number, failed: boolean): void {
    if (this.count === this.at.length) {
      this.at = grow(this.at)
      this.latency = grow(this.latency)
      const failures = new Uint8Array(this.failed.length * 2)
      failures.set(this.failed)
      this.failed = failures
    }
    this.at[this.count] = at
    this.latency[this.count] = latency
    this.failed[this.count] = failed ? 1 : 0
    this.count += 1
  }

  // [first, end) indexes of the samples that ended in [fromMs, toMs)
  range(fromMs: number, toMs: number): [number, number] {
    return [this.lowerBound(fromMs), this.lowerBound(toMs)]
  }

  window(index: number, fromMs: number, toMs: number): WindowStats {
    const [first, end] = this.range(fromMs, toMs)
    const latencies = this.latency.slice(first, end).sort()
    let errors = 0
    for (let i = first; i < end; i += 1) errors += this.failed[i]!
    const requests = end - first
    return {
      index,
      fromSeconds: fromMs / 1000,
      toSeconds: toMs / 1000,
      requests,
      perSecond: requests / ((toMs - fromMs) / 1000),
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      errors,
    }
  }

  private lowerBound(ms: number): number {
    let low = 0
    let high = this.count
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.at[middle]! < ms) low = middle + 1
      else high = middle
    }
    return low
  }
}

const grow = (array: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
  const larger = new Float64Array(array.length * 2)
  larger.set(array)
  return larger
}

// nearest-rank percentile of an ascending array
export const percentile = (sorted: ArrayLike<number>, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!

export const errorLabel = (error: unknown): string => {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'error'
}

// Closed-loop load: `connections` workers, each with exactly one request in flight on its own keep-alive
// connection (no pipelining). Counts what completes inside the measured span, after the warm-up.
export const runLoad = async (options: LoadOptions): Promise<LoadResult> => {
  const pool = new Pool(options.origin, {
    connections: options.connections,
    pipelining: 1,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    keepAliveTimeout: 60_000,
  })
  const samples = new Samples()
  const errors: Record<string, number> = {}
  let warmupErrors = 0
  const measureStart = performance.now() + options.warmupMs
  const measureEnd = measureStart + options.durationMs
  const worker = async (step: Step): Promise<void> => {
    for (;;) {
      const started = performance.now()
      if (started >= measureEnd) return
      let outcome: string | null
      try {
        outcome = await step()
      } catch (error) {
        outcome = errorLabel(error)
        await sleep(10)
      }
      const ended = performance.now()
      if (ended < measureStart) {
        if (outcome !== null) warmupErrors += 1
      } else if (ended < measureEnd) {
        samples.push(ended - measureStart, ended - started, outcome !== null)
        if (outcome !== null) errors[outcome] = (errors[outcome] ?? 0) + 1
      }
    }
  }
  const windows = scheduleWindows(options, samples, measureStart)
  const usage = meterSpan(options.meter, measureStart, measureEnd)
  try {
    const steps = Array.from({ length: options.connections }, (_, index) => options.worker(index, pool))
    await Promise.all(steps.map((step) => worker(step)))
  } finally {
    windows.finish()
    await pool.close()
  }
  const latencies = samples.latency.slice(0, samples.count).sort()
  const seconds = options.durationMs / 1000
  return {
    connections: options.connections,
    seconds,
    requests: samples.count,
    perSecond: samples.count / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.length ? latencies[latencies.length - 1]! : Number.NaN,
    errors,
    errorCount: Object.values(errors).reduce((sum, count) => sum + count, 0),
    warmupErrors,
    usage: await usage,
    samples,
  }
}

const meterSpan = async (meter: LoadOptions['meter'], from: number, to: number): Promise<Usage | undefined> => {
  if (!meter) return undefined
  try {
    await sleep(Math.max(0, from - performance.now()))
    const stop = await meter()
    await sleep(Math.max(0, to - performance.now()))
    return await stop()
  } catch {
    return undefined
  }
}

// Live per-window figures (the soak prints them as it goes); finish() emits whatever a late timer has not,
// the last, possibly partial, window included.
const scheduleWindows = (options: LoadOptions, samples: Samples, measureStart: number): { finish: () => void } => {
  const { windowMs, onWindow, durationMs } = options
  if (!windowMs || !onWindow) return { finish: () => {} }
  const bounds: [number, number][] = []
  for (let from = 0; from < durationMs; from += windowMs) bounds.push([from, Math.min(from + windowMs, durationMs)])
  let emitted = 0
  const emitUpTo = (count: number): void => {
    for (; emitted < count; emitted += 1) onWindow(samples.window(emitted, ...bounds[emitted]!))
  }
  // every sample that ended before a window's end is recorded by the time its timer fires, and none recorded later ended before it
  const timers = bounds
    .slice(0, -1)
    .map(([, to], index) => setTimeout(() => emitUpTo(index + 1), Math.max(0, measureStart + to - performance.now())))
  return {
    finish: () => {
      for (const timer of timers) clearTimeout(timer)
      emitUpTo(bounds.length)
    },
  }
}

// Bounded-concurrency loop for set-up work (seeding streams), failing on the first error.
export const forEachConcurrent = async <T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> => {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next]!
      next += 1
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane))
}

import type { CpuShare, Usage } from './cpu-meter.js'
import type { LoadResult } from './load.js'
import type { BenchPayload } from './payload.js'

export const num = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a'

export const ms = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)} ms` : 'n/a')

export const ratio = (ours: number, anchor: number | undefined): string =>
  anchor && Number.isFinite(ours) ? `${(ours / anchor).toFixed(2)}x` : 'n/a'

export const verdict = (pass: boolean): string => (pass ? 'MET' : 'MISSED')

export const say = (line = ''): void => {
  process.stdout.write(line + '\n')
}

export interface LoadConditions {
  eventsPerRequest: number
  requestBytes: number
  warmupSeconds: number
}

export const describePayload = (payload: BenchPayload): string =>
  `event data ${payload.dataBytes} B + metadata ${payload.metadataBytes} B, type OrderPlaced`

export const describeCpu = (cpu: CpuShare | undefined): string =>
  cpu
    ? `cpu: server ${cpu.serverPercent.toFixed(0)}% (${cpu.serverSystemPercent.toFixed(0)}% in the kernel), its Postgres backends ${cpu.backendsPercent.toFixed(0)}%, bench ${cpu.benchPercent.toFixed(0)}%, machine ${cpu.machineBusyPercent.toFixed(0)}% busy of ${cpu.cores} cores (100% = 1 core for processes)`
    : 'cpu: n/a'

export const describeDb = (usage: Usage | undefined, requests: number): string => {
  const db = usage?.db
  if (!db || requests === 0) return 'postgres: n/a'
  const functions = Object.entries(db.functions)
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([name, work]) => `${name} ${(work.calls / requests).toFixed(2)} calls (${(work.ms / work.calls).toFixed(2)} ms each)`)
  return `postgres per request (approx.): ${(db.transactions / requests).toFixed(2)} transactions${functions.length ? `; ${functions.join(', ')}` : ''}`
}

export const describeErrors = (result: LoadResult): string => {
  const kinds = Object.entries(result.errors).map(([label, count]) => `${label}: ${count}`)
  const warmup = result.warmupErrors ? `, ${result.warmupErrors} during warm-up` : ''
  return `${result.errorCount}${kinds.length ? ` (${kinds.join(', ')})` : ''}${warmup}`
}

export const printLoad = (title: string, result: LoadResult, conditions: LoadConditions): void => {
  const events = result.perSecond * conditions.eventsPerRequest
  say(`  ${title}`)
  say(`    throughput   ${num(result.perSecond)} requests/s${conditions.eventsPerRequest > 1 ? ` = ${num(events)} events/s` : ''} (${num(result.requests)} requests in ${result.seconds} s)`)
  say(`    latency      p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}, max ${ms(result.maxMs)}`)
  say(`    errors       ${describeErrors(result)}`)
  say(`    conditions   ${result.connections} connections, 1 request in flight each; ${conditions.eventsPerRequest} event(s)/request, ${num(conditions.requestBytes)} B request body; ${conditions.warmupSeconds} s warm-up`)
  say(`    ${describeCpu(result.usage?.cpu)}`)
  say(`    ${describeDb(result.usage, result.requests)}`)
}

// Set-up failures (no Postgres, a server that will not start) end the bench with one line, not a stack trace.
export const fail = (error: unknown): never => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
}

export const attempt = <T>(fn: () => T): T => {
  try {
    return fn()
  } catch (error) {
    return fail(error)
  }
}

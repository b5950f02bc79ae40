import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))

const seconds = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`bench: ${name} must be a positive number of seconds (got "${raw}")`)
  return value
}

const optionalPort = (name: string): number | undefined => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`bench: ${name} must be a port (got "${raw}")`)
  return value
}

export interface BenchSettings {
  seconds: number
  warmupSeconds: number
  soakSeconds: number
  soakWindowSeconds: number
  // the server (and the bench) talk to this Postgres only; the bench refuses anything but 127.0.0.1
  adminUrl: string
  database: string
  port: number | undefined
  build: boolean
  serverRunner: 'dist' | 'tsx'
  poolSize: string | undefined
  cpuProfileDir: string | undefined
  anchors: boolean
  anchorsDir: string
  only: Set<string> | undefined
  keepDatabase: boolean
  trackFunctions: boolean
  jsonOut: string | undefined
  // BENCH_DATABASE=embedded: the server runs on PGlite in a fresh DATA_DIR (PostgreSQL still serves the anchors)
  embedded: boolean
}

export const loadBenchSettings = (): BenchSettings => {
  const adminUrl = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  if (new URL(adminUrl).hostname !== '127.0.0.1') throw new Error('bench: BENCH_ADMIN_URL must point at 127.0.0.1')
  const only = process.env.BENCH_ONLY
  return {
    seconds: seconds('BENCH_SECONDS', 15),
    warmupSeconds: seconds('BENCH_WARMUP_SECONDS', 3),
    soakSeconds: seconds('SOAK_SECONDS', 300),
    soakWindowSeconds: seconds('SOAK_WINDOW_SECONDS', 30),
    adminUrl,
    // BENCH_DB_NAME: a database of its own, when several benches share one PostgreSQL
    database: process.env.BENCH_DB_NAME || 'annalist_bench',
    port: optionalPort('BENCH_PORT'),
    build: process.env.BENCH_BUILD !== '0',
    serverRunner: process.env.BENCH_SERVER === 'tsx' ? 'tsx' : 'dist',
    poolSize: process.env.BENCH_POOL_SIZE || undefined,
    cpuProfileDir: process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined,
    anchors: process.env.BENCH_ANCHORS !== '0',
    anchorsDir: path.resolve(REPO_ROOT, process.env.BENCH_ANCHORS_DIR ?? '../shared/bench-anchors'),
    only: only ? new Set(only.split(',').map((name) => name.trim()).filter(Boolean)) : undefined,
    keepDatabase: process.env.BENCH_KEEP_DB === '1',
    trackFunctions: process.env.BENCH_TRACK_FUNCTIONS !== '0',
    jsonOut: process.env.BENCH_JSON ? path.resolve(process.env.BENCH_JSON) : undefined,
    embedded: process.env.BENCH_DATABASE === 'embedded',
  }
}

import { spawn } from 'node:child_process'
import path from 'node:path'
import { REPO_ROOT, type BenchSettings } from './settings.js'

export type AnchorVariant = 'a' | 'b' | 'c'

export const ANCHOR_EVENTS_PER_TRANSACTION: Record<AnchorVariant, number> = { a: 1, b: 10, c: 1 }

export const ANCHOR_NAMES: Record<AnchorVariant, string> = {
  a: 'raw SQL (a) blind 1-event insert',
  b: 'raw SQL (b) 10-event insert',
  c: 'raw SQL (c) optimistic-concurrency append',
}

export interface AnchorResult {
  variant: AnchorVariant
  clients: number
  seconds: number
  tps: number
  eventsPerSecond: number
  latencyAverageMs: number | undefined
  failed: number | undefined
}

// pgbench through the shared script: `run.sh a|b|c CLIENTS SECONDS`, its "tps = " line is the figure.
export const runAnchor = (settings: BenchSettings, variant: AnchorVariant, clients: number, seconds: number): Promise<AnchorResult> =>
  new Promise((resolve, reject) => {
    const admin = new URL(settings.adminUrl)
    const script = path.join(settings.anchorsDir, 'run.sh')
    const child = spawn('bash', [script, variant, String(clients), String(Math.max(1, Math.round(seconds)))], {
      cwd: REPO_ROOT,
      env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: admin.port || '5432', PGUSER: decodeURIComponent(admin.username) || 'postgres' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    // pgbench runs under bash: kill the whole group, on time-out and if the bench itself exits first
    const killGroup = (): void => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }
    process.once('exit', killGroup)
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const timer = setTimeout(killGroup, (seconds + 120) * 1000)
    child.once('error', (error) => {
      clearTimeout(timer)
      process.removeListener('exit', killGroup)
      reject(error)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      process.removeListener('exit', killGroup)
      const tps = /tps = ([\d.]+)/.exec(output)
      if (code !== 0 || !tps) {
        reject(new Error(`anchor ${variant} failed (${code ?? signal}): ${output.trim().split('\n').slice(-3).join(' | ')}`))
        return
      }
      const latency = /latency average = ([\d.]+) ms/.exec(output)
      const failed = /number of failed transactions: (\d+)/.exec(output)
      resolve({
        variant,
        clients,
        seconds,
        tps: Number(tps[1]),
        eventsPerSecond: Number(tps[1]) * ANCHOR_EVENTS_PER_TRANSACTION[variant],
        latencyAverageMs: latency ? Number(latency[1]) : undefined,
        failed: failed ? Number(failed[1]) : undefined,
      })
    })
  })

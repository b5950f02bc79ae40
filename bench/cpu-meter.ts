import { readFileSync } from 'node:fs'
import type { DbWork } from './db-work.js'

// Who used the 2 cores during a scenario: the server process, the bench process, and the machine as a whole
// (Postgres is most of the rest). Linux /proc only; elsewhere the figures are simply absent.
export interface CpuShare {
  serverPercent: number
  // the kernel's share of serverPercent: socket writes and reads (loopback TCP is processed in the writer's syscall)
  serverSystemPercent: number
  // the Postgres backends serving the server's pool (walwriter, checkpointer and the rest not included)
  backendsPercent: number
  benchPercent: number
  machineBusyPercent: number
  cores: number
}

interface Reading {
  at: number
  serverTicks: number
  serverSystemTicks: number
  backendTicks: number
  benchMicros: number
  machineBusy: number
  machineTotal: number
  cores: number
}

const TICKS_PER_SECOND = 100

// [user, system] clock ticks
const processTimes = (pid: number): [number, number] => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return [Number(fields[11]), Number(fields[12])]
}

const processTicks = (pid: number): number => processTimes(pid).reduce((sum, ticks) => sum + ticks, 0)

const machineTicks = (): { busy: number; total: number; cores: number } => {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n')
  const values = (lines[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number)
  const total = values.reduce((sum, value) => sum + value, 0)
  const idle = (values[3] ?? 0) + (values[4] ?? 0)
  const cores = lines.filter((line) => /^cpu\d+ /.test(line)).length
  return { busy: total - idle, total, cores }
}

const backendTicksOf = (pids: number[]): number =>
  pids.reduce((sum, pid) => {
    try {
      return sum + processTicks(pid)
    } catch {
      return sum
    }
  }, 0)

const read = (serverPid: number, backendPids: number[]): Reading | undefined => {
  try {
    const machine = machineTicks()
    const bench = process.cpuUsage()
    return {
      at: performance.now(),
      serverTicks: processTicks(serverPid),
      serverSystemTicks: processTimes(serverPid)[1],
      backendTicks: backendTicksOf(backendPids),
      benchMicros: bench.user + bench.system,
      machineBusy: machine.busy,
      machineTotal: machine.total,
      cores: machine.cores,
    }
  } catch {
    return undefined
  }
}

export const startCpuMeter = (serverPid: number, backendPids: number[] = []): (() => CpuShare | undefined) => {
  const start = read(serverPid, backendPids)
  return () => {
    const end = read(serverPid, backendPids)
    if (!start || !end) return undefined
    const seconds = (end.at - start.at) / 1000
    return {
      serverPercent: ((end.serverTicks - start.serverTicks) / TICKS_PER_SECOND / seconds) * 100,
      serverSystemPercent: ((end.serverSystemTicks - start.serverSystemTicks) / TICKS_PER_SECOND / seconds) * 100,
      backendsPercent: ((end.backendTicks - start.backendTicks) / TICKS_PER_SECOND / seconds) * 100,
      benchPercent: ((end.benchMicros - start.benchMicros) / 1e6 / seconds) * 100,
      machineBusyPercent: ((end.machineBusy - start.machineBusy) / (end.machineTotal - start.machineTotal)) * 100,
      cores: end.cores,
    }
  }
}

export interface Usage {
  cpu: CpuShare | undefined
  db: DbWork | undefined
}

export const serverRssMiB = (pid: number): number | undefined => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

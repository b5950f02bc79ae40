import { readFileSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import type { ServerProcess } from './server-process.js'

// A raw HTTP/1.1 connection, for the clients the server must survive: one that sends a request and never reads
// the answer, one that announces a body and sends part of it. It keeps every byte that arrives while it reads.
export class RawClient {
  readonly chunks: Buffer[] = []
  // resolves when the connection is gone (the server closed it, or close())
  readonly closed: Promise<void>
  #closed = false

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk))
    socket.on('error', () => {})
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    void this.closed.then(() => (this.#closed = true))
  }

  // `reading: false`: the socket never reads, so what the server sends waits in the kernel and then in the server
  static async open(port: number, { reading = true } = {}): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1')
    if (!reading) socket.pause()
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    return new RawClient(socket)
  }

  get isClosed(): boolean {
    return this.#closed
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString('latin1')
  }

  get received(): number {
    return this.chunks.reduce((sum, chunk) => sum + chunk.length, 0)
  }

  send(text: string): this {
    this.socket.write(text)
    return this
  }

  get(path: string): this {
    return this.send(`GET ${path} HTTP/1.1\r\nhost: annalist\r\naccept: */*\r\n\r\n`)
  }

  resume(): void {
    this.socket.resume()
  }

  close(): void {
    this.socket.destroy()
  }
}

// The child's memory from /proc (Linux): resident now, and the peak since the last resetPeak, in KiB.
const statusOf = (pid: number): string => readFileSync(`/proc/${pid}/status`, 'utf8')
export const memoryKib = (pid: number, field: 'VmRSS' | 'VmHWM'): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(statusOf(pid))![1])
// clear_refs 5 resets the peak (VmHWM) to the current RSS
export const resetPeak = (pid: number): void => writeFileSync(`/proc/${pid}/clear_refs`, '5')

// One sample of a Prometheus metric from GET /metrics (the sum over its series matching `labels`).
export const metricValue = async (server: ServerProcess, name: string, labels = ''): Promise<number> => {
  const response = await server.request('GET', '/metrics')
  return response.text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}

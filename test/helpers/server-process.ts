import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import type { Test } from 'tap'
import { waitFor } from './wait-for.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LISTENING = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface HttpResult {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  // the parsed JSON body, or undefined when the body is not JSON
  body: any
}

export interface RequestOptions {
  body?: unknown
  headers?: Record<string, string>
}

// The real server as a child process (`node --import=tsx src/server.ts`), listening on a port the
// kernel picks (PORT=0) and announces in its pino "Server listening at" line.
export class ServerProcess {
  readonly child: ChildProcess
  // set on the child's database connections, so a test can see them in pg_stat_activity
  readonly applicationName = `annalist-e2e-${randomBytes(4).toString('hex')}`
  readonly stdout: string[] = []
  stderr = ''
  readonly exited: Promise<Exit>
  #exit: Exit | undefined
  #url: string | undefined
  #pool: Pool | undefined
  #partial = ''

  constructor(env: Record<string, string>) {
    const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env }
    if (childEnv.DATABASE_URL) {
      const url = new URL(childEnv.DATABASE_URL)
      url.searchParams.set('application_name', this.applicationName)
      childEnv.DATABASE_URL = url.toString()
    }
    this.child = spawn(process.execPath, ['--import=tsx', 'src/server.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.#onStdout(chunk))
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk))
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.#exit = { code, signal }
        resolve(this.#exit)
      })
    })
  }

  #onStdout(chunk: string): void {
    const lines = (this.#partial + chunk).split('\n')
    this.#partial = lines.pop() ?? ''
    for (const line of lines) {
      this.stdout.push(line)
      const match = this.#url === undefined ? LISTENING.exec(line) : null
      if (match) this.#url = match[1]
    }
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  get url(): string {
    if (this.#url === undefined) throw new Error('the server has not announced its address yet')
    return this.#url
  }

  get port(): number {
    return Number(new URL(this.url).port)
  }

  get exit(): Exit | undefined {
    return this.#exit
  }

  // Keep-alive connections to this server; requests fail fast once it is gone.
  get pool(): Pool {
    this.#pool ??= new Pool(this.url, { connections: 64, headersTimeout: 30_000, bodyTimeout: 30_000 })
    return this.#pool
  }

  logs(): Record<string, unknown>[] {
    return this.stdout.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>]
      } catch {
        return []
      }
    })
  }

  // Resolves once the server has said where it listens and /health/ready answers 200; fails as soon
  // as the process exits instead.
  async ready(timeoutMs = 30_000): Promise<this> {
    const deadline = Date.now() + timeoutMs
    const died = this.exited.then((exit) => {
      throw new Error(`the server exited (${JSON.stringify(exit)}) before it was ready: ${this.stderr}`)
    })
    const becameReady = (async () => {
      await waitFor('the server to announce its address', () => this.#url !== undefined || this.#exit !== undefined, { timeoutMs })
      await waitFor('GET /health/ready to answer 200', async () => this.#exit !== undefined || (await this.request('GET', '/health/ready')).status === 200, {
        timeoutMs: Math.max(deadline - Date.now(), 1),
      })
    })()
    died.catch(() => {})
    await Promise.race([died, becameReady])
    if (this.#exit !== undefined) throw new Error(`the server exited (${JSON.stringify(this.#exit)}) before it was ready: ${this.stderr}`)
    return this
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.#exit === undefined) this.child.kill(signal)
  }

  async waitForExit(timeoutMs = 15_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the server did not exit within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResult> {
    const raw = options.body === undefined || typeof options.body === 'string'
    const headers = raw ? options.headers : { 'content-type': 'application/json', ...options.headers }
    const response = await this.pool.request({
      method: method as 'GET',
      path,
      headers,
      body: raw ? (options.body as string | undefined) : JSON.stringify(options.body),
    })
    const text = await response.body.text()
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: response.statusCode, headers: response.headers, text, body }
  }

  // Teardown: nothing outlives the test file.
  async close(): Promise<void> {
    if (this.#exit === undefined) {
      this.child.kill('SIGKILL')
      await this.waitForExit()
    }
    await this.#pool?.destroy()
  }
}

export const spawnServer = (t: Test, env: Record<string, string>): ServerProcess => {
  const server = new ServerProcess(env)
  t.teardown(() => server.close())
  return server
}

export const startServer = async (t: Test, env: Record<string, string>): Promise<ServerProcess> => spawnServer(t, env).ready()

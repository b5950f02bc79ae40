import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { LOCK_FILE } from '../../src/db/folder-lock.js'
import { spawnServer, type ServerProcess } from '../helpers/server-process.js'

const CLIENTS = 8
const STREAMS = ['crash-0', 'crash-1', 'crash-2']
const ACKS_BEFORE_KILL = 300

const dataDir = (t: Test): string => {
  const dir = mkdtempSync(path.join(tmpdir(), 'annalist-embedded-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

// the server as a newcomer starts it: no DATABASE_URL, files in DATA_DIR
// a first start creates the database files (initdb): allow for a busy machine
const embeddedServer = (t: Test, dir: string) => spawnServer(t, { DATA_DIR: dir }).ready(90_000)

t.test('without DATABASE_URL the server runs on the embedded database in DATA_DIR and says so', async (t) => {
  const dir = dataDir(t)
  const server = await embeddedServer(t, dir)
  const ready = server.logs().find((line) => String(line.msg).startsWith('database: '))
  t.match(ready, { msg: `database: embedded PostgreSQL (PGlite), data in ${dir}`, startUp: { database: 'embedded (PGlite)', dataDir: dir } }, 'the start-up log names the database and its folder')
  t.equal(readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim(), String(server.pid), 'the folder is locked by the server')
  const appended = await server.request('POST', '/streams/order-1/events', { body: { expectedVersion: 0, events: [{ type: 'Created', data: {} }] } })
  t.equal(appended.status, 201)
  server.kill('SIGTERM')
  t.same(await server.waitForExit(), { code: 0, signal: null }, 'it drains and closes')
  t.throws(() => readFileSync(path.join(dir, LOCK_FILE)), 'a clean stop releases the folder')
  const again = await embeddedServer(t, dir)
  t.equal((await again.request('GET', '/streams/order-1')).body.version, 1, 'the data is there on the next start')
})

t.test('a second server on the same DATA_DIR is refused with a clear message', async (t) => {
  const dir = dataDir(t)
  const first = await embeddedServer(t, dir)
  const second = spawnServer(t, { DATA_DIR: dir })
  t.same(await second.waitForExit(30_000), { code: 1, signal: null })
  t.match(second.stderr, `${dir} is in use by process ${first.pid}`)
  t.match(second.stderr, 'one server per DATA_DIR')
  t.equal((await first.request('GET', '/health/ready')).status, 200, 'the first server is untouched')
})

t.test('a lock file left by a dead process is taken over', async (t) => {
  const dir = dataDir(t)
  const first = await embeddedServer(t, dir)
  first.kill('SIGKILL')
  await first.waitForExit()
  t.equal(readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim(), String(first.pid), 'SIGKILL leaves the lock file behind')
  const second = await embeddedServer(t, dir)
  t.equal(readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim(), String(second.pid))
})

t.test('a lock file naming a live process that is not a server still refuses (a pid is all it knows)', async (t) => {
  const dir = dataDir(t)
  writeFileSync(path.join(dir, LOCK_FILE), `${process.pid}\n`)
  const server = spawnServer(t, { DATA_DIR: dir })
  t.same(await server.waitForExit(30_000), { code: 1, signal: null })
  t.match(server.stderr, `is in use by process ${process.pid}`)
})

interface Ack {
  streamId: string
  eventIds: string[]
  firstVersion: number
  firstPosition: number
}

// Racing clients append with expected versions until the server is killed; every acknowledged append
// must be there after a restart, exactly where its acknowledgement said.
const load = async (server: ServerProcess): Promise<{ acks: Ack[]; conflicts: number }> => {
  const acks: Ack[] = []
  let conflicts = 0
  let killed = false
  const client = async (index: number): Promise<void> => {
    for (let step = 0; !killed; step += 1) {
      const streamId = STREAMS[(index + step) % STREAMS.length]!
      const eventIds = [randomUUID(), randomUUID()]
      try {
        const head = await server.request('GET', `/streams/${streamId}`)
        const expectedVersion = head.status === 404 ? 0 : head.body.version
        const result = await server.request('POST', `/streams/${streamId}/events`, {
          body: { expectedVersion, events: eventIds.map((eventId) => ({ eventId, type: 'Ticked', data: { index, step } })) },
        })
        if (result.status === 201) acks.push({ streamId, eventIds, firstVersion: result.body.firstVersion, firstPosition: result.body.firstPosition })
        else if (result.status === 409) conflicts += 1
        else throw new Error(`unexpected ${result.status}: ${result.text}`)
      } catch (error) {
        if (!killed) throw error
      }
      if (acks.length >= ACKS_BEFORE_KILL && !killed) {
        killed = true
        server.kill('SIGKILL')
      }
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)))
  return { acks, conflicts }
}

t.test('SIGKILL under load, restart: every acknowledged append is there, in place, once', async (t) => {
  const dir = dataDir(t)
  const first = await embeddedServer(t, dir)
  const { acks, conflicts } = await load(first)
  t.same(await first.waitForExit(), { code: null, signal: 'SIGKILL' })
  t.ok(acks.length >= ACKS_BEFORE_KILL, `${acks.length} appends acknowledged, ${conflicts} conflicts, before the kill`)

  const second = await embeddedServer(t, dir)
  const stored = new Map<string, { streamId: string; streamVersion: number; globalPosition: number }>()
  for (let after = 0; ; ) {
    const page = await second.request('GET', `/events?after=${after}&limit=1000`)
    for (const event of page.body.events) stored.set(event.eventId, event)
    if (page.body.next === null) break
    after = page.body.next
  }
  const missing = acks.flatMap((ack) =>
    ack.eventIds.filter((eventId, offset) => {
      const event = stored.get(eventId)
      return event?.streamId !== ack.streamId || event.streamVersion !== ack.firstVersion + offset || event.globalPosition !== ack.firstPosition + offset
    }),
  )
  t.same(missing, [], 'each acknowledged event is stored at the version and position it was acknowledged with')
  for (const streamId of STREAMS) {
    const versions = [...stored.values()].filter((event) => event.streamId === streamId).map((event) => event.streamVersion)
    t.same(versions, versions.map((_, index) => index + 1), `${streamId} has no gap and no duplicate version`)
  }
  const appended = await second.request('POST', `/streams/${STREAMS[0]}/events`, { body: { events: [{ type: 'After', data: {} }] } })
  t.equal(appended.status, 201, 'the restarted server appends')
})

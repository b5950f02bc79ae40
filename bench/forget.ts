import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { withBenchServer } from './bench-server.js'
import { attempt, num, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/forget.ts`: the time to forget a subject whose events fed a projection of BENCH_FORGET_DOCUMENTS
// (1,000,000) documents (issue 14): the DELETE's answer (the key destroyed, the rebuild queued), then the rebuild
// until GET /subjects/{subject} shows nothing pending. One document per event, 1,000 events per stream; the subject's
// own events carry personalData that the projection copies into its documents.
const DOCUMENTS = Number(process.env.BENCH_FORGET_DOCUMENTS ?? 1_000_000)
const PER_APPEND = 1000
const SUBJECT = 'customer-42'
const DEFINITION = {
  source: { categories: ['customer'] },
  documentId: '$.data.id',
  handlers: { CustomerSeen: { set: { plan: '$.data.plan', name: '$.personalData.name' } } },
}

const settings = { ...attempt(loadBenchSettings), database: process.env.BENCH_DATABASE_NAME || 'annalist_bench_forget' }

const call = async (pool: Pool, method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<any> => {
  const response = await pool.request({ path, method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) })
  const text = await response.body.text()
  if (response.statusCode >= 300) throw new Error(`bench: ${method} ${path} answered ${response.statusCode}: ${text.slice(0, 300)}`)
  return JSON.parse(text)
}

const until = async (what: string, condition: () => Promise<boolean>): Promise<void> => {
  const deadline = Date.now() + 3_600_000
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`)
    await sleep(100)
  }
}

await withBenchServer(settings, 7200, async (server) => {
  say(`forget bench: ${num(DOCUMENTS)} documents; server: ${server.describe}`)
  const pool = new Pool(server.origin, { connections: 4 })
  try {
    for (let at = 0; at < DOCUMENTS; at += PER_APPEND) {
      // the subject's events are the first append's: every later event is the rebuild's work after them
      const events = Array.from({ length: Math.min(PER_APPEND, DOCUMENTS - at) }, (_, index) => ({
        type: 'CustomerSeen',
        data: { id: `c-${at + index}`, plan: 'gold' },
        ...(at === 0 && index < 10 ? { subject: SUBJECT, personalData: { name: 'Ada Lovelace' } } : {}),
      }))
      await call(pool, 'POST', `/streams/customer-${at / PER_APPEND}/events`, { events })
    }
    await call(pool, 'PUT', '/projections/customers', DEFINITION)
    let started = performance.now()
    await until('the projection built', async () => {
      const view = await call(pool, 'GET', '/projections/customers')
      return view.lag === 0 && view.documents === DOCUMENTS
    })
    say(`  built: ${num(DOCUMENTS)} documents in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    started = performance.now()
    const forgotten = await call(pool, 'DELETE', `/subjects/${SUBJECT}`)
    const answered = performance.now() - started
    await until('the rebuild done', async () => (await call(pool, 'GET', `/subjects/${SUBJECT}`)).pending.length === 0)
    const rebuilt = (performance.now() - started) / 1000
    const document = await call(pool, 'GET', '/projections/customers/documents/c-0')
    say(`  DELETE /subjects/${SUBJECT}: 202 in ${answered.toFixed(1)} ms (${forgotten.events} events, ${forgotten.rebuilds.length} rebuild)`)
    say(`  rebuild until nothing pending: ${rebuilt.toFixed(1)} s (${num(DOCUMENTS / rebuilt)} documents/s); c-0 now ${JSON.stringify(document.document)}`)
  } finally {
    await pool.close()
  }
})

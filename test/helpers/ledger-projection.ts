import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Test } from 'tap'
import type { Sql } from '../../src/db/connect.js'

// A code projection for failure tests: one document per `account-*` stream holding the total of its
// Deposited amounts and the positions it applied, in order. An event with `poison: "always"` always throws;
// one with `poison: "until-fixed"` throws until the file `fixed` appears beside the module.
export const LEDGER = 'ledger'

const MODULE = `
import { existsSync } from 'node:fs'
const fixed = () => existsSync(new URL('./fixed', import.meta.url))
export default {
  name: 'ledger',
  source: { categories: ['account'] },
  handlers: {
    Deposited: async (event, ctx) => {
      const poison = event.data.poison
      if (poison === 'always' || (poison === 'until-fixed' && !fixed())) throw new Error('cannot book event ' + event.globalPosition)
      const doc = (await ctx.load(event.streamId)) ?? { total: 0, seen: [] }
      await ctx.store(event.streamId, { total: doc.total + event.data.amount, seen: [...doc.seen, event.globalPosition] })
    },
  },
}
`

// the PROJECTIONS_DIR, and what makes `until-fixed` events pass
export const ledgerDir = (t: Test): { dir: string; fix: () => void } => {
  const dir = t.testdir({ 'ledger.mjs': MODULE })
  return { dir, fix: () => writeFileSync(path.join(dir, 'fixed'), '') }
}

export interface Deposit {
  amount: number
  poison?: 'always' | 'until-fixed'
}

export const deposits = (amounts: number[], poison?: Deposit['poison']): { type: string; data: Deposit }[] =>
  amounts.map((amount) => ({ type: 'Deposited', data: poison ? { amount, poison } : { amount } }))

// Exactly once and in order: the tenant's document of `stream` holds every position of its stored Deposited
// events but those in `skipped`, ascending, and their total.
export const checkLedger = async (t: Test, sql: Sql, tenant: string, stream: string, skipped: number[] = []): Promise<void> => {
  const stored = await sql<{ position: number; amount: number }[]>`
    select global_position as position, (data ->> 'amount')::int as amount
      from events
     where tenant = ${tenant} and stream_id = ${stream} and type = 'Deposited'
     order by global_position`
  const expected = stored.filter((event) => !skipped.includes(event.position))
  const [row] = await sql<{ document: { total: number; seen: number[] } }[]>`
    select d.document
      from projection_documents d
      join projections p on p.name = d.projection and p.live_generation = d.generation
     where d.projection = ${LEDGER} and d.tenant = ${tenant} and d.id = ${stream}`
  t.same(row?.document.seen, expected.map((event) => event.position), `${tenant}/${stream}: each of its ${expected.length} events applied once, in order`)
  t.equal(row?.document.total, expected.reduce((sum, event) => sum + event.amount, 0), `${tenant}/${stream}: the total`)
}

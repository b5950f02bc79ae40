import { Gauge, type Registry } from 'prom-client'
import type { Sql } from '../db/connect.js'
import type { LogHead } from '../events/log-head.js'
import { listGroupStatuses } from './groups.js'
import type { ConsumerGroupStatus } from './schemas.js'

type Row = ConsumerGroupStatus & { tenant: string }

// SPEC "Consumer groups": /metrics carries each group's lag, in-flight and parked counts, read when scraped.
export const consumerGroupGauges = (registers: Registry[], sql: Sql, logHead: LogHead): void => {
  // one read of the groups per scrape, shared by the gauges below
  let rows: Promise<Row[]> | undefined
  const read = () => {
    rows ??= (async () => {
      const head = await logHead.refresh()
      return listGroupStatuses(sql, undefined, head)
    })().finally(() => setImmediate(() => (rows = undefined)))
    return rows
  }
  const gauge = (name: string, help: string, value: (row: Row) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['tenant', 'group'],
      registers,
      async collect() {
        this.reset()
        for (const row of await read()) this.set({ tenant: row.tenant, group: row.name }, value(row))
      },
    })
  gauge('annalist_consumer_group_lag', 'Events between the group position and the gap-safe head', (row) => row.lag)
  gauge('annalist_consumer_group_in_flight', 'Events leased to a poll and not yet acked or nacked', (row) => row.inFlight)
  gauge('annalist_consumer_group_parked', 'Events parked after maxDeliveries deliveries', (row) => row.parked)
}

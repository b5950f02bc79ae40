import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Sql } from '../db/connect.js'
import type { LogHead } from '../events/log-head.js'
import { appendBatchStats, type AppendBatchStats } from '../events/append-batcher.js'
import { activeBackfills, type BackfillRow } from '../projections/backfills/backfill-runs.js'
import { viewOf } from '../projections/projection-view.js'
import { listProjections } from '../projections/definitions.js'
import type { ProjectionStatus } from '../projections/types.js'
import { consumerGroupGauges } from '../consumer-groups/group-metrics.js'

const PROJECTION_STATUSES: ProjectionStatus[] = ['running', 'stopped', 'failed', 'rebuilding', 'catching-up']

// The transaction with the oldest xid in this database: while it runs the gap-safe head cannot pass the
// positions handed out after it began (docs/gap-safety.md), so a stalled log is named by this row.
const oldestTransaction = (sql: Sql) => sql<{ pid: number; applicationName: string; state: string; ageSeconds: number }[]>`
  select pid, coalesce(application_name, '') as "applicationName", coalesce(state, '') as state,
         extract(epoch from clock_timestamp() - xact_start)::float8 as "ageSeconds"
    from pg_stat_activity
   where datname = current_database() and pid <> pg_backend_pid() and backend_xid is not null
   order by age(backend_xid) desc
   limit 1`

const connections = (sql: Sql) => sql<{ state: string; count: number }[]>`
  select coalesce(state, 'unknown') as state, count(*)::int as count
    from pg_stat_activity
   where datname = current_database() and application_name = 'annalist'
   group by 1`

// Prometheus metrics of one server (SPEC "Operations"). One registry per app, so test apps do not share
// series; database-backed gauges are read when /metrics is scraped, never on a timer.
export class Metrics {
  readonly registry = new Registry()
  readonly #requestSeconds: Histogram<'method' | 'route' | 'status'>
  readonly #appends: Counter<'outcome'>
  readonly #events: Counter
  readonly #connectionsClosed: Counter<'reason'>

  constructor(private readonly sql: Sql, private readonly logHead: LogHead, options: { poolSize: number }) {
    const registers = [this.registry]
    this.#requestSeconds = new Histogram({
      name: 'annalist_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.#appends = new Counter({ name: 'annalist_appends_total', help: 'Append requests that succeeded, by outcome', labelNames: ['outcome'], registers })
    this.#events = new Counter({ name: 'annalist_events_appended_total', help: 'Events written by appends (idempotent repeats excluded)', registers })
    this.#connectionsClosed = new Counter({
      name: 'annalist_connections_closed_total',
      help: 'Connections the server ended to bound what clients hold: send-timeout, request-timeout, connection-limit (refused at once)',
      labelNames: ['reason'],
      registers,
    })
    new Gauge({ name: 'annalist_db_pool_size', help: 'Connections the pool may open (DATABASE_POOL_SIZE)', registers }).set(options.poolSize)
    this.#databaseGauges(registers)
    this.#batchCounters(registers)
    this.#projectionGauges(registers)
    this.#backfillGauges(registers)
    consumerGroupGauges(registers, sql, logHead)
  }

  // Node's process metrics (CPU, memory, event-loop lag); once per process, so the server calls it and test apps do not.
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry, prefix: 'annalist_' })
  }

  subscriptionsGauge(open: () => number): void {
    new Gauge({
      name: 'annalist_subscriptions_open',
      help: 'Open event streams: GET /subscribe and backfill progress',
      registers: [this.registry],
      collect() {
        this.set(open())
      },
    })
  }

  connectionsGauges(connections: { readonly open: number; readonly backedUp: number }): void {
    new Gauge({
      name: 'annalist_connections_open',
      help: 'Open client connections (MAX_CONNECTIONS is the most)',
      registers: [this.registry],
      collect() {
        this.set(connections.open)
      },
    })
    new Gauge({
      name: 'annalist_connections_backed_up',
      help: 'Open connections with response bytes waiting for the client to take them (closed after SEND_TIMEOUT_MS without progress)',
      registers: [this.registry],
      collect() {
        this.set(connections.backedUp)
      },
    })
  }

  connectionClosed(reason: 'send-timeout' | 'request-timeout' | 'connection-limit'): void {
    this.#connectionsClosed.inc({ reason })
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.#requestSeconds.observe({ method, route, status: String(status) }, seconds)
  }

  appended(events: number, duplicate: boolean): void {
    this.#appends.inc({ outcome: duplicate ? 'duplicate' : 'created' })
    if (!duplicate) this.#events.inc(events)
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }

  #databaseGauges(registers: Registry[]): void {
    const { sql, logHead } = this
    new Gauge({
      name: 'annalist_db_connections',
      help: "This server's database connections by pg_stat_activity state (pool use)",
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset()
        for (const row of await connections(sql)) this.set({ state: row.state }, row.count)
      },
    })
    new Gauge({
      name: 'annalist_log_head_position',
      help: 'The gap-safe head: the highest global position a reader may read',
      registers,
      async collect() {
        this.set(await logHead.refresh())
      },
    })
    new Gauge({
      name: 'annalist_oldest_transaction_seconds',
      help: 'Age of the oldest open transaction holding an xid in this database; while it runs the gap-safe head cannot pass it',
      labelNames: ['pid', 'application_name', 'state'],
      registers,
      async collect() {
        this.reset()
        const [row] = await oldestTransaction(sql)
        if (row) this.set({ pid: String(row.pid), application_name: row.applicationName, state: row.state }, row.ageSeconds)
      },
    })
  }

  // Group commit (docs/performance.md): appends per batch is their ratio; a growing fallback count means batches
  // keep being refused whole (races on event ids with another instance, data the database refuses).
  #batchCounters(registers: Registry[]): void {
    const { sql } = this
    const counter = (name: string, help: string, value: (stats: AppendBatchStats) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset()
          this.inc(value(appendBatchStats(sql)))
        },
      })
    counter('annalist_append_batches_total', 'Database calls that committed appends as one batch', (stats) => stats.batches)
    counter('annalist_append_batched_appends_total', 'Appends those batches carried', (stats) => stats.appends)
    counter('annalist_append_batch_fallbacks_total', 'Batches the database refused whole, whose appends then ran one by one', (stats) => stats.fallbacks)
    new Gauge({
      name: 'annalist_append_waiting',
      help: 'Appends waiting for the batch in flight to commit',
      registers,
      collect() {
        this.set(appendBatchStats(sql).waiting)
      },
    })
  }

  // Runs in progress, read from the database at each scrape, so every instance reports every run
  // whichever instance executes it; a run that ends leaves the series.
  #backfillGauges(registers: Registry[]): void {
    const { sql } = this
    let runs: Promise<BackfillRow[]> | undefined
    const read = () => {
      runs ??= activeBackfills(sql).finally(() => setImmediate(() => (runs = undefined)))
      return runs
    }
    new Gauge({
      name: 'annalist_backfill_processed_events',
      help: 'Selected source events a queued, running or swapping backfill has processed',
      labelNames: ['projection', 'backfill', 'status'],
      registers,
      async collect() {
        this.reset()
        for (const run of await read()) this.set({ projection: run.projection, backfill: run.id, status: run.status }, run.processed)
      },
    })
    new Gauge({
      name: 'annalist_backfill_total_events',
      help: 'Source events a running backfill selected (0 while queued)',
      labelNames: ['projection', 'backfill', 'status'],
      registers,
      async collect() {
        this.reset()
        for (const run of await read()) this.set({ projection: run.projection, backfill: run.id, status: run.status }, run.total ?? 0)
      },
    })
  }

  #projectionGauges(registers: Registry[]): void {
    const { sql, logHead } = this
    // one read of the projections per scrape, shared by the gauges below
    let views: Promise<Awaited<ReturnType<typeof viewOf>>[]> | undefined
    const read = () => {
      views ??= (async () => {
        const head = await logHead.refresh()
        return Promise.all((await listProjections(sql)).map((row) => viewOf(sql, row, head)))
      })().finally(() => setImmediate(() => (views = undefined)))
      return views
    }
    const gauge = (name: string, help: string, value: (view: Awaited<ReturnType<typeof viewOf>>) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['projection'],
        registers,
        async collect() {
          this.reset()
          for (const view of await read()) this.set({ projection: view.name }, value(view))
        },
      })
    gauge('annalist_projection_position', 'Global position the projection has processed', (view) => view.position)
    gauge('annalist_projection_lag', 'Events between the projection and the gap-safe head', (view) => view.lag)
    gauge('annalist_projection_documents', 'Documents in the live generation', (view) => view.documents)
    gauge('annalist_projection_failed_tenants', 'Tenants whose events the projection holds after a failure (docs/projection-failures.md)', (view) => view.failures.length)
    new Gauge({
      name: 'annalist_projection_status',
      help: 'The projection status: 1 for the current one',
      labelNames: ['projection', 'status'],
      registers,
      async collect() {
        this.reset()
        for (const view of await read()) {
          for (const status of PROJECTION_STATUSES) this.set({ projection: view.name, status }, view.status === status ? 1 : 0)
        }
      },
    })
  }
}

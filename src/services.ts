import type { Config } from './config.js'
import type { Sql } from './db/connect.js'
import { loadCodeUpcasters } from './events/code-upcasters.js'
import { readChunkBytes } from './events/event-page.js'
import { LogHead } from './events/log-head.js'
import { Upcasters } from './events/upcasters.js'
import { AutoSnapshots } from './projections/snapshots/auto-snapshots.js'
import { loadCodeProjections } from './projections/code-modules.js'
import { ProjectionProgress } from './projections/progress.js'
import { createProjectionSnapshot } from './projections/snapshots/projection-snapshots.js'
import { claimSnapshot } from './projections/backfills/backfill-runs.js'
import { BackfillRequests } from './projections/backfills/system-requests.js'
import { ProjectionRunner } from './projections/runner.js'
import { LiveFeed } from './subscriptions/live-feed.js'
import { LogWatcher } from './subscriptions/log-watcher.js'
import { ConsumerGroups } from './consumer-groups/consumer-groups.js'

export interface ServiceLog {
  info: (object: object, message: string) => void
  warn: (object: object, message: string) => void
}

// The long-lived parts of one server process, built and started in order and stopped in reverse.
export interface Services {
  logHead: LogHead
  logWatcher: LogWatcher
  // every read path, projection handlers included, brings old events up to date with upcasters.apply
  upcasters: Upcasters
  liveFeed: LiveFeed
  progress: ProjectionProgress
  runner: ProjectionRunner
  consumerGroups: ConsumerGroups
  start(): Promise<void>
  stop(): Promise<void>
}

export const createServices = async (sql: Sql, config: Config, log: ServiceLog): Promise<Services> => {
  const logHead = new LogHead(sql)
  const logWatcher = new LogWatcher(sql, logHead, { log })
  const upcasters = new Upcasters(sql, await loadCodeUpcasters(config.PROJECTIONS_DIR), { log })
  const liveFeed = new LiveFeed(sql, logWatcher, upcasters, { log, maxPageBytes: readChunkBytes(config.MAX_PAGE_BYTES) })
  const progress = new ProjectionProgress(sql)
  const autoSnapshots = new AutoSnapshots(sql, { log })
  const runner = new ProjectionRunner({
    sql,
    logWatcher,
    progress,
    codeProjections: await loadCodeProjections(config.PROJECTIONS_DIR),
    upcast: upcasters.apply,
    head: () => logHead.catchUp(),
    snapshot: async (name, backfillId) => (await createProjectionSnapshot(sql, name, 'backfill', (tx, id) => claimSnapshot(tx, backfillId, id))).id,
    log,
    maxBatchBytes: config.MAX_PAGE_BYTES,
    committed: (worker) => autoSnapshots.committed(worker),
  })
  const backfillRequests = new BackfillRequests(sql, logWatcher, runner, log)
  const consumerGroups = new ConsumerGroups(sql, logWatcher, logHead, upcasters, { maxPageBytes: config.MAX_PAGE_BYTES })
  return {
    logHead,
    logWatcher,
    upcasters,
    liveFeed,
    progress,
    runner,
    consumerGroups,
    async start() {
      await logWatcher.start()
      await upcasters.start()
      await progress.start()
      await runner.registerCode()
      await runner.start()
      backfillRequests.start()
    },
    async stop() {
      await backfillRequests.stop()
      await runner.stop()
      await autoSnapshots.stop()
      await progress.stop()
      liveFeed.closeAll()
      await upcasters.stop()
      await logWatcher.stop()
    },
  }
}

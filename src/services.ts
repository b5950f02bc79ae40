import type { Config } from './config.js'
import type { Sql } from './db/connect.js'
import { loadCodeUpcasters } from './events/code-upcasters.js'
import { readChunkBytes } from './events/event-page.js'
import { LogHead } from './events/log-head.js'
import { Upcasters } from './events/upcasters.js'
import { Keyring } from './events/keyring.js'
import { SubjectRebuilds } from './subjects/subject-rebuilds.js'
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
  // personal data's data keys (SPEC "Personal data"), used by appends and by every read through upcasters
  keyring: Keyring
  // the rebuilds forgetting a subject started, finished at start when a forget was cut short
  subjectRebuilds: SubjectRebuilds
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
  const keyring = new Keyring(config.ENCRYPTION_KEY, config.ENCRYPTION_KEY_PREVIOUS)
  const upcasters = new Upcasters(sql, await loadCodeUpcasters(config.PROJECTIONS_DIR), { log, keyring })
  const liveFeed = new LiveFeed(sql, logWatcher, upcasters, { log, maxPageBytes: readChunkBytes(config.MAX_PAGE_BYTES) })
  const progress = new ProjectionProgress(sql)
  const autoSnapshots = new AutoSnapshots(sql, { log })
  const runner = new ProjectionRunner({
    sql,
    logWatcher,
    progress,
    codeProjections: await loadCodeProjections(config.PROJECTIONS_DIR),
    upcast: upcasters.apply,
    keyring,
    head: () => logHead.catchUp(),
    snapshot: async (name, backfillId) => (await createProjectionSnapshot(sql, name, 'backfill', (tx, id) => claimSnapshot(tx, backfillId, id))).id,
    log,
    maxBatchBytes: config.MAX_PAGE_BYTES,
    committed: (worker) => autoSnapshots.committed(worker),
  })
  const backfillRequests = new BackfillRequests(sql, logWatcher, runner, log)
  const subjectRebuilds = new SubjectRebuilds(sql, runner, log)
  const consumerGroups = new ConsumerGroups(sql, logWatcher, logHead, upcasters, { maxPageBytes: config.MAX_PAGE_BYTES })
  const parts = { logHead, logWatcher, upcasters, keyring, subjectRebuilds, liveFeed, progress, runner, consumerGroups }
  return { ...parts, ...lifecycle(sql, log, { ...parts, autoSnapshots, backfillRequests }) }
}

type Parts = Omit<Services, 'start' | 'stop'> & { autoSnapshots: AutoSnapshots; backfillRequests: BackfillRequests }

// Started in order, stopped in reverse.
const lifecycle = (sql: Sql, log: ServiceLog, parts: Parts): Pick<Services, 'start' | 'stop'> => {
  const { logWatcher, keyring, upcasters, progress, runner, backfillRequests, subjectRebuilds, autoSnapshots, liveFeed, consumerGroups } = parts
  return {
    async start() {
      await logWatcher.start()
      await keyring.start(sql, log)
      await upcasters.start()
      await progress.start()
      await consumerGroups.start()
      await runner.registerCode()
      await runner.start()
      backfillRequests.start()
      subjectRebuilds.start()
    },
    async stop() {
      await subjectRebuilds.stop()
      await backfillRequests.stop()
      await runner.stop()
      await autoSnapshots.stop()
      await progress.stop()
      await consumerGroups.stop()
      liveFeed.closeAll()
      await upcasters.stop()
      await keyring.stop()
      await logWatcher.stop()
    },
  }
}

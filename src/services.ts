import type { Config } from './config.js'
import type { Sql } from './db/connect.js'
import { LogHead } from './events/log-head.js'
import { loadCodeProjections } from './projections/code-modules.js'
import { ProjectionProgress } from './projections/progress.js'
import { ProjectionRunner } from './projections/runner.js'
import { LogWatcher } from './subscriptions/log-watcher.js'

export interface ServiceLog {
  info: (object: object, message: string) => void
  warn: (object: object, message: string) => void
}

// The long-lived parts of one server process, built and started in order and stopped in reverse.
export interface Services {
  logHead: LogHead
  logWatcher: LogWatcher
  progress: ProjectionProgress
  runner: ProjectionRunner
  start(): Promise<void>
  stop(): Promise<void>
}

export const createServices = async (sql: Sql, config: Config, log: ServiceLog): Promise<Services> => {
  const logHead = new LogHead(sql)
  const logWatcher = new LogWatcher(sql, logHead, { log })
  const progress = new ProjectionProgress(sql)
  const runner = new ProjectionRunner({
    sql,
    logWatcher,
    progress,
    codeProjections: await loadCodeProjections(config.PROJECTIONS_DIR),
    log,
  })
  return {
    logHead,
    logWatcher,
    progress,
    runner,
    async start() {
      await logWatcher.start()
      await progress.start()
      await runner.registerCode()
      await runner.start()
    },
    async stop() {
      await runner.stop()
      await progress.stop()
      await logWatcher.stop()
    },
  }
}

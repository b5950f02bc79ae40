import type { Sql } from '../../db/connect.js'
import { backfillViewFor, getBackfill, TERMINAL, viewOfBackfill } from './backfill-runs.js'
import type { BackfillView } from '../schemas.js'

export interface ProgressOptions {
  pollMs: number
  heartbeatMs: number
  // the stream was closed (by the client, or by a shutdown)
  closed: () => boolean
  // the caller's key is an admin's: it reads a failed run's error (backfillViewFor)
  admin: boolean
  log: { warn: (object: object, message: string) => void }
}

// SPEC "Backfills and rebuilds": GET …/backfills/{id}/progress, as server-sent event frames: one `progress`
// event whenever the run's view changes, a heartbeat comment when it has not for heartbeatMs, until the run
// ends (its final view included) or the stream closes. `first` is the view the caller already read (its 404 came
// before the stream opened).
export async function* backfillProgressFrames(sql: Sql, name: string, id: string, first: BackfillView, options: ProgressOptions): AsyncGenerator<string> {
  let view = backfillViewFor(first, options.admin)
  let sent = ''
  let lastWrite = Date.now()
  while (!options.closed()) {
    const frame = JSON.stringify(view)
    if (frame !== sent) {
      yield `event: progress\ndata: ${frame}\n\n`
      sent = frame
      lastWrite = Date.now()
    } else if (Date.now() - lastWrite >= options.heartbeatMs) {
      yield ': heartbeat\n\n'
      lastWrite = Date.now()
    }
    if (TERMINAL.includes(view.status)) return
    await new Promise((resolve) => setTimeout(resolve, options.pollMs))
    if (options.closed()) return
    try {
      view = backfillViewFor(viewOfBackfill(await getBackfill(sql, name, id)), options.admin)
    } catch (error) {
      options.log.warn({ err: error }, 'backfill progress stream ended: a read failed')
      return
    }
  }
}

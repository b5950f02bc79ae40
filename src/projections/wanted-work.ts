import type { BackfillRow } from './backfills/backfill-runs.js'
import type { GenerationRow, ProjectionRow } from './definitions.js'
import type { CodeProjection } from './types.js'

export interface WantedWork {
  // by `${projection}:${generation}`: the generations that should have a running worker
  wanted: Map<string, { projection: ProjectionRow; generation: GenerationRow }>
  // by backfill id: the runs that should have a running job
  wantedJobs: Map<string, { projection: ProjectionRow; backfill: BackfillRow; generation: GenerationRow }>
}

// What should run, from the database's rows, wherever it runs (the runner then keeps what it owns).
// A code projection whose module this instance has not loaded runs elsewhere or nowhere.
export const wantedWork = (
  projections: ProjectionRow[],
  generations: GenerationRow[],
  backfills: BackfillRow[],
  code: ReadonlyMap<string, CodeProjection>,
): WantedWork => {
  const runs = new Map(backfills.map((backfill) => [backfill.id, backfill]))
  const wanted: WantedWork['wanted'] = new Map()
  const wantedJobs: WantedWork['wantedJobs'] = new Map()
  for (const projection of projections) {
    if (projection.kind === 'code' && !code.has(projection.name)) continue
    for (const generation of generations) {
      if (generation.projection !== projection.name || generation.state === 'retired') continue
      // a generation an atomic backfill builds gets its worker once the selected events are in
      const run = generation.backfill === null ? undefined : runs.get(generation.backfill)
      if (projection.status === 'running' && (run === undefined || run.status === 'swapping')) {
        wanted.set(`${projection.name}:${generation.generation}`, { projection, generation })
      }
    }
    // backfills run whatever the live worker's status: they write their own generation, or the
    // live documents under the generation lock
    for (const backfill of backfills) {
      if (backfill.projection !== projection.name || backfill.status === 'swapping') continue
      const generation = generations.find((row) => row.projection === projection.name && row.generation === backfill.generation)
      if (generation) wantedJobs.set(backfill.id, { projection, backfill, generation })
    }
  }
  return { wanted, wantedJobs }
}

import t from 'tap'
import type { BackfillRow } from '../../src/projections/backfills/backfill-runs.js'
import type { GenerationRow, ProjectionRow } from '../../src/projections/definitions.js'
import type { CodeProjection } from '../../src/projections/types.js'
import { wantedWork } from '../../src/projections/wanted-work.js'

// What should run follows from the rows alone.
const projection = (name: string, status: ProjectionRow['status'] = 'running', kind: ProjectionRow['kind'] = 'declarative') =>
  ({ name, kind, status, liveGeneration: 1 }) as ProjectionRow
const generation = (name: string, number: number, state: GenerationRow['state'], backfill: string | null = null) =>
  ({ projection: name, generation: number, state, backfill, position: 0, definition: null, definitionVersion: 1 }) as GenerationRow
const run = (id: string, name: string, number: number, status: BackfillRow['status']) => ({ id, projection: name, generation: number, status }) as BackfillRow

t.test('live generations of running projections get workers; a building one only once its run is swapping', async (t) => {
  const { wanted, wantedJobs } = wantedWork(
    [projection('a'), projection('b', 'stopped'), projection('c')],
    [generation('a', 1, 'live'), generation('a', 0, 'retired'), generation('b', 1, 'live'), generation('c', 1, 'live'), generation('c', 2, 'building', 'r1')],
    [run('r1', 'c', 2, 'running')],
    new Map(),
  )
  t.same([...wanted.keys()].sort(), ['a:1', 'c:1'])
  t.same([...wantedJobs.keys()], ['r1'], 'a running backfill gets its job')
  const swapping = wantedWork([projection('c')], [generation('c', 1, 'live'), generation('c', 2, 'building', 'r1')], [run('r1', 'c', 2, 'swapping')], new Map())
  t.same([...swapping.wanted.keys()].sort(), ['c:1', 'c:2'], 'swapping: the new generation follows the head with its own worker')
  t.same([...swapping.wantedJobs.keys()], [], 'and the job is done')
})

t.test('a stopped projection keeps its backfill job; a code projection this instance has not loaded gets nothing', async (t) => {
  const stopped = wantedWork([projection('s', 'stopped')], [generation('s', 1, 'live')], [run('r2', 's', 1, 'queued')], new Map())
  t.same([...stopped.wanted.keys()], [])
  t.same([...stopped.wantedJobs.keys()], ['r2'])
  const code = wantedWork([projection('k', 'running', 'code')], [generation('k', 1, 'live')], [], new Map())
  t.same([...code.wanted.keys()], [])
  const loaded = wantedWork([projection('k', 'running', 'code')], [generation('k', 1, 'live')], [], new Map([['k', {} as CodeProjection]]))
  t.same([...loaded.wanted.keys()], ['k:1'])
})

import { readFileSync } from 'node:fs'
import t from 'tap'
import semver from 'semver'

// `engines.node` is a promise: every Node it admits installs the locked tree without EBADENGINE, and the Node
// running the suite (CI's) is one of them.
const read = (file: string): unknown => JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'))

interface LockEntry {
  version?: string
  engines?: { node?: string }
}

const manifest = read('package.json') as { engines: { node: string } }
const lock = read('package-lock.json') as { packages: Record<string, LockEntry> }
const ours = manifest.engines.node

t.test('the Node running the suite is one engines.node admits', async (t) => {
  t.ok(semver.satisfies(process.version, ours), `${process.version} satisfies "${ours}"`)
})

t.test('every locked package accepts every Node that engines.node admits', async (t) => {
  const refusing = Object.entries(lock.packages)
    .filter(([path, entry]) => path !== '' && entry.engines?.node !== undefined && !semver.subset(ours, entry.engines.node))
    .map(([path, entry]) => `${path.replace(/^.*node_modules\//, '')}@${entry.version} wants node ${entry.engines?.node}`)
  t.same(refusing, [], `each package's engines.node contains "${ours}"`)
})

t.test('the lock agrees with package.json on engines', async (t) => {
  t.equal(lock.packages['']?.engines?.node, ours, 'npm install was run after engines changed')
})

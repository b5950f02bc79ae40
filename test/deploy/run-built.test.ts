import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { buildIsCurrent, sourcesFingerprint } from '../../scripts/run-built.mjs'

// scripts/run-built.mjs decides whether `npm start` compiles: any change to what tsc reads must say "stale".
const project = (t: Parameters<Parameters<typeof t.test>[1]>[0]): string => {
  const root = t.testdir({ src: { 'server.ts': 'x', db: { 'a.ts': 'a' } }, routes: { 'r.ts': 'r' }, 'tsconfig.json': '{}', 'package-lock.json': '{}', sql: { '0001.sql': 's' } })
  mkdirSync(path.join(root, 'dist/src'), { recursive: true })
  writeFileSync(path.join(root, 'dist/src/server.js'), '')
  writeFileSync(path.join(root, 'dist/.sources-fingerprint'), sourcesFingerprint(root) + '\n')
  return root
}

t.test('an unchanged tree is current; each kind of change makes it stale', async (t) => {
  const changes: [string, (root: string) => void][] = [
    ['an edit', (root) => writeFileSync(path.join(root, 'src/server.ts'), 'y')],
    ['an edit of the same size, mtime only', (root) => utimesSync(path.join(root, 'routes/r.ts'), new Date(), new Date(Date.now() + 5000))],
    ['a restored older copy', (root) => utimesSync(path.join(root, 'src/db/a.ts'), new Date(0), new Date(0))],
    ['a new file', (root) => writeFileSync(path.join(root, 'src/db/b.ts'), 'b')],
    ['a deleted file', (root) => rmSync(path.join(root, 'src/db/a.ts'))],
    ['tsconfig.json', (root) => writeFileSync(path.join(root, 'tsconfig.json'), '{"x":1}')],
    ['dist/ removed', (root) => rmSync(path.join(root, 'dist/src/server.js'))],
  ]
  for (const [name, change] of changes) {
    t.test(name, async (t) => {
      const root = project(t)
      t.ok(buildIsCurrent(root), 'current before')
      change(root)
      t.notOk(buildIsCurrent(root), 'stale after')
    })
  }
})

t.test('files tsc does not read (sql/) leave the build current', async (t) => {
  const root = project(t)
  writeFileSync(path.join(root, 'sql/0002.sql'), 'new')
  t.ok(buildIsCurrent(root))
})

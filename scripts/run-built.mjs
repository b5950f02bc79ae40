// `npm start` and `npm run migrate`: run a compiled entry point of dist/, compiling first only when the
// sources changed since the last build. A fresh `tsc` takes many seconds; checking costs a stat per file.
// Plain JavaScript, because it runs before there is anything compiled.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
// what tsc reads (sql/, openapi.yaml and public/ are read at run time from the project, never compiled)
const INPUTS = ['src', 'routes', 'tsconfig.json', 'package-lock.json']
const STAMP = join('dist', '.sources-fingerprint')

const walk = (root, path, lines) => {
  const full = join(root, path)
  if (!existsSync(full)) return
  const stat = statSync(full)
  // a directory's own mtime moves when an entry is added, removed or renamed
  lines.push(`${path}\t${stat.isDirectory() ? 'dir' : stat.size}\t${stat.mtimeMs}`)
  if (stat.isDirectory()) for (const entry of readdirSync(full).sort()) walk(root, join(path, entry), lines)
}

// Every input's path, size and mtime: any edit, addition, deletion or restored older copy changes it.
export const sourcesFingerprint = (root = ROOT) => {
  const lines = []
  for (const input of INPUTS) walk(root, input, lines)
  return createHash('sha256').update(lines.join('\n')).digest('hex')
}

export const buildIsCurrent = (root = ROOT, fingerprint = sourcesFingerprint(root)) => {
  try {
    return readFileSync(join(root, STAMP), 'utf8').trim() === fingerprint && existsSync(join(root, 'dist/src/server.js'))
  } catch {
    return false
  }
}

export const buildIfChanged = (root = ROOT) => {
  // taken before compiling, so an edit made while tsc runs is seen by the next start
  const fingerprint = sourcesFingerprint(root)
  if (buildIsCurrent(root, fingerprint)) return false
  const tsc = join(root, 'node_modules/typescript/bin/tsc')
  if (!existsSync(tsc)) throw new Error('dist/ is older than the sources and TypeScript is not installed (npm ci)')
  process.stderr.write('annalist: the sources changed since the last build, compiling (tsc)…\n')
  const started = Date.now()
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) throw new Error(`tsc failed (exit ${result.status ?? result.signal}): dist/ was not brought up to date`)
  writeFileSync(join(root, `${STAMP}.tmp`), fingerprint + '\n')
  renameSync(join(root, `${STAMP}.tmp`), join(root, STAMP))
  process.stderr.write(`annalist: compiled in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  return true
}

const main = async () => {
  const entry = process.argv[2]
  if (!entry) throw new Error('usage: node scripts/run-built.mjs <file under dist/, e.g. src/server.js>')
  buildIfChanged()
  // the entry runs in this process, so signals (SIGTERM's drain) reach it directly
  await import(pathToFileURL(join(ROOT, 'dist', entry)).href)
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  await main().catch((error) => {
    process.stderr.write(`annalist: ${error.message}\n`)
    process.exit(1)
  })
}

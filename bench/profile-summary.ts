import { readFileSync } from 'node:fs'

// `npx tsx bench/profile-summary.ts file.cpuprofile [top]`: where a server profile (BENCH_CPU_PROF=dir) spent
// its time, by package and by function, self and inclusive.
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const [file, topArg] = process.argv.slice(2)
if (!file) throw new Error('usage: profile-summary.ts file.cpuprofile [top]')
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

const where = (url: string): string => {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  if (url.startsWith('node:')) return url
  if (url.includes('/dist/') || url.includes('/src/') || url.includes('/routes/')) return 'annalist'
  return url === '' ? '(native/gc/idle)' : 'other'
}
const label = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame
  const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src|routes)\//, '$1/')
  return `${functionName || '(anonymous)'} ${short}${url ? `:${lineNumber + 1}` : ''}`
}

const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const packages = new Map<string, number>()
let total = 0
profile.samples.forEach((id, index) => {
  const delta = profile.timeDeltas[index] ?? 0
  const node = byId.get(id)
  if (!node) return
  total += delta
  self.set(label(node), (self.get(label(node)) ?? 0) + delta)
  packages.set(where(node.callFrame.url), (packages.get(where(node.callFrame.url)) ?? 0) + delta)
  const seen = new Set<string>()
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const name = label(byId.get(at)!)
    if (seen.has(name)) continue
    seen.add(name)
    inclusive.set(name, (inclusive.get(name) ?? 0) + delta)
  }
})

const print = (title: string, table: Map<string, number>, count: number): void => {
  process.stdout.write(`\n${title}\n`)
  for (const [name, micros] of [...table].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    process.stdout.write(`  ${((micros / total) * 100).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}\n`)
  }
}
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`)
print('self time by package', packages, 20)
print('self time by function', self, top)
print('inclusive time by function', inclusive, top)

import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { startServer } from '../helpers/server-process.js'
import { testDatabase } from '../helpers/test-database.js'
import { parseTour, type TourStep } from './readme-tour.js'

// Runs the README's "A 5-minute tour" with the real curl against a real server on a fresh database and
// checks every answer the README shows (`# → STATUS body`), so the tour cannot drift from the code.
const run = promisify(execFile)

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
const steps = parseTour(readme, 'A 5-minute tour')

// Every curl of the tour writes its status to stderr; markers split both outputs by step.
const script = (steps: TourStep[], origin: string): string => [
  'set -euo pipefail',
  `curl() { command curl --max-time 30 -w '%{stderr}@@status %{http_code}\\n' "$@"; }`,
  ...steps.flatMap((step, index) => [
    `printf '\\n@@step ${index}\\n'; printf '@@step ${index}\\n' >&2`,
    step.command.replaceAll('localhost:3000', origin),
  ]),
].join('\n')

const split = (output: string, marker: RegExp): string[] => output.split(marker).slice(1)

// `…` in a shown JSON body stands for fields left out: the rest must match as a subset.
const shownJson = (text: string): unknown => JSON.parse(text.replaceAll(',…', '').replaceAll('…', ''))

t.test('the README tour has the steps the issue asks for', async (t) => {
  const commands = steps.map((step) => step.command).join('\n')
  t.ok(steps.length >= 8, `${steps.length} commands`)
  for (const needle of ['"expectedVersion": 0', '-XPUT localhost:3000/projections/orders', 'waitFor=', '"criteria": "full-rebuild"', '/progress']) {
    t.ok(commands.includes(needle), `the tour uses ${needle}`)
  }
  t.ok(steps.filter((step) => step.expect !== undefined).length >= 7, 'most steps show their answer')
})

t.test('every command of the README tour answers what the README shows', async (t) => {
  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url })
  const { stdout, stderr } = await run('bash', ['-c', script(steps, `127.0.0.1:${server.port}`)], {
    timeout: 90_000,
    env: { PATH: process.env.PATH ?? '' },
  })
  const outputs = split(stdout, /\n@@step \d+\n/)
  const diagnostics = split(stderr, /@@step \d+\n/)
  t.equal(outputs.length, steps.length, 'every step ran')
  steps.forEach((step, index) => {
    const output = outputs[index] ?? ''
    const statuses = [...(diagnostics[index] ?? '').matchAll(/@@status (\d{3})/g)].map((match) => Number(match[1]))
    const name = step.command.split('\n')[0]!.slice(0, 90)
    t.ok(statuses.length > 0, `${name}: curl ran`)
    if (step.expect === undefined) {
      t.same(statuses.filter((status) => status >= 300), [], `${name}: answered 2xx`)
      return
    }
    const shown = /^(\d{3})\s*(.*)$/.exec(step.expect)
    t.ok(shown, `${name}: the README shows a status`)
    if (!shown) return
    t.equal(statuses.at(-1), Number(shown[1]), `${name}: status ${shown[1]}`)
    const body = shown[2]!
    if (body.startsWith('{')) {
      t.match(JSON.parse(output), shownJson(body), `${name}: the body the README shows`)
    } else {
      let from = 0
      for (const fragment of body.split('…').map((part) => part.trim()).filter(Boolean)) {
        const at = output.indexOf(fragment, from)
        t.ok(at >= 0, `${name}: shows ${fragment}`, { output })
        if (at >= 0) from = at + fragment.length
      }
    }
  })
  t.equal((await server.request('GET', '/docs')).status, 200, '/docs, which the tour opens, answers 200')
})

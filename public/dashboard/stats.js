import { api } from './api.js'
import { COLOURS, drawChart, History } from './charts.js'
import { $, element, formatNumber } from './format.js'

// Stats: the log's rate now and over the last minutes, the head position, the stream count, and each
// projection's lag over the same minutes. Everything comes from reads the API already serves.

const WINDOW_MS = 5 * 60_000
// counting streams reads the whole list a page at a time: past this many pages the count is shown as "at least"
const COUNT_PAGES = 20
const COUNT_EVERY_MS = 4000

const rate = new History(WINDOW_MS)
const lag = new History(WINDOW_MS)
const colours = new Map()
let last = null
let counted = 0

const colourOf = (name) => {
  if (!colours.has(name)) colours.set(name, COLOURS[colours.size % COLOURS.length])
  return colours.get(name)
}

export const forgetStats = () => {
  rate.series.clear()
  lag.series.clear()
  last = null
  counted = 0
}

// The head is the gap-safe position of the whole log (SPEC "Details"): its rise per second is the rate
// at which events are written, over every tenant.
const sampleHead = async (signal) => {
  const { head } = await api(`/events?limit=1&after=${last?.head ?? 0}`, signal)
  const at = Date.now()
  if (last && at > last.at) rate.add('events/s', at, Math.max(0, head - last.head) / ((at - last.at) / 1000))
  last = { head, at }
  $('#stat-head').textContent = formatNumber(head)
  const now = rate.series.get('events/s')?.at(-1)?.value
  $('#stat-rate').textContent = now === undefined ? '–' : formatNumber(Math.round(now))
  drawChart($('#rate-chart'), rate, at, () => COLOURS[0])
}

const countStreams = async (signal) => {
  let total = 0
  let after
  for (let page = 0; page < COUNT_PAGES; page++) {
    const query = new URLSearchParams({ limit: '1000' })
    if (after !== undefined) query.set('after', after)
    const { streams, next } = await api(`/streams?${query}`, signal)
    total += streams.length
    if (next === null) return { total, exact: true }
    after = next
  }
  return { total, exact: false }
}

export const refreshStats = async (signal, { sectionState }) => {
  const section = $('#stats-section')
  try {
    await sampleHead(signal)
    if (Date.now() - counted >= COUNT_EVERY_MS) {
      const { total, exact } = await countStreams(signal)
      counted = Date.now()
      $('#stat-streams').textContent = `${exact ? '' : '≥ '}${formatNumber(total)}`
    }
    sectionState(section, null)
  } catch (error) {
    if (!signal.aborted) sectionState(section, error)
  }
}

// Called with each read of the projections.
export const recordLag = (projections) => {
  const at = Date.now()
  for (const projection of projections) lag.add(projection.name, at, projection.lag ?? 0)
  lag.keepOnly(new Set(projections.map((projection) => projection.name)))
  drawChart($('#lag-chart'), lag, at, colourOf)
  $('#lag-legend').replaceChildren(...projections.map((projection) =>
    element('li', { data: { projection: projection.name } }, [
      element('span', { className: 'swatch', title: projection.name }),
      element('span', { className: 'legend-name', text: projection.name }),
      element('span', { className: 'legend-value', text: formatNumber(projection.lag) }),
    ])))
  for (const item of $('#lag-legend').children) item.firstChild.style.background = colourOf(item.dataset.projection)
  $('#stat-projections').textContent = formatNumber(projections.length)
}

// The Annalist dashboard: one plain browser ES module, no build step and no library. Every call goes
// through the public API with the key and tenant typed in the header (`Authorization: Bearer …`,
// `X-Tenant-Id`), so streams are read with fetch() rather than EventSource, which cannot send headers.
// Sections: formatting, calling the API, charts, stats, projections and backfills, the stream browser,
// messages, recent events, wiring (docs/dashboard.md says what each panel asks and how often).

// --- formatting and DOM helpers ------------------------------------------------------------------

// Small DOM and text helpers shared by the panels.

const $ = (selector, root = document) => root.querySelector(selector)

const number = new Intl.NumberFormat()
const formatNumber = (value) => (value === null || value === undefined ? '–' : number.format(value))
const formatTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–')
const formatDateTime = (iso) => (iso ? new Date(iso).toLocaleString() : '–')
const formatDuration = (seconds) => {
  if (seconds === null || seconds === undefined) return '–'
  if (seconds < 60) return `${Math.ceil(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
}

// c-2 before c-10: digits compare as numbers
const naturalOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: 'variant' }).compare

const element = (tag, { className, text, title, data } = {}, children = []) => {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  if (title) node.title = title
  for (const [key, value] of Object.entries(data ?? {})) node.dataset[key] = value
  node.append(...children)
  return node
}

// `label` names the column on narrow screens, where table rows become cards (dashboard.css)
const cell = (text, className, label) => {
  const td = element('td', { className, text })
  if (label) td.dataset.label = label
  return td
}

const badge = (status) => element('span', { className: `badge status-${status}`, text: status })

const fillTable = (section, rows) => {
  $('tbody', section).replaceChildren(...rows)
  $('table', section).hidden = rows.length === 0
  $('.empty', section).hidden = rows.length !== 0
}

// Event data and metadata as the server sent them, indented
const jsonBlock = (value, className) => element('pre', { className: `json ${className ?? ''}`.trim(), text: JSON.stringify(value, null, 2) })

// --- calling the API -----------------------------------------------------------------------------

const credentials = {
  key: sessionStorage.getItem('annalist.key') ?? '',
  tenant: sessionStorage.getItem('annalist.tenant') ?? '',
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`)
    this.status = status
    this.problem = problem
  }
}

const requestHeaders = (accept) => {
  const headers = { accept }
  if (credentials.key) headers.authorization = `Bearer ${credentials.key}`
  if (credentials.tenant) headers['x-tenant-id'] = credentials.tenant
  return headers
}

const failure = async (response) => {
  let problem = null
  try {
    problem = await response.json()
  } catch {
    // not a problem document: the status says enough
  }
  return new ApiError(response.status, problem)
}

const api = async (path, signal) => {
  const response = await fetch(path, { headers: requestHeaders('application/json'), cache: 'no-store', signal })
  if (!response.ok) throw await failure(response)
  return response.json()
}

// A management call: POST with a JSON body when there is one, none at all otherwise (the operations that
// take no body refuse one). Resolves to { status, body }; a refusal throws an ApiError with the problem.
const post = async (path, body) => {
  const headers = requestHeaders('application/json')
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, { method: 'POST', headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) })
  if (!response.ok) throw await failure(response)
  return { status: response.status, body: await response.json() }
}

// Server-sent events over fetch: calls onMessage({id, event, data}) per message until the server ends the
// stream or `signal` aborts it.
const readEventStream = async (path, { signal, lastEventId, onOpen, onMessage }) => {
  const headers = requestHeaders('text/event-stream')
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId)
  const response = await fetch(path, { headers, cache: 'no-store', signal })
  if (!response.ok) throw await failure(response)
  onOpen?.()
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const message = parseMessage(buffer.slice(0, end))
      buffer = buffer.slice(end + 2)
      if (message.data.length > 0) onMessage({ ...message, data: message.data.join('\n') })
    }
  }
}

const parseMessage = (block) => {
  const message = { id: undefined, event: 'message', data: [] }
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'data') message.data.push(text)
    else if (field === 'id') message.id = text
    else if (field === 'event') message.event = text
  }
  return message
}

const delay = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    }, { once: true })
  })

// Runs refresh(signal) now and then every `ms` (or as many ms as refresh returns), or sooner when the
// returned wake() is called, until the signal aborts.
const every = (ms, refresh, signal) => {
  let wakeUp = null
  // a wake-up asked for while refresh runs is kept for the wait that follows
  let woken = false
  const loop = async () => {
    while (!signal.aborted) {
      woken = false
      const next = await refresh(signal)
      if (woken) continue
      await new Promise((resolve) => {
        wakeUp = resolve
        delay(typeof next === 'number' ? next : ms, signal).then(resolve)
      })
      wakeUp = null
    }
  }
  loop()
  return () => {
    woken = true
    wakeUp?.()
  }
}

// --- charts --------------------------------------------------------------------------------------

// Line charts as inline SVG, drawn from samples kept in the page: no chart library.

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 300
const HEIGHT = 64
const COLOURS = ['#2f6fde', '#1f8a4c', '#b7791f', '#c53030', '#7b49c9', '#0f8a8a', '#c2417f', '#5b6b85']

const svgElement = (tag, attributes) => {
  const node = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value))
  return node
}

// Samples {at: ms, value} of one or more series over the last `windowMs`.
class History {
  constructor(windowMs) {
    this.windowMs = windowMs
    this.series = new Map()
  }

  add(name, at, value) {
    const samples = this.series.get(name) ?? []
    samples.push({ at, value })
    while (samples.length > 0 && samples[0].at < at - this.windowMs) samples.shift()
    this.series.set(name, samples)
  }

  keepOnly(names) {
    for (const name of this.series.keys()) if (!names.has(name)) this.series.delete(name)
  }
}

// Draws every series of `history` into `svg` (its viewBox is WIDTH × HEIGHT, stretched to the panel), the
// newest sample at the right edge; the top of the scale is written in the corner.
const drawChart = (svg, history, now, colourOf) => {
  const all = [...history.series.values()].flat()
  const top = Math.max(1, ...all.map((sample) => sample.value))
  const x = (at) => WIDTH - ((now - at) / history.windowMs) * WIDTH
  const y = (value) => HEIGHT - 2 - (value / top) * (HEIGHT - 14)
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`)
  svg.setAttribute('preserveAspectRatio', 'none')
  const lines = [...history.series.entries()].map(([name, samples]) =>
    svgElement('polyline', {
      points: samples.map((sample) => `${x(sample.at).toFixed(1)},${y(sample.value).toFixed(1)}`).join(' '),
      fill: 'none',
      stroke: colourOf(name),
      'stroke-width': 1.5,
      'vector-effect': 'non-scaling-stroke',
    }),
  )
  const base = svgElement('line', { x1: 0, x2: WIDTH, y1: HEIGHT - 1, y2: HEIGHT - 1, stroke: '#e3e6eb', 'vector-effect': 'non-scaling-stroke' })
  svg.replaceChildren(base, ...lines)
  svg.dataset.max = String(top)
  svg.parentElement.querySelector('.chart-max').textContent = new Intl.NumberFormat().format(Math.round(top))
}

// --- stats ---------------------------------------------------------------------------------------

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

const forgetStats = () => {
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

const refreshStats = async (signal, { sectionState }) => {
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
const recordLag = (projections) => {
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

// --- projections and backfills -------------------------------------------------------------------

// Projections (status, lag and the management actions) and their backfills, read together so the two
// panels always show the same moment.

const BACKFILLS_PER_PROJECTION = 5
const TERMINAL = ['completed', 'failed', 'cancelled']

// SPEC "Management": what each action does, said in the confirmation before it is sent
const ACTIONS = [
  { action: 'stop', label: 'Stop', when: (p) => p.status !== 'stopped', says: 'stops applying events (the current batch commits first).' },
  { action: 'start', label: 'Start', when: (p) => p.status === 'stopped', says: 'resumes applying events from its position.' },
  { action: 'restart', label: 'Restart', when: () => true, says: 'runs it again and resumes its held tenants, each retrying the event it failed on.' },
  { action: 'skip', label: 'Skip', when: (p) => p.status === 'failed', says: 'moves each held tenant past the event it failed on (recorded as ProjectionSkippedEvent) and resumes it.' },
  { action: 'reset', label: 'Reset', when: () => true, says: 'clears its documents and replays every event in place; reads see it rebuilt from nothing.' },
  {
    action: 'rebuild',
    label: 'Rebuild',
    when: () => true,
    says: 'rebuilds it atomically from the whole log beside the live documents, and swaps the new generation in when it has caught up.',
    path: (name) => `/projections/${encodeURIComponent(name)}/backfills`,
    body: { criteria: 'full-rebuild', atomic: true },
  },
  { action: 'rollback', label: 'Roll back', when: () => true, says: 'swaps the previous generation (and its definition) back in.' },
]

const backfillItems = new Map()
// One progress stream per unfinished backfill, for as long as it runs (backfill id → the stream's signal).
const following = new Map()

const forgetBackfills = () => {
  following.clear()
  backfillItems.clear()
}

const actionButtons = (projection, onAction) =>
  ACTIONS.filter(({ when }) => when(projection)).map((definition) => {
    const button = element('button', { className: `action action-${definition.action}`, text: definition.label, data: { action: definition.action } })
    button.type = 'button'
    button.addEventListener('click', () => onAction(projection.name, definition))
    return button
  })

const renderProjections = (projections, onAction) => {
  const rows = projections.map((projection) => {
    const status = cell('', undefined, 'Status')
    status.append(badge(projection.status))
    const actions = cell('', 'actions')
    actions.append(...actionButtons(projection, onAction))
    const row = element('tr', { data: { projection: projection.name, status: projection.status } })
    row.append(
      cell(projection.name, 'name'),
      cell(projection.kind, undefined, 'Kind'),
      status,
      cell(formatNumber(projection.position), 'num', 'Position'),
      cell(formatNumber(projection.head), 'num', 'Head'),
      cell(formatNumber(projection.lag), projection.lag > 0 ? 'num lagging' : 'num', 'Lag'),
      cell(formatNumber(projection.documents), 'num', 'Documents'),
      cell(projection.lastError ? `${projection.lastError.tenant ? `${projection.lastError.tenant} ` : ''}#${projection.lastError.position}: ${projection.lastError.message}` : '', 'error', 'Last error'),
      actions,
    )
    return row
  })
  fillTable($('#projections-section'), rows)
}

const backfillItem = (backfill) => {
  let item = backfillItems.get(backfill.id)
  if (item) return item
  item = element('li', { className: 'backfill', data: { backfillId: backfill.id } })
  item.innerHTML = `
    <div class="backfill-head"><span class="projection"></span><span class="criteria"></span><span class="status"></span><span class="started"></span></div>
    <div class="bar"><progress max="100" value="0"></progress><span class="percent"></span></div>
    <div class="figures"><span class="processed"></span><span class="rate"></span><span class="eta"></span></div>
    <div class="error" hidden></div>`
  backfillItems.set(backfill.id, item)
  return item
}

const renderBackfill = (backfill) => {
  const item = backfillItem(backfill)
  item.dataset.status = backfill.status
  $('.projection', item).textContent = backfill.projection
  $('.criteria', item).textContent = `${backfill.criteria}${backfill.atomic ? ', atomic' : ''}${backfill.maxConcurrency > 1 ? `, ×${backfill.maxConcurrency}` : ''}`
  $('.status', item).replaceChildren(badge(backfill.status))
  $('.started', item).textContent = backfill.startedAt ? `started ${formatTime(backfill.startedAt)}` : `queued ${formatTime(backfill.createdAt)}`
  const percent = Math.max(0, Math.min(100, backfill.percent))
  $('progress', item).value = percent
  // rounded down, so 99.96 % is not shown as 100 before the run has ended
  $('.percent', item).textContent = percent === 100 ? '100 %' : `${(Math.floor(percent * 10) / 10).toFixed(1)} %`
  $('.processed', item).textContent = `${formatNumber(backfill.processed)} / ${formatNumber(backfill.total)} events`
  $('.rate', item).textContent = `${formatNumber(Math.round(backfill.eventsPerSecond))} events/s`
  $('.eta', item).textContent = TERMINAL.includes(backfill.status) ? `finished ${formatTime(backfill.finishedAt)}` : `ETA ${formatDuration(backfill.etaSeconds)}`
  const error = $('.error', item)
  error.textContent = backfill.error ?? ''
  error.hidden = !backfill.error
  return item
}

const followBackfill = (backfill, signal) => {
  if (following.has(backfill.id) || TERMINAL.includes(backfill.status)) return
  following.set(backfill.id, signal)
  const path = `/projections/${encodeURIComponent(backfill.projection)}/backfills/${encodeURIComponent(backfill.id)}/progress`
  readEventStream(path, { signal, onMessage: (message) => renderBackfill(JSON.parse(message.data)) })
    .catch(() => {
      // the next poll shows the state, and opens the stream again while the run is unfinished
    })
    .finally(() => {
      // a stream aborted by a change of key must not forget the stream that replaced it
      if (following.get(backfill.id) === signal) following.delete(backfill.id)
    })
}

const renderBackfills = (lists, signal) => {
  const backfills = lists
    .flatMap((list) => (list.status === 'fulfilled' ? list.value.backfills.slice(0, BACKFILLS_PER_PROJECTION) : []))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  // while a progress stream runs, its frames are newer than the polled row
  const items = backfills.map((backfill) => (following.has(backfill.id) ? backfillItem(backfill) : renderBackfill(backfill)))
  const shown = new Set(backfills.map((backfill) => backfill.id))
  for (const id of backfillItems.keys()) if (!shown.has(id)) backfillItems.delete(id)
  $('#backfills').replaceChildren(...items)
  $('.empty', $('#backfills-section')).hidden = items.length !== 0
  for (const backfill of backfills) followBackfill(backfill, signal)
}

// Reads the projections and then each one's backfills, and draws both panels only once all have answered.
const refreshProjections = async (signal, { sectionState, onAction, onProjections }) => {
  const section = $('#projections-section')
  const backfillSection = $('#backfills-section')
  let projections
  try {
    projections = (await api('/projections', signal)).projections
  } catch (error) {
    if (signal.aborted) return
    sectionState(section, error)
    sectionState(backfillSection, error)
    return
  }
  const lists = await Promise.allSettled(
    projections.map((projection) => api(`/projections/${encodeURIComponent(projection.name)}/backfills`, signal)),
  )
  if (signal.aborted) return
  sectionState(section, null)
  renderProjections(projections, onAction)
  // a projection deleted since the list was read has no backfills to show; anything else is worth saying
  const failed = lists.find((list) => list.status === 'rejected' && list.reason.status !== 404)
  sectionState(backfillSection, failed?.reason ?? null)
  renderBackfills(lists, signal)
  onProjections(projections)
}

// The action, confirmed in the dialog, then sent; the answer (the projection's status after it, or the
// problem) is shown under the table.
const runAction = async (name, definition, { confirm, explain, refresh }) => {
  if (!(await confirm(`${definition.label} projection ${name}?`, `This ${definition.says}`))) return
  const result = $('#action-result')
  result.hidden = false
  result.dataset.state = 'pending'
  result.textContent = `${definition.label} ${name}…`
  const path = definition.path?.(name) ?? `/projections/${encodeURIComponent(name)}/${definition.action}`
  try {
    const { status, body } = await post(path, definition.body)
    result.dataset.state = 'done'
    result.textContent = definition.action === 'rebuild'
      ? `${definition.label} ${name}: ${status}, backfill ${body.id} ${body.status}.`
      : `${definition.label} ${name}: ${status}, the projection is now ${body.status}.`
  } catch (error) {
    result.dataset.state = 'failed'
    result.textContent = `${definition.label} ${name} was refused: ${explain(error)}${error.problem?.code ? ` (${error.problem.code})` : ''}`
  }
  refresh()
}

// --- the stream browser --------------------------------------------------------------------------

// The stream browser: the stream list (naturally sorted, loaded a page at a time) and one stream's events
// with their data and metadata, a page at a time.

const PAGE = 100
const MAX_LIMIT = 1000
const EVENTS_PAGE = 20

const list = { pages: 1, loaded: [], more: false }
const view = { streamId: null, from: 1, highlight: null }

// The server pages in id order; the pages loaded so far are read again and shown in natural order.
const readStreams = async (signal) => {
  const prefix = $('#stream-prefix').value.trim()
  const wanted = list.pages * PAGE
  const streams = []
  let after
  for (;;) {
    const query = new URLSearchParams({ limit: String(Math.min(MAX_LIMIT, wanted - streams.length)) })
    if (prefix) query.set('prefix', prefix)
    if (after !== undefined) query.set('after', after)
    const page = await api(`/streams?${query}`, signal)
    streams.push(...page.streams)
    if (page.next === null || streams.length >= wanted) return { streams, more: page.next !== null }
    after = page.next
  }
}

const refreshStreams = async (signal, { sectionState }) => {
  const section = $('#streams-section')
  try {
    const { streams, more } = await readStreams(signal)
    sectionState(section, null)
    list.loaded = streams.sort((a, b) => naturalOrder(a.streamId, b.streamId))
    list.more = more
    fillTable(section, list.loaded.map((stream) => {
      const row = element('tr', { className: 'openable', data: { streamId: stream.streamId } })
      row.tabIndex = 0
      row.append(cell(stream.streamId, 'name'), cell(stream.category, undefined, 'Category'), cell(formatNumber(stream.version), 'num', 'Events'), cell(formatTime(stream.updatedAt), undefined, 'Updated'))
      row.classList.toggle('selected', stream.streamId === view.streamId)
      return row
    }))
    $('#stream-count').textContent = `${formatNumber(streams.length)}${more ? '+' : ''} stream${streams.length === 1 ? '' : 's'}`
    $('#streams-more').hidden = !more
  } catch (error) {
    if (!signal.aborted) sectionState(section, error)
  }
}

const loadMoreStreams = () => {
  list.pages += 1
}

const resetStreamPages = () => {
  list.pages = 1
}

const eventArticle = (event) => {
  const head = element('header', { className: 'event-head' }, [
    element('span', { className: 'version', text: `v${event.streamVersion}` }),
    element('span', { className: 'type', text: event.type }),
    element('span', { className: 'position', text: `#${event.globalPosition}` }),
    element('time', { text: formatDateTime(event.createdAt) }),
  ])
  const id = element('div', { className: 'event-id', text: `eventId ${event.eventId}` })
  const data = element('div', { className: 'payload' }, [element('h4', { text: 'data' }), jsonBlock(event.data, 'data')])
  const metadata = element('div', { className: 'payload' }, [element('h4', { text: 'metadata' }), jsonBlock(event.metadata ?? null, 'metadata')])
  const article = element('article', { className: 'event', data: { version: String(event.streamVersion), position: String(event.globalPosition) } }, [head, id, element('div', { className: 'payloads' }, [data, metadata])])
  article.classList.toggle('highlight', event.streamVersion === view.highlight)
  return article
}

// Shows `streamId` from version `from` (the newest page when from is undefined), marking version `highlight`.
const openStream = async (streamId, { from, highlight, sectionState }) => {
  const section = $('#stream-view')
  section.hidden = false
  view.streamId = streamId
  view.highlight = highlight ?? null
  $('#stream-view-title').textContent = streamId
  for (const row of document.querySelectorAll('#streams tr[data-stream-id]')) row.classList.toggle('selected', row.dataset.streamId === streamId)
  const path = `/streams/${encodeURIComponent(streamId)}`
  try {
    const stream = await api(path)
    view.from = from ?? Math.max(1, stream.version - EVENTS_PAGE + 1)
    const page = await api(`${path}/events?from=${view.from}&limit=${EVENTS_PAGE}`)
    sectionState(section, null)
    const last = page.events.at(-1)?.streamVersion ?? view.from
    $('#stream-view-meta').textContent = `${stream.category} · ${formatNumber(stream.version)} events · versions ${formatNumber(view.from)}–${formatNumber(last)} · updated ${formatDateTime(stream.updatedAt)}`
    $('#stream-events').replaceChildren(...page.events.map(eventArticle))
    $('#stream-older').disabled = view.from <= 1
    $('#stream-newer').disabled = page.next === null
    view.next = page.next
  } catch (error) {
    $('#stream-events').replaceChildren()
    sectionState(section, error)
  }
  const marked = $('#stream-events .highlight')
  ;(marked ?? section).scrollIntoView({ block: 'nearest' })
}

const pageStream = (direction, options) => {
  if (!view.streamId) return
  const from = direction === 'older' ? Math.max(1, view.from - EVENTS_PAGE) : view.next
  if (from === null || from === undefined) return
  openStream(view.streamId, { ...options, from })
}

const closeStream = () => {
  view.streamId = null
  $('#stream-view').hidden = true
  for (const row of document.querySelectorAll('#streams tr.selected')) row.classList.remove('selected')
}

// --- refresh timing ---------------------------------------------------------------------------------

const POLL_MS = 2000
const STREAMS_POLL_MS = 4000
const RECENT_EVENTS = 50
// while a projection is changing (a rebuild, a catch-up), both projection panels are read this often
const BUSY_POLL_MS = 500
const BUSY = ['rebuilding', 'catching-up']

// --- messages ---------------------------------------------------------------------------------------

const banner = (text) => {
  const node = $('#banner')
  node.textContent = text ?? ''
  node.hidden = !text
}

const explain = (error) => {
  if (error.status === 401) return credentials.key ? 'This key was not accepted: enter a valid API key above.' : 'This server needs an API key: enter one above to see its data.'
  if (error.status === 403) return credentials.key ? `This key may not do this: ${error.message}` : `Forbidden: ${error.message}`
  if (error.status) return `The server answered ${error.status}: ${error.message}`
  return `The server cannot be reached (${error.message}).`
}

// A 401 concerns every panel alike, so it is said once, in the banner, and the panels stay quiet; a 403 or
// any other failure is said in the panel it concerns. Any answer showing the key was taken clears the banner.
const sectionState = (section, error) => {
  const message = $('.message', section)
  const own = error && error.status !== 401
  message.textContent = own ? explain(error) : ''
  message.hidden = !own
  message.classList.toggle('auth', error?.status === 403)
  section.classList.toggle('locked', error?.status === 401)
  if (error?.status === 401) banner(explain(error))
  else if (!error || error.status === 403) banner(null)
}

// --- the confirmation dialog --------------------------------------------------------------------------

const confirmAction = (title, text) =>
  new Promise((resolve) => {
    const dialog = $('#confirm')
    $('#confirm-title').textContent = title
    $('#confirm-text').textContent = text
    dialog.returnValue = ''
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true })
    dialog.showModal()
  })

// --- recent events ------------------------------------------------------------------------------------

const setLive = (state, text = state) => {
  $('#live').dataset.state = state
  $('#live-text').textContent = text
}

const eventItem = (event) => {
  const open = element('button', { className: 'event-link', title: `open ${event.streamId} at version ${event.streamVersion}` }, [
    element('span', { className: 'position', text: `#${event.globalPosition}` }),
    element('span', { className: 'type', text: event.type }),
    element('span', { className: 'stream', text: `${event.streamId} v${event.streamVersion}` }),
    element('time', { text: formatTime(event.createdAt) }),
  ])
  open.type = 'button'
  open.addEventListener('click', () => openStream(event.streamId, { from: event.streamVersion, highlight: event.streamVersion, sectionState }))
  return element('li', { data: { position: String(event.globalPosition) } }, [open])
}

// A busy log can deliver thousands of events a second: keep only the newest and draw them once a frame.
let pending = []
let drawing = false

const addEvent = (event) => {
  pending.push(event)
  if (pending.length > RECENT_EVENTS) pending = pending.slice(-RECENT_EVENTS)
  if (drawing) return
  drawing = true
  requestAnimationFrame(() => {
    drawing = false
    const list = $('#events')
    list.prepend(...pending.reverse().map(eventItem))
    pending = []
    while (list.children.length > RECENT_EVENTS) list.lastElementChild.remove()
    $('.empty', $('#events-section')).hidden = list.children.length !== 0
  })
}

// Replays the last few positions, then follows the log live; after a drop it resumes from the last event
// seen. Without an accepted key it says so (not a network fault) and asks again slowly.
const followEvents = async (signal) => {
  const section = $('#events-section')
  let last
  let wait = 500
  while (!signal.aborted) {
    let refused = false
    try {
      if (last === undefined) {
        const { head } = await api('/events?limit=1', signal)
        last = Math.max(0, head - RECENT_EVENTS)
        pending = []
        $('#events').replaceChildren()
      }
      await readEventStream(`/subscribe?after=${last}`, {
        signal,
        onOpen: () => {
          setLive('live')
          sectionState(section, null)
          wait = 500
        },
        onMessage: (message) => {
          const event = JSON.parse(message.data)
          last = event.globalPosition
          addEvent(event)
        },
      })
    } catch (error) {
      if (signal.aborted) return
      sectionState(section, error)
      refused = error.status === 401 || error.status === 403
    }
    if (refused) setLive('locked', 'key needed')
    else setLive('reconnecting')
    await delay(refused ? Math.max(wait, 5000) : wait, signal)
    wait = Math.min(wait * 2, 10_000)
  }
}

// --- subjects ---------------------------------------------------------------------------------------

// SPEC "Personal data": a subject's status when asked (GET /subjects/{subject}); forgetting stays an API call.
const showSubject = async (subject) => {
  const section = $('#subject-section')
  const list = $('#subject-status')
  list.hidden = true
  if (subject === '') return sectionState(section, null)
  try {
    const status = await api(`/subjects/${encodeURIComponent(subject)}`)
    sectionState(section, null)
    const rows = [
      ['Subject', status.subject],
      ['Events with personal data', formatNumber(status.events)],
      ['Forgotten', status.forgotten ? `yes, ${formatDateTime(status.forgottenAt)}` : 'no'],
      ['Rebuilds pending', status.pending.length === 0 ? 'none' : status.pending.join(', ')],
    ]
    list.replaceChildren(...rows.flatMap(([term, value]) => [element('dt', { text: term }), element('dd', { text: value })]))
    list.hidden = false
  } catch (error) {
    sectionState(section, error)
  }
}

// --- wiring -------------------------------------------------------------------------------------------

let running = new AbortController()
let wake = { projections: () => {}, streams: () => {} }

const projectionsRefresh = async (signal) => {
  let busy = false
  await refreshProjections(signal, {
    sectionState,
    onAction: (name, definition) => runAction(name, definition, { confirm: confirmAction, explain, refresh: () => wake.projections() }),
    onProjections: (projections) => {
      recordLag(projections)
      busy = projections.some((projection) => BUSY.includes(projection.status))
    },
  })
  // a status that is changing is followed closely, so the panels never lag behind it for long
  return busy ? BUSY_POLL_MS : POLL_MS
}

const start = () => {
  running.abort()
  running = new AbortController()
  const { signal } = running
  banner(null)
  forgetBackfills()
  forgetStats()
  setLive('connecting')
  wake = {
    projections: every(POLL_MS, projectionsRefresh, signal),
    streams: every(STREAMS_POLL_MS, (s) => refreshStreams(s, { sectionState }), signal),
  }
  every(POLL_MS, (s) => refreshStats(s, { sectionState }), signal)
  followEvents(signal)
}

$('#key').value = credentials.key
$('#tenant').value = credentials.tenant
$('#credentials').addEventListener('submit', (event) => {
  event.preventDefault()
  credentials.key = $('#key').value.trim()
  credentials.tenant = $('#tenant').value.trim()
  sessionStorage.setItem('annalist.key', credentials.key)
  sessionStorage.setItem('annalist.tenant', credentials.tenant)
  start()
})
$('#forget').addEventListener('click', () => {
  sessionStorage.removeItem('annalist.key')
  sessionStorage.removeItem('annalist.tenant')
  credentials.key = ''
  credentials.tenant = ''
  $('#key').value = ''
  $('#tenant').value = ''
  start()
})
$('#stream-filter').addEventListener('submit', (event) => event.preventDefault())
$('#stream-prefix').addEventListener('input', () => {
  resetStreamPages()
  wake.streams()
})
$('#streams-more').addEventListener('click', () => {
  loadMoreStreams()
  wake.streams()
})
const openRow = (event) => {
  const row = event.target.closest('tr[data-stream-id]')
  if (row) openStream(row.dataset.streamId, { sectionState })
}
$('#streams').addEventListener('click', openRow)
$('#streams').addEventListener('keydown', (event) => {
  if (event.key === 'Enter') openRow(event)
})
$('#subject-lookup').addEventListener('submit', (event) => {
  event.preventDefault()
  void showSubject($('#subject-id').value.trim())
})
$('#stream-older').addEventListener('click', () => pageStream('older', { sectionState }))
$('#stream-newer').addEventListener('click', () => pageStream('newer', { sectionState }))
$('#stream-close').addEventListener('click', closeStream)
$('#confirm-ok').addEventListener('click', () => $('#confirm').close('confirm'))
$('#confirm-cancel').addEventListener('click', () => $('#confirm').close('cancel'))

start()

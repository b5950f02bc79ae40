// The Annalist dashboard: plain browser JavaScript, no build step. Every read goes through the public API
// with the key typed above (`Authorization: Bearer …`), so streams use fetch() rather than EventSource,
// which cannot send headers.

const POLL_MS = 2000
const STREAMS_POLL_MS = 4000
const RECENT_EVENTS = 50
const BACKFILLS_PER_PROJECTION = 5
const TERMINAL = ['completed', 'failed', 'cancelled']

const $ = (selector, root = document) => root.querySelector(selector)

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
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
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
      if (message.data.length > 0) onMessage({ ...message, data: message.data.join('\n') })
    }
  }
}

const delay = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    }, { once: true })
  })

// --- messages ---------------------------------------------------------------------------------------

const banner = (text) => {
  const element = $('#banner')
  element.textContent = text ?? ''
  element.hidden = !text
}

const explain = (error) => {
  if (error.status === 401) return 'This server needs an API key: enter one above.'
  if (error.status === 403) {
    return credentials.key ? `This key may not read this: ${error.message}` : `Forbidden: ${error.message}`
  }
  if (error.status) return `The server answered ${error.status}: ${error.message}`
  return `The server cannot be reached (${error.message}).`
}

// A section shows its own failure; a 401 also goes to the banner, since every section needs the key, and
// any answer that shows the key was taken (a success, a 403) takes the banner away.
const sectionState = (section, error) => {
  const message = $('.message', section)
  message.textContent = error ? explain(error) : ''
  message.hidden = !error
  message.classList.toggle('auth', error?.status === 401 || error?.status === 403)
  if (error?.status === 401) banner(explain(error))
  else if (!error || error.status === 403) banner(null)
}

// --- formatting -------------------------------------------------------------------------------------

const number = new Intl.NumberFormat()
const formatNumber = (value) => (value === null || value === undefined ? '–' : number.format(value))
const formatTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–')
const formatDuration = (seconds) => {
  if (seconds === null || seconds === undefined) return '–'
  if (seconds < 60) return `${Math.ceil(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
}

const cell = (text, className) => {
  const td = document.createElement('td')
  td.textContent = text
  if (className) td.className = className
  return td
}

const badge = (status) => {
  const span = document.createElement('span')
  span.className = `badge status-${status}`
  span.textContent = status
  return span
}

const fillTable = (section, rows) => {
  $('tbody', section).replaceChildren(...rows)
  $('table', section).hidden = rows.length === 0
  $('.empty', section).hidden = rows.length !== 0
}

// --- projections and backfills ----------------------------------------------------------------------

const renderProjections = (projections) => {
  const rows = projections.map((projection) => {
    const tr = document.createElement('tr')
    tr.dataset.projection = projection.name
    const status = cell('')
    status.append(badge(projection.status))
    tr.append(
      cell(projection.name, 'name'),
      cell(projection.kind),
      status,
      cell(formatNumber(projection.position), 'num'),
      cell(formatNumber(projection.head), 'num'),
      cell(formatNumber(projection.lag), projection.lag > 0 ? 'num lagging' : 'num'),
      cell(formatNumber(projection.documents), 'num'),
      cell(projection.lastError ?? '', 'error'),
    )
    return tr
  })
  fillTable($('#projections-section'), rows)
}

const backfillItems = new Map()

const backfillItem = (backfill) => {
  let item = backfillItems.get(backfill.id)
  if (item) return item
  item = document.createElement('li')
  item.className = 'backfill'
  item.dataset.backfillId = backfill.id
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

// One progress stream per unfinished backfill, for as long as it runs (backfill id → the stream's signal).
const following = new Map()

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

const refreshProjections = async (signal) => {
  const section = $('#projections-section')
  const backfillSection = $('#backfills-section')
  let projections
  try {
    projections = (await api('/projections', signal)).projections
    sectionState(section, null)
  } catch (error) {
    if (signal.aborted) return
    sectionState(section, error)
    sectionState(backfillSection, error)
    return
  }
  renderProjections(projections)
  const lists = await Promise.allSettled(
    projections.map((projection) => api(`/projections/${encodeURIComponent(projection.name)}/backfills`, signal)),
  )
  if (signal.aborted) return
  // a projection deleted since the list was read has no backfills to show; anything else is worth saying
  const failed = lists.find((list) => list.status === 'rejected' && list.reason.status !== 404)
  sectionState(backfillSection, failed?.reason ?? null)
  const backfills = lists
    .flatMap((list) => (list.status === 'fulfilled' ? list.value.backfills.slice(0, BACKFILLS_PER_PROJECTION) : []))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  // while a progress stream runs, its frames are newer than the polled row
  const items = backfills.map((backfill) => (following.has(backfill.id) ? backfillItem(backfill) : renderBackfill(backfill)))
  const shown = new Set(backfills.map((backfill) => backfill.id))
  for (const id of backfillItems.keys()) if (!shown.has(id)) backfillItems.delete(id)
  $('#backfills').replaceChildren(...items)
  $('.empty', backfillSection).hidden = items.length !== 0
  for (const backfill of backfills) followBackfill(backfill, signal)
}

// --- streams ----------------------------------------------------------------------------------------

const refreshStreams = async (signal) => {
  const section = $('#streams-section')
  const prefix = $('#stream-prefix').value.trim()
  const query = new URLSearchParams({ limit: '100' })
  if (prefix) query.set('prefix', prefix)
  try {
    const page = await api(`/streams?${query}`, signal)
    sectionState(section, null)
    fillTable(section, page.streams.map((stream) => {
      const tr = document.createElement('tr')
      tr.append(cell(stream.streamId, 'name'), cell(stream.category), cell(formatNumber(stream.version), 'num'), cell(formatTime(stream.updatedAt)))
      return tr
    }))
    $('.more', section).hidden = page.next === null
  } catch (error) {
    if (!signal.aborted) sectionState(section, error)
  }
}

// --- recent events ----------------------------------------------------------------------------------

const setLive = (state) => {
  $('#live').dataset.state = state
  $('#live-text').textContent = state
}

const eventItem = (event) => {
  const item = document.createElement('li')
  item.dataset.position = String(event.globalPosition)
  const position = document.createElement('span')
  position.className = 'position'
  position.textContent = `#${event.globalPosition}`
  const type = document.createElement('span')
  type.className = 'type'
  type.textContent = event.type
  const stream = document.createElement('span')
  stream.className = 'stream'
  stream.textContent = `${event.streamId} v${event.streamVersion}`
  const time = document.createElement('time')
  time.dateTime = event.createdAt
  time.textContent = formatTime(event.createdAt)
  item.append(position, type, stream, time)
  return item
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

// Replays the last few positions, then follows the log live; after a drop it resumes from the last event seen.
const followEvents = async (signal) => {
  const section = $('#events-section')
  let last
  let wait = 500
  while (!signal.aborted) {
    try {
      if (last === undefined) {
        const { head } = await api('/events?limit=1', signal)
        last = Math.max(0, head - RECENT_EVENTS)
        pending = []
        $('#events').replaceChildren()
        $('.empty', section).hidden = false
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
    }
    setLive('reconnecting')
    await delay(wait, signal)
    wait = Math.min(wait * 2, 10_000)
  }
}

// --- wiring -----------------------------------------------------------------------------------------

const every = async (ms, refresh, signal) => {
  while (!signal.aborted) {
    await refresh(signal)
    await delay(ms, signal)
  }
}

let running = new AbortController()

const start = () => {
  running.abort()
  running = new AbortController()
  const { signal } = running
  banner(null)
  following.clear()
  backfillItems.clear()
  setLive('connecting')
  every(POLL_MS, refreshProjections, signal)
  every(STREAMS_POLL_MS, refreshStreams, signal)
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
$('#stream-prefix').addEventListener('input', () => refreshStreams(running.signal))

start()

// The Annalist dashboard: plain browser JavaScript modules, no build step. Wiring, messages and the live
// feed of recent events; the panels live in dashboard-*.js.
import { api, credentials, delay, every, readEventStream } from './dashboard-api.js'
import { $, element, formatTime } from './dashboard-format.js'
import { forgetBackfills, refreshProjections, runAction } from './dashboard-projections.js'
import { forgetStats, recordLag, refreshStats } from './dashboard-stats.js'
import { closeStream, loadMoreStreams, openStream, pageStream, refreshStreams, resetStreamPages } from './dashboard-streams.js'

const POLL_MS = 2000
const STREAMS_POLL_MS = 4000
const RECENT_EVENTS = 50
// while a projection is changing (a rebuild, a catch-up), both projection panels are read this often
const BUSY_POLL_MS = 500
const BUSY = ['rebuilding', 'catching-up']

// --- messages ---------------------------------------------------------------------------------------

const banner = (text) => {
  const element = $('#banner')
  element.textContent = text ?? ''
  element.hidden = !text
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
$('#stream-older').addEventListener('click', () => pageStream('older', { sectionState }))
$('#stream-newer').addEventListener('click', () => pageStream('newer', { sectionState }))
$('#stream-close').addEventListener('click', closeStream)
$('#confirm-ok').addEventListener('click', () => $('#confirm').close('confirm'))
$('#confirm-cancel').addEventListener('click', () => $('#confirm').close('cancel'))

start()

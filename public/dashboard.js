// The Annalist dashboard: plain browser ES modules, no build step and no library. This one wires the panels
// of public/dashboard/ to the page and sets how often each is read (docs/dashboard.md says what each panel
// asks and how often).

import { credentials } from './dashboard/api.js'
import { forgetBackfills } from './dashboard/backfills.js'
import { followEvents, setLive } from './dashboard/events.js'
import { $ } from './dashboard/format.js'
import { banner, confirmAction, explain, sectionState } from './dashboard/messages.js'
import { refreshProjections, runAction } from './dashboard/projections.js'
import { forgetStats, recordLag, refreshStats } from './dashboard/stats.js'
import { showSubject } from './dashboard/subjects.js'
import { closeStream, loadMoreStreams, openStream, pageStream, refreshStreams, resetStreamPages } from './dashboard/streams.js'
import { every } from './dashboard/timing.js'

// --- refresh timing ---------------------------------------------------------------------------------

const POLL_MS = 2000
const STREAMS_POLL_MS = 4000
// while a projection is changing (a rebuild, a catch-up), both projection panels are read this often
const BUSY_POLL_MS = 500
const BUSY = ['rebuilding', 'catching-up']

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

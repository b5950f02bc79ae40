import { readEventStream } from './api.js'
import { $, badge, element, formatDuration, formatNumber, formatTime } from './format.js'

// Backfills: the newest runs per projection with progress bars; an unfinished one follows its progress stream.

const BACKFILLS_PER_PROJECTION = 5
const TERMINAL = ['completed', 'failed', 'cancelled']

const backfillItems = new Map()
// One progress stream per unfinished backfill, for as long as it runs (backfill id → the stream's signal).
const following = new Map()

export const forgetBackfills = () => {
  following.clear()
  backfillItems.clear()
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

export const renderBackfills = (lists, signal) => {
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

// Projections (status, lag and the management actions) and their backfills, read together so the two
// panels always show the same moment.
import { api, post, readEventStream } from './dashboard-api.js'
import { $, badge, cell, element, fillTable, formatDuration, formatNumber, formatTime } from './dashboard-format.js'

const BACKFILLS_PER_PROJECTION = 5
const TERMINAL = ['completed', 'failed', 'cancelled']

// SPEC "Management": what each action does, said in the confirmation before it is sent
const ACTIONS = [
  { action: 'stop', label: 'Stop', when: (p) => p.status !== 'stopped', says: 'stops applying events (the current batch commits first).' },
  { action: 'start', label: 'Start', when: (p) => p.status === 'stopped', says: 'resumes applying events from its position.' },
  { action: 'restart', label: 'Restart', when: () => true, says: 'clears any error and runs again from its position (a failed projection retries the event it failed on).' },
  { action: 'skip', label: 'Skip', when: (p) => p.status === 'failed', says: 'moves past the event it failed on (recorded as ProjectionSkippedEvent) and runs again.' },
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

export const forgetBackfills = () => {
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
      cell(projection.lastError ? `#${projection.lastError.position}: ${projection.lastError.message}` : '', 'error', 'Last error'),
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
export const refreshProjections = async (signal, { sectionState, onAction, onProjections }) => {
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
export const runAction = async (name, definition, { confirm, explain, refresh }) => {
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

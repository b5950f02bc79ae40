import { api } from './api.js'
import { $, cell, element, fillTable, formatDateTime, formatNumber, formatTime, jsonBlock, naturalOrder } from './format.js'

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

export const refreshStreams = async (signal, { sectionState }) => {
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

export const loadMoreStreams = () => {
  list.pages += 1
}

export const resetStreamPages = () => {
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
export const openStream = async (streamId, { from, highlight, sectionState }) => {
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

export const pageStream = (direction, options) => {
  if (!view.streamId) return
  const from = direction === 'older' ? Math.max(1, view.from - EVENTS_PAGE) : view.next
  if (from === null || from === undefined) return
  openStream(view.streamId, { ...options, from })
}

export const closeStream = () => {
  view.streamId = null
  $('#stream-view').hidden = true
  for (const row of document.querySelectorAll('#streams tr.selected')) row.classList.remove('selected')
}

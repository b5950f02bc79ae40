import { api, readEventStream } from './api.js'
import { $, element, formatTime } from './format.js'
import { sectionState } from './messages.js'
import { openStream } from './streams.js'
import { delay } from './timing.js'

// Recent events: the newest events of the log, followed live over /subscribe.

const RECENT_EVENTS = 50

export const setLive = (state, text = state) => {
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
export const followEvents = async (signal) => {
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

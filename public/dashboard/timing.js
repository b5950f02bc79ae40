// Waiting and polling loops, each ended by an AbortSignal.

export const delay = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    }, { once: true })
  })

// Runs refresh(signal) now and then every `ms` (or as many ms as refresh returns), or sooner when the
// returned wake() is called, until the signal aborts.
export const every = (ms, refresh, signal) => {
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

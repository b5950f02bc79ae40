// Line charts as inline SVG, drawn from samples kept in the page: no chart library.

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 300
const HEIGHT = 64
export const COLOURS = ['#2f6fde', '#1f8a4c', '#b7791f', '#c53030', '#7b49c9', '#0f8a8a', '#c2417f', '#5b6b85']

const svgElement = (tag, attributes) => {
  const node = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value))
  return node
}

// Samples {at: ms, value} of one or more series over the last `windowMs`.
export class History {
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
export const drawChart = (svg, history, now, colourOf) => {
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

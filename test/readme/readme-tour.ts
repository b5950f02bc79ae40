export interface TourStep {
  // one shell command, continuation lines included, as the README spells it
  command: string
  // the README's `# → …` line after it, without the arrow
  expect?: string
}

// The ```sh blocks under one `## heading` of a Markdown text, cut into commands and the answers shown
// after them. A command goes on while its line ends with `\` or a single quote is still open.
export const parseTour = (markdown: string, heading: string): TourStep[] => {
  const start = markdown.indexOf(`\n## ${heading}\n`)
  if (start < 0) throw new Error(`no "## ${heading}" section`)
  const next = markdown.indexOf('\n## ', start + 1)
  const section = markdown.slice(start, next < 0 ? undefined : next)
  const steps: TourStep[] = []
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let open: string[] = []
    for (const line of block[1]!.split('\n')) {
      if (open.length > 0) {
        open.push(line)
      } else if (line.startsWith('# → ')) {
        const last = steps.at(-1)
        if (last) last.expect = line.slice('# → '.length).trim()
        continue
      } else if (line.trim() === '' || line.trimStart().startsWith('#')) {
        continue
      } else {
        open = [line]
      }
      const text = open.join('\n')
      if (!text.endsWith('\\') && (text.split("'").length - 1) % 2 === 0) {
        steps.push({ command: text })
        open = []
      }
    }
    if (open.length > 0) throw new Error(`an unfinished command in the tour: ${open.join('\n')}`)
  }
  return steps
}

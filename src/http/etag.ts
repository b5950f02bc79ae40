// If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored, `*` matches any current
// representation, and the header may list several tags.
export const matchesIfNoneMatch = (header: string | undefined, etag: string): boolean => {
  if (header === undefined) return false
  const bare = etag.replace(/^W\//, '')
  return header.split(',').some((tag) => {
    const trimmed = tag.trim()
    return trimmed === '*' || trimmed.replace(/^W\//, '') === bare
  })
}

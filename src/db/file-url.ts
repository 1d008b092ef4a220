// No dependencies: config.ts reads it before any database is opened.

/** The filesystem path of a `file:` URL, or undefined for remote and in-memory databases. */
export function localFilePath(url: string): string | undefined {
  if (!url.startsWith('file:')) return undefined
  let path = url.slice('file:'.length)
  const query = path.indexOf('?')
  if (query !== -1) path = path.slice(0, query)
  // file:///abs and file://localhost/abs carry an (empty or local) authority before the path.
  if (path.startsWith('//')) {
    const slash = path.indexOf('/', 2)
    path = slash === -1 ? '' : path.slice(slash)
  }
  if (path === '' || path === ':memory:') return undefined
  return decodeURIComponent(path)
}

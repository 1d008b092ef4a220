import { constants } from 'node:fs'
import { open, readdir, realpath, stat } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import type { z } from 'zod'
import { type HayPluginBlock, Metadata, PackageManifest, isValidId } from '../contract/index.js'
import type { SdkVersion } from '../contract/index.js'
import { errorText, GatewayError } from '../core/index.js'
import { checksumPlugin } from './checksum.js'
import type { CatalogEntry, InvalidCatalogEntry, ValidCatalogEntry } from './types.js'

/**
 * Lists the plugins in each directory, one level deep (CONTRACT.md §1). Every subdirectory
 * becomes an entry: valid, or invalid with the reason (listed, never started). Hidden
 * directories and plain files are skipped. A directory listed twice is scanned once. A plugins
 * directory that cannot be read is a configuration error and throws.
 */
export async function scanPlugins(dirs: readonly string[]): Promise<CatalogEntry[]> {
  const roots = [...new Set(dirs.map((d) => resolve(d)))]
  const found = await Promise.all(roots.map(scanRoot))
  return markDuplicates(found.flat()).sort((a, b) => compare(a.id, b.id) || compare(a.dir, b.dir))
}

async function scanRoot(root: string): Promise<CatalogEntry[]> {
  let names: string[]
  try {
    const entries = await readdir(root, { withFileTypes: true })
    const dirs = await Promise.all(
      entries
        .filter((e) => !e.name.startsWith('.'))
        // A symlinked plugin (npm link) counts when it points at a directory.
        .map(async (e) => (e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(join(root, e.name)))) ? e.name : undefined)),
    )
    names = dirs.filter((n): n is string => n !== undefined)
  } catch (err) {
    throw new GatewayError('INTERNAL', 500, `plugins directory ${root} cannot be read`, { cause: err })
  }
  return Promise.all(names.map((name) => scanPlugin(root, name)))
}

// A manifest is a few KB; anything near this is not one.
const MAX_MANIFEST_BYTES = 1024 * 1024

/**
 * package.json's bytes, or why it is not a manifest. Opened without blocking and checked on the open
 * handle: a FIFO or device (or a symlink to one) would otherwise hang or exhaust the scan.
 */
async function readManifestFile(path: string): Promise<Buffer | string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = await handle.stat()
    if (!info.isFile()) return 'package.json is not a regular file'
    if (info.size > MAX_MANIFEST_BYTES) return `package.json is larger than ${MAX_MANIFEST_BYTES} bytes`
    return await handle.readFile()
  } finally {
    await handle.close()
  }
}

async function scanPlugin(root: string, name: string): Promise<CatalogEntry> {
  const dir = join(root, name)
  const invalid = (error: string): InvalidCatalogEntry => ({ ok: false, id: name, dir, error })
  // The id names paths and keys everywhere else, so it is checked before anything is read.
  if (!isValidId(name)) return invalid(`directory name "${name}" is not a valid plugin id ([a-z0-9][a-z0-9_-]{0,63})`)

  let bytes: Buffer
  try {
    const read = await readManifestFile(join(dir, 'package.json'))
    if (typeof read === 'string') return invalid(read)
    bytes = read
  } catch (err) {
    return invalid(isNotFound(err) ? 'package.json not found' : `package.json cannot be read: ${errorText(err)}`)
  }

  let raw: unknown
  try {
    raw = JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    return invalid(`package.json is not valid JSON: ${errorText(err)}`)
  }
  if (typeof raw !== 'object' || raw === null || !('hay-plugin' in raw)) {
    return invalid('package.json has no "hay-plugin" block')
  }
  const parsed = PackageManifest.safeParse(raw)
  if (!parsed.success) return invalid(`package.json is invalid: ${summariseIssues(parsed.error)}`)
  const pkg = parsed.data
  const manifest = pkg['hay-plugin']
  if (manifest.entry === undefined) return invalid('"hay-plugin".entry is missing')

  const entry = await locateEntry(dir, manifest.entry)
  if (!entry.ok) return invalid(entry.error)

  // CONTRACT.md §1: an embedded configSchema or auth means legacy v1 (metadata from the manifest).
  const sdkVersion: SdkVersion = manifest.configSchema !== undefined || manifest.auth !== undefined ? 'v1' : 'v2'
  let legacyMetadata: Metadata | undefined
  if (sdkVersion === 'v1') {
    const legacy = legacyMetadataOf(manifest)
    if (!legacy.success) return invalid(`legacy manifest metadata is invalid: ${summariseIssues(legacy.error)}`)
    legacyMetadata = legacy.data
  }

  let checksum: string
  try {
    checksum = await checksumPlugin(bytes, dirname(entry.path))
  } catch (err) {
    return invalid(`plugin files cannot be read: ${errorText(err)}`)
  }

  const valid: ValidCatalogEntry = {
    ok: true,
    id: name,
    dir,
    name: pkg.name,
    version: pkg.version,
    manifest,
    sdkVersion,
    entryPath: entry.path,
    checksum,
    envAllowList: [...manifest.env],
  }
  if (legacyMetadata) valid.legacyMetadata = legacyMetadata
  return valid
}

/** The entry must be an existing file inside the plugin dir, also after resolving symlinks. */
async function locateEntry(dir: string, entry: string): Promise<{ ok: true; path: string } | { ok: false; error: string }> {
  const path = resolve(dir, entry)
  if (!isInside(dir, path)) return { ok: false, error: `entry "${entry}" points outside the plugin directory` }
  try {
    const [real, realDir] = await Promise.all([realpath(path), realpath(dir)])
    if (!isInside(realDir, real)) return { ok: false, error: `entry "${entry}" resolves outside the plugin directory` }
    if (!(await stat(real)).isFile()) return { ok: false, error: `entry "${entry}" is not a file` }
    return { ok: true, path }
  } catch (err) {
    return { ok: false, error: isNotFound(err) ? `entry file "${entry}" not found` : `entry "${entry}" cannot be read: ${errorText(err)}` }
  }
}

/** CONTRACT.md §1/§3: a v1 manifest's configSchema, auth (one or many) and routes, defaults for the rest. */
function legacyMetadataOf(manifest: HayPluginBlock) {
  const auth = manifest.auth === undefined ? [] : Array.isArray(manifest.auth) ? manifest.auth : [manifest.auth]
  return Metadata.safeParse({ configSchema: manifest.configSchema ?? {}, authMethods: auth, routes: manifest.routes ?? [] })
}

/** The same id in two plugins directories is an error on both (CONTRACT.md §1). */
function markDuplicates(entries: CatalogEntry[]): CatalogEntry[] {
  const byId = new Map<string, CatalogEntry[]>()
  for (const e of entries) byId.set(e.id, [...(byId.get(e.id) ?? []), e])
  return entries.map((e) => {
    const same = byId.get(e.id) ?? []
    if (same.length < 2 || !isValidId(e.id)) return e
    const where = same.map((s) => s.dir).join(' and ')
    return { ok: false, id: e.id, dir: e.dir, error: `plugin id "${e.id}" is defined more than once: ${where}` }
  })
}

function summariseIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ')
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child)
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false // a dangling symlink is not a plugin
  }
}

const isNotFound = (err: unknown) => (err as { code?: unknown } | null)?.code === 'ENOENT'

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

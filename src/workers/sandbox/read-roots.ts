import type { Dirent } from 'node:fs'
import { access, readdir, realpath } from 'node:fs/promises'
import { basename, dirname, join, sep } from 'node:path'

/** Directories a worker may read, and why a plugin directory cannot be confined, if it cannot. */
export type ReadRoots = { ok: true; paths: string[] } | { ok: false; reason: string }

/** Files no worker may ever read: the database (and its WAL files) and the generated key. */
export type ProtectedPaths = readonly string[]

export const isInside = (dir: string, path: string): boolean => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep)

/**
 * What a worker of the plugin in pluginDir reads: that directory, the package directories of the
 * runner files, every node_modules those resolve modules from (their own and their ancestors'), and
 * the packages linked into those node_modules (npm workspaces, `file:` dependencies), by their real
 * paths, since Node's module loader reads a module at its real path.
 *
 * Node's permission model follows symbolic links without checking where they lead (Node 20–24), so
 * a link in the plugin's directory to anything else would hand that file out. The plugin directory
 * is therefore walked (links are not followed) and refused when a link leads outside what it may
 * read anyway, except a package link in a node_modules, whose target is added (unless it is another
 * plugin's directory); and nothing it may read may hold a protected file.
 */
export async function readRoots(
  pluginDir: string,
  runnerFiles: readonly string[],
  guard: { protectedPaths: ProtectedPaths; pluginRoots: readonly string[] },
): Promise<ReadRoots> {
  const realPluginDir = await realpath(pluginDir)
  // A workspace's node_modules links every plugin of it: none of them is a package this one may read.
  const otherPluginDirs = await Promise.all(guard.pluginRoots.map((r) => realpath(r).catch(() => r)))
  const isOtherPlugin = (dir: string) => !isInside(realPluginDir, dir) && otherPluginDirs.some((r) => isInside(r, dir) && r !== dir)
  const links = await linksBelow(realPluginDir)
  const packageLinks = links.filter((link) => isPackagePosition(link))
  const packageDirs = [
    realPluginDir,
    ...(await Promise.all(runnerFiles.map(async (f) => packageRoot(await realpath(f))))),
    ...(await packageTargets(packageLinks)),
  ]
  const roots = new Set<string>()
  // Links in a node_modules read whole: whatever they lead to is read through them.
  const rootLinks: string[] = []
  // Breadth-first over package directories: each may bring node_modules, which may link more packages.
  for (let i = 0; i < packageDirs.length; i++) {
    const dir = packageDirs[i] as string
    if (isCovered(roots, dir) || isOtherPlugin(dir)) continue
    roots.add(dir)
    for (const nodeModules of await ancestorNodeModules(dir)) {
      if (isCovered(roots, nodeModules)) continue
      roots.add(nodeModules)
      const { linked, others } = await linksIn(nodeModules)
      rootLinks.push(...others)
      // Read through its link, the target is readable whatever it is: another plugin must not be.
      const intoPlugin = linked.find((l) => isOtherPlugin(l.target))
      if (intoPlugin) {
        return {
          ok: false,
          reason: `${intoPlugin.link} links to ${intoPlugin.target}, another plugin's directory, which its workers would read`,
        }
      }
      packageDirs.push(...linked.map((l) => l.target))
    }
  }
  if (pluginDir !== realPluginDir) roots.add(pluginDir) // the runner reads its manifest by the given path

  const paths = minimal([...roots])
  for (const file of guard.protectedPaths) {
    const holder = paths.find((p) => isInside(p, file))
    if (holder) return { ok: false, reason: `${holder}, which its workers would read, holds ${file}` }
  }
  // A node_modules that plugins were installed into holds them all: each would read the others.
  for (const root of otherPluginDirs) {
    const holder = paths.find((p) => isInside(p, root))
    if (holder) return { ok: false, reason: `${holder}, which its workers would read, holds the plugins directory ${root}` }
  }
  for (const link of [...links, ...rootLinks]) {
    const target = await realpath(link).catch(() => undefined) // dangling: leads nowhere
    if (target !== undefined && !paths.some((p) => isInside(p, target))) {
      return { ok: false, reason: `${link} links to ${target}, outside what its workers may read` }
    }
  }
  return { ok: true, paths }
}

/** The package directories of the runner files and every node_modules those resolve modules from. */
export async function runnerPackageDirs(runnerFiles: readonly string[]): Promise<string[]> {
  const packages = await Promise.all(runnerFiles.map(async (f) => packageRoot(await realpath(f))))
  const nodeModules = await Promise.all(packages.map(ancestorNodeModules))
  return [...new Set([...packages, ...nodeModules.flat()])]
}

/** The nearest directory at or above a file that has a package.json (else the file's own directory). */
async function packageRoot(file: string): Promise<string> {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (await exists(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return dirname(file)
  }
}

/** Every existing `node_modules` in dir and its ancestors: where Node looks for a bare import from dir. */
async function ancestorNodeModules(dir: string): Promise<string[]> {
  const found: string[] = []
  for (let d = dir; ; d = dirname(d)) {
    if (basename(d) !== 'node_modules') {
      const candidate = join(d, 'node_modules')
      const real = await realpath(candidate).catch(() => undefined)
      if (real) found.push(real)
    }
    if (dirname(d) === d) return found
  }
}

/**
 * The links of a node_modules (`name` or `@scope/name` entries): those to packages with their real
 * paths, and the others (to a directory without a package.json, or a file).
 */
async function linksIn(nodeModules: string): Promise<{ linked: Array<{ link: string; target: string }>; others: string[] }> {
  const links: string[] = []
  for (const entry of await entries(nodeModules)) {
    if (entry.name.startsWith('@') && entry.isDirectory()) {
      for (const scoped of await entries(join(nodeModules, entry.name))) {
        if (scoped.isSymbolicLink()) links.push(join(nodeModules, entry.name, scoped.name))
      }
    } else if (entry.isSymbolicLink() && entry.name !== '.bin') {
      links.push(join(nodeModules, entry.name))
    }
  }
  const all = await Promise.all(links.map(async (link) => ({ link, target: await packageTarget(link) })))
  return {
    linked: all.filter((l): l is { link: string; target: string } => l.target !== undefined),
    others: all.filter((l) => l.target === undefined).map((l) => l.link),
  }
}

/** `node_modules/name` or `node_modules/@scope/name`: where a package manager links a package. */
function isPackagePosition(link: string): boolean {
  const parent = dirname(link)
  return basename(parent) === 'node_modules' || (basename(parent).startsWith('@') && basename(dirname(parent)) === 'node_modules')
}

/** Link targets that are package directories (a package.json inside). */
async function packageTargets(links: string[]): Promise<string[]> {
  const targets = await Promise.all(links.map(packageTarget))
  return targets.filter((t): t is string => t !== undefined)
}

/** The real path of a link's target when it is a package directory (a package.json inside). */
async function packageTarget(link: string): Promise<string | undefined> {
  const target = await realpath(link).catch(() => undefined)
  return target && (await exists(join(target, 'package.json'))) ? target : undefined
}

/** Every symbolic link below dir; links are not followed. */
async function linksBelow(dir: string): Promise<string[]> {
  // Sibling directories are read concurrently: a plugin's node_modules holds thousands of entries.
  const found = await Promise.all(
    (await entries(dir)).map(async (entry) => {
      const path = join(dir, entry.name)
      if (entry.isSymbolicLink()) return [path]
      return entry.isDirectory() ? linksBelow(path) : []
    }),
  )
  return found.flat()
}

async function entries(dir: string): Promise<Dirent[]> {
  return readdir(dir, { withFileTypes: true }).catch(() => [])
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  )

const isCovered = (roots: Set<string>, path: string) => [...roots].some((r) => isInside(r, path))

/** Sorted, without paths inside another one of them. */
function minimal(paths: string[]): string[] {
  const sorted = [...new Set(paths)].sort()
  return sorted.filter((p) => !sorted.some((q) => q !== p && isInside(q, p)))
}

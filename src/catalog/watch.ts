import { type FSWatcher, watch } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Clock, Logger } from '../core/index.js'
import { errorText } from '../core/index.js'
import { isCodeFile, isWalked } from './checksum.js'

/** Directories watched at most: each costs an inotify watch, and hosts may allow as few as 8192 per user. */
export const MAX_WATCHED_DIRS = 2_000

export interface WatchPluginsDeps {
  /** PLUGINS_DIR. */
  dirs: readonly string[]
  /** Quiet time after the last change before onChange runs: a build writes many files. */
  debounceMs: number
  clock: Clock
  log: Logger
  /** The rescan. Runs one at a time; changes meanwhile run it again once it is over. */
  onChange: () => Promise<unknown>
}

export interface PluginWatcher {
  /** Stops watching; a rescan under way finishes. Idempotent. */
  close(): Promise<void>
}

/**
 * Whether an entry named `name` (null: the platform does not say) changing in a watched directory
 * can change the plugins: in a plugins directory, any entry but a hidden one (a plugin added, removed,
 * renamed, a link swapped); below, what the checksum hashes (code files; names without an extension,
 * which directories have). Not what a plugin writes beside its code at run time (logs, caches): with
 * the sandbox off it may, and a rescan at each of those writes would never end.
 */
function isPluginChange(name: string | null, isPluginsDir: boolean): boolean {
  if (name === null) return true
  if (isPluginsDir) return !name.startsWith('.')
  return isWalked(name) && isCodeFile(name)
}

/**
 * WATCH_PLUGINS: watches the plugins directories, each plugin directory in them and its
 * subdirectories, except node_modules and dot-directories (what the checksum skips), and runs onChange
 * once changes of plugin code have been quiet for debounceMs (see isPluginChange). The watches are set
 * up again before each run: a plugin added (or a directory replaced by a rename, as deploy tools do)
 * is watched from then on. A plugins directory is also watched from its parent, where a swap of the
 * link it may be (an atomic deploy: `ln -sfn releases/v2 current`) shows; a watch of the directory
 * itself follows the link to the old target and sees nothing.
 */
export async function watchPlugins(deps: WatchPluginsDeps): Promise<PluginWatcher> {
  const { clock, log } = deps
  let watchers: FSWatcher[] = []
  let cancelTimer: (() => void) | undefined
  let turn: Promise<void> = Promise.resolve()
  let closed = false

  const changed = () => {
    if (closed) return
    cancelTimer?.()
    cancelTimer = clock.setTimer(deps.debounceMs, () => {
      cancelTimer = undefined
      turn = turn.then(async () => {
        if (closed) return
        await rewatch()
        await deps.onChange().catch((err: unknown) => log.warn({ err }, 'rescan after a change of plugin files failed'))
      })
    })
  }

  // Watching first, then the rescan reads the files: a change made in between is seen by one or the other.
  async function rewatch(): Promise<void> {
    unwatch()
    const dirs = await directoriesOf(deps.dirs, log)
    if (closed) return
    const roots = new Set(deps.dirs)
    for (const dir of dirs) {
      const isPluginsDir = roots.has(dir)
      watchDir(dir, (name) => isPluginChange(name, isPluginsDir))
    }
    for (const root of deps.dirs) watchDir(dirname(root), (name) => name === null || name === basename(root))
  }

  function watchDir(dir: string, isRelevant: (name: string | null) => boolean): void {
    try {
      // Not persistent: a watch never keeps the gateway's process alive.
      const onEvent = (_event: string, name: string | null) => {
        if (isRelevant(name)) changed()
      }
      watchers.push(watch(dir, { persistent: false }, onEvent).on('error', changed))
    } catch (err) {
      log.debug({ dir, error: errorText(err) }, 'plugin directory not watched') // gone since it was listed
    }
  }

  function unwatch(): void {
    for (const w of watchers) w.close()
    watchers = []
  }

  await rewatch()
  log.info({ dirs: deps.dirs, debounceMs: deps.debounceMs }, 'watching the plugin directories')
  return {
    async close() {
      closed = true
      cancelTimer?.()
      unwatch()
      await turn
    },
  }
}

/** Each root, the plugin directories in it (a link to a directory counts, as in the scan), and their subdirectories. */
async function directoriesOf(roots: readonly string[], log: Logger): Promise<string[]> {
  const found: string[] = []
  const add = (dir: string) => {
    if (found.length < MAX_WATCHED_DIRS) found.push(dir)
    return found.length < MAX_WATCHED_DIRS
  }
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (!add(dir)) return
    let entries: Awaited<ReturnType<typeof listDir>>
    try {
      entries = await listDir(dir)
    } catch {
      return // removed meanwhile, or not readable: the scan reports it
    }
    for (const e of entries) {
      // A plugin directory may be a link (npm link); below it, links are not followed (as the checksum).
      const isPlugin = depth === 0 && e.isSymbolicLink()
      if (isWalked(e.name) && (e.isDirectory() || isPlugin)) await walk(join(dir, e.name), depth + 1)
    }
  }
  for (const root of roots) await walk(root, 0)
  if (found.length >= MAX_WATCHED_DIRS) log.warn({ max: MAX_WATCHED_DIRS }, 'too many plugin directories to watch them all; rescan by hand')
  return found
}

const listDir = (dir: string) => readdir(dir, { withFileTypes: true })

import { readFile, readlink, realpath } from 'node:fs/promises'
import { resolve, sep } from 'node:path'
import type { Logger } from '../core/index.js'
import type { PluginInstanceRow } from '../db/index.js'
import { readProcStat } from '../workers/index.js'

/**
 * Kills worker processes a dead gateway left behind (a runner that ignores its parent and was not
 * started through node, so the watchdog could not be preloaded). The rows are those start-up reset,
 * which already left out workers with a live gateway parent (hasLiveGatewayParent). A recorded pid is
 * only killed when /proc shows it is still that worker: its command line names the org and the plugin
 * directory (a legacy one: its entry, with our watchdog preloaded; a prewarmed one: see
 * isPrewarmedWorkerOf). Pids are reused, so a process that does not match is left alone.
 */
export async function killOrphanedWorkers(
  rows: readonly PluginInstanceRow[],
  pluginDirOf: (pluginId: string) => string | undefined,
  watchdogPath: string,
  log: Logger,
): Promise<number> {
  let killed = 0
  for (const row of rows) {
    const dir = pluginDirOf(row.pluginId)
    if (row.pid === null || dir === undefined) continue
    const args = await commandLine(row.pid)
    if (!args || !(isWorkerOf(args, row.orgId, dir, watchdogPath) || (await isPrewarmedWorkerOf(row.pid, args, dir)))) continue
    try {
      process.kill(row.pid, 'SIGKILL')
      killed++
      log.warn({ orgId: row.orgId, pluginId: row.pluginId, pid: row.pid }, 'killed orphaned worker')
    } catch {
      // Exited between the check and the kill: nothing left to do.
    }
  }
  return killed
}

/**
 * True when pid's parent is a running gateway of this install (its command line runs a script from
 * installDir): that worker belongs to a live gateway, say a second one started on the same database
 * by mistake, and is no orphan. An orphan's parent is init or a subreaper.
 */
export async function hasLiveGatewayParent(pid: number, installDir: string): Promise<boolean> {
  const ppid = readProcStat(pid)?.ppid
  if (ppid === undefined || ppid <= 1) return false
  const args = await commandLine(ppid)
  if (!args) return false
  // `node dist/node/main.js` (npm start) and `node node_modules/.bin/plugin-gateway start` name the
  // script relative to the parent's cwd, or through a symlink: compare real paths.
  const cwd = await readlink(`/proc/${ppid}/cwd`).catch(() => null)
  for (const arg of args.slice(1)) {
    if (arg === '' || arg.startsWith('-')) continue
    const real = await realpath(cwd === null ? arg : resolve(cwd, arg)).catch(() => null)
    if (real?.startsWith(installDir + sep)) return true
  }
  return false
}

async function commandLine(pid: number): Promise<string[] | null> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
  } catch {
    return null // gone, or no /proc on this platform
  }
}

/**
 * A prewarmed runner was told its plugin, org and port over IPC after it started, so its command line
 * still ends in --prewarm; its working directory is the plugin's, as a fresh worker's is. The org is
 * not visible from outside, but a process with this pid, that flag and that directory whose parent is
 * no live gateway (rows with one were kept, see hasLiveGatewayParent) is an orphaned worker of this
 * plugin either way.
 */
async function isPrewarmedWorkerOf(pid: number, args: readonly string[], pluginDir: string): Promise<boolean> {
  if (!args.includes('--prewarm')) return false
  const [cwd, dir] = await Promise.all([readlink(`/proc/${pid}/cwd`).catch(() => null), realpath(pluginDir).catch(() => null)])
  return cwd !== null && cwd === dir
}

function isWorkerOf(args: readonly string[], orgId: string, pluginDir: string, watchdogPath: string): boolean {
  const v2 = args.includes(`--org-id=${orgId}`) && args.includes(`--plugin-path=${pluginDir}`)
  // Legacy: node --require <watchdog> <entry>; the entry names the plugin, not the org.
  const v1 = args.includes(watchdogPath) && args.some((a) => a.startsWith(`${pluginDir}/`))
  return v2 || v1
}

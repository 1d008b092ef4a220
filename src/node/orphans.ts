import { readFile } from 'node:fs/promises'
import type { Logger } from '../core/index.js'
import type { PluginInstanceRow } from '../db/index.js'

/**
 * Kills worker processes a dead gateway left behind (a runner that ignores its parent and was not
 * started through node, so the watchdog could not be preloaded). A recorded pid is only killed when
 * /proc shows it is still that worker: its command line names the org and the plugin directory.
 * Pids are reused, so a process that does not match is left alone.
 */
export async function killOrphanedWorkers(
  rows: readonly PluginInstanceRow[],
  pluginDirOf: (pluginId: string) => string | undefined,
  log: Logger,
): Promise<number> {
  let killed = 0
  for (const row of rows) {
    const dir = pluginDirOf(row.pluginId)
    if (row.pid === null || dir === undefined) continue
    const args = await commandLine(row.pid)
    if (!args || !isWorkerOf(args, row.orgId, dir)) continue
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

async function commandLine(pid: number): Promise<string[] | null> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
  } catch {
    return null // gone, or no /proc on this platform
  }
}

function isWorkerOf(args: readonly string[], orgId: string, pluginDir: string): boolean {
  const v2 = args.includes(`--org-id=${orgId}`) && args.includes(`--plugin-path=${pluginDir}`)
  const v1 = args.some((a) => a.startsWith(`${pluginDir}/`)) // legacy: node <entry>
  return v2 || v1
}

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { readProcStat } from '../../src/workers/index.js'
import { tempDir } from '../helpers/gateway.js'

describe('readProcStat', () => {
  it("reads a process's pid, state, parent and start time", () => {
    const stat = readProcStat(process.pid)
    expect(stat).toMatchObject({ pid: process.pid, ppid: process.ppid })
    expect(stat?.state).toMatch(/^[RS]$/)
    expect(stat?.startTime).toBeGreaterThan(0)
    expect(readProcStat(process.pid)?.startTime).toBe(stat?.startTime) // one process, one start time
  })

  it('reads past a command name that holds spaces and parentheses', async () => {
    // The kernel names a process after the file it executed: a link to node with a hostile name.
    const node = join(await tempDir(), 'x) S 1 (y')
    await symlink(process.execPath, node)
    const child = spawn(node, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
    const exited = once(child, 'exit')
    onTestFinished(async () => {
      child.kill('SIGKILL')
      await exited
    })
    await once(child, 'spawn')
    expect(readProcStat(child.pid as number)).toMatchObject({ pid: child.pid, ppid: process.pid })
  })

  it('is undefined for a process that is gone', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
    await once(child, 'exit')
    expect(readProcStat(child.pid as number)).toBeUndefined()
  })
})

// Shared by the SDK runner tests: every test ends with no worker left behind (STYLE.md §11). A runner
// still running at the end was asked to stop (SIGTERM, helpers/process.ts); one that did not leave is
// a leak, reported here before it is killed.
import { beforeEach, expect, onTestFinished } from 'vitest'
import { killAll, liveChildren } from '../helpers/process.js'

export function useNoLeftoverProcesses(): void {
  beforeEach(() => {
    // Registered before the test's own clean-ups, so it runs after them (onTestFinished is a stack).
    onTestFinished(async () => {
      const left = liveChildren()
      await killAll()
      expect(left, 'runner processes that outlived their test').toEqual([])
    })
  })
}

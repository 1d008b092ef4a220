// Shared by the SDK runner tests: every test ends with no worker left behind (STYLE.md §11).
import { afterEach, expect } from 'vitest'
import { killAll, liveChildren } from '../helpers/process.js'

export function useNoLeftoverProcesses(): void {
  afterEach(async () => {
    await killAll()
    expect(liveChildren()).toBe(0)
  })
}

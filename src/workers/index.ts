export { createWorkerPool } from './pool.js'
export type { PoolDeps } from './pool.js'
export type { SpawnFn } from './launch.js'
export { checkRunnerReach, createPluginReach, createSandbox, createWorkerUsers } from './sandbox/index.js'
export type {
  ExitInfo,
  Lease,
  PoolEvent,
  StartTiming,
  StopReason,
  Worker,
  WorkerInfo,
  WorkerPool,
  WorkerSpec,
  WorkerState,
} from './types.js'
export { callJson, callWorker } from './control.js'
export { readProcStat } from './proc-stat.js'
export type { ControlResult } from './control.js'

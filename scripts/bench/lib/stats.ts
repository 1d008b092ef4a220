/** Nearest-rank percentile of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number
}

export const median = (samples: readonly number[]) => percentile(samples, 50)

/** f of the i-th a and i-th b, for every round both have: results of two targets measured side by side. */
export const paired = <T, R>(a: readonly T[], b: readonly T[], f: (x: T, y: T) => R): R[] =>
  a.flatMap((x, i) => (i < b.length ? [f(x, b[i] as T)] : []))

export const mean = (xs: readonly number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length)

export interface Summary {
  n: number
  p50: number
  p95: number
  p99: number
  min: number
  max: number
  mean: number
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    p50: percentile(xs, 50),
    p95: percentile(xs, 95),
    p99: percentile(xs, 99),
    min: Math.min(...xs),
    max: Math.max(...xs),
    mean: mean(xs),
  }
}

/** Fixed decimals, or an em dash for a missing value. */
export const fmt = (n: number | null | undefined, digits = 1) =>
  n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits)

export const fmtInt = (n: number | null | undefined) =>
  n === null || n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US')

export const mb = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? NaN : bytes / (1024 * 1024))

export const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN)

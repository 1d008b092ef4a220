import { formatDuration } from '../core/index.js'

/** A plain text table: a header row, columns padded to their widest cell, two spaces apart. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

export const since = (now: number, iso: string | null): string => (iso === null ? '-' : formatDuration(now - Date.parse(iso)))

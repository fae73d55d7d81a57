// Grid geometry: how many columns make n tiles of a given aspect ratio as large as possible in a
// box. Pure, unit-tested.

export interface Grid {
  cols: number;
  rows: number;
  width: number;
  height: number;
}

export function bestGrid(n: number, boxW: number, boxH: number, aspect = 16 / 9, gap = 8): Grid {
  if (n <= 0 || boxW <= 0 || boxH <= 0) return { cols: 1, rows: 1, width: Math.max(0, boxW), height: Math.max(0, boxH) };
  let best: Grid = { cols: 1, rows: n, width: 0, height: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const cellW = (boxW - gap * (cols - 1)) / cols;
    const cellH = (boxH - gap * (rows - 1)) / rows;
    if (cellW <= 0 || cellH <= 0) continue;
    const width = Math.min(cellW, cellH * aspect);
    const height = width / aspect;
    if (width > best.width + 0.5) best = { cols, rows, width: Math.floor(width), height: Math.floor(height) };
  }
  return best;
}
